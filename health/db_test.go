package health

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/internal/testdb"
)

// The schedule of the database check tests, and the bound the issue sets
// on every state change: inter × fall plus one interval.
const (
	dbInter = 500 * time.Millisecond
	dbFall  = 2
	dbRise  = 2
	dbBound = dbInter*dbFall + dbInter
)

// watched records a monitored server's state, for tests that wait for it.
type watched struct {
	mu        sync.Mutex
	up        bool
	draining  bool
	changedAt time.Time // of the last edge
	changed   chan struct{}
}

func (w *watched) SetHealthy(up bool) {
	w.mu.Lock()
	w.up, w.changedAt = up, time.Now()
	w.mu.Unlock()
	w.poke()
}

func (w *watched) SetLagDrain(d bool) {
	w.mu.Lock()
	w.draining, w.changedAt = d, time.Now()
	w.mu.Unlock()
	w.poke()
}

func (w *watched) lastEdge() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changedAt
}

func (w *watched) poke() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *watched) state() (up, draining bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.up, w.draining
}

// dbMonitor monitors addr with checker on the tests' schedule.
func dbMonitor(t *testing.T, name, addr string, checker Checker, drainOnLag bool) (*watched, *Monitor) {
	t.Helper()
	w := &watched{changed: make(chan struct{}, 1)}
	m := Start(Spec{Backend: "db", Server: name, Addr: addr, Inter: dbInter, Timeout: 400 * time.Millisecond,
		Rise: dbRise, Fall: dbFall, DrainOnLag: drainOnLag}, checker, w, zap.NewNop())
	t.Cleanup(m.Stop)
	return w, m
}

// waitUntil waits for the server to reach the state cond describes, and
// fails the test unless it does within bound of since.
func waitUntil(t *testing.T, w *watched, m *Monitor, what string, since time.Time, bound time.Duration, cond func(up, draining bool) bool) {
	t.Helper()
	deadline := time.NewTimer(time.Until(since.Add(bound)))
	defer deadline.Stop()
	for {
		if cond(w.state()) {
			// The time of the edge, not of this look: a caller may look
			// late (a script it ran took a while).
			took := max(w.lastEdge().Sub(since), 0)
			last, _ := m.Last()
			t.Logf("%s after %v (bound %v): %s %s", what, took.Round(time.Millisecond), bound, last.Status, last.Desc)
			if took > bound {
				t.Fatalf("%s took %v, more than the bound %v", what, took, bound)
			}
			return
		}
		select {
		case <-w.changed:
		case <-deadline.C:
			last, _ := m.Last()
			t.Fatalf("not %s within %v; last check: %s %q", what, bound, last.Status, last.Desc)
		}
	}
}

func isUp(up, _ bool) bool   { return up }
func isDown(up, _ bool) bool { return !up }

// startBound: a monitor started DOWN comes UP after rise checks, the
// first within one interval.
const startBound = dbInter*dbRise + dbInter

func galeraSpec() *config.DBCheck {
	return &config.DBCheck{Kind: config.DBGalera, User: testdb.CheckUser, Password: testdb.CheckPassword}
}

func TestGaleraCheck(t *testing.T) {
	dbs := testdb.Need(t, testdb.Galera)
	addr := dbs.Addr(testdb.Galera)
	w, m := dbMonitor(t, "galera", addr, NewGaleraChecker(galeraSpec()), false)
	allowRO := galeraSpec()
	allowRO.AllowReadOnly = true
	wro, mro := dbMonitor(t, "galera-ro", addr, NewGaleraChecker(allowRO), false)
	waitUntil(t, w, m, "Synced: UP", time.Now(), startBound, isUp)
	waitUntil(t, wro, mro, "Synced: UP (allow-read-only)", time.Now(), startBound, isUp)
	if last, _ := m.Last(); last.Status != L7OK || last.Desc != "Galera node is Synced" {
		t.Fatalf("last check of a Synced node: %s %q", last.Status, last.Desc)
	}

	// Each change takes the node DOWN and its reversal brings it UP, both
	// within the bound; the description names the reason.
	for _, tc := range []struct{ set, reset, reason string }{
		{"SET GLOBAL wsrep_desync=ON", "SET GLOBAL wsrep_desync=OFF", "wsrep_desync is ON"},
		{"SET GLOBAL wsrep_reject_queries=ALL", "SET GLOBAL wsrep_reject_queries=NONE", "wsrep_reject_queries is ALL"},
		{"SET GLOBAL read_only=ON", "SET GLOBAL read_only=OFF", "read_only is ON"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			dbs.Exec(t, testdb.Galera, tc.set)
			waitUntil(t, w, m, "DOWN", time.Now(), dbBound, isDown)
			if last, _ := m.Last(); !strings.Contains(last.Desc, tc.reason) {
				t.Errorf("description %q does not say %q", last.Desc, tc.reason)
			}
			if up, _ := wro.state(); tc.reason == "read_only is ON" && !up {
				last, _ := mro.Last()
				t.Errorf("with allow-read-only the node went DOWN: %s %q", last.Status, last.Desc)
			}
			dbs.Exec(t, testdb.Galera, tc.reset)
			waitUntil(t, w, m, "UP again", time.Now(), dbBound, isUp)
			waitUntil(t, wro, mro, "UP again (allow-read-only)", time.Now(), dbBound, isUp)
		})
	}

	t.Run("killed and restarted", func(t *testing.T) {
		killed := time.Now()
		dbs.Kill(t, testdb.Galera)
		waitUntil(t, w, m, "DOWN after mariadbd was killed", killed, dbBound, isDown)
		if last, _ := m.Last(); last.Status != L4CON {
			t.Errorf("check of a killed node: %s %q, want L4CON", last.Status, last.Desc)
		}
		dbs.Start(t, testdb.Galera)
		waitUntil(t, w, m, "UP after mariadbd was restarted", time.Now(), startBound, isUp)
	})
}

// judgeGalera's decision order, for the states a single node cannot be put
// in (non-Primary, Joined, a recv queue).
func TestJudgeGalera(t *testing.T) {
	synced := galeraState{}
	set := func(st *galeraState, f func(*galeraState)) galeraState { c := *st; f(&c); return c }
	synced.localState.String, synced.localState.Valid = "4", true
	synced.clusterStatus.String, synced.clusterStatus.Valid = "Primary", true
	synced.ready.String, synced.ready.Valid = "ON", true
	synced.recvQueue.String, synced.recvQueue.Valid = "0", true
	synced.desync.String, synced.desync.Valid = "0", true
	synced.rejectQueries.String, synced.rejectQueries.Valid = "NONE", true
	synced.donorRejects.String, synced.donorRejects.Valid = "0", true
	synced.readOnly.String, synced.readOnly.Valid = "0", true
	spec := &config.DBCheck{MaxRecvQueue: 10}
	donorOK := &config.DBCheck{AllowDonor: true}
	for _, tc := range []struct {
		name    string
		spec    *config.DBCheck
		st      galeraState
		ok      bool
		lagging bool
		desc    string
	}{
		{"synced", spec, synced, true, false, "Galera node is Synced"},
		{"non-primary", spec, set(&synced, func(s *galeraState) { s.clusterStatus.String = "non-Primary"; s.desync.String = "1" }), false, false, "wsrep_cluster_status is non-Primary"},
		{"not ready", spec, set(&synced, func(s *galeraState) { s.ready.String = "OFF" }), false, false, "wsrep_ready is OFF"},
		{"desync before state", spec, set(&synced, func(s *galeraState) { s.desync.String = "1"; s.localState.String = "2" }), false, false, "wsrep_desync is ON"},
		{"joined", spec, set(&synced, func(s *galeraState) { s.localState.String = "3" }), false, false, "wsrep_local_state is 3 (Joined)"},
		{"donor", spec, set(&synced, func(s *galeraState) { s.localState.String = "2" }), false, false, "wsrep_local_state is 2 (Donor/Desynced)"},
		{"donor allowed", donorOK, set(&synced, func(s *galeraState) { s.localState.String = "2" }), true, false, "Galera node is Donor/Desynced"},
		{"donor allowed but rejecting", donorOK, set(&synced, func(s *galeraState) { s.localState.String = "2"; s.donorRejects.String = "1" }), false, false, "wsrep_sst_donor_rejects_queries is ON"},
		{"reject queries", spec, set(&synced, func(s *galeraState) { s.rejectQueries.String = "ALL_KILL" }), false, false, "wsrep_reject_queries is ALL_KILL"},
		{"read only", spec, set(&synced, func(s *galeraState) { s.readOnly.String = "1" }), false, false, "read_only is ON"},
		{"read only allowed", &config.DBCheck{AllowReadOnly: true}, set(&synced, func(s *galeraState) { s.readOnly.String = "1" }), true, false, "Galera node is Synced"},
		{"recv queue", spec, set(&synced, func(s *galeraState) { s.recvQueue.String = "11" }), false, true, "wsrep_local_recv_queue is 11, above max-recv-queue 10"},
		{"recv queue at max", spec, set(&synced, func(s *galeraState) { s.recvQueue.String = "10" }), true, false, "Galera node is Synced"},
		{"no wsrep", spec, galeraState{}, false, false, "not a Galera node"},
	} {
		r := judgeGalera(tc.spec, tc.st)
		if r.OK != tc.ok || r.Lagging != tc.lagging || !strings.Contains(r.Desc, tc.desc) {
			t.Errorf("%s: got ok=%v lagging=%v %q; want ok=%v lagging=%v, %q", tc.name, r.OK, r.Lagging, r.Desc, tc.ok, tc.lagging, tc.desc)
		}
	}
}

// writer keeps writing to the primary, as an application would, and
// updates the heartbeat, every 100 ms until the test ends (at most 10
// minutes' worth of writes).
func startWriter(t *testing.T, write func(i int) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var failed atomic.Value
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 6000; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if err := write(i); err != nil {
				failed.Store(err.Error())
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if e := failed.Load(); e != nil {
			t.Logf("the writer saw an error: %v", e)
		}
	})
}

func TestMySQLReplicaCheck(t *testing.T) {
	dbs := testdb.Need(t, testdb.Replica)
	primary := dbs.MySQL(t, testdb.Galera)
	startWriter(t, func(int) error {
		_, err := primary.Exec("INSERT INTO halotest.writes (at) VALUES (UTC_TIMESTAMP(6)); UPDATE halotest.heartbeat SET ts = UTC_TIMESTAMP(6) WHERE id = 1")
		return err
	})
	const maxLag = 2 * time.Second
	spec := &config.DBCheck{Kind: config.DBMySQLReplica, User: testdb.CheckUser, Password: testdb.CheckPassword,
		MaxLag: maxLag, Heartbeat: "halotest.heartbeat.ts"}
	addr := dbs.Addr(testdb.Replica)
	w, m := dbMonitor(t, "replica", addr, NewMySQLReplicaChecker(spec), false)
	drainSpec := *spec
	drainSpec.DrainOnLag = true
	wd, md := dbMonitor(t, "replica-drain", addr, NewMySQLReplicaChecker(&drainSpec), true)
	waitUntil(t, w, m, "replicating: UP", time.Now(), startBound, isUp)
	waitUntil(t, wd, md, "replicating: UP (on-lag drain)", time.Now(), startBound, isUp)

	t.Run("lag above max-lag", func(t *testing.T) {
		dbs.Exec(t, testdb.Replica, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=6; START SLAVE")
		// The lag passes max-lag once the delay has held back max-lag
		// worth of writes.
		over := time.Now().Add(maxLag)
		waitUntil(t, w, m, "DOWN for lag", over, dbBound, isDown)
		if last, _ := m.Last(); !strings.Contains(last.Desc, "lagging") {
			t.Errorf("description %q does not say lagging", last.Desc)
		}
		waitUntil(t, wd, md, "drained for lag, still UP", over, dbBound, func(up, draining bool) bool { return up && draining })
		dbs.Exec(t, testdb.Replica, "STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=0; START SLAVE")
		// The replica catches up at once; then rise checks.
		waitUntil(t, w, m, "UP after catching up", time.Now(), startBound, isUp)
		waitUntil(t, wd, md, "no longer drained", time.Now(), startBound, func(up, draining bool) bool { return up && !draining })
	})

	t.Run("SQL thread broken", func(t *testing.T) {
		// A row written on the replica, then the same key on the primary:
		// the SQL thread stops on the duplicate key.
		// A key of its own for each run: the servers outlive a test
		// (go test -count=N).
		id := 1_000_000_000 + time.Now().UnixNano()%1_000_000_000
		dbs.Exec(t, testdb.Replica, fmt.Sprintf("SET SESSION sql_log_bin=0; INSERT INTO halotest.writes (id, at) VALUES (%d, NULL)", id))
		broken := time.Now()
		dbs.Exec(t, testdb.Galera, fmt.Sprintf("INSERT INTO halotest.writes (id, at) VALUES (%d, UTC_TIMESTAMP(6))", id))
		waitUntil(t, w, m, "DOWN with the SQL thread stopped", broken, dbBound, isDown)
		if last, _ := m.Last(); !strings.Contains(last.Desc, "SQL thread is not running") || !strings.Contains(last.Desc, "Duplicate") {
			t.Errorf("description %q does not name the SQL thread and its error", last.Desc)
		}
		// A broken thread is no lag: on-lag drain does not apply.
		waitUntil(t, wd, md, "DOWN with the SQL thread stopped (on-lag drain)", broken, dbBound, isDown)
		dbs.Exec(t, testdb.Replica, "STOP SLAVE; SET GLOBAL sql_slave_skip_counter=1; START SLAVE")
		waitUntil(t, w, m, "UP after the SQL thread was repaired", time.Now(), startBound, isUp)
	})
}

func TestPgSQLStandbyCheck(t *testing.T) {
	dbs := testdb.Need(t, testdb.PgStandby)
	primary := dbs.Postgres(t, testdb.PgPrimary)
	var pmu sync.Mutex
	startWriter(t, func(int) error {
		pmu.Lock()
		defer pmu.Unlock()
		_, err := primary.Exec(context.Background(), "INSERT INTO writes DEFAULT VALUES")
		return err
	})
	const maxLag = time.Second
	spec := &config.DBCheck{Kind: config.DBPgSQLStandby, User: testdb.CheckUser, Password: testdb.CheckPassword,
		Database: "postgres", MaxLag: maxLag}
	w, m := dbMonitor(t, "standby", dbs.Addr(testdb.PgStandby), NewPgSQLStandbyChecker(spec), false)
	waitUntil(t, w, m, "streaming: UP", time.Now(), startBound, isUp)

	standby := dbs.Postgres(t, testdb.PgStandby)
	if _, err := standby.Exec(context.Background(), "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	over := time.Now().Add(maxLag)
	waitUntil(t, w, m, "DOWN with replay paused", over, dbBound, isDown)
	if last, _ := m.Last(); !strings.Contains(last.Desc, "lagging") {
		t.Errorf("description %q does not say lagging", last.Desc)
	}
	if _, err := standby.Exec(context.Background(), "SELECT pg_wal_replay_resume()"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, w, m, "UP after replay resumed", time.Now(), startBound, isUp)

	// The primary itself is not a standby.
	wp, mp := dbMonitor(t, "primary", dbs.Addr(testdb.PgPrimary), NewPgSQLStandbyChecker(spec), false)
	time.Sleep(dbInter + 100*time.Millisecond)
	if last, ok := mp.Last(); !ok || last.OK || !strings.Contains(last.Desc, "not a standby") {
		t.Errorf("check of the primary: %+v", last)
	}
	_ = wp
}

func TestMySQLCheck(t *testing.T) {
	dbs := testdb.Need(t, testdb.Galera)
	addr := dbs.Addr(testdb.Galera)
	r := MySQLChecker{Spec: &config.DBCheck{User: testdb.NoPassUser}}.Check(context.Background(), addr)
	if !r.OK || r.Status != L7OK {
		t.Fatalf("mysql-check as %s: %+v", testdb.NoPassUser, r)
	}
	r = MySQLChecker{Spec: &config.DBCheck{User: "nobody"}}.Check(context.Background(), addr)
	if r.OK || r.Status != L7STS || !strings.Contains(r.Desc, "1045") {
		t.Fatalf("mysql-check as an unknown user: %s %q, want L7STS with error 1045", r.Status, r.Desc)
	}
	// check-ssl against a server without TLS: refused at layer 6, as
	// HAProxy reports a failed handshake.
	_, caPEM := newTLSPair(t)
	r = MySQLChecker{Spec: &config.DBCheck{User: testdb.NoPassUser}, Transport: transport(t, caPEM, 0)}.Check(context.Background(), addr)
	t.Logf("mysql-check with check-ssl, server without TLS: %s %s", r.Status, r.Desc)
	if r.OK || r.Status != L6RSP {
		t.Fatalf("mysql-check with check-ssl to a server without TLS: %s %q, want L6RSP", r.Status, r.Desc)
	}
	// Something that is not MySQL: an HTTP-ish listener closing at once.
	ln := listen(t)
	if r := (MySQLChecker{Spec: &config.DBCheck{User: "x"}}).Check(context.Background(), ln.Addr().String()); r.OK || r.Status != L7RSP {
		t.Fatalf("mysql-check of a server that closes: %s %q, want L7RSP", r.Status, r.Desc)
	}
}

func TestPgSQLCheck(t *testing.T) {
	dbs := testdb.Need(t, testdb.PgPrimary)
	addr := dbs.Addr(testdb.PgPrimary)
	// halo_check logs in with scram-sha-256: the server asks for it, which
	// passes, as in HAProxy. postgres is trusted: AuthenticationOk.
	for _, user := range []string{testdb.CheckUser, "postgres"} {
		if r := (PgSQLChecker{Spec: &config.DBCheck{User: user}}).Check(context.Background(), addr); !r.OK || r.Status != L7OK {
			t.Fatalf("pgsql-check as %s: %+v", user, r)
		}
	}
	_, caPEM := newTLSPair(t)
	r := PgSQLChecker{Spec: &config.DBCheck{User: "postgres"}, Transport: transport(t, caPEM, 0)}.Check(context.Background(), addr)
	t.Logf("pgsql-check with check-ssl, server without TLS: %s %s", r.Status, r.Desc)
	if r.OK || r.Status != L6RSP {
		t.Fatalf("pgsql-check with check-ssl to a server without TLS: %s %q, want L6RSP", r.Status, r.Desc)
	}
	// A role pg_hba.conf rejects gets an error instead of an
	// authentication request. (An unknown role is only refused after
	// authentication, so it passes, as in HAProxy.)
	r = PgSQLChecker{Spec: &config.DBCheck{User: "halo_denied"}}.Check(context.Background(), addr)
	if r.OK || r.Status != L7STS || !strings.Contains(r.Desc, "halo_denied") {
		t.Fatalf("pgsql-check as a rejected role: %s %q, want L7STS naming the role", r.Status, r.Desc)
	}
}

func TestRedisCheck(t *testing.T) {
	dbs := testdb.Need(t, testdb.Redis)
	cfg, err := config.Parse("", []byte(`backends:
  r:
    option: {redis-check: true}
    servers: [{name: r1, address: "`+dbs.Addr(testdb.Redis)+`", check: true}]
`))
	if err != nil {
		t.Fatal(err)
	}
	r := TCPScriptChecker{Script: cfg.Backend("r").TCPCheck}.Check(context.Background(), dbs.Addr(testdb.Redis))
	if !r.OK || r.Status != L7OK {
		t.Fatalf("redis-check of redis-server: %+v", r)
	}
}

// A wrong password fails the check with the server's message, and neither
// the description nor the logs show the password.
func TestDBCheckPasswordNeverShows(t *testing.T) {
	dbs := testdb.Need(t, testdb.Galera)
	testdb.Need(t, testdb.PgPrimary)
	const secret = "wrong-secret-7d1f"
	core, logs := observer.New(zap.DebugLevel)
	for _, c := range []struct {
		name    string
		addr    string
		checker Checker
	}{
		{"galera", dbs.Addr(testdb.Galera), NewGaleraChecker(&config.DBCheck{User: testdb.CheckUser, Password: secret})},
		{"pgsql", dbs.Addr(testdb.PgPrimary), NewPgSQLStandbyChecker(&config.DBCheck{User: testdb.CheckUser, Password: secret, MaxLag: time.Second})},
	} {
		w := &watched{up: true, changed: make(chan struct{}, 1)}
		m := Start(Spec{Backend: "db", Server: c.name, Addr: c.addr, Inter: 50 * time.Millisecond, Timeout: time.Second,
			Rise: 1, Fall: 1, Up: true}, c.checker, w, zap.New(core))
		waitUntil(t, w, m, "DOWN for a wrong password", time.Now(), 5*time.Second, isDown)
		m.Stop()
		last, _ := m.Last()
		if last.Status != L7STS || strings.Contains(last.Desc, secret) || strings.Contains(fmt.Sprint(last.Err), secret) {
			t.Errorf("%s: %s %q (%v)", c.name, last.Status, last.Desc, last.Err)
		}
	}
	if logs.Len() == 0 {
		t.Fatal("no DOWN was logged")
	}
	for _, e := range logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		if strings.Contains(line, secret) {
			t.Errorf("a log line shows the password: %s", line)
		}
		t.Logf("logged: %s", line)
	}
}

// FuzzJudgeGalera feeds judgeGalera whatever a server could answer: it
// never panics, and passes a node only when every rule allows it.
func FuzzJudgeGalera(f *testing.F) {
	f.Add("4", "Primary", "ON", "0", "0", "NONE", "0", "0", false, false, 0)
	f.Add("2", "Primary", "ON", "5", "0", "NONE", "1", "0", true, false, 3)
	f.Add("4", "non-Primary", "OFF", "x", "1", "ALL", "1", "1", false, true, 1)
	f.Fuzz(func(t *testing.T, state, cluster, ready, queue, desync, reject, donorRejects, readOnly string, allowDonor, allowRO bool, maxQueue int) {
		v := func(s string) sql.NullString { return sql.NullString{String: s, Valid: s != "NULL"} }
		st := galeraState{v(state), v(cluster), v(ready), v(queue), v(desync), v(reject), v(donorRejects), v(readOnly)}
		spec := &config.DBCheck{AllowDonor: allowDonor, AllowReadOnly: allowRO, MaxRecvQueue: max(maxQueue, 0)}
		r := judgeGalera(spec, st)
		if r.Desc == "" {
			t.Fatal("no description")
		}
		if !r.OK {
			return
		}
		if cluster != "Primary" || !on(v(ready)) || on(v(desync)) || (on(v(readOnly)) && !allowRO) ||
			!strings.EqualFold(reject, "NONE") && reject != "NULL" {
			t.Fatalf("passed %+v with %+v: %q", st, spec, r.Desc)
		}
		if n, _ := strconv.Atoi(state); n != 4 && !(n == 2 && allowDonor && !on(v(donorRejects))) {
			t.Fatalf("passed state %q with %+v: %q", state, spec, r.Desc)
		}
	})
}
