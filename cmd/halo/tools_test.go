package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
	dto "github.com/prometheus/client_model/go"
)

// The operator tools HAProxy users point at their load balancer, run
// against a real halo: prometheus-haproxy-exporter (on the runtime API
// socket and on the page's ;csv), hatop (in tmux) and promtool (on halo's
// own metrics).

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
		addr := fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
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
