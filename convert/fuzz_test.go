package convert

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// FuzzConvert: any input either converts to YAML that reads back, or
// fails with an error at a line and column of the input; it never panics.
func FuzzConvert(f *testing.F) {
	for _, dir := range []string{referenceDir, filepath.Join("testdata", "configs")} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.cfg"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("global\n.if defined(X) && (streq(\"$X\",1) || !version_before(2.4))\n maxconn 1\n.endif\n"))
	f.Add([]byte("frontend a\n bind \"${A[*]}\" 'x y' \\x41\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		watchdog := time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("convert took over 5 s on %q", src)) })
		defer watchdog.Stop()
		res, err := Convert(src, Options{File: "f.cfg", Lookup: env(map[string]string{"A": "1 2", "X": "1"})})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Line < 1 || e.Col < 1 {
				t.Fatalf("error without a position: %v", err)
			}
			return
		}
		var n yaml.Node
		if err := yaml.Unmarshal(res.YAML, &n); err != nil {
			t.Fatalf("the output is not YAML: %v\n%s", err, res.YAML)
		}
	})
}
