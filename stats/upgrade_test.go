package stats

import (
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/proxy"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// The runtime API sockets pass to a second Stats as a binary upgrade
// passes them: it takes the same sockets, holds its answers while the
// first hands over (the socket file stays, a client that connects then
// waits), answers once released, and keeps the first's numbers.
func TestSocketsPassToTheNextProcess(t *testing.T) {
	r := newRig(t, twoServers, map[string]string{"S1": "127.0.0.1:9", "S2": "127.0.0.1:9"})
	before := r.cmd("admin.sock", "show stat")
	passed := map[string]*os.File{}
	for _, ps := range r.s.PassSockets() {
		f, err := ps.Listener.File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		passed[ps.Path] = f
	}
	if len(passed) != 3 {
		t.Fatalf("%d sockets to pass, want 3", len(passed))
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	p := proxy.New(log)
	if err := p.Apply(r.cfg); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	next := New(p, p, log, Options{Version: "next"})
	defer next.Close()
	next.SetIDs(r.s.IDs())
	next.Inherit(func(path string) (*net.UnixListener, error) {
		f := passed[path]
		if f == nil {
			return nil, nil
		}
		ln, err := net.FileListener(f)
		if err != nil {
			return nil, err
		}
		return ln.(*net.UnixListener), nil
	})
	next.Hold()
	if err := next.ServeSockets(r.cfg.Global.Stats); err != nil {
		t.Fatal(err)
	}
	r.s.HandOver(2 * time.Second)
	if _, err := os.Stat(r.sock("admin.sock")); err != nil {
		t.Fatalf("the socket file is gone after the handover: %v", err)
	}
	answered := make(chan string, 1)
	go func() {
		c, err := net.DialTimeout("unix", r.sock("admin.sock"), time.Second)
		if err != nil {
			answered <- err.Error()
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "show info\n")
		b, _ := io.ReadAll(c)
		answered <- string(b)
	}()
	select {
	case got := <-answered:
		t.Fatalf("answered while held: %q", got)
	case <-time.After(300 * time.Millisecond):
	}
	next.Release()
	select {
	case got := <-answered:
		if !strings.Contains(got, "Version: next") {
			t.Fatalf("the answer after release is not the next process's: %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no answer after release")
	}
	after := r.cmd("admin.sock", "show stat")
	col := func(csv string) []string {
		var ids []string
		for _, l := range strings.Split(csv, "\n")[1:] {
			if f := strings.Split(l, ","); len(f) > 28 {
				ids = append(ids, f[0]+"/"+f[1]+"="+f[27]+"."+f[28])
			}
		}
		return ids
	}
	if b, a := strings.Join(col(before), " "), strings.Join(col(after), " "); b != a || b == "" {
		t.Errorf("iid.sid before %s, after %s", b, a)
	}
}

func TestUpgradeCommand(t *testing.T) {
	r := newRig(t, twoServers, map[string]string{"S1": "127.0.0.1:9", "S2": "127.0.0.1:9"})
	if got := r.cmd("admin.sock", "upgrade"); !strings.Contains(got, "cannot be upgraded") {
		t.Errorf("without an upgrader: %q", got)
	}
	r.s.SetUpgrader(fakeUpgrader("Upgraded: the new process (pid 42) serves; this one drains.\n"))
	if got := r.cmd("oper.sock", "upgrade"); got != "Permission denied\n\n" {
		t.Errorf("at level operator: %q", got)
	}
	if got := r.cmd("admin.sock", "upgrade"); got != "Upgraded: the new process (pid 42) serves; this one drains.\n\n" {
		t.Errorf("at level admin: %q", got)
	}
}

type fakeUpgrader string

func (f fakeUpgrader) Upgrade() string { return string(f) }
