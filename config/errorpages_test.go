package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const page503 = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\ndown\n"

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestErrorPagesInheritAndOverride(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"503.http": page503,
		"502.http": "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n",
		"body.txt": "gone",
	})
	yaml := `defaults:
  mode: http
  errorfile: {503: 503.http, 502: 502.http}
frontends:
  fe:
    bind: "127.0.0.1:80"
    default_backend: be
    http-error: ["status 502 content-type text/plain string \"fe says\" hdr X-A b"]
    monitor-uri: /status
    acl: {dead: ["nbsrv(be) lt 1"]}
    monitor: ["fail if dead"]
    capture: ["request header Host len 32", "response header Content-Type len 20", "cookie SRV len 10"]
    option: {forwardfor: {except: 127.0.0.0/8, header: X-Client, if-none: true}, originalto: true}
backends:
  be:
    servers: [{name: s, address: "127.0.0.1:1"}]
    http-error: ["status 404 content-type text/plain file body.txt"]
`
	file := filepath.Join(dir, "halo.yaml")
	cfg, err := Parse(file, []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	fe, be := cfg.Frontends[0], cfg.Backends[0]
	if got := string(fe.ErrorPages[503]); got != page503 {
		t.Errorf("frontend 503 inherited from defaults: %q", got)
	}
	want502 := "HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\nX-A: b\r\ncontent-length: 7\r\n\r\nfe says"
	if got := string(fe.ErrorPages[502]); got != want502 {
		t.Errorf("frontend's http-error over defaults' errorfile: %q", got)
	}
	if !strings.HasPrefix(string(be.ErrorPages[502]), "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0") {
		t.Errorf("backend 502 from defaults: %q", be.ErrorPages[502])
	}
	if got := string(be.ErrorPages[404]); !strings.HasSuffix(got, "\r\n\r\ngone") {
		t.Errorf("backend 404 body from file: %q", got)
	}
	if fe.MonitorURI != "/status" || len(fe.MonitorFail) != 1 {
		t.Errorf("monitor: %q %d", fe.MonitorURI, len(fe.MonitorFail))
	}
	if len(fe.Captures) != 3 || fe.Captures[0] != (Capture{CaptureRequest, "Host", 32}) || fe.Captures[2] != (Capture{CaptureCookie, "SRV", 10}) {
		t.Errorf("captures: %+v", fe.Captures)
	}
	o := fe.Options
	if !o.ForwardFor || o.XFF.Header != "X-Client" || !o.XFF.IfNone || o.XFF.Except.String() != "127.0.0.0/8" {
		t.Errorf("forwardfor: %v %+v", o.ForwardFor, o.XFF)
	}
	if !o.OriginalTo || o.XOT.Header != "X-Original-To" || o.XOT.Except.IsValid() {
		t.Errorf("originalto: %v %+v", o.OriginalTo, o.XOT)
	}
}

func TestForwardForStaysABoolean(t *testing.T) {
	for _, tc := range []struct {
		opt  string
		want bool
	}{{"forwardfor: true", true}, {"forwardfor: false", false}, {"forwardfor: {enabled: false, header: X}", false}, {"forwardfor: {}", true}} {
		cfg, err := Parse("halo.yaml", []byte("frontends:\n  fe: {mode: http, bind: \"127.0.0.1:80\", default_backend: be, option: {"+tc.opt+"}}\nbackends:\n  be: {mode: http, servers: [{name: s, address: \"127.0.0.1:1\"}]}\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Frontends[0].Options.ForwardFor; got != tc.want {
			t.Errorf("%s: %v", tc.opt, got)
		}
	}
}

func TestErrorPagesErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"503.http": page503,
		"html.txt": "<html>not a response</html>\n",
	})
	yaml := `frontends:
  fe:
    mode: http
    bind: "127.0.0.1:80"
    default_backend: be
    errorfile: {503: nope.http, 418: 503.http, 502: html.txt}
    http-error:
      - status 503 content-type text/plain lf-string x
      - status 999
      - content-type text/plain string x
      - status 502 content-type text/plain string x hdr X-Src %[src]
    monitor: ["fail if missing", "pass if TRUE"]
    capture: ["request header Host len x", "header Host len 3"]
    option: {forwardfor: {except: 300.0.0.0/8}, originalto: {if-none: true}}
backends:
  be:
    mode: http
    servers: [{name: s, address: "127.0.0.1:1"}]
`
	_, err := Parse(filepath.Join(dir, "halo.yaml"), []byte(yaml))
	if err == nil {
		t.Fatal("no error")
	}
	got := strings.ReplaceAll(err.Error(), dir+"/", "")
	for _, want := range []string{
		"halo.yaml:6:22: frontends.fe.errorfile.503: open nope.http: no such file or directory",
		"halo.yaml:6:33: frontends.fe.errorfile.418: errorfile status \"418\" is not one halo sends",
		"halo.yaml:6:53: frontends.fe.errorfile.502: html.txt is not an HTTP response",
		"halo.yaml:8:44: frontends.fe.http-error[0]: http-error lf-string is not available",
		"halo.yaml:9:16: frontends.fe.http-error[1]: http-error status \"999\" is not one halo sends",
		"halo.yaml:10:9: frontends.fe.http-error[2]: http-error needs status N",
		"halo.yaml:11:63: frontends.fe.http-error[3]: http-error hdr X-Src: a value with % (a log-format expression) is not available",
		"halo.yaml:12:24: frontends.fe.monitor[0]: unknown ACL \"missing\"",
		"halo.yaml:12:35: frontends.fe.monitor[1]: monitor takes \"fail if|unless CONDITION\"",
		"halo.yaml:12:15: frontends.fe.monitor[0]: monitor fail needs a monitor-uri",
		"halo.yaml:13:40: frontends.fe.capture[0]: capture len \"x\" is not a length",
		"halo.yaml:13:45: frontends.fe.capture[1]: capture takes",
		"halo.yaml:14:27: frontends.fe.option.forwardfor.except:",
		"halo.yaml:14:62: frontends.fe.option.originalto.if-none: option originalto has no if-none",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n") + 1; n != 14 {
		t.Errorf("%d errors, want 14:\n%s", n, got)
	}
	_, err = Parse("halo.yaml", []byte("backends:\n  be:\n    servers: [{name: s, address: \"127.0.0.1:1\"}]\n    monitor-uri: /x\n"))
	if err == nil || err.Error() != `halo.yaml:4:5: backends.be.monitor-uri: "monitor-uri" is not allowed in backends` {
		t.Errorf("monitor-uri in a backend: %v", err)
	}
}
