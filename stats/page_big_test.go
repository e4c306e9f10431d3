package stats

import (
	"encoding/base64"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/health"
	"github.com/halo-lb/halo/proxy/h1"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// fakeSource is a Source and Admin over a configuration and a registry,
// without a proxy: the page's renderer, alone.
type fakeSource struct {
	cfg      *config.Config
	reg      *balancer.Registry
	counters map[string]*balancer.Counters
}

var (
	_ Source = (*fakeSource)(nil)
	_ Admin  = (*fakeSource)(nil)
)

func (f *fakeSource) Config() *config.Config                          { return f.cfg }
func (f *fakeSource) FrontendCounters(name string) *balancer.Counters { return f.counters["fe/"+name] }
func (f *fakeSource) BackendCounters(name string) *balancer.Counters  { return f.counters["be/"+name] }
func (f *fakeSource) Server(backend, server string) *balancer.Server {
	return f.reg.Lookup(backend, server)
}
func (f *fakeSource) LastCheck(backend, server string) (health.Checked, bool) {
	return health.Checked{Result: health.Result{OK: true, Duration: time.Millisecond}, At: time.Now()}, true
}
func (f *fakeSource) CheckProgress(backend, server string) (health.Progress, bool) {
	p := health.Progress{Health: 4, Rise: 2, Fall: 3} // rise+fall-1: plainly UP
	if !f.reg.Lookup(backend, server).Up() {
		p.Health = 0
	}
	return p, true
}
func (f *fakeSource) AgentPaused(backend, server string) (bool, bool) { return false, false }
func (f *fakeSource) QueueLengths(backend string, servers []int) int  { return 0 }
func (f *fakeSource) ServerConns(backend, server string) int          { return 0 }
func (f *fakeSource) EffectiveWeight(backend, server string) int      { return 1 }
func (f *fakeSource) BackendUpDown(string) (uint64, time.Time, time.Duration, bool) {
	return 0, time.Now(), 0, true
}
func (f *fakeSource) FrontendMaxConn(name string) int { return 1000 }
func (f *fakeSource) ActiveConns() int64              { return 0 }
func (f *fakeSource) GlobalMaxConn() int              { return 1000 }
func (f *fakeSource) Listeners() int                  { return 1 }
func (f *fakeSource) Stopping() bool                  { return false }
func (f *fakeSource) EachSession(func(id, frontend, mode string, client, local net.Addr, age time.Duration)) {
}
func (f *fakeSource) LastBadRequest(frontend string) *h1.Capture         { return nil }
func (f *fakeSource) LastBadResponse(backend string) *h1.Capture         { return nil }
func (f *fakeSource) SetWeight(string, string, int, bool) error          { return nil }
func (f *fakeSource) SetHealthPaused(string, string, bool) error         { return nil }
func (f *fakeSource) ForceHealth(string, string, bool) error             { return nil }
func (f *fakeSource) SetAgentPaused(string, string, bool) error          { return nil }
func (f *fakeSource) SetFrontendMaxConn(string, int) error               { return nil }
func (f *fakeSource) SetGlobalMaxConn(int)                               {}
func (f *fakeSource) ShutdownServerSessions(string, string) (int, error) { return 0, nil }
func (f *fakeSource) ShutdownSession(string) bool                        { return false }
func (f *fakeSource) ClearCounters(bool)                                 {}

// newBigSource is backends backends of 3 servers each behind one
// frontend with an admin stats page; the servers' states vary as they
// would on a busy day: some down, some in maintenance, some draining.
func newBigSource(t testing.TB, backends int) (*fakeSource, *config.StatsPage) {
	t.Helper()
	var y strings.Builder
	y.WriteString("defaults: {mode: http}\nfrontends:\n  web:\n    bind: \"127.0.0.1:1\"\n    default_backend: be0000\n" +
		"    stats: {enable: true, uri: /stats, auth: [\"admin:s3cret\"], admin: true, refresh: 10s}\nbackends:\n")
	for i := range backends {
		fmt.Fprintf(&y, "  be%04d: {servers: [", i)
		for j := 1; j <= 3; j++ {
			fmt.Fprintf(&y, "{name: srv%d, address: \"127.0.0.%d:%d\", check: true},", j, j, 8000+i)
		}
		y.WriteString("]}\n")
	}
	cfg, err := config.Parse("big.yaml", []byte(y.String()))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSource{cfg: cfg, reg: balancer.NewRegistry(), counters: map[string]*balancer.Counters{}}
	for _, fe := range cfg.Frontends {
		f.counters["fe/"+fe.Name] = &balancer.Counters{}
	}
	for i, be := range cfg.Backends {
		c := &balancer.Counters{}
		c.TotalConns.Store(uint64(i * 1000))
		c.BytesIn.Store(uint64(i * 123456))
		f.counters["be/"+be.Name] = c
		for j, sc := range be.Servers {
			s := f.reg.Server(be.Name, sc.Name)
			switch (i*3 + j) % 10 {
			case 1:
				s.SetHealthy(false)
			case 2:
				s.SetAdmin(balancer.AdminMaint)
			case 3:
				s.SetAdmin(balancer.AdminDrain)
			}
		}
	}
	return f, cfg.Frontends[0].Stats
}

// pageRequest is a logged-in GET of the page, as ServeStats gets it.
func pageRequest(ctx *fasthttp.RequestCtx, uri string) {
	ctx.Request.Reset()
	ctx.Response.Reset()
	ctx.Request.Header.SetMethod(fasthttp.MethodGet)
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("admin:s3cret")))
}

// The big page renders every server with its state, and one action form
// per backend.
func TestPage1000Backends(t *testing.T) {
	src, page := newBigSource(t, 1000)
	s := New(src, src, zap.NewNop(), Options{Version: "test"})
	defer s.Close()
	var ctx fasthttp.RequestCtx
	pageRequest(&ctx, "/stats")
	s.ServeStats(&ctx, "web", page)
	if ctx.Response.StatusCode() != 200 {
		t.Fatalf("status %d", ctx.Response.StatusCode())
	}
	body := string(ctx.Response.Body())
	if n := strings.Count(body, `<form class="actions" method="post"`); n != 1000 {
		t.Errorf("%d action forms, want 1000", n)
	}
	if n := strings.Count(body, `<input type="checkbox" name="s" value="srv`); n != 3000 {
		t.Errorf("%d server checkboxes, want 3000", n)
	}
	counts := map[string]int{}
	for _, m := range regexp.MustCompile(`<tr class="([a-z ]+)" id="row-be\d{4}-srv\d"`).FindAllStringSubmatch(body, -1) {
		counts[m[1]]++
	}
	// Of every 10 servers in turn, one is down, one in maintenance, one
	// draining, the rest up.
	want := map[string]int{"down": 300, "maint": 300, "drain": 300, "up": 2100}
	for class, n := range want {
		if counts[class] != n {
			t.Errorf("%d rows of class %q, want %d (all: %v)", counts[class], class, n, counts)
		}
	}
	if !strings.Contains(body, `<tr class="maint" id="row-be0000-srv3" data-status="MAINT">`) {
		t.Error("be0000/srv3 is not shown in maintenance")
	}
}

// The target: 1,000 backends × 3 servers in under 300ms of server
// time (ns/op here, table reading and rendering together).
func BenchmarkPage1000Backends(b *testing.B) {
	src, page := newBigSource(b, 1000)
	s := New(src, src, zap.NewNop(), Options{Version: "bench"})
	defer s.Close()
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		pageRequest(&ctx, "/stats")
		s.ServeStats(&ctx, "web", page)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d", ctx.Response.StatusCode())
		}
	}
	b.ReportMetric(float64(len(ctx.Response.Body())), "bytes/page")
}
