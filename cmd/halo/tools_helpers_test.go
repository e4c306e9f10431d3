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
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// What the tests of tools_test.go share: real backends, a halo with a
// stats socket and page, the tools started and stopped by PID.

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
		frontend:  fmt.Sprintf("http://127.0.0.1:%d", testnet.FreePort(t)),
		statsAddr: fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t)),
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
