package proxy

import (
	"context"
	"database/sql"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/halo-lb/halo/health"
	"github.com/halo-lb/halo/internal/testdb"
	"github.com/halo-lb/halo/internal/testnet"
)

// TestObserveLayer4: a server whose traffic port refuses connections while
// its check port answers is only caught by the passive check. With
// error-limit 3 and on-error mark-down it goes DOWN after the third
// refused connection (clients are redispatched to b meanwhile), and its
// health check brings it back after fastinter.
func TestObserveLayer4(t *testing.T) {
	b := startTCPBackend(t, "b")
	check := startCheckListener(t, "127.0.0.1:0")
	dead := &testBackend{name: "dead", addr: testnet.FreeAddr(t)}
	p := startProxy(t, `
defaults: {timeout: {connect: 1s, client: 5s, server: 5s, check: 500ms}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    balance: first
    servers:
      - {name: a, address: "{{dead}}", maxconn: 100, check: true, port: `+check.port()+`, inter: 1h, fastinter: 300ms, rise: 2, observe: layer4, error-limit: 3, on-error: mark-down}
      - {name: b, address: "{{b}}", maxconn: 100}
`, dead, b)
	addr := frontendAddr(t, p, "fe")
	st := p.Registry().Lookup("be", "a")
	// "first" sends every session to a while it is UP.
	for i := 1; i <= 3; i++ {
		if name, err := tcpAsk(addr); err != nil || name != "b" {
			t.Fatalf("session %d: %q, %v; want b after a refused", i, name, err)
		}
		if up := st.Up(); up != (i < 3) {
			t.Fatalf("after %d refused connections a is UP=%v", i, up)
		}
	}
	last, _ := p.LastCheck("be", "a")
	if last.Status != health.HANA {
		t.Errorf("last check of a: %s %q, want HANA", last.Status, last.Desc)
	}
	t.Logf("a DOWN after 3 refused connections: %s %q", last.Status, last.Desc)
	// Its check port answers: fastinter checks bring it back.
	took := waitFor(t, 3*time.Second, "a UP again by its checks", st.Up)
	t.Logf("a UP again %v later", took.Round(time.Millisecond))
}

// TestObserveLayer7 runs every on-error action against a server answering
// 503 (an error) or 501 (not one, as in HAProxy), with error-limit 4.
func TestObserveLayer7(t *testing.T) {
	var status atomic.Int64
	status.Store(200)
	a := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	})
	check := startCheckListener(t, "127.0.0.1:0")
	for _, tc := range []struct {
		onError string
		// downAfter is how many errors take a DOWN; 0: none does.
		downAfter int
	}{
		{"mark-down", 4},
		{"sudden-death", 8}, // 4 leave one check before DOWN, 4 more fail it
		{"fail-check", 12},  // fall 3: three failed checks of 4 errors each
		{"fastinter", 0},
	} {
		t.Run(tc.onError, func(t *testing.T) { observeLayer7(t, a, &status, check, tc.onError, tc.downAfter) })
	}
}

// observeLayer7 is one case of TestObserveLayer7: a, whose answers follow
// status, behind a proxy with observe layer7 and the given on-error, goes
// DOWN after exactly downAfter errors (0: never).
func observeLayer7(t *testing.T, a *testBackend, status *atomic.Int64, check *checkListener, onError string, downAfter int) {
	status.Store(200)
	p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s, check: 500ms}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    servers:
      - {name: a, address: "{{a}}", check: true, port: `+check.port()+`, inter: 400ms, rise: 2, fall: 3, observe: layer7, error-limit: 4, on-error: `+onError+`}
`, a)
	url := "http://" + frontendAddr(t, p, "fe") + "/"
	st := p.Registry().Lookup("be", "a")
	client := httpClient()
	get := func() int {
		_, code, err := httpGet(client, url)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	// 501 is no error: twenty of them change nothing.
	status.Store(501)
	for range 20 {
		get()
	}
	if !st.Up() {
		t.Fatal("DOWN after 501 responses")
	}
	// A success between errors starts the count again.
	status.Store(503)
	for range 3 {
		get()
	}
	status.Store(200)
	get()
	// A server starts UP but fragile: one failed check takes it
	// DOWN until a check has passed. Errors are sent just after a
	// check passed, with 400ms before the next.
	var last time.Time
	if c, ok := p.LastCheck("be", "a"); ok {
		last = c.At
	}
	waitFor(t, 2*time.Second, "a passing check", func() bool {
		c, ok := p.LastCheck("be", "a")
		return ok && c.OK && c.At.After(last)
	})
	status.Store(503)
	errors := 0
	for errors < 16 && st.Up() {
		if code := get(); code != 503 {
			t.Fatalf("status %d, want the server's 503", code)
		}
		errors++
	}
	if downAfter == 0 {
		if !st.Up() {
			t.Fatalf("on-error fastinter took a DOWN")
		}
		last, _ := p.LastCheck("be", "a")
		if last.Status != health.HANA {
			t.Fatalf("last check %s %q, want HANA", last.Status, last.Desc)
		}
		return
	}
	if st.Up() || errors != downAfter {
		t.Fatalf("after %d errors a is UP=%v; want DOWN after exactly %d", errors, st.Up(), downAfter)
	}
	t.Logf("on-error %s: DOWN after %d errors", onError, errors)
}

// TestGaleraShutdownSessions is the OpenStack Galera setup end to end: a
// MySQL client holds a connection through halo in mode tcp to a real
// Galera node checked by galera-check with on-marked-down
// shutdown-sessions; desyncing the node takes it DOWN and closes the
// client's connection within the bound (inter × fall plus one interval).
func TestGaleraShutdownSessions(t *testing.T) {
	dbs := testdb.Need(t, testdb.Galera)
	node := &testBackend{name: "galera", addr: dbs.Addr(testdb.Galera)}
	p := startProxy(t, `
defaults: {timeout: {connect: 1s, client: 1h, server: 1h, check: 400ms}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: galera}
backends:
  galera:
    option:
      galera-check: {user: `+testdb.CheckUser+`, password: `+testdb.CheckPassword+`}
    servers:
      - {name: g1, address: "{{galera}}", check: true, inter: 500ms, rise: 2, fall: 2, on-marked-down: shutdown-sessions}
`, node)
	st := p.Registry().Lookup("galera", "g1")
	waitFor(t, 3*time.Second, "g1 UP", st.Up)

	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.Passwd = "tcp", frontendAddr(t, p, "fe"), testdb.CheckUser, testdb.CheckPassword
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var id int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}

	dbs.Exec(t, testdb.Galera, "SET GLOBAL wsrep_desync=ON")
	t.Cleanup(func() { dbs.Exec(t, testdb.Galera, "SET GLOBAL wsrep_desync=OFF") })
	desynced := time.Now()
	took := waitFor(t, 1500*time.Millisecond, "g1 DOWN", func() bool { return !st.Up() })
	last, _ := p.LastCheck("galera", "g1")
	t.Logf("g1 DOWN %v after desync: %s %q", took.Round(time.Millisecond), last.Status, last.Desc)
	// The session was closed by halo: the next query on it fails.
	err = conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id)
	if err == nil {
		t.Fatalf("the client's connection (id %d) still answers after g1 went DOWN", id)
	}
	t.Logf("held connection failed %v after desync: %v", time.Since(desynced).Round(time.Millisecond), err)
}

// A lag drain set under one configuration ends with a reload to one whose
// checks cannot end it (no on-lag drain), instead of lasting forever.
func TestLagDrainClearedByReload(t *testing.T) {
	a := startTCPBackend(t, "a")
	yaml := `
defaults: {timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    servers: [{name: a, address: "{{a}}"}]
`
	p := startProxy(t, yaml, a)
	st := p.Registry().Lookup("be", "a")
	st.SetLagDrain(true) // as a galera-check with on-lag drain would
	if err := p.Apply(parseConfig(t, yaml, a)); err != nil {
		t.Fatal(err)
	}
	if st.LagDrained() {
		t.Fatal("the lag drain outlived a reload to a configuration without on-lag drain")
	}
	if name, err := tcpAsk(frontendAddr(t, p, "fe")); err != nil || name != "a" {
		t.Fatalf("after the reload: %q, %v", name, err)
	}
}
