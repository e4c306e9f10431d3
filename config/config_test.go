package config

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

// golden compares got with testdata/NAME, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./config -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got ---\n%s--- want ---\n%s", path, got, want)
	}
}

// Every file in testdata/invalid fails with exactly the errors in its .err
// golden file, each with file:line:col and key path.
func TestInvalidGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid/*.yaml")
	if len(files) == 0 {
		t.Fatal("no test files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			if err == nil {
				t.Fatal("loaded without error")
			}
			errs := Errors(err)
			if len(errs) == 0 {
				t.Fatalf("error without position: %v", err)
			}
			for _, e := range errs {
				if e.File != f || e.Line < 1 || e.Col < 1 {
					t.Errorf("error not positioned: %#v", e)
				}
			}
			golden(t, strings.TrimSuffix(f, ".yaml")+".err", err.Error()+"\n")
		})
	}
}

// Every file in testdata/valid loads, and its resolved form (defaults
// inherited) matches its .golden dump.
func TestValidGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			dump, _ := json.MarshalIndent(cfg, "", "  ")
			golden(t, strings.TrimSuffix(f, ".yaml")+".golden", string(dump)+"\n")
		})
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"0", 0, false},
		{"500", 500 * time.Millisecond, false},
		{"250us", 250 * time.Microsecond, false},
		{"500ms", 500 * time.Millisecond, false},
		{"10s", 10 * time.Second, false},
		{"1m", time.Minute, false},
		{"90m", 90 * time.Minute, false},
		{"2h", 2 * time.Hour, false},
		{"1d", 24 * time.Hour, false},
		{"", 0, true},
		{"s", 0, true},
		{"10 s", 0, true},
		{"1.5s", 0, true},
		{"-1s", 0, true},
		{"10x", 0, true},
		{"1min", 0, true},
		{"99999999999999d", 0, true},
	} {
		got, err := ParseDuration(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestInheritance(t *testing.T) {
	cfg, err := Load("testdata/valid/inheritance.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ks := cfg.Backend("keystone")
	n1, n2, n3 := ks.Servers[0], ks.Servers[1], ks.Servers[2]
	checks := []struct {
		what      string
		got, want any
	}{
		{"backend server timeout overrides defaults", ks.Timeouts.Server, 2 * time.Minute},
		{"backend connect timeout from defaults", ks.Timeouts.Connect, 10 * time.Second},
		{"retries from defaults", ks.Retries, 2},
		{"redispatch turned off in defaults", ks.Options.Redispatch, false},
		{"tcpka from defaults implies srvtcpka", ks.Options.SrvTCPKA, true},
		{"backend default-server check", n1.Check, true},
		{"backend default-server rise", n1.Rise, 3},
		{"defaults default-server fall", n1.Fall, 5},
		{"defaults default-server inter", n1.Inter, time.Second},
		{"server inter overrides", n2.Inter, 500 * time.Millisecond},
		{"server check overrides default-server", n3.Check, false},
		{"weight", n1.Weight, 10},
		{"default weight", n2.Weight, 1},
	}
	fes := map[string]*Frontend{}
	for _, fe := range cfg.Frontends {
		fes[fe.Name] = fe
	}
	ksf, db, st := fes["vip-keystone"], fes["vip-db"], fes["stats-like"]
	checks = append(checks, []struct {
		what      string
		got, want any
	}{
		{"frontend client timeout overrides", ksf.Timeouts.Client, 90 * time.Minute},
		{"http-request set", ksf.Timeouts.HTTPRequest, 10 * time.Second},
		{"http-keep-alive defaults to http-request", ksf.Timeouts.HTTPKeepAlive, 10 * time.Second},
		{"http-request defaults to client", db.Timeouts.HTTPRequest, time.Minute},
		{"frontend srvtcpka override keeps clitcpka", ksf.Options.CliTCPKA, true},
		{"frontend maxconn from defaults", ksf.MaxConn, 10000},
		{"frontend maxconn override", db.MaxConn, 500},
		{"listen frontend routes to itself", st.DefaultBackend, "stats-like"},
		{"listen backend exists", cfg.Backend("stats-like") != nil, true},
		{"listen mode", cfg.Backend("stats-like").Mode, ModeHTTP},
		{"default mode is tcp", cfg.Backend("galera").Mode, ModeTCP},
		{"global", cfg.Global.HardStopAfter, time.Minute},
	}...)
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{File: "halo.yaml", Line: 3, Col: 5, Path: "frontends.web.bind[0]", Msg: "bad"}
	if got := e.Error(); got != "halo.yaml:3:5: frontends.web.bind[0]: bad" {
		t.Fatalf("Error() = %q", got)
	}
}

// FuzzParse feeds arbitrary bytes to the configuration parser: it must
// return a config or positioned errors, never panic.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{"testdata/valid", "testdata/invalid"} {
		files, _ := filepath.Glob(dir + "/*.yaml")
		for _, file := range files {
			data, _ := os.ReadFile(file)
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without error")
			}
			for _, fe := range cfg.Frontends {
				// No default_backend is valid (what no use_backend routes
				// is answered 503); one that is named must exist.
				if fe.DefaultBackend != "" && cfg.Backend(fe.DefaultBackend) == nil {
					t.Fatalf("valid config routes %s to missing backend %q", fe.Name, fe.DefaultBackend)
				}
				for _, b := range fe.Binds {
					if norm, err := normalizeBind(b.Address); err != nil || norm != b.Address {
						t.Fatalf("valid config keeps bind address %q unnormalized (%q, %v)", b.Address, norm, err)
					}
					if b.Socket.V4V6 && b.Socket.V6Only {
						t.Fatalf("valid config has v4v6 and v6only on %s", b.Address)
					}
				}
			}
			return
		}
		errs := Errors(err)
		if len(errs) == 0 {
			t.Fatalf("error without position: %v", err)
		}
		for _, e := range errs {
			if e.Line < 1 || e.Col < 1 {
				t.Fatalf("bad position in %v", e)
			}
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"0", "10s", "500ms", "1d", "250us", "9999999999999999999", "1ms1", "s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v, negative", s, d)
		}
	})
}

// docs/configuration.md documents every key the schema accepts; this walks
// the schema so that a new key cannot land undocumented.
func TestEveryKeyDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[reflect.Type]bool{}
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for key, i := range yamlFields(typ) {
			if !strings.Contains(string(doc), "`"+key+"`") {
				t.Errorf("docs/configuration.md does not document %s%s", path, key)
			}
			walk(typ.Field(i).Type, path+key+".")
		}
	}
	walk(reflect.TypeOf(fileConfig{}), "")
	if len(seen) < 6 {
		t.Fatalf("walked only %d schema types", len(seen))
	}
}

// FuzzParseBalance: any balance line either parses into something that
// writes back to a line parsing to the same thing, or is an error.
func FuzzParseBalance(f *testing.F) {
	for _, s := range []string{"roundrobin", "random(3)", "uri len 32 depth 2 whole path-only", "hdr(host) use_domain_only", "url_param id", "random(", "uri len", "hdr()", "first x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		b, err := ParseBalance(line)
		if err != nil {
			return
		}
		again, err := ParseBalance(b.String())
		if err != nil || again != b {
			t.Fatalf("%q parsed to %+v, written back as %q, which parses to %+v, %v", line, b, b.String(), again, err)
		}
	})
}

// A password given in the file or in a password-file shows nowhere: not in
// %v, %+v or %#v of the configuration, not in its JSON.
func TestPasswordsAreRedacted(t *testing.T) {
	cfg, err := Load("testdata/valid/dbchecks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	be := cfg.Backend("galera")
	if got := be.DBCheck.Password.Reveal(); got != "galera-check-secret" {
		t.Fatalf("password from password-file = %q, want galera-check-secret", got)
	}
	if got := cfg.Backend("replicas").DBCheck.Password.Reveal(); got != "s3cret" {
		t.Fatalf("password = %q, want s3cret", got)
	}
	js, _ := json.Marshal(cfg)
	for _, out := range []string{fmt.Sprintf("%v", *be.DBCheck), fmt.Sprintf("%+v", *be.DBCheck),
		fmt.Sprintf("%#v", *be.DBCheck), fmt.Sprint(be.DBCheck.Password), string(js)} {
		if strings.Contains(out, "galera-check-secret") || strings.Contains(out, "s3cret") {
			t.Errorf("a password shows in %s", out)
		}
	}
}
