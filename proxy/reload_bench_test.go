package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// reloadBenchYAML is the reload-1000 scenario's configuration (bench/configs
// reload.halo.yaml): one frontend, n backends of one server each.
func reloadBenchYAML(n int) string {
	var b strings.Builder
	b.WriteString(`
global: {maxconn: 4096}
defaults:
  mode: http
  timeout: {connect: 5s, client: 30s, server: 30s}
frontends:
  bench: {bind: ["127.0.0.1:0"], default_backend: b1}
backends:
`)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  b%d:\n    servers:\n      - {name: s1, address: \"127.0.0.1:9\"}\n", i)
	}
	return b.String()
}

// What a reload of a configuration with 1,000 backends costs halo's
// process: parsing the file and building and swapping the snapshot (the
// bench suite's reload-1000 times the same from the signal to the new
// listener accepting).
func BenchmarkReload1000Backends(b *testing.B) {
	yaml := reloadBenchYAML(1000)
	p := New(zap.NewNop())
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			parseConfig(b, yaml)
		}
	})
	b.Run("parse+apply", func(b *testing.B) {
		for b.Loop() {
			if err := p.Apply(parseConfig(b, yaml)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
