// Package examples holds configurations a user copies; this test loads and
// validates every one, so they never drift from what halo accepts.
package examples

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/halo-lb/halo/config"
)

func TestEveryExampleLoads(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples found: %v", err)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			cfg, err := load(t, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Frontends) == 0 || len(cfg.Backends) == 0 {
				t.Fatalf("%s has no frontend or no backend", f)
			}
		})
	}
}

// fenceAgent is a fence agent of Debian's fence-agents package named in an
// example.
var fenceAgent = regexp.MustCompile(`agent: (/usr/sbin/fence_[a-z0-9_]+)`)

// load loads example f. A cluster example names the fence agents an
// operator uses, and loading checks that they are installed: where one is
// not (a developer's machine without fence-agents), the rest of the file
// is still checked with /bin/true in its place. CI (HALO_INTEGRATION=1)
// installs fence-agents (scripts/install-deps), so there the file loads as
// written.
func load(t *testing.T, f string) (*config.Config, error) {
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	missing := false
	data = fenceAgent.ReplaceAllFunc(data, func(m []byte) []byte {
		path := fenceAgent.FindSubmatch(m)[1]
		if _, err := os.Stat(string(path)); err == nil {
			return m
		}
		missing = true
		return []byte("agent: /bin/true")
	})
	if !missing {
		return config.Load(f)
	}
	if os.Getenv("HALO_INTEGRATION") == "1" {
		t.Fatalf("HALO_INTEGRATION=1 and %s names fence agents that are not installed (Debian package fence-agents; scripts/install-deps installs it)", f)
	}
	t.Logf("%s: fence-agents is not installed; checking the file with /bin/true as its fence agents", f)
	return config.Parse(f, data)
}
