package config

import (
	"strings"
	"testing"
)

// TestUniqueIDConfig reads unique-id-format and unique-id-header from a
// frontend and from defaults, as the haproxy.cfg words they are.
func TestUniqueIDConfig(t *testing.T) {
	cfg, err := Parse("halo.yaml", []byte(`defaults:
  mode: http
  unique-id-format: '%{+X}o\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid'
  unique-id-header: X-Unique-ID
frontends:
  inherits: {bind: "127.0.0.1:80", default_backend: be}
  own: {bind: "127.0.0.1:81", default_backend: be, unique-id-format: '%[uuid]', unique-id-header: X-Request-ID}
backends:
  be: {servers: [{name: s, address: "127.0.0.1:1"}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, fe := range cfg.Frontends {
		f := fe.UniqueIDFormat
		switch fe.Name {
		case "inherits":
			if f == nil || len(f.Parts) != 13 || f.Parts[0].Var != "ci" || f.Parts[12].Var != "pid" || fe.UniqueIDHeader != "X-Unique-ID" {
				t.Errorf("inherited: %+v %q", f, fe.UniqueIDHeader)
			}
		case "own":
			if f == nil || len(f.Parts) != 1 || f.Parts[0].Sample.Fetch.Name != "uuid" || fe.UniqueIDHeader != "X-Request-ID" {
				t.Errorf("own: %+v %q", f, fe.UniqueIDHeader)
			}
		}
	}
}

func TestUniqueIDErrors(t *testing.T) {
	_, err := Parse("halo.yaml", []byte(`frontends:
  a: {mode: http, bind: "127.0.0.1:80", default_backend: be, unique-id-format: '%ci %cp'}
  b: {mode: http, bind: "127.0.0.1:81", default_backend: be, unique-id-format: '%{+Z}ci_%[status]'}
  c: {mode: http, bind: "127.0.0.1:82", default_backend: be, unique-id-header: X-Id}
  d: {mode: tcp, bind: "127.0.0.1:83", default_backend: bt, unique-id-format: '%ci'}
  e: {mode: http, bind: "127.0.0.1:84", default_backend: be, unique-id-format: '%ci', unique-id-header: 'X Id'}
backends:
  be: {mode: http, servers: [{name: s, address: "127.0.0.1:1"}]}
  bt: {mode: tcp, servers: [{name: s, address: "127.0.0.1:1"}]}
`))
	if err == nil {
		t.Fatal("no error")
	}
	got := err.Error()
	for _, want := range []string{
		"halo.yaml:2:85: frontends.a.unique-id-format: unique-id-format takes one word: escape its spaces",
		"halo.yaml:3:83: frontends.b.unique-id-format: unknown format flag \"+Z\"",
		"halo.yaml:3:91: frontends.b.unique-id-format: sample fetch \"status\" is not available in http-request rules",
		"halo.yaml:4:62: frontends.c.unique-id-header: unique-id-header needs a unique-id-format",
		"halo.yaml:5:61: frontends.d.unique-id-format: unique-id-format needs mode http in halo",
		"halo.yaml:6:87: frontends.e.unique-id-header: unique-id-header \"X Id\" is not a header name",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 6 {
		t.Errorf("%d errors, want 6:\n%s", n, got)
	}
}
