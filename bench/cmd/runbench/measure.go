package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/halo-lb/halo/bench"
)

// measureOne runs one proxy through one run of a scenario.
func (s *suite) measureOne(sc *scenario, kind string) (bench.Run, error) {
	addrs, err := freeAddrs(1)
	if err != nil {
		return nil, err
	}
	params := configParams{Listen: addrs[0], Threads: s.place.threads, MaxConn: 4096, Server: sc.server(s)}
	if sc.prepare != nil {
		sc.prepare(s, &params)
	}
	p, err := s.startProxy(kind, sc, params, sc.masterWorker)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	r, err := sc.measure(s, p)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s log:\n%s", err, kind, p.logTail())
	}
	if !alive(p.pid()) {
		return nil, fmt.Errorf("%s exited during the run:\n%s", kind, p.logTail())
	}
	if sc.accessLine != "" && kind == bench.Halo {
		// A scenario that logs must have logged: the figures of a
		// proxy whose logging was off by mistake would flatter it.
		p.stop()
		if n, err := countLines(p.log, sc.accessLine); err != nil || n == 0 {
			return nil, fmt.Errorf("halo wrote no access line (%q) during the run: %v\n%s", sc.accessLine, err, p.logTail())
		}
	}
	return r, nil
}

// countLines counts the lines of file that hold sub.
func countLines(file, sub string) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte(sub)) {
			n++
		}
	}
	return n, sc.Err()
}

// wrk runs wrk against url for d and returns its result.
func (s *suite) wrk(url string, d time.Duration, closeEach bool) (bench.WrkResult, error) {
	return s.wrkWith(s.wrkScript, url, d, closeEach)
}

// wrkWith is wrk with a script of its own: the realistic scenarios' sends
// OpenStack clients' requests.
func (s *suite) wrkWith(script, url string, d time.Duration, closeEach bool) (bench.WrkResult, error) {
	threads := s.place.threads
	args := []string{"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(s.connections),
		"-d" + strconv.Itoa(int(wrkDuration(d).Seconds())) + "s", "-s", script}
	if closeEach {
		args = append(args, "-H", "Connection: close")
	}
	args = append(args, url)
	out, err := s.loadCommand("wrk", args...).CombinedOutput()
	if err != nil {
		return bench.WrkResult{}, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	return bench.ParseWrk(out)
}

// wrkDuration is how long wrk runs when asked for d: whole seconds, at
// least one.
func wrkDuration(d time.Duration) time.Duration {
	return max(time.Second, d.Round(time.Second))
}

// measureWrk is a request scenario: a warm-up, then a measured wrk run with
// the proxy's CPU time read around it.
func measureWrk(closeEach bool) func(*suite, *proxyProcess) (bench.Run, error) {
	return measureWrkScheme("http", closeEach)
}

// measureWrkScheme is measureWrk for a scheme: https for the TLS
// scenarios, where each new connection is a TLS handshake (wrk resumes no
// session).
func measureWrkScheme(scheme string, closeEach bool) func(*suite, *proxyProcess) (bench.Run, error) {
	return measureWrkScript(scheme, func(s *suite) string { return s.wrkScript }, closeEach)
}

// measureWrkScript is measureWrkScheme with the wrk script that script
// names.
func measureWrkScript(scheme string, script func(*suite) string, closeEach bool) func(*suite, *proxyProcess) (bench.Run, error) {
	return func(s *suite, p *proxyProcess) (bench.Run, error) {
		url := scheme + "://" + p.params.Listen + "/"
		if s.warmup > 0 {
			if _, err := s.wrkWith(script(s), url, s.warmup, closeEach); err != nil {
				return nil, fmt.Errorf("warm-up: %w", err)
			}
		}
		var res bench.WrkResult
		cpu, mem, err := p.around(func() (err error) {
			res, err = s.wrkWith(script(s), url, s.duration, closeEach)
			return err
		})
		if err != nil {
			return nil, err
		}
		if err := checkWrkErrors(res); err != nil {
			return nil, err
		}
		run := latencies(res)
		run[bench.CPUPer100k] = cpu / float64(res.Requests) * 100000
		run[bench.PeakRSS] = mib(mem.Peak)
		return run, nil
	}
}

// directWrk measures a request scenario with no proxy: wrk with script
// straight at the server addr, the physical limit the proxy's rate is
// compared with. It has no proxy CPU or memory to report.
func directWrk(script func(*suite) string, addr func(*suite) string, closeEach bool) func(*suite) (bench.Run, error) {
	return func(s *suite) (bench.Run, error) {
		url := "http://" + addr(s) + "/"
		if s.warmup > 0 {
			if _, err := s.wrkWith(script(s), url, s.warmup, closeEach); err != nil {
				return nil, fmt.Errorf("warm-up: %w", err)
			}
		}
		res, err := s.wrkWith(script(s), url, s.duration, closeEach)
		if err != nil {
			return nil, err
		}
		if err := checkWrkErrors(res); err != nil {
			return nil, err
		}
		return latencies(res), nil
	}
}

// checkWrkErrors refuses a run with failed requests: a few connection
// errors can happen as wrk stops; more than 0.1% means the proxy failed
// requests and the figure would flatter it.
func checkWrkErrors(res bench.WrkResult) error {
	if bad := res.Errors + res.StatusErrors; bad*1000 > res.Requests {
		return fmt.Errorf("%d of %d requests failed (%d non-2xx)", bad, res.Requests, res.StatusErrors)
	}
	return nil
}

// latencies is a wrk run's rate and latency percentiles.
func latencies(res bench.WrkResult) bench.Run {
	return bench.Run{
		bench.RequestsPerSec: res.RequestsPerSecond(),
		bench.P50:            float64(res.P50US) / 1000,
		bench.P99:            float64(res.P99US) / 1000,
		bench.P999:           float64(res.P999US) / 1000,
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// around runs load and returns the CPU seconds the proxy spent meanwhile
// and its memory after it.
func (p *proxyProcess) around(load func() error) (float64, bench.Memory, error) {
	cpu0, err := bench.CPUSeconds(p.pid())
	if err != nil {
		return 0, bench.Memory{}, err
	}
	if err := load(); err != nil {
		return 0, bench.Memory{}, err
	}
	cpu1, err := bench.CPUSeconds(p.pid())
	if err != nil {
		return 0, bench.Memory{}, err
	}
	mem, err := bench.ReadMemory(p.pid())
	return cpu1 - cpu0, mem, err
}

// transfer runs a benchd client subcommand and reads its JSON result.
func (s *suite) transfer(args ...string) (bench.Run, error) {
	out, err := s.loadCommand(s.benchd, args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("benchd %s: %v\n%s", args[0], err, ee.Stderr)
		}
		return nil, err
	}
	var t struct {
		Bytes   int64
		Seconds float64
	}
	if err := json.Unmarshal(out, &t); err != nil {
		return nil, fmt.Errorf("benchd %s printed %q: %w", args[0], out, err)
	}
	if t.Bytes != s.bulkSize {
		return nil, fmt.Errorf("benchd %s moved %d of %d bytes", args[0], t.Bytes, s.bulkSize)
	}
	return bench.Run{bench.Throughput: mib(t.Bytes) / t.Seconds}, nil
}

// measureTransfer is a bulk scenario: one transfer through the proxy, with
// the proxy's peak memory after it.
func measureTransfer(args func(s *suite, p *proxyProcess) []string) func(*suite, *proxyProcess) (bench.Run, error) {
	return func(s *suite, p *proxyProcess) (bench.Run, error) {
		var r bench.Run
		cpu, mem, err := p.around(func() (err error) {
			r, err = s.transfer(args(s, p)...)
			return err
		})
		if err != nil {
			return nil, err
		}
		r[bench.PeakRSS] = mib(mem.Peak)
		r[bench.CPUPerGiB] = cpu / (float64(s.bulkSize) / (1 << 30))
		return r, nil
	}
}

// measureIdle holds the idle connections open through the proxy and reads
// the proxy's resident memory once they are all established.
func measureIdle(s *suite, p *proxyProcess) (bench.Run, error) {
	cmd := s.loadCommand(s.benchd, "idle", "http://"+p.params.Listen+"/", strconv.Itoa(s.idleConns))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Wait()
		return nil, fmt.Errorf("benchd idle: %v\n%s", err, stderr.Bytes())
	}
	var open struct{ Open int }
	if err := json.Unmarshal([]byte(line), &open); err != nil || open.Open != s.idleConns {
		return nil, fmt.Errorf("benchd idle printed %q", line)
	}
	// Let the proxy settle (a Go GC cycle, HAProxy's buffer release)
	// before reading what holding the connections costs.
	time.Sleep(2 * time.Second)
	mem, err := bench.ReadMemory(p.pid())
	if err != nil {
		return nil, err
	}
	return bench.Run{bench.RSS: mib(mem.RSS), bench.PeakRSS: mib(mem.Peak)}, nil
}

// measureChecks reads the proxy's CPU time while it only health-checks,
// and how many checks reached the backend meanwhile.
func measureChecks(s *suite, p *proxyProcess) (bench.Run, error) {
	// The first round of checks is spread over the first interval; measure
	// the steady state after it.
	time.Sleep(3 * time.Second)
	acc0, err := activeOpens()
	if err != nil {
		return nil, err
	}
	cpu0, err := bench.CPUSeconds(p.pid())
	if err != nil {
		return nil, err
	}
	start := time.Now()
	time.Sleep(s.checkTime)
	cpu1, err := bench.CPUSeconds(p.pid())
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start).Seconds()
	acc1, err := activeOpens()
	if err != nil {
		return nil, err
	}
	perSec := float64(acc1-acc0) / elapsed
	// Every server is checked once a second: fewer checks than 90% of that
	// means the proxy is not doing the work whose cost is measured.
	if perSec < 0.9*float64(s.checkServers) {
		return nil, fmt.Errorf("only %.0f checks/s reached the backend for %d servers at inter 1s", perSec, s.checkServers)
	}
	return bench.Run{bench.CPUPercent: (cpu1 - cpu0) / elapsed * 100, bench.ChecksPerSec: perSec}, nil
}

// activeOpens is the kernel's count of TCP connections started by any
// process on this machine (Tcp ActiveOpens in /proc/net/snmp). While the
// checks scenario runs nothing else connects, so its growth counts the
// proxy's checks. The backend cannot count them: HAProxy resets a check
// connection before acknowledging the server's SYN-ACK, so the backend
// never accepts it.
func activeOpens() (int64, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	return bench.SNMPCounter(b, "Tcp", "ActiveOpens")
}

// measureReload rewrites the configuration with one more frontend, signals
// the proxy to reload, and times until that frontend accepts.
func measureReload(s *suite, p *proxyProcess) (bench.Run, error) {
	params := p.params
	addrs, err := freeAddrs(1)
	if err != nil {
		return nil, err
	}
	params.Probe = addrs[0]
	if err := s.renderConfig(p.kind, "reload", params, p.config); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(p.reloadSignal()); err != nil {
		return nil, err
	}
	if err := waitListening(params.Probe, 60*time.Second, p); err != nil {
		return nil, err
	}
	took := time.Since(start)
	// The old listener must still be serving after the reload.
	if err := waitListening(params.Listen, time.Second, p); err != nil {
		return nil, fmt.Errorf("after the reload: %w", err)
	}
	return bench.Run{bench.ReloadMillis: float64(took.Microseconds()) / 1000}, nil
}
