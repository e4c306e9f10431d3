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
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
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
	reloadEvery    time.Duration
	scenarios      []string
	tables         []string
	out            string
	readme         string
	microbench     bool
	statsCost      bool
	rulesCost      bool
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
	flag.DurationVar(&o.reloadEvery, "reload-every", 200*time.Millisecond, "how often the reload-loss scenarios reload the proxy under load")
	flag.StringVar(&scenarios, "scenarios", "", "comma-separated scenarios to run (default: all)")
	flag.StringVar(&tables, "tables", "pinned,unpinned", "tables to measure: pinned, unpinned")
	flag.StringVar(&o.out, "out", "bench/results", "directory the dated results directory is written under")
	flag.StringVar(&o.readme, "readme", "", "README whose benchmark section is replaced by these results (empty: none)")
	flag.BoolVar(&o.microbench, "microbench", true, "also run the Go micro-benchmarks of the hot paths")
	flag.BoolVar(&o.statsCost, "stats-cost", false, "instead of the tables, measure what the stats (sockets, page, metrics) cost: halo with and without them, pinned, alternating")
	flag.BoolVar(&o.rulesCost, "rules-cost", false, "instead of the tables, measure what the OpenStack public frontend's rule set costs: halo with and without it, pinned, alternating")
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
	if o.reloadEvery <= 0 {
		fatalf("-reload-every must be positive")
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
	// openstackScript is bench.OpenStackWrkScript's file, for the
	// realistic scenarios.
	openstackScript string
	configs         string // bench/configs
	place           placement
	backend         backendAddrs
}

type backendAddrs struct {
	HTTP, Bulk, Source string
	// OpenStack are benchd's OpenStack-like API servers (three, as a
	// controller cluster has), Syslog its sink for HAProxy's log lines.
	OpenStack []string
	Syslog    string
	// Nginx are Debian nginx's three OpenStack-like servers, started
	// when a selected scenario needs them.
	Nginx []string
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
	s.openstackScript = filepath.Join(work, "openstack.lua")
	if err := os.WriteFile(s.openstackScript, []byte(bench.OpenStackWrkScript), 0o644); err != nil {
		return err
	}
	if o.statsCost {
		return s.measureCost(statsCost)
	}
	if o.rulesCost {
		return s.measureCost(rulesCost)
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

// measureTable starts the backend where the placement puts it and runs
// every selected scenario.
func (s *suite) measureTable() (*bench.Table, error) {
	t := &bench.Table{Name: s.place.name, About: s.place.about}
	addrs, err := freeAddrs(10)
	if err != nil {
		return nil, err
	}
	s.backend = backendAddrs{HTTP: addrs[0], Bulk: addrs[1], Source: addrs[2], OpenStack: addrs[3:6], Syslog: addrs[6],
		Nginx: addrs[7:10]}
	if s.selects(func(sc *scenario) bool { return sc.nginx }) {
		stop, err := s.startNginx(s.backend.Nginx)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	backend := s.loadCommand(s.benchd, "serve", "-http", s.backend.HTTP, "-bulk", s.backend.Bulk,
		"-tcp-source", s.backend.Source, "-source-bytes", strconv.FormatInt(s.bulkSize, 10),
		"-openstack", strings.Join(s.backend.OpenStack, ","))
	backend.Stderr = os.Stderr
	if err := backend.Start(); err != nil {
		return nil, fmt.Errorf("starting benchd: %w", err)
	}
	defer func() {
		backend.Process.Signal(syscall.SIGTERM)
		backend.Wait()
	}()
	sink := s.loadCommand(s.benchd, "drain-udp", s.backend.Syslog)
	sink.Stderr = os.Stderr
	if err := sink.Start(); err != nil {
		return nil, fmt.Errorf("starting benchd drain-udp: %w", err)
	}
	defer func() {
		sink.Process.Signal(syscall.SIGTERM)
		sink.Wait()
	}()
	addrs = addrs[:6] // the sink's is UDP: nothing to wait for
	for _, a := range addrs {
		if err := waitListening(a, 10*time.Second, nil); err != nil {
			return nil, fmt.Errorf("benchd: %w", err)
		}
	}
	for _, sc := range scenarios {
		if !s.selected(sc) {
			continue
		}
		res := &bench.Scenario{Name: sc.name, Title: sc.title, Primary: sc.metrics[0], Metrics: sc.metrics, Runs: map[string][]bench.Run{},
			Variants: sc.variants, Labels: sc.labels}
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

// selected reports whether the run measures sc.
func (s *suite) selected(sc *scenario) bool {
	return len(s.scenarios) == 0 || slices.Contains(s.scenarios, sc.name)
}

// selects reports whether the run measures a scenario for which need
// holds.
func (s *suite) selects(need func(*scenario) bool) bool {
	for _, sc := range scenarios {
		if s.selected(sc) && need(sc) && sc.pending == "" {
			return true
		}
	}
	return false
}

func (s *suite) measureScenario(sc *scenario, res *bench.Scenario) error {
	runs := s.runs
	if sc.runs > 0 {
		runs = min(runs, sc.runs)
	}
	for i := range runs {
		// Alternating: the odd runs take the proxies in the reverse order
		// of the even ones, so that each run of a pair sees the machine
		// the others saw.
		order := append([]string{bench.Halo, bench.HAProxy}, sc.variants...)
		if i%2 == 1 {
			slices.Reverse(order)
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
