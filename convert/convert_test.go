package convert

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// referenceDir holds the OpenStack deployments' haproxy.cfg files, beside
// the repository.
const referenceDir = "../../shared/reference/openstack"

// convertFile converts a file, checks the output as "halo check" does and
// that a second conversion gives the same bytes.
func convertFile(t *testing.T, path string) *Result {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	opt := Options{File: filepath.Base(path)}
	res, err := Convert(src, opt)
	if err != nil {
		t.Fatalf("convert: %v", err)
	}
	// Checked as if written beside the source, where its relative files are.
	if _, err := config.Parse(filepath.Join(filepath.Dir(path), "halo.yaml"), res.YAML); err != nil {
		t.Fatalf("the output does not pass halo check: %v\n%s", err, res.YAML)
	}
	again, err := Convert(src, opt)
	if err != nil || !bytes.Equal(again.YAML, res.YAML) {
		t.Fatalf("a second conversion differs (err %v)", err)
	}
	golden := filepath.Join("testdata", "golden", strings.TrimSuffix(filepath.Base(path), ".cfg")+".yaml")
	if *update {
		if err := os.WriteFile(golden, res.YAML, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(res.YAML, want) {
		t.Errorf("output differs from %s (run with -update after checking the diff):\n%s", golden, res.YAML)
	}
	return res
}

func warnings(res *Result) []string {
	var out []string
	for _, d := range res.Diags {
		if !d.Note {
			out = append(out, fmt.Sprintf("%d %s", d.Line, d.Keyword))
		}
	}
	return out
}

// Every reference configuration converts, passes halo check, converts to
// the same bytes twice, and warns only where the file itself is at fault
// (HAProxy warns there too, or binds one address twice).
func TestReferenceConfigsConvert(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(referenceDir, "*.cfg"))
	if len(files) == 0 {
		if os.Getenv("HALO_INTEGRATION") == "1" {
			t.Fatalf("no reference configurations in %s", referenceDir)
		}
		t.Skipf("no reference configurations in %s (../shared beside the repository)", referenceDir)
	}
	want := map[string][]string{
		// cookie in a frontend (HAProxy ignores it, warning), and
		// vip-heat-srv binding vip-heat-cloudw's address.
		"osp-haproxy.cfg":                    {"38 cookie", "161 frontend", "162 bind"},
		"osp-haproxy-segregated.cfg":         {"25 cookie", "148 frontend", "149 bind"},
		"osp-haproxy-keepalived-variant.cfg": nil,
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			res := convertFile(t, f)
			if got := warnings(res); !slices.Equal(got, want[filepath.Base(f)]) {
				t.Errorf("warnings %q, want %q", got, want[filepath.Base(f)])
			}
		})
	}
}

func TestGeneralConfigsConvert(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "configs", "*.cfg"))
	if len(files) == 0 {
		t.Fatal("no configurations in testdata/configs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { convertFile(t, f) })
	}
}

// A warning names the file, the line and the keyword, in the form the
// issue gives, and stands as a comment where its line stood.
func TestWarningsNameTheirLine(t *testing.T) {
	src := "global\n  daemon\n  log /dev/log local0\nfrontend fe\n  bind :80 defer-accept\n  option abortonclose\n  default_backend be\nbackend be\n  server s1 10.0.0.1:80 check resolvers dns\n"
	res, err := Convert([]byte(src), Options{File: "w.cfg"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range res.Diags {
		got = append(got, d.String())
	}
	for _, want := range []string{
		`w.cfg:2: note: "daemon": halo runs in the foreground`,
		`w.cfg:3: keyword "log" is not supported by halo: halo has no syslog output yet`,
		`w.cfg:5: keyword "bind" is not supported by halo: bind word "defer-accept" is not in halo; dropped`,
		`w.cfg:6: keyword "option abortonclose" is not supported by halo:`,
		`w.cfg:9: keyword "server" is not supported by halo: server word "resolvers" (with its value "dns") is not in halo; dropped`,
	} {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, want)
		}
		if !found {
			t.Errorf("no diag starting %q in\n%s", want, strings.Join(got, "\n"))
		}
	}
	if res.Warnings() != 4 {
		t.Errorf("%d warnings, want 4", res.Warnings())
	}
	for _, line := range []string{"WARNING line 5:", "WARNING line 6:", "WARNING line 9:", "line 2, daemon:"} {
		if !strings.Contains(string(res.YAML), line) {
			t.Errorf("no comment %q in\n%s", line, res.YAML)
		}
	}
}

// Several defaults sections: each proxy carries the one it takes, with
// "from" chains, as HAProxy applies them; keys of a defaults section that
// do not apply to a proxy's kind are not carried.
func TestNamedDefaultsAreCarriedIntoTheirProxies(t *testing.T) {
	src := `defaults base
  mode http
  timeout client 11s
  timeout server 12s
  timeout connect 1s
defaults tls from base
  timeout client 21s
frontend a from tls
  bind 127.0.0.1:8001
  default_backend b
backend b from base
  server s 127.0.0.1:9000
defaults
  mode tcp
  timeout client 31s
frontend c
  bind 127.0.0.1:8002
  default_backend d
backend d
  timeout server 40s
  server s 127.0.0.1:9001
`
	res, err := Convert([]byte(src), Options{File: "d.cfg"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("d.yaml", res.YAML)
	if err != nil {
		t.Fatalf("%v\n%s", err, res.YAML)
	}
	fe := map[string]*config.Frontend{}
	for _, f := range cfg.Frontends {
		fe[f.Name] = f
	}
	be := map[string]*config.Backend{}
	for _, b := range cfg.Backends {
		be[b.Name] = b
	}
	check := func(what string, got, want any) {
		if got != want {
			t.Errorf("%s = %v, want %v\n%s", what, got, want, res.YAML)
		}
	}
	check("a client", fe["a"].Timeouts.Client, 21*time.Second)
	check("a mode", fe["a"].Mode, config.ModeHTTP)
	check("b server", be["b"].Timeouts.Server, 12*time.Second)
	check("b connect", be["b"].Timeouts.Connect, time.Second)
	check("c client", fe["c"].Timeouts.Client, 31*time.Second)
	check("c mode", fe["c"].Mode, config.ModeTCP)
	check("d server", be["d"].Timeouts.Server, 40*time.Second)
	check("d connect", be["d"].Timeouts.Connect, time.Duration(0))
	check("d redispatch", be["d"].Options.Redispatch, false)
	if strings.Contains(string(res.YAML), "server: 12s") && strings.Count(string(res.YAML), "server: 12s") != 1 {
		t.Errorf("timeout server carried into a frontend:\n%s", res.YAML)
	}
}

// Rule lines keep the author's words and quoting, for halo's parser of
// HAProxy's language; a line that expanded a variable is quoted again.
func TestRuleLinesKeepHAProxyWords(t *testing.T) {
	src := `frontend fe
  mode http
  bind 127.0.0.1:8080
  acl api path_beg /v2 /v3
  acl api hdr(host) -i api.example.org
  http-request set-header X-Who "%[src] via halo" if api
  http-request deny deny_status 429 if { sc_http_req_rate(0) gt 100 }
  http-request set-header X-Env "${ENVNAME}"
  use_backend be if api
  default_backend be
backend be
  mode http
  balance hdr(host)
  server s 127.0.0.1:9000
`
	res, err := Convert([]byte(src), Options{File: "r.cfg", Lookup: env(map[string]string{"ENVNAME": "prod west"})})
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.YAML)
	for _, want := range []string{
		`set-header X-Who "%[src] via halo" if api`,
		`deny deny_status 429 if { sc_http_req_rate(0) gt 100 }`,
		`set-header X-Env 'prod west'`,
		`path_beg /v2 /v3`,
		`hdr(host) -i api.example.org`,
		`balance: hdr(host)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if _, err := config.Parse("r.yaml", res.YAML); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// HAProxy's defaults are kept where halo's differ: without "option
// redispatch" the converted backend does not redispatch.
func TestHAProxyDefaultsAreKept(t *testing.T) {
	for _, c := range []struct {
		lines string
		want  bool
	}{{"", false}, {"  option redispatch\n", true}} {
		src := "defaults\n  mode tcp\n" + c.lines + "listen l\n  bind 127.0.0.1:7000\n  server s 127.0.0.1:7001\n"
		res, err := Convert([]byte(src), Options{File: "x.cfg"})
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Parse("x.yaml", res.YAML)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Backends[0].Options.Redispatch; got != c.want {
			t.Errorf("%q: redispatch %v, want %v", c.lines, got, c.want)
		}
	}
}

// A mode tcp frontend routed to a mode http backend is written in mode
// http, as HAProxy upgrades such connections.
func TestTCPFrontendOfHTTPBackendBecomesHTTP(t *testing.T) {
	src := "defaults\n  mode tcp\nfrontend fe\n  bind 127.0.0.1:7000\n  default_backend be\nbackend be\n  mode http\n  server s 127.0.0.1:7001\n"
	res, err := Convert([]byte(src), Options{File: "m.cfg"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("m.yaml", res.YAML)
	if err != nil {
		t.Fatalf("%v\n%s", err, res.YAML)
	}
	if cfg.Frontends[0].Mode != config.ModeHTTP || res.Warnings() != 0 {
		t.Errorf("mode %v, %d warnings:\n%s", cfg.Frontends[0].Mode, res.Warnings(), res.YAML)
	}
}
