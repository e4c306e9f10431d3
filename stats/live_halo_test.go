package stats

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// haloBin is the real halo, built once by TestMain: the page's tests
// drive it as an operator's browser and tools would.
var haloBin string

func TestMain(m *testing.M) {
	testnet.MainWithBinary(m, "github.com/halo-lb/halo/cmd/halo", &haloBin)
}

// The users of the test configurations.
const (
	adminUser, adminPass = "admin", "s3cret"
	opsUser, opsPass     = "ops", "pw:with:colons"
)

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// liveHalo is a running halo with one backend "be" of real HTTP servers
// and a stats listen section.
type liveHalo struct {
	sock     string // the admin socket
	addr     string // the stats section's address
	page     string // the page's URL, http://127.0.0.1:PORT/stats
	metrics  string
	backends map[string]*httptest.Server // by server name
	stderr   *lockedBuffer
	exited   chan struct{}
}

// startLiveHalo starts servers s1..sN, each a real HTTP server on
// loopback, and a halo balancing them with checks every 500ms.
func startLiveHalo(t *testing.T, servers int) *liveHalo {
	t.Helper()
	dir := t.TempDir()
	h := &liveHalo{sock: filepath.Join(dir, "admin.sock"), backends: map[string]*httptest.Server{},
		stderr: &lockedBuffer{}, exited: make(chan struct{})}
	var srvs strings.Builder
	for i := 1; i <= servers; i++ {
		name := fmt.Sprintf("s%d", i)
		bs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello from "+name+"\n")
		}))
		t.Cleanup(bs.Close)
		h.backends[name] = bs
		fmt.Fprintf(&srvs, "      - {name: %s, address: %q, check: true, inter: 500ms}\n", name, bs.Listener.Addr().String())
	}
	statsAddr := fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
	webAddr := fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
	h.addr = statsAddr
	h.page, h.metrics = "http://"+statsAddr+"/stats", "http://"+statsAddr+"/metrics"
	cfg := fmt.Sprintf(`global:
  stats:
    socket:
      - {path: %q, mode: "0600", level: admin}
defaults:
  mode: http
  timeout: {connect: 1s, client: 5s, server: 5s}
frontends:
  web: {bind: %q, default_backend: be}
backends:
  be:
    servers:
%slisten:
  stats:
    bind: [%q]
    stats:
      enable: true
      uri: /stats
      realm: halo
      auth: [%q, %q]
      refresh: 10s
      admin: true
      prometheus: /metrics
`, h.sock, webAddr, srvs.String(), statsAddr, adminUser+":"+adminPass, opsUser+":"+opsPass)
	file := filepath.Join(dir, "halo.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(haloBin, "run", "-c", file)
	cmd.Stdout, cmd.Stderr = h.stderr, h.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(h.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-h.exited
		if t.Failed() {
			t.Logf("halo output:\n%s", h.stderr.String())
		}
	})
	waitForHalo(t, 10*time.Second, "halo's stats page and admin socket", func() bool {
		resp, err := http.Get(h.page)
		if err != nil {
			return false
		}
		resp.Body.Close()
		c, err := net.Dial("unix", h.sock)
		if err != nil {
			return false
		}
		c.Close()
		return resp.StatusCode == http.StatusUnauthorized
	}, h)
	// A server starts UP at the edge of going down ("UP 1/3"), as in
	// HAProxy; its checks take it to plain UP within a second.
	waitForHalo(t, 10*time.Second, "every server to be checked UP", func() bool {
		st := h.showStat(t)
		for name := range h.backends {
			if st.get(t, "be", name, "status") != "UP" {
				return false
			}
		}
		return true
	}, h)
	return h
}

// waitForHalo polls cond every 50ms until it holds or timeout passes; it
// fails at once if halo (when given) has exited.
func waitForHalo(t testing.TB, timeout time.Duration, what string, cond func() bool, h *liveHalo) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); {
		if h != nil {
			select {
			case <-h.exited:
				t.Fatalf("halo exited while waiting for %s", what)
			default:
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// statTable is show stat's CSV, read by column name.
type statTable struct {
	header []string
	rows   [][]string
}

func parseStat(t testing.TB, data []byte) statTable {
	t.Helper()
	text := string(data)
	if !strings.HasPrefix(text, "# pxname,svname,qcur,") {
		t.Fatalf("show stat output does not start with HAProxy's header: %.80q", text)
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(text, "# ")))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("show stat output is not CSV: %v\n%s", err, text)
	}
	// HAProxy ends the header and every line with a comma: an empty
	// last column.
	return statTable{header: recs[0], rows: recs[1:]}
}

func (s statTable) get(t testing.TB, proxy, server, column string) string {
	t.Helper()
	col := -1
	for i, h := range s.header {
		if h == column {
			col = i
		}
	}
	if col < 0 {
		t.Fatalf("show stat has no column %q", column)
	}
	for _, r := range s.rows {
		if r[0] == proxy && r[1] == server {
			return r[col]
		}
	}
	t.Fatalf("show stat has no row %s/%s", proxy, server)
	return ""
}

// runtimeAPI sends one command to the admin socket and reads the answer.
func (h *liveHalo) runtimeAPI(t testing.TB, command string) []byte {
	t.Helper()
	c, err := net.DialTimeout("unix", h.sock, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, command+"\n"); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(bufio.NewReader(c))
	if err != nil {
		t.Fatalf("%s: %v", command, err)
	}
	return out
}

func (h *liveHalo) showStat(t testing.TB) statTable {
	t.Helper()
	return parseStat(t, h.runtimeAPI(t, "show stat"))
}

var client = &http.Client{
	Timeout: 5 * time.Second,
	// The page answers an action with 303: the tests look at it.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Jar:           newJar(),
}

// newJar keeps the page's session cookie, as a browser does.
func newJar() http.CookieJar {
	jar, err := cookiejar.New(nil)
	if err != nil {
		panic(err)
	}
	return jar
}

// do sends a request with basic auth (user "" for none) and returns the
// response with its body read.
func do(t testing.TB, method, url, user, pass, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// rawStatus sends raw to addr and returns the status code of the answer.
func rawStatus(t testing.TB, addr, raw string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", raw, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var tokenRE = regexp.MustCompile(`<input type="hidden" name="token" value="([^"]+)">`)

// scrapeToken reads the action token off the page as user sees it.
func scrapeToken(t testing.TB, h *liveHalo, user, pass string) string {
	t.Helper()
	resp, body := do(t, http.MethodGet, h.page, user, pass, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the page as %s: %s", user, resp.Status)
	}
	m := tokenRE.FindAllStringSubmatch(body, -1)
	if len(m) == 0 {
		t.Fatalf("the admin page has no action token:\n%s", body)
	}
	for _, x := range m[1:] {
		if x[1] != m[0][1] {
			t.Fatalf("the page's forms carry different tokens: %q and %q", m[0][1], x[1])
		}
	}
	return m[0][1]
}
