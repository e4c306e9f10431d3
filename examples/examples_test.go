// Package examples holds configurations a user copies; this test loads and
// validates every one, so they never drift from what halo accepts.
package examples

import (
	"path/filepath"
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
			cfg, err := config.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Frontends) == 0 || len(cfg.Backends) == 0 {
				t.Fatalf("%s has no frontend or no backend", f)
			}
		})
	}
}
