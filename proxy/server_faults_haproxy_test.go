package proxy

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// TestServerFaultsAsHAProxy holds HAProxy 2.6 to the table TestServerFaults
// holds halo to: the same fault servers behind HAProxy configured as halo
// is (balance first, retries 1, the same timeouts; with retry-on
// all-retryable-errors and option redispatch for the retry cases) give
// the client, the log line and the server's eresp, wretr and wredis the
// table's values, or the haproxy column where halo differs on purpose. A
// POST is retried by HAProxy, not by halo.
func TestServerFaultsAsHAProxy(t *testing.T) {
	for _, fc := range httpFaults {
		t.Run(fc.name, func(t *testing.T) {
			want := fc.want
			if fc.haproxy != nil {
				want = *fc.haproxy
				t.Logf("halo differs on purpose: %s", fc.why)
			}
			t.Run("alone", func(t *testing.T) {
				testnet.CheckLeaks(t, leakIgnores...)
				f := startFaultServer(t, "f", fc.serve)
				got := haproxyFault(t, "http", false, "GET", f)
				t.Logf("haproxy: %s", got)
				if got.faultOutcome != want || got.retries != "0" {
					t.Errorf("haproxy: %s (retries %s); want %s, no retry", got, got.retries, want)
				}
			})
			t.Run("retry-on", func(t *testing.T) {
				testnet.CheckLeaks(t, leakIgnores...)
				f, o := startFaultServer(t, "f", fc.serve), startHTTPBackend(t, "o", nil)
				got := haproxyFault(t, "http", true, "GET", f, o)
				t.Logf("haproxy: %s, retries %s on %s", got, got.retries, got.server)
				h := fc
				h.want = want
				checkRetried(t, "haproxy", h, got)
				if fc.retried {
					post := haproxyFault(t, "http", true, "POST", f, o)
					t.Logf("haproxy, POST: %s, retries %s on %s", post, post.retries, post.server)
					if post.reply.status != 200 || post.server != "be/o" || post.retries != "+1" {
						t.Errorf("haproxy, POST: %s, retries %s on %s; want it retried on be/o (halo retries no POST)", post, post.retries, post.server)
					}
				}
			})
		})
	}
}

// TestServerFaultsTCPAsHAProxy: the mode tcp faults behind HAProxy.
func TestServerFaultsTCPAsHAProxy(t *testing.T) {
	for _, fc := range tcpFaults {
		t.Run(fc.name, func(t *testing.T) {
			testnet.CheckLeaks(t, leakIgnores...)
			f := startFaultServer(t, "f", fc.serve)
			h := startFaultHAProxy(t, "tcp", false, f)
			reply := tcpExchange(t, h.addr)
			line := parseAccessLine(t, h.line(t, " be/f "), false)
			st := h.stat(t, "f")
			t.Logf("haproxy: got %q reset=%v, %s, eresp=%s srv_abrt=%s", reply.got, reply.reset, line.term, st["eresp"], st["srv_abrt"])
			if reply != fc.reply || line.term != fc.term || st["eresp"] != strconv.FormatUint(fc.eresp, 10) {
				t.Errorf("haproxy: got %+v, %s, eresp %s; want %+v, %s, eresp %d", reply, line.term, st["eresp"], fc.reply, fc.term, fc.eresp)
			}
		})
	}
}

// faultHAProxy is HAProxy in front of fault servers: its frontend's
// address, its log, and its stats socket.
type faultHAProxy struct {
	addr string
	logs *haproxyLog
	sock string
}

// startFaultHAProxy runs HAProxy with the configuration faultConfig gives
// halo (mode tcp: tcpFaultConfig's), its servers the backends given.
func startFaultHAProxy(t *testing.T, mode string, retried bool, servers ...*testBackend) *faultHAProxy {
	t.Helper()
	// A unix socket's path must fit in 108 bytes: not under t.TempDir,
	// whose name holds the subtest's.
	dir, err := os.MkdirTemp("", "halo-faults")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	h := &faultHAProxy{addr: testnet.FreeAddr(t), logs: newHAProxyLog(t), sock: filepath.Join(dir, "stats.sock")}
	var be strings.Builder
	if mode == "http" {
		be.WriteString("  balance first\n")
		if retried {
			be.WriteString("  option redispatch\n  retry-on all-retryable-errors\n")
		}
	}
	for _, s := range servers {
		fmt.Fprintf(&be, "  server %s %s maxconn 100\n", s.name, s.addr)
	}
	startHAProxy(t, fmt.Sprintf(`global
  log %s format raw local0
  stats socket %s level admin
defaults
  mode %s
  log global
  option %slog
  retries 1
  timeout connect 1s
  timeout client 3s
  timeout server 1s
frontend fe
  bind %s
  default_backend be
backend be
%s`, h.logs.conn.LocalAddr(), h.sock, mode, mode, h.addr, be.String()))
	// Ready once its stats socket answers: it has bound its frontend
	// by then. (A probe of the frontend would be a session of its own.)
	waitFor(t, 5*time.Second, "haproxy's stats socket", func() bool {
		_, err := h.command("show info")
		return err == nil
	})
	return h
}

// command sends one runtime API command and returns the answer.
func (h *faultHAProxy) command(line string) (string, error) {
	c, err := net.DialTimeout("unix", h.sock, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		return "", err
	}
	var b strings.Builder
	s := bufio.NewScanner(c)
	for s.Scan() {
		b.WriteString(s.Text() + "\n")
	}
	return b.String(), s.Err()
}

// stat is server srv's row of backend be in show stat, by column name.
func (h *faultHAProxy) stat(t *testing.T, srv string) map[string]string {
	t.Helper()
	out, err := h.command("show stat")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	cols := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	for _, l := range lines[1:] {
		v := strings.Split(l, ",")
		if len(v) >= 2 && v[0] == "be" && v[1] == srv {
			row := map[string]string{}
			for i, c := range cols {
				if i < len(v) {
					row[c] = v[i]
				}
			}
			for _, c := range []string{"eresp", "econ", "wretr", "wredis", "srv_abrt"} {
				if row[c] == "" {
					row[c] = "0"
				}
			}
			return row
		}
	}
	t.Fatalf("no row for be/%s in:\n%s", srv, out)
	return nil
}

// line waits for the log line holding sub and returns it.
func (h *faultHAProxy) line(t *testing.T, sub string) string {
	t.Helper()
	waitFor(t, 5*time.Second, "haproxy's log line", func() bool { return h.logs.has(sub) })
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// haproxyFault runs one request through HAProxy, as haloFault through halo.
func haproxyFault(t *testing.T, mode string, retried bool, method string, servers ...*testBackend) faultGot {
	t.Helper()
	h := startFaultHAProxy(t, mode, retried, servers...)
	reply := faultRequest(t, h.addr, method)
	line := parseAccessLine(t, h.line(t, method+" /fault "), true)
	st := h.stat(t, "f")
	n := func(c string) uint64 {
		v, _ := strconv.ParseUint(st[c], 10, 64)
		return v
	}
	return faultGot{faultOutcome: faultOutcome{reply, line.term, n("eresp")}, server: line.server, retries: line.retries,
		fRetries: n("wretr"), fRedispatch: n("wredis")}
}
