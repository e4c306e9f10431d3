package stats

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/internal/testnet"
	"github.com/halo-lb/halo/proxy"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// rig is a real proxy with a Stats on it, its sockets in a short temporary
// directory (UNIX socket paths are limited to 107 bytes).
type rig struct {
	t     testing.TB
	p     *proxy.Proxy
	s     *Stats
	dir   string
	vars  map[string]string
	cfg   *config.Config
	yamlT string
}

// newRig applies yaml, where {{NAME}} is replaced by vars[NAME] and
// {{DIR}} by the socket directory.
func newRig(t testing.TB, yaml string, vars map[string]string) *rig {
	t.Helper()
	dir, err := os.MkdirTemp("", "halo-stats")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	r := &rig{t: t, dir: dir, vars: vars, yamlT: yaml}
	log := zap.NewNop() // a fuzz target may not log through its F
	if _, fuzzing := t.(*testing.F); !fuzzing {
		log = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	r.p = proxy.New(log)
	r.apply(yaml)
	r.s = New(r.p, r.p, log, Options{Version: "test"})
	if err := r.s.ServeSockets(r.cfg.Global.Stats); err != nil {
		t.Fatal(err)
	}
	r.p.SetStatsPage(r.s)
	t.Cleanup(func() {
		r.s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.p.Shutdown(ctx)
	})
	return r
}

func (r *rig) expand(yaml string) string {
	yaml = strings.ReplaceAll(yaml, "{{DIR}}", r.dir)
	for k, v := range r.vars {
		yaml = strings.ReplaceAll(yaml, "{{"+k+"}}", v)
	}
	return yaml
}

// apply loads yaml as a new configuration (a reload).
func (r *rig) apply(yaml string) {
	r.t.Helper()
	cfg, err := config.Parse(r.t.Name()+".yaml", []byte(r.expand(yaml)))
	if err != nil {
		r.t.Fatalf("config: %v", err)
	}
	if err := r.p.Apply(cfg); err != nil {
		r.t.Fatal(err)
	}
	r.cfg = cfg
	if r.s != nil {
		if err := r.s.ServeSockets(cfg.Global.Stats); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *rig) sock(name string) string { return filepath.Join(r.dir, name) }

// cmd sends one line to a socket and returns everything it answers until
// it closes the connection.
func (r *rig) cmd(sock, line string) string {
	r.t.Helper()
	c, err := net.DialTimeout("unix", r.sock(sock), time.Second)
	if err != nil {
		r.t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		r.t.Fatal(err)
	}
	out, err := io.ReadAll(c)
	if err != nil {
		r.t.Fatalf("%s: %v", line, err)
	}
	return string(out)
}

// frontend returns the address the named frontend listens on.
func (r *rig) frontend(name string) string {
	r.t.Helper()
	addrs := r.p.Addrs(name)
	if len(addrs) == 0 {
		r.t.Fatalf("frontend %s has no listener", name)
	}
	return addrs[0].String()
}

// csvRows parses show stat's CSV into maps by column name, keyed by
// "pxname/svname".
func csvRows(t *testing.T, out string) (header []string, rows map[string]map[string]string, counts map[string]int) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "# ") {
		t.Fatalf("no CSV header in %q", out)
	}
	header = strings.Split(strings.TrimSuffix(strings.TrimPrefix(lines[0], "# "), ","), ",")
	rows, counts = map[string]map[string]string{}, map[string]int{}
	for _, l := range lines[1:] {
		if l == "" {
			continue
		}
		f := strings.Split(strings.TrimSuffix(l, ","), ",")
		m := map[string]string{}
		for i, h := range header {
			if i < len(f) {
				m[h] = f[i]
			}
		}
		key := f[0] + "/" + f[1]
		rows[key] = m
		counts[key] = len(f)
	}
	return header, rows, counts
}

// backend is a real HTTP server that answers with its name.
type backend struct {
	srv  *httptest.Server
	name string
}

func startBackend(t *testing.T, name string) *backend {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "hello from "+name)
	}))
	t.Cleanup(srv.Close)
	return &backend{srv: srv, name: name}
}

func (b *backend) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

// waitFor polls cond every 50 ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startHAProxy runs Debian's haproxy on cfg, whose {{SOCK}} is its stats
// socket, until the test ends, and returns a function that sends a
// command to that socket and returns the answer.
func startHAProxy(t *testing.T, cfg string) func(line string) string {
	t.Helper()
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		testnet.SkipOrFail(t, "haproxy is not installed (bench/setup installs it)")
	}
	dir, err := os.MkdirTemp("", "hx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "h.sock")
	file := filepath.Join(dir, "h.cfg")
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(cfg, "{{SOCK}}", sock)), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd := exec.Command(haproxy, "-f", file)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	send := func(line string) string {
		c, err := net.Dial("unix", sock)
		if err != nil {
			return ""
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, line+"\n")
		out, _ := io.ReadAll(c)
		return string(out)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.HasPrefix(send("show stat"), "# "); time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("haproxy exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for HAProxy's stats socket")
		}
	}
	return send
}
