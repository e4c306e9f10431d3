package stats

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/health"
	"github.com/halo-lb/halo/internal/testnet"
	"github.com/halo-lb/halo/proxy/h1"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
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

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
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
	statsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	webAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
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

func TestPageBasicAuth(t *testing.T) {
	h := startLiveHalo(t, 3)
	cases := []struct {
		name, user, pass string
		want             int
	}{
		{"no credentials", "", "", http.StatusUnauthorized},
		{"wrong password", adminUser, "s3cre", http.StatusUnauthorized},
		{"wrong user, right password", "admim", adminPass, http.StatusUnauthorized},
		{"one user's name, the other's password", adminUser, opsPass, http.StatusUnauthorized},
		{"password with its last colon part only", opsUser, "colons", http.StatusUnauthorized},
		{"empty password", adminUser, "", http.StatusUnauthorized},
		{"first user", adminUser, adminPass, http.StatusOK},
		{"second user (every user is compared)", opsUser, opsPass, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, url := range []string{h.page, h.page + ";csv", h.metrics} {
				resp, body := do(t, http.MethodGet, url, tc.user, tc.pass, "")
				if resp.StatusCode != tc.want {
					t.Fatalf("GET %s as %q:%q: %s, want %d", url, tc.user, tc.pass, resp.Status, tc.want)
				}
				if tc.want == http.StatusUnauthorized {
					if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="halo"` {
						t.Errorf("WWW-Authenticate %q, want the page's realm", got)
					}
					if strings.Contains(body, "be") && strings.Contains(body, "s1") {
						t.Errorf("a refused request got the statistics: %q", body)
					}
				}
			}
		})
	}
	// A header that is not basic auth, or not base64, is refused too.
	for _, auth := range []string{"Bearer " + adminPass, "Basic " + adminUser + ":" + adminPass, "Basic !!!"} {
		req, _ := http.NewRequest(http.MethodGet, h.page, nil)
		req.Header.Set("Authorization", auth)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %s, want 401", auth, resp.Status)
		}
	}
}

// matchUser decides on every entry, whichever matches: the last entry
// logs in, a name that is listed twice logs in with either password, and
// a name or password right on its own (or another user's) does not.
func TestMatchUser(t *testing.T) {
	users := []config.StatsUser{
		{Name: "alice", Password: "a-pass"},
		{Name: "bob", Password: "b-pass"},
		{Name: "carol", Password: "first"},
		{Name: "carol", Password: "second"},
		{Name: "dave", Password: ""},
	}
	cases := []struct {
		user, pass string
		ok         bool
	}{
		{"alice", "a-pass", true},
		{"bob", "b-pass", true},
		{"carol", "first", true},
		{"carol", "second", true},
		{"dave", "", true},
		{"alice", "b-pass", false},
		{"bob", "a-pass", false},
		{"alice", "a-pas", false},
		{"alice", "a-pass ", false},
		{"alic", "a-pass", false},
		{"Alice", "a-pass", false},
		{"", "", false},
		{"carol", "third", false},
		{"eve", "a-pass", false},
		{"dave", "x", false},
	}
	for _, tc := range cases {
		name, ok := matchUser(users, tc.user, tc.pass)
		if ok != tc.ok {
			t.Errorf("matchUser(%q, %q) = %v, want %v", tc.user, tc.pass, ok, tc.ok)
		}
		if ok && name != tc.user {
			t.Errorf("matchUser(%q, %q) logged in %q", tc.user, tc.pass, name)
		}
	}
	if _, ok := matchUser(nil, "alice", "a-pass"); ok {
		t.Error("matchUser with no users let someone in")
	}
}

func TestPageCSRF(t *testing.T) {
	h := startLiveHalo(t, 3)
	token := scrapeToken(t, h, adminUser, adminPass)
	opsToken := scrapeToken(t, h, opsUser, opsPass)
	if token == opsToken {
		t.Fatal("two users got the same action token")
	}
	form := func(token string) string {
		v := url.Values{"b": {"be"}, "s": {"s2"}, "action": {"maint"}}
		if token != "" {
			v.Set("token", token)
		}
		return v.Encode()
	}
	wrong := []byte(token)
	wrong[len(wrong)/2] ^= 1
	refused := []struct{ name, body string }{
		{"no token", form("")},
		{"empty token", form("") + "&token="},
		{"wrong token", form(string(wrong))},
		{"token cut short", form(token[:len(token)-1])},
		{"another user's token", form(opsToken)},
		{"no body at all", ""},
	}
	for _, tc := range refused {
		resp, body := do(t, http.MethodPost, h.page, adminUser, adminPass, tc.body)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: POST answered %s, want 403: %s", tc.name, resp.Status, body)
		}
		if st := h.showStat(t).get(t, "be", "s2", "status"); st != "UP" {
			t.Fatalf("%s: after a refused POST, be/s2 is %q, want UP", tc.name, st)
		}
	}
	// A multipart form is no way around the token either: the page
	// reads url-encoded forms only, and cannot read this one.
	var mp bytes.Buffer
	mp.WriteString("--x\r\nContent-Disposition: form-data; name=\"action\"\r\n\r\nmaint\r\n--x--\r\n")
	req, _ := http.NewRequest(http.MethodPost, h.page, &mp)
	req.SetBasicAuth(adminUser, adminPass)
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("multipart POST: %v (halo crashed?)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("multipart POST: %s, want 403 or 400", resp.Status)
	}
	// A POST without Content-Length (or chunked, with an empty body)
	// has no token; it once crashed halo, reading a body stream that
	// fasthttp does not make for it.
	auth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(adminUser+":"+adminPass)) + "\r\n"
	for _, raw := range []string{
		"POST /stats HTTP/1.1\r\nHost: x\r\n" + auth + "Connection: close\r\n\r\n",
		"POST /stats HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
		"POST /stats HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
			"16\r\nb=be&s=s2&action=maint\r\n0\r\n\r\n",
	} {
		if got := rawStatus(t, h.addr, raw); got != http.StatusForbidden {
			t.Fatalf("raw POST %q: status %d, want 403", raw, got)
		}
		select {
		case <-h.exited:
			t.Fatalf("halo exited after the raw POST %q", raw)
		default:
		}
	}
	// The right token without credentials is still no login.
	if resp, _ := do(t, http.MethodPost, h.page, "", "", form(token)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST with the token but no credentials: %s, want 401", resp.Status)
	}
	if st := h.showStat(t).get(t, "be", "s2", "status"); st != "UP" {
		t.Fatalf("after refused POSTs, be/s2 is %q, want UP", st)
	}

	resp, body := do(t, http.MethodPost, h.page, adminUser, adminPass, form(token))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST with the page's token: %s, want 303: %s", resp.Status, body)
	}
	if loc := resp.Header.Get("Location"); loc != "/stats;st=DONE" {
		t.Fatalf("POST with the page's token sent the browser to %q, want /stats;st=DONE", loc)
	}
	_, csvOut := do(t, http.MethodGet, h.page+";csv", adminUser, adminPass, "")
	page := parseStat(t, []byte(csvOut))
	if st := page.get(t, "be", "s2", "status"); st != "MAINT" {
		t.Fatalf("after the action, ;csv says be/s2 is %q, want MAINT", st)
	}
	for _, s := range []string{"s1", "s3"} {
		if st := page.get(t, "be", s, "status"); st != "UP" {
			t.Errorf("the action on s2 changed be/%s to %q", s, st)
		}
	}
	if st := h.showStat(t).get(t, "be", "s2", "status"); st != "MAINT" {
		t.Fatalf("after the action, show stat says be/s2 is %q, want MAINT", st)
	}
	// The result page says so.
	if resp, body := do(t, http.MethodGet, h.page+";st=DONE", adminUser, adminPass, ""); resp.StatusCode != 200 ||
		!strings.Contains(body, `id="action-status">Action applied.<`) {
		t.Errorf("the result page (%s) does not say the action was applied", resp.Status)
	}
	// The other user's own token works for them.
	resp, _ = do(t, http.MethodPost, h.page, opsUser, opsPass,
		url.Values{"b": {"be"}, "s": {"s2"}, "action": {"ready"}, "token": {opsToken}}.Encode())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("ops's POST with ops's token: %s, want 303", resp.Status)
	}
	if st := h.showStat(t).get(t, "be", "s2", "status"); st != "UP" {
		t.Fatalf("after ready, be/s2 is %q, want UP", st)
	}
}

// ;csv is show stat, ;json parses, ;norefresh drops the reload and ;up
// the servers that are down.
func TestPageFormats(t *testing.T) {
	h := startLiveHalo(t, 3)
	resp, csvOut := do(t, http.MethodGet, h.page+";csv", adminUser, adminPass, "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf(";csv: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	page, sock := parseStat(t, []byte(csvOut)), h.showStat(t)
	if strings.Join(page.header, ",") != strings.Join(sock.header, ",") {
		t.Fatalf(";csv header\n%v\ndiffers from show stat's\n%v", page.header, sock.header)
	}
	if len(page.rows) != len(sock.rows) {
		t.Fatalf(";csv has %d rows, show stat %d", len(page.rows), len(sock.rows))
	}
	for i := range page.rows {
		p, s := page.rows[i], sock.rows[i]
		if len(p) != len(page.header) {
			t.Errorf(";csv row %d has %d fields, the header %d", i, len(p), len(page.header))
		}
		if p[0] != s[0] || p[1] != s[1] {
			t.Errorf("row %d: ;csv has %s/%s, show stat %s/%s", i, p[0], p[1], s[0], s[1])
		}
	}
	for _, s := range []string{"s1", "s2", "s3", "BACKEND"} {
		if page.get(t, "be", s, "status") != sock.get(t, "be", s, "status") {
			t.Errorf("be/%s: ;csv and show stat disagree on the status", s)
		}
	}

	resp, jsonOut := do(t, http.MethodGet, h.page+";json", adminUser, adminPass, "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf(";json: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	var rows [][]struct {
		ObjType string `json:"objType"`
		Field   struct {
			Name string `json:"name"`
		} `json:"field"`
		Value struct {
			Value any `json:"value"`
		} `json:"value"`
	}
	if err := json.Unmarshal([]byte(jsonOut), &rows); err != nil {
		t.Fatalf(";json does not parse: %v\n%.300s", err, jsonOut)
	}
	if len(rows) != len(sock.rows) {
		t.Fatalf(";json has %d rows, show stat %d", len(rows), len(sock.rows))
	}
	servers := 0
	for _, r := range rows {
		for _, f := range r {
			if f.Field.Name == "svname" && f.ObjType == "Server" {
				servers++
			}
		}
	}
	if servers != 3 {
		t.Errorf(";json has %d server rows, want 3", servers)
	}

	_, html := do(t, http.MethodGet, h.page, adminUser, adminPass, "")
	_, noRefresh := do(t, http.MethodGet, h.page+";norefresh", adminUser, adminPass, "")
	if !strings.Contains(html, `<meta http-equiv="refresh" content="10">`) {
		t.Error("the page does not reload itself every 10s")
	}
	if strings.Contains(noRefresh, `http-equiv="refresh"`) {
		t.Error(";norefresh still reloads")
	}

	h.backends["s1"].Close()
	waitForHalo(t, 10*time.Second, "be/s1 to go DOWN", func() bool {
		return h.showStat(t).get(t, "be", "s1", "status") == "DOWN"
	}, h)
	_, all := do(t, http.MethodGet, h.page, adminUser, adminPass, "")
	_, up := do(t, http.MethodGet, h.page+";up", adminUser, adminPass, "")
	if !strings.Contains(all, `id="row-be-s1"`) || !strings.Contains(all, `<tr class="down" id="row-be-s1" data-status="DOWN">`) {
		t.Error("the page does not show be/s1 as down")
	}
	if strings.Contains(up, `id="row-be-s1"`) {
		t.Error(";up still shows be/s1, which is down")
	}
	if !strings.Contains(up, `id="row-be-s2"`) {
		t.Error(";up hides be/s2, which is up")
	}
}

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
func (f *fakeSource) FrontendMaxConn(name string) int                 { return 1000 }
func (f *fakeSource) ActiveConns() int64                              { return 0 }
func (f *fakeSource) GlobalMaxConn() int                              { return 1000 }
func (f *fakeSource) Listeners() int                                  { return 1 }
func (f *fakeSource) Stopping() bool                                  { return false }
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

func TestServerClass(t *testing.T) {
	cases := []struct {
		status string
		backup bool
		want   string
	}{
		{"UP", false, "up"},
		{"UP", true, "up backup"},
		{"UP 1/3", false, "goingdown"},
		{"DOWN 1/2", false, "goingup"},
		{"DOWN", false, "down"},
		{"DOWN", true, "down backup"},
		{"DOWN (agent)", false, "down"},
		{"MAINT", false, "maint"},
		{"MAINT", true, "maint backup"},
		{"DRAIN", false, "drain"},
		{"NOLB", false, "nolb"},
		{"NOLB 1/3", false, "nolb"},
		{"no check", false, "nocheck"},
	}
	for _, tc := range cases {
		var r Row
		r.Type = ObjServer
		r.setS(FStatus, tc.status)
		if tc.backup {
			r.setN(FBck, 1)
		} else {
			r.setN(FBck, 0)
		}
		if got := serverClass(&r); got != tc.want {
			t.Errorf("serverClass(%q, backup %v) = %q, want %q", tc.status, tc.backup, got, tc.want)
		}
	}
}
