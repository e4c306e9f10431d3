// Command fakewatchdog stands in for /dev/watchdog in tests, where a real
// watchdog (softdog included) would reset the shared machine. It owns a
// FIFO that halo opens as its watchdog device, and it behaves as the
// kernel's watchdog core does, with "reset the machine" replaced by
// "SIGKILL a process group" (the node under test):
//
//   - a writer opening the FIFO arms it, and every byte written pets it;
//   - when no pet arrives for -timeout while armed, it kills the target
//     with SIGKILL and exits;
//   - a writer that closes right after writing 'V' (the magic close)
//     disarms it until the next open; one that closes without it leaves it
//     counting, as a crashed process leaves a real watchdog.
//
// Usage:
//
//	fakewatchdog -fifo PATH -timeout D (-pgid N | -pid N)
//
// It prints "fakewatchdog: ready" on stdout once the FIFO can be opened,
// and one line for each event after that. It exits 0 after firing or on
// SIGTERM/SIGINT, and removes the FIFO when it exits; it exits 2 on bad
// flags. Opens that come and go, without a byte, within one poll (10 ms)
// go unseen.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// poll is how often the FIFO is looked at when nothing arrives.
const poll = 10 * time.Millisecond

func main() {
	path := flag.String("fifo", "", "the FIFO to create and read (the device halo opens)")
	timeout := flag.Duration("timeout", 0, "how long without a pet before the target is killed")
	pgid := flag.Int("pgid", 0, "the process group to kill")
	pid := flag.Int("pid", 0, "the process to kill (instead of -pgid)")
	flag.Parse()

	target, err := targetOf(*pgid, *pid)
	if err == nil && *path == "" {
		err = errors.New("-fifo is required")
	}
	if err == nil && *timeout <= 0 {
		err = errors.New("-timeout must be positive")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakewatchdog:", err)
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*path, *timeout, target); err != nil {
		fmt.Fprintln(os.Stderr, "fakewatchdog:", err)
		os.Exit(1)
	}
}

// targetOf turns the flags into the argument of kill(2): -pgid N is -N.
// Exactly one is required, and neither may be below 2: kill(0) would hit
// our own group, kill(-1) every process we may signal, and 1 is init.
func targetOf(pgid, pid int) (int, error) {
	switch {
	case (pgid == 0) == (pid == 0):
		return 0, errors.New("exactly one of -pgid and -pid is required")
	case pgid != 0 && pgid < 2, pid != 0 && pid < 2:
		return 0, errors.New("the target must be a process (group) id of 2 or more")
	case pgid != 0:
		return -pgid, nil
	default:
		return pid, nil
	}
}

func describe(target int) string {
	if target < 0 {
		return fmt.Sprintf("process group %d", -target)
	}
	return fmt.Sprintf("process %d", target)
}

func say(format string, args ...any) {
	fmt.Printf("fakewatchdog: "+format+"\n", args...)
}

func run(path string, timeout time.Duration, target int) error {
	if err := makeFIFO(path); err != nil {
		return err
	}
	defer os.Remove(path)
	// One read end, non-blocking, for the whole run: it makes writers'
	// opens succeed from now on, and read(2) on it tells the three states
	// apart: data; EAGAIN (a writer has it open, nothing written); 0 (no
	// writer).
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer unix.Close(fd)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	say("ready: %s, timeout %v, target %s", path, timeout, describe(target))

	var (
		writer   bool      // a writer has the FIFO open
		armed    bool      // counting down
		lastV    bool      // the last byte read was the magic 'V'
		deadline time.Time // when an armed watchdog fires
		buf      = make([]byte, 512)
	)
	arm := func(now time.Time, why string) {
		if !armed {
			say("armed (%s)", why)
		}
		armed, deadline = true, now.Add(timeout)
	}
	for {
		n, err := unix.Read(fd, buf)
		now := time.Now()
		switch {
		case n > 0:
			if !writer {
				writer = true
				arm(now, "opened")
			}
			arm(now, "pet") // every write pets, 'V' included
			lastV = buf[n-1] == 'V'
			continue // drain before sleeping
		case errors.Is(err, unix.EAGAIN):
			if !writer {
				writer, lastV = true, false
				arm(now, "opened")
			}
		case err == nil: // n == 0: no writer
			if writer {
				writer = false
				if lastV {
					armed = false
					say("disarmed by magic close")
				} else if armed {
					say("closed without magic 'V': still counting")
				}
			}
		case errors.Is(err, unix.EINTR):
			continue
		default:
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if armed && now.After(deadline) {
			return fire(target, timeout)
		}
		select {
		case s := <-stop:
			say("stopped by %v", s)
			return nil
		case <-time.After(poll):
		}
	}
}

func fire(target int, timeout time.Duration) error {
	err := unix.Kill(target, unix.SIGKILL)
	switch {
	case errors.Is(err, unix.ESRCH):
		say("no pet for %v: %s is already gone", timeout, describe(target))
	case err != nil:
		return fmt.Errorf("killing %s: %w", describe(target), err)
	default:
		say("no pet for %v: killed %s", timeout, describe(target))
	}
	return nil
}

// makeFIFO creates the FIFO, or reuses one left at path; anything else
// there is an error.
func makeFIFO(path string) error {
	err := unix.Mkfifo(path, 0o600)
	if errors.Is(err, unix.EEXIST) {
		fi, serr := os.Lstat(path)
		if serr == nil && fi.Mode()&os.ModeNamedPipe != 0 {
			return nil
		}
		return fmt.Errorf("%s exists and is not a FIFO", path)
	}
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	return nil
}
