package stats

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
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
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		testnet.SkipOrFail(t, "haproxy is not installed (scripts/install-deps installs it)")
	}
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

	dir := t.TempDir()
	sock := filepath.Join(r.dir, "h.sock")
	cfg := fmt.Sprintf(`global
  stats socket %s mode 600 level admin
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
`, sock, testnet.FreeAddr(t), api, rsa, b.addr())
	file := filepath.Join(dir, "h.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(haproxy, "-db", "-f", file)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	ask := func(line string) string {
		c, err := net.Dial("unix", sock)
		if err != nil {
			return ""
		}
		defer c.Close()
		io.WriteString(c, line+"\n")
		out, _ := io.ReadAll(c)
		return string(out)
	}
	waitFor(t, 5*time.Second, "HAProxy's stats socket", func() bool { return strings.HasPrefix(ask("show ssl cert"), "# filename") })

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
