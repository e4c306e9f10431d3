// Command runbench runs halo's benchmark suite side by side with HAProxy on
// this machine and writes the dated results under bench/results. It is
// what `make bench` runs; see the README's "Benchmarks" section.
//
// Every scenario runs each proxy in alternation (halo, haproxy, haproxy,
// halo, …: the first of each pair swaps) with a fresh proxy process per run,
// against one backend process of ours (benchd). It does so twice: pinned
// (load generator and backend on CPU 0, the proxy alone on CPU 1, one thread
// each) and unpinned (both proxies on two threads, the scheduler free).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/halo-lb/halo/bench"
)

type options struct {
	runs           int
	duration       time.Duration
	warmup         time.Duration
	connections    int
	bulkSize       int64
	idleConns      int
	checkServers   int
	checkTime      time.Duration
	reloadBackends int
	scenarios      []string
	tables         []string
	out            string
	readme         string
	microbench     bool
}

func main() {
	var o options
	var scenarios, tables string
	flag.IntVar(&o.runs, "runs", 5, "runs of each proxy per scenario")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of each measured wrk run")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured wrk run before each measured one (whole seconds; 0: none)")
	flag.IntVar(&o.connections, "connections", 64, "wrk connections")
	flag.Int64Var(&o.bulkSize, "bulk-size", 1<<30, "bytes moved by each large-body and bulk run")
	flag.IntVar(&o.idleConns, "idle-conns", 10000, "client connections held open by the idle scenario")
	flag.IntVar(&o.checkServers, "check-servers", 2000, "servers health-checked by the checks scenario")
	flag.DurationVar(&o.checkTime, "check-time", 10*time.Second, "how long the checks scenario measures CPU")
	flag.IntVar(&o.reloadBackends, "reload-backends", 1000, "backends in the reload scenario's configuration")
	flag.StringVar(&scenarios, "scenarios", "", "comma-separated scenarios to run (default: all)")
	flag.StringVar(&tables, "tables", "pinned,unpinned", "tables to measure: pinned, unpinned")
	flag.StringVar(&o.out, "out", "bench/results", "directory the dated results directory is written under")
	flag.StringVar(&o.readme, "readme", "", "README whose benchmark section is replaced by these results (empty: none)")
	flag.BoolVar(&o.microbench, "microbench", true, "also run the Go micro-benchmarks of the hot paths")
	flag.Parse()
	if scenarios != "" {
		o.scenarios = strings.Split(scenarios, ",")
		for _, s := range o.scenarios {
			if scenarioByName(s) == nil {
				fatalf("unknown scenario %q; known: %s", s, strings.Join(scenarioNames(), ", "))
			}
		}
	}
	o.tables = strings.Split(tables, ",")
	for _, t := range o.tables {
		if t != "pinned" && t != "unpinned" {
			fatalf("unknown table %q: want pinned or unpinned", t)
		}
	}
	if most := idleCeiling(); o.idleConns > most {
		logf("idle-10k: holding %d connections, not %d: HAProxy reserves two file descriptors per connection "+
			"and this machine's hard limit is %d (raising it needs CAP_SYS_RESOURCE)", most, o.idleConns, hardFileLimit())
		o.idleConns = most
	}
	if err := run(o); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "runbench: "+format+"\n", args...)
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// suite holds what every scenario shares.
type suite struct {
	options
	work      string // temporary directory: binaries, configs, logs
	halo      string // built halo binary
	benchd    string // built backend and client binary
	wrkScript string
	configs   string // bench/configs
	place     placement
	backend   backendAddrs
}

type backendAddrs struct {
	HTTP, Bulk, Source string
}

// placement is where processes run for one table.
type placement struct {
	name    string
	about   string
	pinned  bool
	threads int
}

var placements = map[string]placement{
	"pinned": {"pinned", "wrk, the clients and the backend on CPU 0; the proxy alone on CPU 1 with one thread " +
		"(halo `GOMAXPROCS=1`, HAProxy `nbthread 1`).", true, 1},
	"unpinned": {"unpinned", "No pinning: both proxies with two threads (halo `GOMAXPROCS=2`, HAProxy `nbthread 2`), " +
		"sharing both CPUs with wrk and the backend.", false, 2},
}

// loadCommand runs a load generator or client where this table puts them.
func (s *suite) loadCommand(name string, args ...string) *exec.Cmd {
	if s.place.pinned {
		return exec.Command("taskset", append([]string{"-c", "0", name}, args...)...)
	}
	return exec.Command(name, args...)
}

func run(o options) error {
	for _, tool := range []string{"haproxy", "wrk", "taskset", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not installed: run bench/setup (it installs HAProxy and wrk from Debian packages)", tool)
		}
	}
	if runtime.NumCPU() < 2 {
		return errors.New("the pinned table needs two CPUs")
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "halo-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	s := &suite{options: o, work: work, configs: filepath.Join(root, "bench", "configs")}
	s.halo = filepath.Join(work, "halo")
	s.benchd = filepath.Join(work, "benchd")
	logf("building halo and benchd")
	for bin, pkg := range map[string]string{s.halo: "./cmd/halo", s.benchd: "./bench/cmd/benchd"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	s.wrkScript = filepath.Join(work, "report.lua")
	if err := os.WriteFile(s.wrkScript, []byte(bench.WrkScript), 0o644); err != nil {
		return err
	}
	machine := describeMachine(o)
	started := time.Now().UTC()
	var tables []*bench.Table
	for _, name := range o.tables {
		s.place = placements[name]
		t, err := s.measureTable()
		if err != nil {
			return fmt.Errorf("%s table: %w", name, err)
		}
		tables = append(tables, t)
	}
	out := o.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	dir := filepath.Join(out, started.Format("2006-01-02T1504Z"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeResults(dir, machine, tables); err != nil {
		return err
	}
	if o.microbench {
		logf("Go micro-benchmarks")
		cmd := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", "300ms", "-cpu", "1,2", "-count", "5", "./proxy", "./balancer")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go test -bench: %v\n%s", err, out)
		}
		if err := os.WriteFile(filepath.Join(dir, "microbench.txt"), out, 0o644); err != nil {
			return err
		}
	}
	if o.readme != "" {
		rel, _ := filepath.Rel(root, dir)
		if err := updateReadme(o.readme, rel, machine, tables); err != nil {
			return err
		}
	}
	bench.WriteSummary(os.Stdout, tables)
	fmt.Printf("results: %s\n", dir)
	return nil
}

func writeResults(dir string, m bench.Machine, tables []*bench.Table) error {
	var md, svg bytes.Buffer
	bench.WriteMarkdown(&md, m, tables, targets)
	bench.WriteSVG(&svg, "halo vs HAProxy, "+m.Date, tables)
	raw, err := json.MarshalIndent(struct {
		Machine bench.Machine
		Tables  []*bench.Table
	}{m, tables}, "", "  ")
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{"results.md": md.Bytes(), "chart.svg": svg.Bytes(), "results.json": raw} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

const (
	readmeStart = "<!-- bench-results:start -->"
	readmeEnd   = "<!-- bench-results:end -->"
)

// updateReadme replaces the README's text between the bench-results
// markers with these results, headings moved two levels down.
func updateReadme(path, dir string, m bench.Machine, tables []*bench.Table) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i, j := bytes.Index(b, []byte(readmeStart)), bytes.Index(b, []byte(readmeEnd))
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s … %s section", path, readmeStart, readmeEnd)
	}
	var md bytes.Buffer
	bench.WriteMarkdown(&md, m, tables, targets)
	var sec strings.Builder
	fmt.Fprintf(&sec, "%s\nLatest run: [`%s`](%s) — ![halo vs HAProxy](%s/chart.svg)\n\n", readmeStart, dir, dir, dir)
	for line := range strings.SplitSeq(md.String(), "\n") {
		if strings.HasPrefix(line, "#") {
			line = "##" + line
		}
		sec.WriteString(line + "\n")
	}
	out := slices.Concat(b[:i], []byte(sec.String()), b[j:])
	return os.WriteFile(path, out, 0o644)
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module root (run from the halo repository): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func describeMachine(o options) bench.Machine {
	first := func(name string, args ...string) string {
		// wrk -v prints its version and exits 1: take the output as is.
		out, err := exec.Command(name, args...).CombinedOutput()
		if len(out) == 0 && err != nil {
			return name + ": " + err.Error()
		}
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		line, _, _ = strings.Cut(line, " - ") // haproxy -v ends with its web site
		return line
	}
	m := bench.Machine{
		Date:    time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		Cores:   runtime.NumCPU(),
		Kernel:  first("uname", "-r"),
		Go:      first("go", "version"),
		HAProxy: first("haproxy", "-v"),
		Wrk:     first("wrk", "-v"),
		CPU:     "unknown CPU",
		Settings: fmt.Sprintf("%d runs per proxy, wrk %d connections for %s after a %s warm-up, %d MiB bulk transfers, "+
			"%d idle connections, %d checked servers over %s, %d backends reloaded",
			o.runs, o.connections, o.duration, o.warmup, o.bulkSize>>20, o.idleConns, o.checkServers, o.checkTime, o.reloadBackends),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// measureTable starts the backend where the placement puts it and runs
// every selected scenario.
func (s *suite) measureTable() (*bench.Table, error) {
	t := &bench.Table{Name: s.place.name, About: s.place.about}
	addrs, err := freeAddrs(3)
	if err != nil {
		return nil, err
	}
	s.backend = backendAddrs{HTTP: addrs[0], Bulk: addrs[1], Source: addrs[2]}
	backend := s.loadCommand(s.benchd, "serve", "-http", s.backend.HTTP, "-bulk", s.backend.Bulk,
		"-tcp-source", s.backend.Source, "-source-bytes", strconv.FormatInt(s.bulkSize, 10))
	backend.Stderr = os.Stderr
	if err := backend.Start(); err != nil {
		return nil, fmt.Errorf("starting benchd: %w", err)
	}
	defer func() {
		backend.Process.Signal(syscall.SIGTERM)
		backend.Wait()
	}()
	for _, a := range addrs {
		if err := waitListening(a, 10*time.Second, nil); err != nil {
			return nil, fmt.Errorf("benchd: %w", err)
		}
	}
	for _, sc := range scenarios {
		if len(s.scenarios) > 0 && !slices.Contains(s.scenarios, sc.name) {
			continue
		}
		res := &bench.Scenario{Name: sc.name, Title: sc.title, Primary: sc.metrics[0], Metrics: sc.metrics, Runs: map[string][]bench.Run{}}
		t.Scenarios = append(t.Scenarios, res)
		if sc.pending != "" {
			res.Pending = sc.pending
			continue
		}
		logf("%s: %s", s.place.name, sc.name)
		if err := s.measureScenario(sc, res); err != nil {
			return nil, fmt.Errorf("%s: %w", sc.name, err)
		}
		r, _ := res.Ratio(bench.Halo, bench.HAProxy, res.Primary)
		logf("%s: %s halo/haproxy = %.2f (%s: halo %.4g, haproxy %.4g)", s.place.name, sc.name, r, res.Primary,
			res.Median(bench.Halo, res.Primary), res.Median(bench.HAProxy, res.Primary))
	}
	return t, nil
}

func (s *suite) measureScenario(sc *scenario, res *bench.Scenario) error {
	runs := s.runs
	if sc.runs > 0 {
		runs = min(runs, sc.runs)
	}
	for i := range runs {
		order := []string{bench.Halo, bench.HAProxy}
		if i%2 == 1 {
			order = []string{bench.HAProxy, bench.Halo}
		}
		if sc.direct != nil {
			order = append(order, bench.Direct)
		}
		for _, proxy := range order {
			var r bench.Run
			var err error
			if proxy == bench.Direct {
				r, err = sc.direct(s)
			} else {
				r, err = s.measureOne(sc, proxy)
			}
			if err != nil {
				return fmt.Errorf("%s run %d: %w", proxy, i+1, err)
			}
			res.Runs[proxy] = append(res.Runs[proxy], r)
		}
	}
	return nil
}

// configParams fill the configuration templates in bench/configs.
type configParams struct {
	Listen, Server, Probe string
	Threads, MaxConn      int
	ULimit                int
	Servers               []namedAddr
	Backends              []string
}

type namedAddr struct{ Name, Addr string }

// proxyProcess is one running proxy under test.
type proxyProcess struct {
	cmd    *exec.Cmd
	config string
	log    string
	params configParams
	kind   string
}

func (p *proxyProcess) pid() int { return p.cmd.Process.Pid }

func (p *proxyProcess) stop() {
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
	if kind == bench.HAProxy {
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
	var args []string
	if kind == bench.Halo {
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
	if p.kind == bench.HAProxy {
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
	return r, nil
}

// wrk runs wrk against url for d and returns its result.
func (s *suite) wrk(url string, d time.Duration, closeEach bool) (bench.WrkResult, error) {
	threads := s.place.threads
	args := []string{"-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(s.connections),
		"-d" + strconv.Itoa(max(1, int(d.Round(time.Second).Seconds()))) + "s", "-s", s.wrkScript}
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

// measureWrk is a request scenario: a warm-up, then a measured wrk run with
// the proxy's CPU time read around it.
func measureWrk(closeEach bool) func(*suite, *proxyProcess) (bench.Run, error) {
	return func(s *suite, p *proxyProcess) (bench.Run, error) {
		url := "http://" + p.params.Listen + "/"
		if s.warmup > 0 {
			if _, err := s.wrk(url, s.warmup, closeEach); err != nil {
				return nil, fmt.Errorf("warm-up: %w", err)
			}
		}
		var res bench.WrkResult
		cpu, mem, err := p.around(func() (err error) {
			res, err = s.wrk(url, s.duration, closeEach)
			return err
		})
		if err != nil {
			return nil, err
		}
		// A few connection errors can happen as wrk stops; more than 0.1%
		// means the proxy failed requests and the figure would flatter it.
		if bad := res.Errors + res.StatusErrors; bad*1000 > res.Requests {
			return nil, fmt.Errorf("%d of %d requests failed (%d non-2xx)", bad, res.Requests, res.StatusErrors)
		}
		return bench.Run{
			bench.RequestsPerSec: res.RequestsPerSecond(),
			bench.P50:            float64(res.P50US) / 1000,
			bench.P99:            float64(res.P99US) / 1000,
			bench.P999:           float64(res.P999US) / 1000,
			bench.CPUPer100k:     cpu / float64(res.Requests) * 100000,
			bench.PeakRSS:        mib(mem.Peak),
		}, nil
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
