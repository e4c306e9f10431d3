package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

var haloBin string

// TestMain builds the real binary once; these tests drive it as an operator
// would, with files, signals and sockets. After them no goroutine of
// theirs may be left and no descriptor open (backends, clients, pipes to
// the processes).
func TestMain(m *testing.M) { testnet.MainWithBinaryCheckingLeaks(m, ".", &haloBin) }

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type haloProc struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan error
}

func startHalo(t *testing.T, args ...string) *haloProc {
	t.Helper()
	return startHaloCmd(t, exec.Command(haloBin, args...))
}

// startHaloCmd starts cmd, which runs halo itself or a wrapper that execs
// it (prlimit), so that the process is halo's; it is killed when the test
// ends.
func startHaloCmd(t *testing.T, cmd *exec.Cmd) *haloProc {
	t.Helper()
	h := &haloProc{cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan error, 1)}
	h.cmd.Stdout, h.cmd.Stderr = h.stdout, h.stderr
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { h.done <- h.cmd.Wait() }()
	t.Cleanup(func() {
		h.cmd.Process.Kill()
		<-h.done
		if t.Failed() {
			t.Logf("halo stderr:\n%s", h.stderr.String())
		}
	})
	return h
}

// stop sends sig and waits for a clean exit.
func (h *haloProc) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	h.cmd.Process.Signal(sig)
	select {
	case err := <-h.done:
		h.done <- err // for Cleanup
		if err != nil {
			t.Fatalf("halo exited with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("halo did not stop")
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown key", `
frontends:
  web: {bind: "127.0.0.1:80", default_backend: app, tiemout: {client: 1s}}
backends:
  app: {servers: [{name: a, address: "127.0.0.1:1"}]}
`, []string{`:3:53: frontends.web.tiemout: unknown key "tiemout" (did you mean "timeout"?)`}},
		{"missing default_backend", `
frontends:
  web: {bind: "127.0.0.1:80", default_backend: ap}
backends:
  app: {servers: [{name: a, address: "127.0.0.1:1"}]}
`, []string{`:3:31: frontends.web.default_backend: backend "ap" does not exist`}},
		{"duplicate bind", `
frontends:
  web: {bind: "127.0.0.1:80", default_backend: app}
  api: {bind: "127.0.0.1:80", default_backend: app}
backends:
  app: {servers: [{name: a, address: "127.0.0.1:1"}]}
`, []string{`:4:15: frontends.api.bind[0]: "127.0.0.1:80" is already bound by frontends.web.bind[0]`}},
		{"bad duration", `
defaults: {timeout: {connect: 5sec}}
frontends:
  web: {bind: "127.0.0.1:80", default_backend: app}
backends:
  app: {servers: [{name: a, address: "127.0.0.1:1"}]}
`, []string{`:2:31: defaults.timeout.connect: invalid duration "5sec"`}},
		{"server without address", `
frontends:
  web: {bind: "127.0.0.1:80", default_backend: app}
backends:
  app: {servers: [{name: a, address: "127.0.0.1:1"}, {name: b}]}
`, []string{`:5:54: backends.app.servers[1]: server "b" has no address`}},
	}
	var all strings.Builder
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			writeFile(t, path, tc.yaml)
			var stdout, stderr bytes.Buffer
			code := run([]string{"check", "-c", path}, &stdout, &stderr)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr: %s", code, stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), path+w) {
					t.Errorf("stderr %q does not contain %q", stderr.String(), path+w)
				}
			}
			all.WriteString(tc.yaml)
		})
	}
	valid := filepath.Join(dir, "valid.yaml")
	writeFile(t, valid, `
frontends:
  web: {bind: "127.0.0.1:80", default_backend: app}
backends:
  app: {servers: [{name: a, address: "127.0.0.1:1"}]}
`)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "-c", valid}, &stdout, &stderr); code != 0 || stdout.String() != "configuration is valid\n" {
		t.Fatalf("valid file: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}

// The demo answers on its frontend and consecutive requests are served by
// all three demo servers in turn.
func TestDemo(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", testnet.FreePort(t))
	h := startHalo(t, "demo", "-listen", addr, "-backend-ports", "0,0,0")
	client := &http.Client{Timeout: 2 * time.Second}
	var first string
	waitUntil(t, 10*time.Second, "the demo to answer", func() bool {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		first = string(b)
		return resp.StatusCode == 200
	})
	seen := []string{}
	for range 6 {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		seen = append(seen, strings.Fields(string(b))[2])
	}
	for i := range 3 {
		if seen[i] == seen[(i+1)%3] || seen[i] != seen[i+3] {
			t.Fatalf("servers in turn = %v (first answer %q), want three distinct servers repeating", seen, first)
		}
	}
	if !strings.Contains(h.stdout.String(), "Try:") {
		t.Errorf("demo did not print what to try next: %q", h.stdout.String())
	}
	h.stop(t, os.Interrupt)
}

// startBackends runs HTTP servers in this process that answer with their name.
func startBackends(t *testing.T, names ...string) map[string]string {
	t.Helper()
	addrs := map[string]string{}
	for _, name := range names {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		addrs[name] = ln.Addr().String()
	}
	return addrs
}

// SIGHUP under steady load changes the server set with no failed request
// and no refused connection; a SIGHUP with a broken file keeps the old
// configuration serving and logs the positioned errors.
func TestSIGHUPReload(t *testing.T) {
	be := startBackends(t, "a", "b", "c")
	port := testnet.FreePort(t)
	cfgFile := filepath.Join(t.TempDir(), "halo.yaml")
	config := func(servers ...string) string {
		var b strings.Builder
		fmt.Fprintf(&b, `
defaults: {mode: http, timeout: {connect: 1s, client: 10s, server: 10s}}
frontends:
  web: {bind: "127.0.0.1:%d", default_backend: app}
backends:
  app:
    servers:
`, port)
		for _, s := range servers {
			fmt.Fprintf(&b, "      - {name: %s, address: %q}\n", s, be[s])
		}
		return b.String()
	}
	writeFile(t, cfgFile, config("a", "b"))
	h := startHalo(t, "run", "-c", cfgFile)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	waitUntil(t, 10*time.Second, "halo to listen", func() bool {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})

	load := startLoad(url)
	count := load.count
	waitUntil(t, 10*time.Second, "traffic on a and b", func() bool { return count("a") > 50 && count("b") > 50 })

	writeFile(t, cfgFile, config("a", "c")) // b leaves, c joins
	h.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, 10*time.Second, "traffic on c", func() bool { return count("c") > 50 })
	bAfter := count("b")
	time.Sleep(300 * time.Millisecond)
	if got := count("b"); got != bAfter {
		t.Errorf("b served %d requests after it was removed", got-bAfter)
	}

	writeFile(t, cfgFile, strings.Replace(config("a", "c"), "connect: 1s", "connect: 1 s", 1)+"    bogus: true\n")
	h.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, 10*time.Second, "the rejected reload to be logged", func() bool {
		return strings.Contains(h.stderr.String(), "reload rejected")
	})
	cBefore := count("c")
	time.Sleep(300 * time.Millisecond)
	if count("c") <= cBefore {
		t.Errorf("the old configuration stopped serving after a broken reload")
	}
	seen, failures := load.stop()
	t.Logf("served by server: %v; failures: %d", seen, len(failures))
	if len(failures) > 0 {
		t.Errorf("%d requests failed across the reloads; first: %s", len(failures), failures[0])
	}
	logs := h.stderr.String()
	for _, want := range []string{
		cfgFile + `:2:43: defaults.timeout.connect: invalid duration \"1 s\"`,
		cfgFile + `:10:5: backends.app.bogus: unknown key \"bogus\"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks positioned error %s", want)
		}
	}
	h.stop(t, syscall.SIGTERM)
}

// httpLoad is four workers getting a URL until stopped (at most 100,000
// requests each), half of them on a new connection per request so that a
// refused connection would show; it tallies the bodies and the failures.
type httpLoad struct {
	mu       sync.Mutex
	seen     map[string]int
	failures []string
	done     chan struct{}
	wg       sync.WaitGroup
}

func startLoad(url string) *httpLoad {
	l := &httpLoad{seen: map[string]int{}, done: make(chan struct{})}
	for w := range 4 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: w%2 == 0}}
			for i := 0; i < 100000; i++ {
				select {
				case <-l.done:
					return
				default:
				}
				l.get(client, url)
			}
		}()
	}
	return l
}

func (l *httpLoad) get(client *http.Client, url string) {
	resp, err := client.Get(url)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failures = append(l.failures, err.Error())
	} else {
		l.seen[string(body)]++
	}
}

// count is how many responses came with body name so far.
func (l *httpLoad) count(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[name]
}

// stop ends the load and returns the tallies.
func (l *httpLoad) stop() (map[string]int, []string) {
	close(l.done)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen, l.failures
}

// vmHWM returns a process's peak resident set size in bytes.
func vmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	return procStatusKB(t, pid, "VmHWM:") << 10
}

func procStatusKB(t *testing.T, pid int, key string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.HasPrefix(s.Text(), key) {
			n, _ := strconv.ParseInt(strings.Fields(s.Text())[1], 10, 64)
			return n
		}
	}
	t.Fatalf("%s not in /proc/%d/status", key, pid)
	return 0
}

// procIO returns the bytes a process moved through read-like and
// write-like system calls (rchar and wchar in /proc/PID/io).
func procIO(t *testing.T, pid int) (rchar, wchar int64) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "rchar":
			rchar = n
		case "wchar":
			wchar = n
		}
	}
	return rchar, wchar
}
