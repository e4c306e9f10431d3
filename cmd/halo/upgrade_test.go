package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testcert"
	"github.com/halo-lb/halo/internal/testnet"
)

// upgradeConfig is a frontend in mode http and one in mode tcp, an admin
// socket, checks on the HTTP servers; extra is appended (more backends,
// global settings go in globalExtra).
func upgradeConfig(httpPort, tcpPort int, web []string, echo, globalExtra, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global:
  hard-stop-after: 30s
  stats:
    socket:
      - {path: "{{DIR}}/admin.sock", level: admin}
%s
defaults:
  timeout: {connect: 1s, client: 20s, server: 20s, http-keep-alive: 1s}
frontends:
  web: {mode: http, bind: "127.0.0.1:%d", default_backend: app}
  tcp: {mode: tcp, bind: "127.0.0.1:%d", default_backend: echo}
backends:
  app:
    mode: http
    servers:
`, globalExtra, httpPort, tcpPort)
	for i, addr := range web {
		fmt.Fprintf(&b, "      - {name: s%d, address: %q, check: true, inter: 200ms}\n", i+1, addr)
	}
	fmt.Fprintf(&b, "  echo:\n    mode: tcp\n    servers: [{name: e1, address: %q}]\n%s", echo, extra)
	return b.String()
}

// upgrades is how many upgrades TestUpgradesUnderLoad runs: 20, or
// HALO_UPGRADES for the longer run.
func upgradeCount(t *testing.T) int {
	n := 20
	if v := os.Getenv("HALO_UPGRADES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("HALO_UPGRADES=%q", v)
		}
	}
	return n
}

// Upgrades in a row under load, each to a different binary renamed into
// place (two builds, alternating, told apart by their version), half by
// the runtime API and half by SIGUSR2: no connection is refused, no
// request or TCP line fails, every old process exits 0, and a monitor
// polling show stat on the (passed on) runtime API socket never sees a
// cumulative counter go down.
func TestUpgradesUnderLoad(t *testing.T) {
	if raceEnabled {
		t.Skip("run without the race detector (scripts/test runs it so): each upgrade waits for the 1 GiB transfers on the old process, which the race detector's clients make take several times as long")
	}
	other := filepath.Join(t.TempDir(), "halo-b")
	build := exec.Command("go", "build", "-ldflags", "-X main.version=upgrade-b", "-o", other, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the second binary: %v\n%s", err, out)
	}
	dir := t.TempDir()
	ca := testcert.NewCA(t, "halo upgrade CA")
	c := newTortureConfig(t, dir, ca)
	c.global = "  stats:\n    socket:\n      - {path: \"{{DIR}}/admin.sock\", level: admin}\n"
	h := startUpgradable(t, c.yaml())
	waitUntil(t, 10*time.Second, "halo to serve", func() bool { return seenGen(c.ports[0]) == "0" })
	// Sessions of 700 ms: a long session ends with the process that
	// holds it, so these finish on the old process of each upgrade.
	load := startTortureLoad(c, ca, 700*time.Millisecond)
	mon := startStatMonitor(h.sock)
	time.Sleep(500 * time.Millisecond)
	binaries := []struct{ path, version string }{{other, "upgrade-b"}, {haloBin, "dev"}}
	n := upgradeCount(t)
	var took []time.Duration
	for i := range n {
		next := binaries[i%2]
		h.install(next.path)
		_, pid, d := h.upgrade(i%2 == 1)
		took = append(took, d)
		info, err := h.cmd("show info")
		if err != nil || !strings.Contains(info, "\nVersion: "+next.version+"\n") || infoInt(info, "Pid") != pid {
			t.Fatalf("upgrade %d: the new process (pid %d) is not the binary installed (%s): %v\n%s", i+1, pid, next.version, err, info)
		}
		time.Sleep(200 * time.Millisecond) // traffic on the new process
	}
	time.Sleep(300 * time.Millisecond)
	r := load.stop()
	readings, drops, statFailures := mon.finish()
	slices.Sort(took)
	t.Logf("%d upgrades: %s; %d show stat readings, %d drops, %d failed readings; an upgrade (request to the old process's exit) took %v median, %v at most",
		n, r, readings, len(drops), len(statFailures), took[len(took)/2], took[len(took)-1])
	r.failOnLosses(t)
	if len(drops) > 0 {
		t.Errorf("%d counters went down in show stat; first: %s", len(drops), strings.Join(drops[:min(len(drops), 5)], "; "))
	}
	if len(statFailures) > 0 {
		t.Errorf("%d show stat readings failed; first: %s", len(statFailures), statFailures[0])
	}
	for _, kind := range mixedKinds {
		if r.done[kind] == 0 {
			t.Errorf("no %s completed", kind)
		}
	}
	if readings < 5*n {
		t.Errorf("only %d show stat readings for %d upgrades", readings, n)
	}
	rows, err := parseStat(mustCmd(t, h, "show stat"))
	if err != nil {
		t.Fatal(err)
	}
	answered := r.done["http keep-alive"] + r.done["http new connection"] + r.done["upload 1 GiB"] + r.done["download 1 GiB"]
	if got := rows["web/FRONTEND"]["req_tot"]; got < int64(answered) {
		t.Errorf("the last process counts %d requests on web, the clients had %d answered there", got, answered)
	}
}

func mustCmd(t *testing.T, h *upgradable, line string) string {
	t.Helper()
	out, err := h.cmd(line)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// An upgrade to a configuration that does not load, or to a binary that
// fails before it is ready, is refused or fails with the reason, and the
// old process keeps serving, its sockets unharmed; the next upgrade, with
// both put right, goes through.
func TestUpgradeFailuresKeepTheOldProcess(t *testing.T) {
	be := startBackends(t, "a")
	echo := startLineEcho(t)
	httpPort, tcpPort := testnet.FreePort(t), testnet.FreePort(t)
	cfg := upgradeConfig(httpPort, tcpPort, []string{be["a"]}, echo, "", "")
	h := startUpgradable(t, cfg)
	pid := h.pidOrZero()
	load := newMixedLoad()
	load.keepAlive("http keep-alive", fmt.Sprintf("127.0.0.1:%d", httpPort), nil, 2, 50)
	load.keepAlive("http new connection", fmt.Sprintf("127.0.0.1:%d", httpPort), nil, 2, 1)
	load.tcpSessions("tcp session lines", fmt.Sprintf("127.0.0.1:%d", tcpPort), 2, 20*time.Millisecond, 300*time.Millisecond)

	writeFile(t, h.cfg, strings.Replace(strings.ReplaceAll(cfg, "{{DIR}}", h.dir), "connect: 1s", "connect: 1 s", 1))
	out, err := h.cmd("upgrade")
	if err != nil || !strings.HasPrefix(out, "Upgrade refused: the configuration does not load; this process keeps serving.") ||
		!strings.Contains(out, `defaults.timeout.connect: invalid duration "1 s"`) {
		t.Errorf("upgrade with a broken configuration: %q, %v", out, err)
	}
	writeFile(t, h.cfg, strings.ReplaceAll(cfg, "{{DIR}}", h.dir))
	broken := filepath.Join(t.TempDir(), "broken")
	writeFile(t, broken, "#!/bin/sh\necho 'this binary is broken' >&2\nexit 3\n")
	if err := os.Chmod(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	h.install(broken)
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the failed upgrade to be logged", func() bool {
		return strings.Contains(h.logText(), "upgrade failed; this process keeps serving")
	})
	if !strings.Contains(h.logText(), "this binary is broken") || !strings.Contains(h.logText(), "exit status 3") {
		t.Errorf("the log does not say why the new process failed")
	}
	if got := h.pidOrZero(); got != pid {
		t.Fatalf("pid %d answers after the failed upgrades, want the old %d", got, pid)
	}
	time.Sleep(300 * time.Millisecond)
	h.install(haloBin)
	_, next, _ := h.upgrade(false)
	time.Sleep(300 * time.Millisecond)
	r := load.stop()
	t.Logf("across two failed upgrades and one done (pid %d to %d): %s", pid, next, r)
	if len(r.refused)+len(r.failed)+len(r.cut) > 0 {
		t.Errorf("refused %v, failed %v, cut %v", r.refused, r.failed, r.cut)
	}
}

// A long TCP session and a slow HTTP download that run when the upgrade
// comes finish on the old process, whole; the old one exits once they
// have; an upgrade asked of the new process meanwhile is refused.
func TestUpgradeLetsLongSessionsFinish(t *testing.T) {
	const chunk, chunks = 32 << 10, 40
	slow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(chunk*chunks))
		buf := make([]byte, chunk)
		for range chunks {
			w.Write(buf)
			w.(http.Flusher).Flush()
			time.Sleep(50 * time.Millisecond)
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go slow.Serve(ln)
	defer slow.Close()
	echo := startLineEcho(t)
	httpPort, tcpPort := testnet.FreePort(t), testnet.FreePort(t)
	h := startUpgradable(t, upgradeConfig(httpPort, tcpPort, []string{ln.Addr().String()}, echo, "", ""))
	oldPid := h.pidOrZero()

	session, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tcpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close()
	exchange := func(line string) {
		t.Helper()
		session.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(session, line+"\n"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(line)+1)
		if _, err := io.ReadFull(session, buf); err != nil || string(buf) != line+"\n" {
			t.Fatalf("the TCP session: %q, %v", buf, err)
		}
	}
	exchange("before")
	download := make(chan string, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/big", httpPort))
		if err != nil {
			download <- err.Error()
			return
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		download <- fmt.Sprintf("%d bytes, %v", n, err)
	}()
	time.Sleep(300 * time.Millisecond) // the download is under way

	out, err := h.cmd("upgrade")
	if err != nil || !strings.HasPrefix(out, "Upgraded: ") {
		t.Fatalf("upgrade: %q, %v", out, err)
	}
	newPid := h.pidOrZero()
	if newPid == oldPid || newPid == 0 {
		t.Fatalf("pid %d answers after the upgrade", newPid)
	}
	if out, _ := h.cmd("upgrade"); !strings.HasPrefix(out, fmt.Sprintf("Upgrade refused: the previous process (pid %d) is still draining", oldPid)) {
		t.Errorf("a second upgrade while the first drains: %q", out)
	}
	exchange("after the upgrade") // still the old process's session
	if done, _ := h.exited(oldPid); done {
		t.Fatal("the old process exited with a TCP session and a download running")
	}
	if got := <-download; got != fmt.Sprintf("%d bytes, <nil>", chunk*chunks) {
		t.Errorf("the download across the upgrade: %s", got)
	}
	exchange("last")
	session.Close()
	h.waitExit(oldPid, 10*time.Second)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/big", httpPort))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	rows, err := parseStat(mustCmd(t, h, "show stat"))
	if err != nil {
		t.Fatal(err)
	}
	if got := rows["tcp/FRONTEND"]["stot"]; got != 1 {
		t.Errorf("tcp stot %d after the upgrade, want the one session the old process carried over", got)
	}
	if got := rows["web/FRONTEND"]["req_tot"]; got != 2 {
		t.Errorf("web req_tot %d, want the download the old process finished and the one after", got)
	}
}

// serversState is show servers state without each line's seconds since
// the last change, which move with the clock, and that column apart.
func serversState(t *testing.T, h *upgradable) (string, map[string]int) {
	t.Helper()
	out := mustCmd(t, h, "show servers state")
	var lines []string
	since := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) > 9 && !strings.HasPrefix(l, "#") {
			since[f[1]+"/"+f[3]], _ = strconv.Atoi(f[9])
			f[9] = "-"
		}
		lines = append(lines, strings.Join(f, " "))
	}
	return strings.Join(lines, "\n"), since
}

// What an operator set and what the checks found is there after an
// upgrade, as it was: a runtime weight, a server in maintenance, one
// drained, one DOWN by its check; show servers state is the same, and so
// is every counter. A plain restart with a server-state-file and
// load-server-state-from-file global keeps it too: the stop writes the
// file, the start reads it.
func TestUpgradeAndRestartCarryServerState(t *testing.T) {
	be := startBackends(t, "a", "b", "c")
	echo := startLineEcho(t)
	dead := testnet.FreeAddr(t) // nothing listens: its check fails
	httpPort, tcpPort := testnet.FreePort(t), testnet.FreePort(t)
	cfg := upgradeConfig(httpPort, tcpPort, []string{be["a"], be["b"], be["c"], dead}, echo,
		"  server-state-file: state\n", "")
	cfg = strings.Replace(cfg, "defaults:\n", "defaults:\n  load-server-state-from-file: global\n", 1)
	h := startUpgradable(t, cfg)
	waitUntil(t, 10*time.Second, "every server checked, s4 DOWN", func() bool {
		state, _ := serversState(t, h)
		return appStatus(t, h)["s4"] == "DOWN" && strings.Count(state, " - 1 0 2 6 ") == 0 // check status 1: not checked yet
	})
	for _, c := range []string{"set weight app/s1 7", "disable server app/s2", "set server app/s3 state drain"} {
		if out := mustCmd(t, h, c); strings.TrimSpace(out) != "" {
			t.Fatalf("%s: %q", c, out)
		}
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for range 20 {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", httpPort))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	beforeState, beforeSince := serversState(t, h)
	before, err := parseStat(mustCmd(t, h, "show stat"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(beforeState, "app 1 s1 127.0.0.1 2 0 7 1") || !strings.Contains(beforeState, "app 4 s4 127.0.0.1 0 0 1 1") {
		t.Fatalf("the state to carry is not what the test set:\n%s", beforeState)
	}
	check := func(when string) {
		t.Helper()
		state, since := serversState(t, h)
		if state != beforeState {
			t.Errorf("%s, show servers state is\n%s\nwas\n%s", when, state, beforeState)
		}
		for srv, s := range since {
			if s < beforeSince[srv] || s > beforeSince[srv]+30 {
				t.Errorf("%s, %s last changed %d s ago, before %d s", when, srv, s, beforeSince[srv])
			}
		}
		after, err := parseStat(mustCmd(t, h, "show stat"))
		if err != nil {
			t.Fatal(err)
		}
		for row, cols := range before {
			for _, c := range cumulativeColumns {
				if v, ok := cols[c]; ok && after[row][c] < v {
					t.Errorf("%s, %s %s is %d, was %d", when, row, c, after[row][c], v)
				}
			}
		}
		if st := appStatus(t, h); st["s1"] != "UP" || st["s2"] != "MAINT" || st["s3"] != "DRAIN" || st["s4"] != "DOWN" {
			t.Errorf("%s, the servers are %v", when, st)
		}
	}
	h.upgrade(true)
	check("after the upgrade")

	// A plain restart: SIGTERM writes the file, a new start reads it.
	pid := h.pidOrZero()
	syscall.Kill(pid, syscall.SIGTERM)
	h.waitExit(pid, 40*time.Second)
	data, err := os.ReadFile(filepath.Join(h.dir, "state"))
	if err != nil || !strings.HasPrefix(string(data), "1\n# be_id ") {
		t.Fatalf("the server-state-file after the stop: %q, %v", data, err)
	}
	logFile, err := os.OpenFile(h.log, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	restart := exec.Command(h.bin, "run", "-c", h.cfg)
	restart.Stdout, restart.Stderr = logFile, logFile
	if err := restart.Start(); err != nil {
		t.Fatal(err)
	}
	logFile.Close()
	t.Cleanup(func() { restart.Process.Kill(); restart.Wait() })
	waitUntil(t, 15*time.Second, "the restarted halo", func() bool { return h.pidOrZero() == restart.Process.Pid })
	state, _ := serversState(t, h)
	if state != beforeState {
		t.Errorf("after a restart, show servers state is\n%s\nwas\n%s", state, beforeState)
	}
	// halo writes its log in batches (every 50 ms): wait for the line.
	waitUntil(t, 5*time.Second, "the restart to log the state it loaded", func() bool {
		return strings.Contains(h.logText(), "server state loaded")
	})
}

// appStatus is the status column of backend app's servers.
func appStatus(t *testing.T, h *upgradable) map[string]string {
	t.Helper()
	out := mustCmd(t, h, "show stat app 4 -1")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	head := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	status := slices.Index(head, "status")
	st := map[string]string{}
	for _, l := range lines[1:] {
		if f := strings.Split(l, ","); len(f) > status {
			st[f[1]] = f[status]
		}
	}
	return st
}
