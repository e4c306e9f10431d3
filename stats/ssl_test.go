package stats

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testcert"
	"github.com/halo-lb/halo/internal/testnet"
)

// TestShowSSLCertMatchesHAProxy loads the same certificates in halo and
// in Debian's HAProxy and compares "show ssl cert" and "show ssl cert
// FILE" line by line.
func TestShowSSLCertMatchesHAProxy(t *testing.T) {
	ca := testcert.NewCA(t, "halo test CA")
	certs := t.TempDir()
	api := ca.Issue(t, testcert.Options{}, "api.example.org", "api2.example.org", "192.0.2.10").Write(t, certs, "api.pem")
	rsa := ca.Issue(t, testcert.Options{RSA: true}, "rsa.example.org").Write(t, certs, "rsa.pem")
	b := startBackend(t, "a")
	r := newRig(t, `
global:
  stats:
    socket: [{path: "{{DIR}}/oper.sock", level: operator}, {path: "{{DIR}}/user.sock", level: user}]
frontends:
  fe:
    mode: http
    bind: {address: "127.0.0.1:0", ssl: true, crt: ["{{api}}", "{{rsa}}"]}
    default_backend: be
backends:
  be: {mode: http, servers: [{name: a, address: "{{a}}"}]}
`, map[string]string{"a": b.addr(), "api": api, "rsa": rsa})

	ask := startHAProxy(t, fmt.Sprintf(`global
  stats socket {{SOCK}} mode 600 level admin
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind %s ssl crt %s crt %s
  default_backend be
backend be
  server a %s
`, testnet.FreeAddr(t), api, rsa, b.addr()))
	waitFor(t, 5*time.Second, "HAProxy's certificates", func() bool { return strings.HasPrefix(ask("show ssl cert"), "# filename") })

	if got, want := r.cmd("oper.sock", "show ssl cert"), ask("show ssl cert"); got != want {
		t.Errorf("show ssl cert:\nhalo:\n%s\nHAProxy:\n%s", got, want)
	}
	for _, path := range []string{api, rsa} {
		name := filepath.Base(path)
		halo, ha := lines(r.cmd("oper.sock", "show ssl cert "+path)), lines(ask("show ssl cert "+path))
		for key, want := range ha {
			if key == "OCSP Response Key" || key == "Chain Subject" && halo[key] == "" {
				continue
			}
			if halo[key] != want {
				t.Errorf("%s: %s: halo %q, HAProxy %q", name, key, halo[key], want)
			}
		}
	}
	if out := r.cmd("oper.sock", "show ssl cert /nope.pem"); !strings.Contains(out, "doesn't exist") {
		t.Errorf("an unknown file: %q", out)
	}
	if out := r.cmd("user.sock", "show ssl cert"); !strings.HasPrefix(out, "Permission denied") {
		t.Errorf("show ssl cert at level user: %q", out)
	}
}

// lines maps "Key: value" lines to their values.
func lines(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			m[k] = v
		}
	}
	return m
}
