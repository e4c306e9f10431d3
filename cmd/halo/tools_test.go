package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The operator tools HAProxy users point at their load balancer, run
// against a real halo: prometheus-haproxy-exporter (on the runtime API
// socket and on the page's ;csv), hatop (in tmux) and promtool (on halo's
// own metrics).

// needTool returns the program's path, or skips (fails under
// HALO_INTEGRATION=1) when it is not installed.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		testnet.SkipOrFail(t, name+" is not installed (scripts/install-deps installs it)")
	}
	return path
}

// shortTempDir is a temporary directory whose path leaves room for a UNIX
// socket name (108 bytes at most), which t.TempDir's may not.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "halo")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// countingBackend is an HTTP server answering with its name and counting
// the requests it answered; stop makes it refuse connections.
type countingBackend struct {
	name string
	srv  *httptest.Server
	hits atomic.Int64
}

func startCountingBackend(t *testing.T, name string) *countingBackend {
	t.Helper()
	b := &countingBackend{name: name}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		io.WriteString(w, name)
	}))
	t.Cleanup(b.stop)
	return b
}

func (b *countingBackend) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

func (b *countingBackend) stop() {
	b.srv.CloseClientConnections()
	b.srv.Close()
}

// toolServer is one server of backend be in the configuration.
type toolServer struct {
	name, addr string
	check      bool
}

// statsHalo is a running halo with frontend fe in front of backend be, an
// admin socket, and a listen section "stats" serving the page (user admin,
// password s3cret) on /stats and the metrics on /metrics.
type statsHalo struct {
	*haloProc
	sock      string
	frontend  string // base URL of fe
	statsAddr string // host:port of the page
}

const statsUser, statsPassword = "admin", "s3cret"

func startStatsHalo(t *testing.T, servers ...toolServer) *statsHalo {
	t.Helper()
	dir := shortTempDir(t)
	sh := &statsHalo{
		sock:      filepath.Join(dir, "admin.sock"),
		frontend:  fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		statsAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	}
	var b strings.Builder
	fmt.Fprintf(&b, `global:
  stats:
    socket:
      - {path: %q, mode: "0600", level: admin}
    timeout: 10s
defaults:
  mode: http
  timeout: {connect: 1s, client: 5s, server: 5s}
frontends:
  fe:
    bind: [%q]
    default_backend: be
backends:
  be:
    servers:
`, sh.sock, strings.TrimPrefix(sh.frontend, "http://"))
	for _, s := range servers {
		if s.check {
			fmt.Fprintf(&b, "      - {name: %s, address: %q, check: true, inter: 500ms}\n", s.name, s.addr)
		} else {
			fmt.Fprintf(&b, "      - {name: %s, address: %q}\n", s.name, s.addr)
		}
	}
	fmt.Fprintf(&b, `listen:
  stats:
    bind: [%q]
    stats:
      enable: true
      uri: /stats
      auth: ["%s:%s"]
      prometheus: /metrics
`, sh.statsAddr, statsUser, statsPassword)
	cfg := filepath.Join(dir, "halo.yaml")
	writeFile(t, cfg, b.String())
	sh.haloProc = startHalo(t, "run", "-c", cfg)
	waitUntil(t, 10*time.Second, "halo's socket and frontend", func() bool {
		if _, err := socketCommand(sh.sock, "show info"); err != nil {
			return false
		}
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(sh.frontend, "http://"), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return sh
}

// waitFor polls cond for at most 15 seconds; on timeout the test fails
// with what cond last said about its state.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %s", what, detail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// socketCommand sends one line to the runtime API and returns the answer.
func socketCommand(sock, line string) (string, error) {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// serverStatus reads the status column of backend be's servers from show
// stat.
func serverStatus(sock string) (map[string]string, error) {
	out, err := socketCommand(sock, "show stat")
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		return nil, fmt.Errorf("show stat answered %q: %v", out, err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	st := map[string]string{}
	for _, row := range rows[1:] {
		if row[col["pxname"]] == "be" && row[col["type"]] == "2" {
			st[row[col["svname"]]] = row[col["status"]]
		}
	}
	return st, nil
}

// waitStatus waits until show stat gives the servers the statuses wanted.
func waitStatus(t *testing.T, sock string, want map[string]string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("show stat statuses %v", want), func() (bool, string) {
		st, err := serverStatus(sock)
		if err != nil {
			return false, err.Error()
		}
		for name, status := range want {
			if st[name] != status {
				return false, fmt.Sprint(st)
			}
		}
		return true, ""
	})
}

// ctlQuiet runs "halo ctl -s SOCK WORDS..." and fails the test unless it
// succeeds with an empty answer, as an admin command's is.
func ctlQuiet(t *testing.T, sock string, words ...string) {
	t.Helper()
	out, err := exec.Command(haloBin, append([]string{"ctl", "-s", sock}, words...)...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("halo ctl %s: %v, answered %q", strings.Join(words, " "), err, out)
	}
}

// startTool runs a program until the test ends, when it is killed by its
// PID; its output is logged if the test failed.
func startTool(t *testing.T, path string, args ...string) {
	t.Helper()
	cmd := exec.Command(path, args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s %s:\n%s", filepath.Base(path), strings.Join(args, " "), out.String())
		}
	})
}

// scrape fetches a metrics endpoint and parses the text format strictly
// (classic metric names), returning the families and the body.
func scrape(url, user, password string) (map[string]*dto.MetricFamily, []byte, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, nil, err
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != 200 {
		return nil, body, fmt.Errorf("%s: status %d: %s", url, resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	return fams, body, err
}

// sample finds the metric of the family whose labels are exactly labels
// ("k=v" pairs), or nil.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	mf := fams[name]
	if mf == nil {
		return nil
	}
	want := map[string]string{}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		want[k] = v
	}
	for _, m := range mf.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		match := true
		for _, lp := range m.GetLabel() {
			if v, ok := want[lp.GetName()]; !ok || v != lp.GetValue() {
				match = false
				break
			}
		}
		if match {
			return m
		}
	}
	return nil
}

// value is a gauge's, counter's or untyped metric's value, and whether the
// metric is there.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	m := sample(fams, name, labels...)
	switch {
	case m == nil:
		return 0, false
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	case m.Untyped != nil:
		return m.Untyped.GetValue(), true
	}
	return 0, false
}

// The Go exporter reads show stat on the admin socket and the page's ;csv
// with basic auth; both see every server up, then a server put in
// maintenance and a server whose process died go to 0.
func TestPrometheusHAProxyExporter(t *testing.T) {
	exporter := needTool(t, "prometheus-haproxy-exporter")
	bes := []*countingBackend{startCountingBackend(t, "s1"), startCountingBackend(t, "s2"), startCountingBackend(t, "s3")}
	var servers []toolServer
	for _, b := range bes {
		servers = append(servers, toolServer{b.name, b.addr(), true})
	}
	h := startStatsHalo(t, servers...)
	waitStatus(t, h.sock, map[string]string{"s1": "UP", "s2": "UP", "s3": "UP"})

	scrapeURIs := map[string]string{
		"socket": "unix:" + h.sock,
		"page":   fmt.Sprintf("http://%s:%s@%s/stats;csv", statsUser, statsPassword, h.statsAddr),
	}
	exporters := map[string]string{} // scrape kind → the exporter's metrics URL
	for kind, uri := range scrapeURIs {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		startTool(t, exporter, "--haproxy.scrape-uri="+uri, "--web.listen-address="+addr, "--haproxy.timeout=2s")
		exporters[kind] = "http://" + addr + "/metrics"
	}

	// expect waits until both exporters give each server the haproxy_server_up
	// wanted, with haproxy_up 1 and no CSV they could not parse.
	expect := func(want map[string]float64) {
		t.Helper()
		for kind, url := range exporters {
			waitFor(t, fmt.Sprintf("the %s exporter to report %v", kind, want), func() (bool, string) {
				fams, _, err := scrape(url, "", "")
				if err != nil {
					return false, err.Error()
				}
				var b strings.Builder
				ok := true
				for _, m := range []struct {
					name   string
					labels []string
					want   float64
				}{{"haproxy_up", nil, 1}, {"haproxy_exporter_csv_parse_failures_total", nil, 0}} {
					v, found := value(fams, m.name, m.labels...)
					fmt.Fprintf(&b, "%s=%v(%v) ", m.name, v, found)
					ok = ok && found && v == m.want
				}
				for name, w := range want {
					v, found := value(fams, "haproxy_server_up", "backend=be", "server="+name)
					fmt.Fprintf(&b, "%s=%v(%v) ", name, v, found)
					ok = ok && found && v == w
				}
				if n := len(fams["haproxy_server_up"].GetMetric()); n != len(want) {
					fmt.Fprintf(&b, "%d servers", n)
					ok = false
				}
				return ok, b.String()
			})
		}
	}
	expect(map[string]float64{"s1": 1, "s2": 1, "s3": 1})

	ctlQuiet(t, h.sock, "disable", "server", "be/s2")
	expect(map[string]float64{"s1": 1, "s2": 0, "s3": 1})

	bes[2].stop()
	expect(map[string]float64{"s1": 1, "s2": 0, "s3": 0})

	ctlQuiet(t, h.sock, "enable", "server", "be/s2")
	expect(map[string]float64{"s1": 1, "s2": 1, "s3": 0})
}

// hatop, in a tmux pane, shows every server with its state, and follows a
// change made through the socket while it runs.
func TestHatop(t *testing.T) {
	hatop := needTool(t, "hatop")
	tmux := needTool(t, "tmux")
	up, maint, down, nocheck := startCountingBackend(t, "up"), startCountingBackend(t, "maint"), startCountingBackend(t, "down"), startCountingBackend(t, "nocheck")
	h := startStatsHalo(t,
		toolServer{"s-up", up.addr(), true},
		toolServer{"s-maint", maint.addr(), true},
		toolServer{"s-down", down.addr(), true},
		toolServer{"s-nocheck", nocheck.addr(), false},
	)
	down.stop()
	ctlQuiet(t, h.sock, "disable", "server", "be/s-maint")
	waitStatus(t, h.sock, map[string]string{"s-up": "UP", "s-maint": "MAINT", "s-down": "DOWN", "s-nocheck": "no check"})

	// A tmux server of its own (-L), so that no other session is touched;
	// the session is killed by name when the test ends.
	name := fmt.Sprintf("halo-hatop-%d", os.Getpid())
	tmuxCmd := func(args ...string) *exec.Cmd {
		cmd := exec.Command(tmux, append([]string{"-L", name}, args...)...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "TMUX=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		return cmd
	}
	// The shell stays after hatop so that its last words stay on screen.
	script := fmt.Sprintf("%s -i 1 -s %s; echo hatop exited with status $?; sleep 60", hatop, h.sock)
	if out, err := tmuxCmd("new-session", "-d", "-s", name, "-x", "200", "-y", "50", script).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	t.Cleanup(func() { tmuxCmd("kill-session", "-t", name).Run() })

	var screen string
	capture := func() string {
		out, err := tmuxCmd("capture-pane", "-p", "-t", name).Output()
		if err != nil {
			t.Fatalf("tmux capture-pane: %v", err)
		}
		return string(out)
	}
	// hatop writes "no check" as "-" and the check as "none".
	line := func(server, status string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(server) + `\s+\d+\s+` + regexp.QuoteMeta(status) + `\s`)
	}
	wantScreen := func(what string, want map[string]string) {
		t.Helper()
		waitFor(t, what+" on hatop's screen", func() (bool, string) {
			screen = capture()
			if strings.Contains(screen, "hatop exited") {
				t.Fatalf("hatop stopped:\n%s", screen)
			}
			for server, status := range want {
				if !line(server, status).MatchString(screen) {
					return false, "no line for " + server + " " + status + " in:\n" + screen
				}
			}
			return true, ""
		})
	}
	wantScreen("the four servers", map[string]string{"s-up": "UP", "s-maint": "MAINT", "s-down": "DOWN", "s-nocheck": "-", "BACKEND": "UP"})
	for _, want := range []string{"halo Version:", ">>> be", ">>> fe", "FRONTEND"} {
		if !strings.Contains(screen, want) {
			t.Errorf("hatop's screen lacks %q", want)
		}
	}
	// hatop keeps one interactive session ("prompt", "set timeout cli 60")
	// and asks show info and show stat each second: a change shows in it.
	ctlQuiet(t, h.sock, "enable", "server", "be/s-maint")
	wantScreen("s-maint back UP", map[string]string{"s-up": "UP", "s-maint": "UP", "s-down": "DOWN", "s-nocheck": "-"})
}

// halo's own metrics pass promtool's checks and carry HAProxy's exporter
// names and labels; the response time histogram counts every request a
// server answered.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := needTool(t, "promtool")
	s1, s2 := startCountingBackend(t, "s1"), startCountingBackend(t, "s2")
	h := startStatsHalo(t, toolServer{"s1", s1.addr(), true}, toolServer{"s2", s2.addr(), true})
	waitStatus(t, h.sock, map[string]string{"s1": "UP", "s2": "UP"})

	const requests = 25
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range requests {
		resp, err := client.Get(fmt.Sprintf("%s/r%d", h.frontend, i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
	}
	if got := s1.hits.Load() + s2.hits.Load(); got != requests || s1.hits.Load() == 0 || s2.hits.Load() == 0 {
		t.Fatalf("servers answered s1=%d s2=%d, want %d across both", s1.hits.Load(), s2.hits.Load(), requests)
	}

	metricsURL := "http://" + h.statsAddr + "/metrics"
	var fams map[string]*dto.MetricFamily
	var body []byte
	// The counters are written when a request ends, which may be just
	// after its response reached the client.
	waitFor(t, fmt.Sprintf("the histograms to count the %d requests", requests), func() (bool, string) {
		var err error
		fams, body, err = scrape(metricsURL, statsUser, statsPassword)
		if err != nil {
			return false, err.Error()
		}
		for _, b := range []*countingBackend{s1, s2} {
			m := sample(fams, "haproxy_server_http_response_time_seconds", "proxy=be", "server="+b.name)
			if m == nil || m.Histogram == nil || int64(m.Histogram.GetSampleCount()) != b.hits.Load() {
				return false, fmt.Sprintf("server %s: histogram %v, %d requests answered", b.name, m, b.hits.Load())
			}
		}
		return true, ""
	})

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("promtool check metrics: %v, output:\n%s", err, out)
	}

	for _, m := range []struct {
		name   string
		labels []string
		want   float64 // -1: any value
	}{
		{"haproxy_process_current_connections", nil, -1},
		{"haproxy_frontend_http_requests_total", []string{"proxy=fe"}, requests},
		{"haproxy_backend_http_requests_total", []string{"proxy=be"}, requests},
		{"haproxy_backend_status", []string{"proxy=be"}, 1},
		{"haproxy_server_status", []string{"proxy=be", "server=s1", "state=UP"}, 1},
		{"haproxy_server_status", []string{"proxy=be", "server=s1", "state=DOWN"}, 0},
		{"haproxy_server_status", []string{"proxy=be", "server=s2", "state=UP"}, 1},
		{"haproxy_server_http_requests_total", []string{"proxy=be", "server=s1"}, float64(s1.hits.Load())},
		{"haproxy_server_http_responses_total", []string{"proxy=be", "server=s2", "code=2xx"}, float64(s2.hits.Load())},
	} {
		v, ok := value(fams, m.name, m.labels...)
		if !ok || (m.want >= 0 && v != m.want) {
			t.Errorf("%s{%s} = %v (present: %v), want %v", m.name, strings.Join(m.labels, ","), v, ok, m.want)
		}
	}

	// The histogram's buckets: cumulative, ending with +Inf at the count,
	// and its text form has the le label HAProxy users' queries use.
	m := sample(fams, "haproxy_server_http_response_time_seconds", "proxy=be", "server=s1")
	buckets := m.GetHistogram().GetBucket()
	if len(buckets) < 2 {
		t.Fatalf("s1's response time histogram has %d buckets", len(buckets))
	}
	prev := uint64(0)
	for _, b := range buckets {
		if b.GetCumulativeCount() < prev {
			t.Errorf("bucket le=%v holds %d, fewer than the one before (%d)", b.GetUpperBound(), b.GetCumulativeCount(), prev)
		}
		prev = b.GetCumulativeCount()
	}
	if count := m.GetHistogram().GetSampleCount(); prev > count || count != uint64(s1.hits.Load()) || m.GetHistogram().GetSampleSum() <= 0 {
		t.Errorf("s1's histogram: last bucket %d, count %d, sum %v; s1 answered %d", prev, count, m.GetHistogram().GetSampleSum(), s1.hits.Load())
	}
	for _, want := range []string{
		`haproxy_server_http_response_time_seconds_bucket{proxy="be",server="s1",le="+Inf"} ` + fmt.Sprint(s1.hits.Load()) + "\n",
		`haproxy_server_http_response_time_seconds_count{proxy="be",server="s1"} ` + fmt.Sprint(s1.hits.Load()) + "\n",
		`haproxy_server_status{proxy="be",server="s1",state="UP"} 1` + "\n",
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("the metrics lack the line %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^haproxy_server_http_response_time_seconds_bucket\{proxy="be",server="s1",le="[0-9.e+-]+"\} \d+$`).Match(body) {
		t.Errorf("the metrics have no finite bucket line for s1")
	}
}
