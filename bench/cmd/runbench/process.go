package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"text/template"
	"time"

	"github.com/halo-lb/halo/bench"
)

// loadCommand runs a load generator or client where this table puts them.
func (s *suite) loadCommand(name string, args ...string) *exec.Cmd {
	if s.place.pinned {
		return exec.Command("taskset", append([]string{"-c", "0", name}, args...)...)
	}
	return exec.Command(name, args...)
}

// configParams fill the configuration templates in bench/configs.
type configParams struct {
	Listen, Server, Probe string
	Threads, MaxConn      int
	ULimit                int
	Servers               []namedAddr
	Backends              []string
	// StatsDir and StatsListen are where l7-stats.halo.yaml puts its
	// sockets and its stats page.
	StatsDir, StatsListen string
	// Cert is the TLS scenarios' certificate file; NoTickets turns
	// session resumption off for their full-handshake runs.
	Cert      string
	NoTickets bool
	// Weight is s1's weight in reload-loss's configuration, changed on
	// every reload.
	Weight int
	// Syslog is where HAProxy sends its log lines in the scenarios that
	// log (a benchd drain-udp).
	Syslog string
}

type namedAddr struct{ Name, Addr string }

// proxyProcess is one running proxy under test.
type proxyProcess struct {
	cmd    *exec.Cmd // nil for legacy HAProxy daemons
	config string
	log    string
	params configParams
	kind   string
	// daemons are the processes of HAProxy run the legacy way (kinds
	// haproxySF and haproxySFX); nil otherwise.
	daemons *daemons
	stopped bool
}

// pid is the proxy's process: the newest daemon when it runs the legacy
// way, else the process started (halo; HAProxy's master with -W).
func (p *proxyProcess) pid() int {
	if p.daemons != nil {
		return p.daemons.pids[len(p.daemons.pids)-1]
	}
	return p.cmd.Process.Pid
}

func (p *proxyProcess) stop() {
	if p.stopped {
		return
	}
	p.stopped = true
	if p.daemons != nil {
		p.stopDaemons()
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

func (p *proxyProcess) logTail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func (s *suite) renderConfig(kind, base string, params configParams, path string) error {
	ext := ".halo.yaml"
	if isHAProxy(kind) {
		ext = ".haproxy.cfg"
	}
	tmpl, err := template.ParseFiles(filepath.Join(s.configs, base+ext))
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, params); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// startProxy writes the scenario's configuration for kind and starts that
// proxy where the placement puts it, returning once it accepts connections.
func (s *suite) startProxy(kind string, sc *scenario, params configParams, masterWorker bool) (*proxyProcess, error) {
	p := &proxyProcess{kind: kind, params: params,
		config: filepath.Join(s.work, sc.name+"."+kind+".cfg"),
		log:    filepath.Join(s.work, sc.name+"."+kind+".log")}
	if err := s.renderConfig(kind, sc.config, params, p.config); err != nil {
		return nil, err
	}
	if kind == haproxySF || kind == haproxySFX {
		if err := s.startDaemon(p); err != nil {
			return nil, err
		}
		return p, nil
	}
	var args []string
	if !isHAProxy(kind) {
		args = []string{s.halo, "run", "-c", p.config}
	} else {
		args = []string{"haproxy", "-db", "-f", p.config}
		if masterWorker {
			args = []string{"haproxy", "-W", "-db", "-f", p.config}
		}
	}
	if s.place.pinned {
		args = append([]string{"taskset", "-c", "1"}, args...)
	}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(s.place.threads))
	logFile, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	if err := waitListening(params.Listen, 30*time.Second, p); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s did not start: %w\n%s", kind, err, p.logTail())
	}
	if masterWorker {
		// A proxy binds its listeners before it handles its reload
		// signal (HAProxy's master even after it logs "Loading
		// success"); a signal sent before then is lost.
		if err := waitCatches(p, p.reloadSignal(), 30*time.Second); err != nil {
			p.stop()
			return nil, err
		}
	}
	return p, nil
}

// waitListening polls addr until it accepts a connection.
func waitListening(addr string, limit time.Duration, p *proxyProcess) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if p != nil && !alive(p.pid()) {
			return errors.New("the process exited")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting after %s: %w", addr, limit, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// reloadSignal is the signal that makes the proxy reload its
// configuration: SIGHUP for halo, SIGUSR2 for the master of haproxy -W.
func (p *proxyProcess) reloadSignal() syscall.Signal {
	if isHAProxy(p.kind) {
		return syscall.SIGUSR2
	}
	return syscall.SIGHUP
}

// waitCatches waits until the proxy has a handler for sig installed.
func waitCatches(p *proxyProcess, sig syscall.Signal, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid()))
		if err == nil {
			if caught, err := bench.SignalsCaught(b); err == nil && caught&(1<<(uint(sig)-1)) != 0 {
				return nil
			}
		}
		if !alive(p.pid()) || time.Now().After(deadline) {
			return fmt.Errorf("%s never caught %v:\n%s", p.kind, sig, p.logTail())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z'
}

func freeAddrs(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}
