package health

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/internal/testnet"
)

// TestMySQLCheckTLS: against a MariaDB of its own started with TLS (the
// shared test servers have none), mysql-check with check-ssl verifies the
// server's certificate through the driver: L7OK with the right CA, L6RSP
// with another.
func TestMySQLCheckTLS(t *testing.T) {
	for _, prog := range []string{"mariadbd", "mariadb-install-db"} {
		if _, err := exec.LookPath(prog); err != nil {
			testnet.SkipOrFail(t, prog+" is not installed (scripts/install-deps installs it)")
		}
	}
	cert, caPEM := newTLSPair(t)
	_, otherCA := newTLSPair(t)
	dir, err := os.MkdirTemp("", "halo-mysqltls-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	keyDER, _ := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	certFile := write("server.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}))
	keyFile := write("server.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	caFile := write("ca.pem", caPEM)
	port := testnet.FreePort(t)
	cnf := write("my.cnf", fmt.Appendf(nil, `[mariadbd]
user=%s
datadir=%s/data
socket=%s/sock
port=%d
bind-address=127.0.0.1
pid-file=%s/pid
log-error=%s/err
skip-name-resolve
skip-grant-tables
innodb_buffer_pool_size=32M
performance_schema=OFF
ssl-cert=%s
ssl-key=%s
ssl-ca=%s
`, currentUser(), dir, dir, port, dir, dir, certFile, keyFile, caFile))
	if out, err := exec.Command("mariadb-install-db", "--defaults-file="+cnf, "--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	cmd := exec.Command("mariadbd", "--defaults-file="+cnf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	spec := &config.DBCheck{Kind: config.DBMySQL, User: "haproxy"}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r := MySQLChecker{Spec: spec}.Check(ctx, addr)
		cancel()
		if r.OK {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "err"))
			t.Fatalf("MariaDB did not come up: %s %s\n%s", r.Status, r.Desc, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	r := MySQLChecker{Spec: spec, Transport: transport(t, caPEM, 0)}.Check(ctx, addr)
	t.Logf("right CA: %s %s", r.Status, r.Desc)
	if !r.OK || r.Status != L7OK {
		t.Fatalf("right CA: %+v; want L7OK", r)
	}
	r = MySQLChecker{Spec: spec, Transport: transport(t, otherCA, 0)}.Check(ctx, addr)
	t.Logf("other CA: %s %s", r.Status, r.Desc)
	if r.OK || r.Status != L6RSP {
		t.Fatalf("other CA: %+v; want L6RSP", r)
	}
}

// currentUser is who mariadbd runs as: itself (as root it must be told).
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "root"
}
