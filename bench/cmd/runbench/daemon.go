package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/halo-lb/halo/bench"
)

// HAProxy run the legacy way, as init scripts did before its master-worker
// mode: `haproxy -D -p PIDFILE` forks into the background and exits once
// the daemon listens; a reload starts a new daemon with `-sf OLDPID`, which
// binds the listeners anew (or, with -x, receives the old daemon's
// listening sockets over its stats socket) and then tells the old one to
// finish its connections and exit. These daemons are not our children: the
// runner knows them by the pids their pidfile held, and stops them by pid.
const (
	haproxySF  = "haproxy-sf"   // reload: a new daemon with -sf, listeners bound anew
	haproxySFX = "haproxy-sf-x" // the same with -x: listeners passed
)

// isHAProxy reports whether kind is HAProxy, however it is run.
func isHAProxy(kind string) bool {
	return kind == bench.HAProxy || kind == haproxySF || kind == haproxySFX
}

// daemons are the HAProxy daemons of one legacy-run proxy.
type daemons struct {
	pidFile string
	sock    string // passed with -x on reload; empty: none
	pids    []int  // every daemon started, the newest last
}

// startDaemon starts the first daemon of p (kind haproxySF or haproxySFX),
// returning once it accepts connections.
func (s *suite) startDaemon(p *proxyProcess) error {
	p.daemons = &daemons{pidFile: filepath.Join(filepath.Dir(p.config), filepath.Base(p.config)+".pid")}
	if p.kind == haproxySFX {
		p.daemons.sock = filepath.Join(p.params.StatsDir, "stats.sock")
	}
	if err := s.launchDaemon(p); err != nil {
		p.stop()
		return err
	}
	if err := waitListening(p.params.Listen, 30*time.Second, p); err != nil {
		p.stop()
		return fmt.Errorf("%s did not start: %w\n%s", p.kind, err, p.logTail())
	}
	return nil
}

// launchDaemon starts a daemon of p's configuration; when one runs
// already, the new one replaces it (-sf, and -x when p passes sockets).
// It returns once the launcher has exited, which it does when the new
// daemon listens and its pid is in the pidfile.
func (s *suite) launchDaemon(p *proxyProcess) error {
	d := p.daemons
	args := []string{"haproxy", "-f", p.config, "-D", "-p", d.pidFile}
	old := 0
	if len(d.pids) > 0 {
		old = d.pids[len(d.pids)-1]
		if d.sock != "" {
			args = append(args, "-x", d.sock)
		}
		args = append(args, "-sf", strconv.Itoa(old))
	}
	if s.place.pinned {
		args = append([]string{"taskset", "-c", "1"}, args...)
	}
	log, err := os.OpenFile(p.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, p.logTail())
	}
	b, err := os.ReadFile(d.pidFile)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid == old || !p.owns(pid) {
		return fmt.Errorf("%s: the pidfile holds %q, not a new daemon of this configuration", strings.Join(args, " "), b)
	}
	d.pids = append(d.pids, pid)
	return nil
}

// owns reports whether pid is a live process started with p's
// configuration file, so that a pid the kernel reused for another process
// is never signalled.
func (p *proxyProcess) owns(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && alive(pid) && bytes.Contains(b, []byte("\x00"+p.config+"\x00"))
}

// stopDaemons stops every daemon of p still running, the old ones still
// draining included: SIGTERM (HAProxy's immediate stop), then SIGKILL for
// any left after three seconds.
func (p *proxyProcess) stopDaemons() {
	signalAll := func(sig syscall.Signal) (left int) {
		for _, pid := range p.daemons.pids {
			if p.owns(pid) {
				syscall.Kill(pid, sig)
				left++
			}
		}
		return left
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if signalAll(sig) == 0 {
			return
		}
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			left := 0
			for _, pid := range p.daemons.pids {
				if p.owns(pid) {
					left++
				}
			}
			if left == 0 {
				return
			}
		}
	}
	logf("%s: daemons %v outlived SIGKILL", p.kind, p.daemons.pids)
}
