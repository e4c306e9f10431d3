package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/internal/testnet"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// serverConns is the current connection count of a server's state.
func serverConns(st *balancer.Server) int64 { return st.CurConns() }

// The connection counters of the backend and server move in both modes:
// read while a session is in flight they count it, and once it is done they
// are back to 0 with the total kept. In mode http the httplog line shows it
// in beconn and srv_conn, as HAProxy counts the request's own stream.
func TestConnectionCountersMidSession(t *testing.T) {
	t.Run("http", func(t *testing.T) {
		release := make(chan struct{})
		arrived := make(chan struct{}, 1)
		a := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
			arrived <- struct{}{}
			<-release
			io.WriteString(w, "a")
		})
		core, logs := observer.New(zap.InfoLevel)
		p := New(zap.New(core))
		if err := p.Apply(parseConfig(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be, option: {httplog: true}}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`, a)); err != nil {
			t.Fatal(err)
		}
		defer p.Shutdown(t.Context())
		done := make(chan error, 1)
		go func() {
			_, _, err := httpGet(httpClient(), "http://"+frontendAddr(t, p, "fe")+"/")
			done <- err
		}()
		select {
		case <-arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("the request never reached the server")
		}
		be, st := p.BackendCounters("be"), p.Registry().Lookup("be", "a")
		if cur, total, srvCur, srvTotal := be.CurConns.Load(), be.TotalConns.Load(), serverConns(st), st.TotalConns.Load(); cur != 1 || total != 1 || srvCur != 1 || srvTotal != 1 {
			t.Errorf("mid-request: backend %d current / %d total, server %d current / %d total; want 1/1 and 1/1", cur, total, srvCur, srvTotal)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		waitFor(t, 2*time.Second, "the access line", func() bool { return logs.FilterLoggerName("access").Len() == 1 })
		if cur, total, srvCur, srvTotal := be.CurConns.Load(), be.TotalConns.Load(), serverConns(st), st.TotalConns.Load(); cur != 0 || total != 1 || srvCur != 0 || srvTotal != 1 {
			t.Errorf("after the request: backend %d current / %d total, server %d current / %d total; want 0/1 and 0/1", cur, total, srvCur, srvTotal)
		}
		// actconn/feconn/beconn/srv_conn/retries: the request itself is
		// one connection of each.
		line := logs.FilterLoggerName("access").All()[0].Message
		if !regexp.MustCompile(` ---- 1/1/1/1/0 `).MatchString(line) {
			t.Errorf("httplog line %q: want connection counts 1/1/1/1/0", line)
		}
	})
	t.Run("tcp", func(t *testing.T) {
		a := startTCPBackend(t, "a")
		p := startProxy(t, oneServerConfig(`{timeout: {connect: 1s, client: 5s, server: 5s}}`), a)
		c, err := net.Dial("tcp", frontendAddr(t, p, "fe"))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "hello\n")
		c.SetDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(c)
		if line, err := r.ReadString('\n'); err != nil || strings.TrimSpace(line) != "a" {
			t.Fatalf("answer %q, %v", line, err)
		}
		be, st := p.BackendCounters("be"), p.Registry().Lookup("be", "a")
		if cur, total, srvCur, srvTotal := be.CurConns.Load(), be.TotalConns.Load(), serverConns(st), st.TotalConns.Load(); cur != 1 || total != 1 || srvCur != 1 || srvTotal != 1 {
			t.Errorf("mid-session: backend %d current / %d total, server %d current / %d total; want 1/1 and 1/1", cur, total, srvCur, srvTotal)
		}
		c.Close()
		waitFor(t, 2*time.Second, "the session to end", func() bool { return be.CurConns.Load() == 0 && serverConns(st) == 0 })
		if total, srvTotal := be.TotalConns.Load(), st.TotalConns.Load(); total != 1 || srvTotal != 1 {
			t.Errorf("after the session: backend total %d, server total %d; want 1 and 1", total, srvTotal)
		}
	})
}

// Retries on a server count one session on it, with or without
// redispatch: falling back to the same server keeps the session's slot.
func TestRetriesCountOneSession(t *testing.T) {
	dead := testnet.FreeAddr(t)
	for _, redispatch := range []string{"false", "true"} {
		t.Run("redispatch="+redispatch, func(t *testing.T) {
			p := startProxy(t, `
defaults: {mode: http, retries: 3, option: {redispatch: `+redispatch+`}, timeout: {connect: 200ms, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: d, address: "`+dead+`"}]}
`)
			if _, code, err := httpGet(httpClient(), "http://"+frontendAddr(t, p, "fe")+"/"); err != nil || code != 503 {
				t.Fatalf("a dead server: %d, %v; want 503", code, err)
			}
			st := p.Registry().Lookup("be", "d")
			if total, errs, retries, cur := st.TotalConns.Load(), st.ConnErrors.Load(), st.Retries.Load(), serverConns(st); total != 1 || errs != 4 || retries != 3 || cur != 0 {
				t.Fatalf("server d: %d sessions, %d connection errors, %d retries, %d current; want 1, 4, 3, 0", total, errs, retries, cur)
			}
		})
	}
}
