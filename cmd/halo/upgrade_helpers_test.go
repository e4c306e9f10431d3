package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// upgradable is a halo run from a binary at a path of the test's own, so
// that a test can rename another binary into place, as a package upgrade
// does, and upgrade to it. Every process logs to one file. The test
// process is a child subreaper: the old processes of later upgrades, whose
// parent halo exited before them, are its children and it sees their exit
// status.
type upgradable struct {
	t    *testing.T
	dir  string
	bin  string // the path halo runs from
	cfg  string
	sock string
	log  string
	// exits has the exit status of each halo process that ended, by pid.
	mu    sync.Mutex
	exits map[int]error
	first *exec.Cmd
}

var subreaper sync.Once

// startUpgradable writes yaml ({{DIR}}: the test's directory) and runs
// halo with it; the configuration must have an admin socket at
// {{DIR}}/admin.sock.
func startUpgradable(t *testing.T, yaml string) *upgradable {
	t.Helper()
	subreaper.Do(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", err)
		}
	})
	dir := shortTempDir(t)
	h := &upgradable{t: t, dir: dir, bin: filepath.Join(dir, "bin", "halo"), cfg: filepath.Join(dir, "halo.yaml"),
		sock: filepath.Join(dir, "admin.sock"), log: filepath.Join(dir, "halo.log"), exits: map[int]error{}}
	if err := os.Mkdir(filepath.Dir(h.bin), 0o755); err != nil {
		t.Fatal(err)
	}
	h.install(haloBin)
	writeFile(t, h.cfg, strings.ReplaceAll(yaml, "{{DIR}}", dir))
	logFile, err := os.OpenFile(h.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	h.first = exec.Command(h.bin, "run", "-c", h.cfg)
	h.first.Stdout, h.first.Stderr = logFile, logFile
	if err := h.first.Start(); err != nil {
		t.Fatal(err)
	}
	first := h.first.Process.Pid
	go func() {
		err := h.first.Wait()
		h.mu.Lock()
		h.exits[first] = err
		h.mu.Unlock()
	}()
	t.Cleanup(h.cleanup)
	waitUntil(t, 15*time.Second, "halo's runtime API", func() bool { return h.pidOrZero() == first })
	return h
}

// install puts a copy of the binary at src in place by rename, as dpkg
// does: the running process's file is then "(deleted)", the path the new
// one's.
func (h *upgradable) install(src string) {
	h.t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		h.t.Fatal(err)
	}
	tmp := h.bin + ".dpkg-new"
	if err := os.WriteFile(tmp, data, 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.Rename(tmp, h.bin); err != nil {
		h.t.Fatal(err)
	}
}

func (h *upgradable) cmd(line string) (string, error) { return socketCommand(h.sock, line) }

// pidOrZero is the pid of the process answering on the runtime API, 0
// when none answers.
func (h *upgradable) pidOrZero() int {
	out, err := h.cmd("show info")
	if err != nil {
		return 0
	}
	return infoInt(out, "Pid")
}

func infoInt(info, key string) int {
	m := regexp.MustCompile(`(?m)^` + key + `: (\d+)$`).FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func (h *upgradable) logText() string {
	b, _ := os.ReadFile(h.log)
	return string(b)
}

// exited reports whether pid ended, and how. The first process is the
// test's child; a later one is the child of the halo it replaced until
// that one exits, then the test's (a subreaper's), which waits for it
// then: only for pids of its own halos, never any child.
func (h *upgradable) exited(pid int) (bool, error) {
	h.mu.Lock()
	err, ok := h.exits[pid]
	h.mu.Unlock()
	if ok || pid == h.first.Process.Pid {
		return ok, err
	}
	var ws syscall.WaitStatus
	got, werr := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
	if got != pid || werr != nil {
		return false, nil
	}
	var exit error
	if !ws.Exited() || ws.ExitStatus() != 0 {
		exit = fmt.Errorf("wait status %v", ws)
	}
	h.mu.Lock()
	h.exits[pid] = exit
	h.mu.Unlock()
	return true, exit
}

// waitExit waits for pid to end and fails the test unless it exited 0.
func (h *upgradable) waitExit(pid int, within time.Duration) {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		done, err := h.exited(pid)
		if done {
			if err != nil {
				h.t.Fatalf("halo pid %d: %v", pid, err)
			}
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("halo pid %d did not exit within %v", pid, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// upgrade upgrades by the runtime API (or SIGUSR2 to the running pid when
// bySignal), waits for the old process to exit 0 and returns the pids and
// how long that took from the request.
func (h *upgradable) upgrade(bySignal bool) (oldPid, newPid int, took time.Duration) {
	h.t.Helper()
	oldPid = h.pidOrZero()
	if oldPid == 0 {
		h.t.Fatal("no halo answers before the upgrade")
	}
	began := time.Now()
	if bySignal {
		if err := syscall.Kill(oldPid, syscall.SIGUSR2); err != nil {
			h.t.Fatal(err)
		}
	} else {
		out, err := h.cmd("upgrade")
		if err != nil || !strings.HasPrefix(out, "Upgraded: ") {
			h.t.Fatalf("upgrade: %q, %v", out, err)
		}
	}
	h.waitExit(oldPid, 60*time.Second)
	took = time.Since(began)
	newPid = h.pidOrZero()
	if newPid == 0 || newPid == oldPid {
		h.t.Fatalf("after the upgrade pid %d answers (before: %d)", newPid, oldPid)
	}
	return oldPid, newPid, took
}

// cleanup kills every halo process the log names that still runs.
func (h *upgradable) cleanup() {
	for _, m := range regexp.MustCompile(`"pid": (\d+)`).FindAllStringSubmatch(h.logText(), -1) {
		pid, _ := strconv.Atoi(m[1])
		if done, _ := h.exited(pid); done {
			continue
		}
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(cmdline), h.dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, m := range regexp.MustCompile(`"pid": (\d+)`).FindAllStringSubmatch(h.logText(), -1) {
		pid, _ := strconv.Atoi(m[1])
		for done, _ := h.exited(pid); !done && time.Now().Before(deadline); done, _ = h.exited(pid) {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
				break // gone, reaped by its parent
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if h.t.Failed() {
		h.t.Logf("halo log:\n%s", h.logText())
	}
}

// The columns of show stat that only grow: cumulative counters and
// maxima (HAProxy's "counter" and "max" fields that halo fills).
var cumulativeColumns = []string{"smax", "stot", "bin", "bout", "dreq", "dresp", "ereq", "econ", "eresp", "wretr",
	"wredis", "chkfail", "chkdown", "downtime", "lbtot", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx",
	"hrsp_other", "req_tot", "conn_tot", "qmax", "dcon", "dses", "ssl_sess", "ssl_reused_sess", "ssl_failed_handshake"}

// statMonitor polls show stat on the runtime API, a new connection each
// time as a monitoring agent does, and records every cumulative column
// that went down between two readings, and every reading that failed.
type statMonitor struct {
	sock     string
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	last     map[string]map[string]int64
	readings int
	drops    []string
	failures []string
}

func startStatMonitor(sock string) *statMonitor {
	m := &statMonitor{sock: sock, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for i := 0; i < 1_000_000; i++ {
			select {
			case <-m.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			m.poll()
		}
	}()
	return m
}

func (m *statMonitor) poll() {
	out, err := socketCommand(m.sock, "show stat")
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.failures = append(m.failures, err.Error())
		return
	}
	rows, err := parseStat(out)
	if err != nil {
		m.failures = append(m.failures, err.Error())
		return
	}
	m.readings++
	for row, cols := range rows {
		prev := m.last[row]
		for _, c := range cumulativeColumns {
			v, ok := cols[c]
			if p, had := prev[c]; ok && had && v < p {
				m.drops = append(m.drops, fmt.Sprintf("%s %s went from %d to %d", row, c, p, v))
			}
		}
	}
	if m.last == nil {
		m.last = rows
		return
	}
	for row, cols := range rows {
		m.last[row] = cols
	}
}

// finish stops polling and returns the readings, the drops and the
// failures.
func (m *statMonitor) finish() (int, []string, []string) {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.readings, m.drops, m.failures
}

// parseStat reads show stat's CSV into rows ("pxname/svname") of numeric
// columns.
func parseStat(csv string) (map[string]map[string]int64, error) {
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "# pxname,svname,") {
		return nil, fmt.Errorf("not show stat: %q", csv)
	}
	head := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	rows := map[string]map[string]int64{}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) < len(head)-1 {
			return nil, fmt.Errorf("short row %q", l)
		}
		cols := map[string]int64{}
		for i, name := range head {
			if i < len(f) {
				if n, err := strconv.ParseInt(f[i], 10, 64); err == nil {
					cols[name] = n
				}
			}
		}
		rows[f[0]+"/"+f[1]] = cols
	}
	return rows, nil
}
