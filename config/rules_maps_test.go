package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The map files a use_backend name's converters and a stick line's sample
// name are read when the file is loaded, as those of rules and
// conditions: the proxy builds its converters from cfg.Maps and refuses
// to start on a map it was not given.
func TestMapsOfUseBackendAndStickAreRead(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{"be.map": "image glance\n", "keys.map": "a b\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	yaml := `defaults: {mode: http}
frontends:
  fe:
    bind: "127.0.0.1:8080"
    use_backend:
      - "%[req.hdr(x-be),lower,map(be.map)] if { req.hdr(x-be) -m found }"
    default_backend: glance
backends:
  glance:
    stick-table: type string size 10
    stick:
      - on req.hdr(x-key),map(keys.map,none)
    servers: [{name: g1, address: "127.0.0.1:8081"}]
`
	path := filepath.Join(dir, "halo.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"be.map", "keys.map"} {
		found := false
		for file, entries := range cfg.Maps {
			if strings.HasSuffix(file, name) && len(entries) == 1 {
				found = true
			}
		}
		if !found {
			t.Errorf("%s was not read (maps read: %d)", name, len(cfg.Maps))
		}
	}
	// A computed name's samples are checked like any format's.
	bad := strings.Replace(yaml, "map(be.map)", "map(nosuch.map)", 1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "nosuch.map") {
		t.Errorf("a missing map of a use_backend name: err = %v", err)
	}
}
