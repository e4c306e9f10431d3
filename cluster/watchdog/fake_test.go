package watchdog

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// fakeBin is ./fakewatchdog, built once for the tests.
var fakeBin string

// The test binary doubles as the node under watch: run with
// HALO_WATCHDOG_CHILD=mode it opens the FIFO with this package's Open and
// pets (or not) as the mode says.
func TestMain(m *testing.M) {
	if mode := os.Getenv("HALO_WATCHDOG_CHILD"); mode != "" {
		os.Exit(child(mode, os.Getenv("HALO_WATCHDOG_FIFO")))
	}
	testnet.MainWithBinary(m, "github.com/halo-lb/halo/cluster/watchdog/fakewatchdog", &fakeBin)
}

const (
	dogTimeout = 500 * time.Millisecond
	petEvery   = 100 * time.Millisecond
	// margin is how late past its timeout the fake may fire: it polls
	// every 10 ms, but the race detector on two busy cores is slow.
	margin = 1500 * time.Millisecond
)

func child(mode, path string) int {
	say := func(s string, args ...any) { fmt.Printf(s+"\n", args...) }
	open := func() *Device {
		// The fake watchdog starts after us (it needs our process group):
		// wait for its FIFO and its reader.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			d, err := Open(path, dogTimeout)
			if err == nil {
				return d
			}
			if time.Now().After(deadline) {
				say("open: %v", err)
				os.Exit(3)
			}
		}
	}
	pet := func(d *Device, n int) {
		for i := 0; i < n; i++ {
			if err := d.Pet(); err != nil {
				say("pet: %v", err)
				os.Exit(3)
			}
			time.Sleep(petEvery)
		}
	}
	switch mode {
	case "pet-then-stop":
		// A grandchild in our process group, which must die with us.
		sleep := exec.Command("sleep", "300")
		if err := sleep.Start(); err != nil {
			say("sleep: %v", err)
			return 3
		}
		say("grandchild %d", sleep.Process.Pid)
		d := open()
		pet(d, 8) // 800 ms of pets: longer than the timeout
		if err := d.Pet(); err != nil {
			return 3
		}
		say("stopped petting")
	case "never-pet":
		open()
		say("opened")
	case "magic-close", "magic-close-then-reopen":
		d := open()
		pet(d, 3)
		if err := d.Close(); err != nil {
			say("close: %v", err)
			return 3
		}
		say("closed")
		time.Sleep(3 * dogTimeout)
		if mode == "magic-close" {
			say("done")
			return 0
		}
		open()
		say("reopened")
	case "close-without-magic":
		f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		for deadline := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			f, err = os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		}
		if err != nil {
			say("open: %v", err)
			return 3
		}
		f.Write([]byte{0, 0, 0})
		f.Close() // as a crash closes it: no 'V'
		say("closed")
	default:
		say("unknown mode %q", mode)
		return 3
	}
	time.Sleep(time.Hour) // until killed
	return 0
}

// proc is a process started by a test, with its stdout lines timestamped
// as they arrive.
type proc struct {
	cmd      *exec.Cmd
	lines    chan line
	done     chan struct{}
	err      error // from Wait, once done is closed
	exitedAt time.Time
}

type line struct {
	text string
	at   time.Time
}

func start(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	p := &proc{cmd: cmd, lines: make(chan line, 100), done: make(chan struct{})}
	go func() {
		defer r.Close()
		s := bufio.NewScanner(r)
		for s.Scan() {
			p.lines <- line{s.Text(), time.Now()}
		}
		close(p.lines)
	}()
	go func() {
		p.err = cmd.Wait()
		p.exitedAt = time.Now()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			// Our own process group (Setpgid), and only while it lives.
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

// expect waits for a line starting with prefix, skipping others.
func (p *proc) expect(t *testing.T, prefix string, within time.Duration) line {
	t.Helper()
	timer := time.After(within)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("%s ended without printing %q", p.cmd.Path, prefix)
			}
			if strings.HasPrefix(l.text, prefix) {
				return l
			}
		case <-timer:
			t.Fatalf("%s did not print %q within %v", p.cmd.Path, prefix, within)
		}
	}
}

func (p *proc) wait(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("%s still runs after %v", p.cmd.Path, within)
	}
}

func (p *proc) killed() bool {
	var exitErr *exec.ExitError
	if !errors.As(p.err, &exitErr) {
		return false
	}
	ws := exitErr.Sys().(syscall.WaitStatus)
	return ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// startNode starts the test binary as a node in mode, in its own process
// group.
func startNode(t *testing.T, mode, fifo string) *proc {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HALO_WATCHDOG_CHILD="+mode, "HALO_WATCHDOG_FIFO="+fifo)
	return start(t, cmd)
}

// startFake starts the fake watchdog on fifo, watching target ("-pgid N"
// or "-pid N"), and waits until it is ready.
func startFake(t *testing.T, fifo string, target ...string) *proc {
	args := append([]string{"-fifo", fifo, "-timeout", dogTimeout.String()}, target...)
	f := start(t, exec.Command(fakeBin, args...))
	f.expect(t, "fakewatchdog: ready", 10*time.Second)
	return f
}

// checkFiredOnTime checks that the fake killed the node no earlier than the
// timeout after since, and not much later.
func checkFiredOnTime(t *testing.T, node *proc, since line) {
	t.Helper()
	node.wait(t, dogTimeout+margin+time.Second)
	if !node.killed() {
		t.Fatalf("the node ended with %v, want SIGKILL", node.err)
	}
	took := node.exitedAt.Sub(since.at)
	// since.at is when we read the line, a little after the node's pet.
	if took < dogTimeout-50*time.Millisecond || took > dogTimeout+margin {
		t.Errorf("killed %v after %q; the timeout is %v", took, since.text, dogTimeout)
	}
	t.Logf("killed %v after %q (timeout %v)", took.Round(time.Millisecond), since.text, dogTimeout)
}

func checkFakeExited(t *testing.T, f *proc, fifo string) {
	t.Helper()
	f.wait(t, 5*time.Second)
	if f.err != nil {
		t.Errorf("fakewatchdog exited with %v", f.err)
	}
	if _, err := os.Lstat(fifo); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("fakewatchdog left %s behind", fifo)
	}
}

func TestFakeWatchdogKillsWhenPetsStop(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "watchdog")
	node := startNode(t, "pet-then-stop", fifo)
	grandchild := node.expect(t, "grandchild ", 10*time.Second)
	f := startFake(t, fifo, "-pgid", strconv.Itoa(node.cmd.Process.Pid))
	stopped := node.expect(t, "stopped petting", 10*time.Second)
	checkFiredOnTime(t, node, stopped)
	f.expect(t, fmt.Sprintf("fakewatchdog: no pet for %v: killed process group %d", dogTimeout, node.cmd.Process.Pid), 5*time.Second)
	checkFakeExited(t, f, fifo)
	pid, _ := strconv.Atoi(strings.TrimPrefix(grandchild.text, "grandchild "))
	waitGone(t, pid)
}

// Opening arms it: a node that opens and never pets is killed too.
func TestFakeWatchdogKillsWhenNeverPetted(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "watchdog")
	node := startNode(t, "never-pet", fifo)
	f := startFake(t, fifo, "-pid", strconv.Itoa(node.cmd.Process.Pid))
	opened := node.expect(t, "opened", 10*time.Second)
	checkFiredOnTime(t, node, opened)
	f.expect(t, "fakewatchdog: no pet for", 5*time.Second)
	checkFakeExited(t, f, fifo)
}

// A crash closes the device without 'V': the countdown goes on.
func TestFakeWatchdogKillsAfterCloseWithoutMagic(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "watchdog")
	node := startNode(t, "close-without-magic", fifo)
	f := startFake(t, fifo, "-pgid", strconv.Itoa(node.cmd.Process.Pid))
	closed := node.expect(t, "closed", 10*time.Second)
	checkFiredOnTime(t, node, closed)
	f.expect(t, "fakewatchdog: closed without magic 'V': still counting", 5*time.Second)
	checkFakeExited(t, f, fifo)
}

// Close's magic 'V' disarms it: the node outlives the timeout several times
// over and exits by itself; the fake stays until stopped.
func TestFakeWatchdogMagicCloseDisarms(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "watchdog")
	node := startNode(t, "magic-close", fifo)
	f := startFake(t, fifo, "-pgid", strconv.Itoa(node.cmd.Process.Pid))
	node.expect(t, "closed", 10*time.Second)
	f.expect(t, "fakewatchdog: disarmed by magic close", 5*time.Second)
	node.wait(t, 3*dogTimeout+margin+time.Second)
	if node.err != nil {
		t.Fatalf("the node ended with %v, want a clean exit", node.err)
	}
	select {
	case <-f.done:
		t.Fatalf("fakewatchdog exited after a magic close: %v", f.err)
	default:
	}
	if err := f.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	f.expect(t, "fakewatchdog: stopped by terminated", 5*time.Second)
	checkFakeExited(t, f, fifo)
}

// After a magic close the next open arms it again, as the real device.
func TestFakeWatchdogRearmsOnReopen(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "watchdog")
	node := startNode(t, "magic-close-then-reopen", fifo)
	f := startFake(t, fifo, "-pgid", strconv.Itoa(node.cmd.Process.Pid))
	node.expect(t, "closed", 10*time.Second)
	f.expect(t, "fakewatchdog: disarmed by magic close", 5*time.Second)
	reopened := node.expect(t, "reopened", 3*dogTimeout+margin)
	checkFiredOnTime(t, node, reopened)
	checkFakeExited(t, f, fifo)
}

// The fake never signals its own group, everything (-1) or init, and
// refuses incomplete flags before it creates anything.
func TestFakeWatchdogRefusesBadFlags(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "watchdog")
	for _, args := range [][]string{
		{"-fifo", fifo, "-timeout", "1s"},
		{"-fifo", fifo, "-timeout", "1s", "-pgid", "0"},
		{"-fifo", fifo, "-timeout", "1s", "-pgid", "1"},
		{"-fifo", fifo, "-timeout", "1s", "-pid", "1"},
		{"-fifo", fifo, "-timeout", "1s", "-pid", "-1"},
		{"-fifo", fifo, "-timeout", "1s", "-pgid", "-7"},
		{"-fifo", fifo, "-timeout", "1s", "-pgid", "7", "-pid", "8"},
		{"-fifo", fifo, "-pgid", "7"},
		{"-timeout", "1s", "-pgid", "7"},
	} {
		out, err := exec.Command(fakeBin, args...).CombinedOutput()
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.ExitCode() != 2 {
			t.Errorf("fakewatchdog %v: %v, want exit 2\n%s", args, err, out)
		}
		if _, err := os.Lstat(fifo); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("fakewatchdog %v created %s", args, fifo)
		}
	}
}

// waitGone waits until pid has exited: no longer in /proc, or a zombie
// waiting for whoever reaps orphans here.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		s := string(stat)
		if i := strings.LastIndexByte(s, ')'); err == nil && i > 0 && strings.HasPrefix(s[i+1:], " Z") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d (in the killed group) still runs: %s", pid, stat)
		}
	}
}
