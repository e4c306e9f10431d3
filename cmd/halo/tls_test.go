package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testcert"
	"github.com/halo-lb/halo/internal/testnet"
)

// TestSIGHUPWithBrokenCertificateKeepsServing replaces a bind's
// certificate file with a broken one, then with an expired one, and
// reloads: each reload fails with the position of the crt in the file,
// the certificate's path and the reason, and the old certificate keeps
// serving. A good renewal then loads.
func TestSIGHUPWithBrokenCertificateKeepsServing(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "halo test CA")
	crt := filepath.Join(dir, "public.pem")
	first := ca.Issue(t, testcert.Options{}, "public.example.org")
	first.Write(t, dir, "public.pem")
	port := testnet.FreePort(t)
	backends := startBackends(t, "a")
	cfg := filepath.Join(dir, "halo.yaml")
	writeFile(t, cfg, fmt.Sprintf(`defaults: {mode: http, timeout: {connect: 1s, client: 10s, server: 10s}}
frontends:
  public:
    bind:
      - address: 127.0.0.1:%d
        ssl: true
        crt: %s
    default_backend: be
backends:
  be: {servers: [{name: a, address: "%s"}]}
`, port, crt, backends["a"]))
	h := startHalo(t, "run", "-c", cfg)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	serial := func() string {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "public.example.org"})
		if err != nil {
			return "error: " + err.Error()
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	waitUntil(t, 10*time.Second, "halo to serve TLS", func() bool { return serial() == first.Cert.SerialNumber.String() })

	reloadFails := func(what, reason string) {
		t.Helper()
		before := strings.Count(h.stderr.String(), "reload rejected")
		if err := h.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 10*time.Second, "the failed reload", func() bool { return strings.Count(h.stderr.String(), "reload rejected") > before })
		// The error names the file, the crt's line and column, the
		// certificate and why.
		want := cfg + ":7:14: frontends.public.bind[0].crt[0]: certificate " + crt
		if log := h.stderr.String(); !strings.Contains(log, want) || !strings.Contains(log, reason) {
			t.Errorf("%s: the log lacks %q and %q:\n%s", what, want, reason, log)
		}
		if got := serial(); got != first.Cert.SerialNumber.String() {
			t.Errorf("%s: after the failed reload the bind serves %s, want the old certificate %s", what, got, first.Cert.SerialNumber)
		}
	}
	if err := os.WriteFile(crt, []byte("-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reloadFails("a broken file", "no PEM")
	ca.Issue(t, testcert.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Minute)}, "public.example.org").Write(t, dir, "public.pem")
	reloadFails("an expired certificate", "expired on")

	renewed := ca.Issue(t, testcert.Options{}, "public.example.org")
	renewed.Write(t, dir, "public.pem")
	if err := h.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 10*time.Second, "the renewed certificate", func() bool { return serial() == renewed.Cert.SerialNumber.String() })
}
