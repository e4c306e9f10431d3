// Package testdb gives tests the real database servers that
// scripts/testdb starts (a single-node MariaDB Galera cluster, a MariaDB
// replica of it, a PostgreSQL primary with a streaming standby, Redis),
// each on a free 127.0.0.1 port. A test package starts them once, on first
// use, and stops them in TestMain through StopAll.
package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/halo-lb/halo/internal/testnet"
	"github.com/jackc/pgx/v5"
)

// The services, as scripts/testdb names them.
const (
	Galera    = "galera"
	Replica   = "replica"
	PgPrimary = "pgprimary"
	PgStandby = "pgstandby"
	Redis     = "redis"
)

// The credentials scripts/testdb gives every server.
const (
	CheckUser     = "halo_check"
	CheckPassword = "halo-secret"
	NoPassUser    = "haproxy" // MariaDB, from 127.0.0.1, for option mysql-check
)

// needs is the program each service cannot start without.
var needs = map[string]string{
	Galera: "mariadbd", Replica: "mariadbd", PgPrimary: "pg_ctl", PgStandby: "pg_ctl", Redis: "redis-server",
}

// Set is the running servers of one test binary.
type Set struct {
	Dir   string
	mu    sync.Mutex
	ports map[string]int // service → port
	gcomm int
}

var (
	shared   *Set
	sharedMu sync.Mutex
)

// Need returns the shared set with svc running, starting it (and what it
// replicates from) on first use. Without the programs it needs, the test
// is skipped, or fails under HALO_INTEGRATION=1.
func Need(t testing.TB, svc string) *Set {
	t.Helper()
	prog := needs[svc]
	if _, err := exec.LookPath(prog); err != nil {
		if _, err2 := os.Stat("/usr/lib/postgresql"); prog != "pg_ctl" || err2 != nil {
			testnet.SkipOrFail(t, fmt.Sprintf("%s is not installed (scripts/install-deps installs it)", prog))
		}
	}
	if svc == Galera || svc == Replica {
		if _, err := os.Stat("/usr/lib/galera/libgalera_smm.so"); err != nil {
			testnet.SkipOrFail(t, "galera-4 is not installed (scripts/install-deps installs it)")
		}
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil {
		dir, err := os.MkdirTemp("", "halo-testdb-")
		if err != nil {
			t.Fatal(err)
		}
		// PostgreSQL runs as its own user under root and must reach it.
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		shared = &Set{Dir: dir, ports: map[string]int{}}
	}
	s := shared
	switch svc {
	case Replica:
		s.ensure(t, Galera)
	case PgStandby:
		s.ensure(t, PgPrimary)
	}
	s.ensure(t, svc)
	return s
}

// StopAll stops every server started by this test binary and removes
// their files. TestMain calls it after the tests.
func StopAll() {
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil {
		return
	}
	out, err := exec.Command(script(), "stop", shared.Dir).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "testdb: stopping the test databases: %v\n%s", err, out)
		return
	}
	os.RemoveAll(shared.Dir)
	shared = nil
}

func script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "scripts", "testdb")
}

func (s *Set) ensure(t testing.TB, svc string) {
	t.Helper()
	s.mu.Lock()
	_, running := s.ports[svc]
	s.mu.Unlock()
	if !running {
		s.Start(t, svc)
	}
}

// Start starts svc, or starts it again after Kill, on the same port.
func (s *Set) Start(t testing.TB, svc string) {
	t.Helper()
	s.mu.Lock()
	port, ok := s.ports[svc]
	if !ok {
		port = testnet.FreePort(t)
		s.ports[svc] = port
	}
	args := []string{"start", svc, s.Dir, strconv.Itoa(port)}
	switch svc {
	case Galera:
		if s.gcomm == 0 {
			s.gcomm = testnet.FreePort(t)
		}
		args = append(args, strconv.Itoa(s.gcomm))
	case Replica:
		args = append(args, strconv.Itoa(s.ports[Galera]))
	case PgStandby:
		args = append(args, strconv.Itoa(s.ports[PgPrimary]))
	}
	s.mu.Unlock()
	start := time.Now()
	out, err := exec.Command(script(), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/testdb %v: %v\n%s", args, err, out)
	}
	t.Logf("testdb: %s up on 127.0.0.1:%d in %v", svc, port, time.Since(start).Round(time.Millisecond))
}

// Kill kills svc with SIGKILL, as a crash.
func (s *Set) Kill(t testing.TB, svc string) {
	t.Helper()
	if out, err := exec.Command(script(), "kill", svc, s.Dir).CombinedOutput(); err != nil {
		t.Fatalf("scripts/testdb kill %s: %v\n%s", svc, err, out)
	}
}

// Addr is svc's 127.0.0.1:port.
func (s *Set) Addr(svc string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.ports[svc]))
}

// MySQL opens a root connection to a MariaDB service over its socket.
func (s *Set) MySQL(t testing.TB, svc string) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User = "unix", filepath.Join(s.Dir, svc+".sock"), "root"
	cfg.MultiStatements = true
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	t.Cleanup(func() { db.Close() })
	return db
}

// Exec runs statements on a MariaDB service as root, failing the test on
// an error.
func (s *Set) Exec(t testing.TB, svc, stmts string) {
	t.Helper()
	db := s.MySQL(t, svc)
	if _, err := db.Exec(stmts); err != nil {
		t.Fatalf("%s: %s: %v", svc, stmts, err)
	}
}

// Postgres opens a superuser connection to a PostgreSQL service.
func (s *Set) Postgres(t testing.TB, svc string) *pgx.Conn {
	t.Helper()
	s.mu.Lock()
	port := s.ports[svc]
	s.mu.Unlock()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=disable", s.Dir, port))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
