package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/halo-lb/halo/bench"
)

// The stats' cost to the data path: halo alone on CPU 1 (the pinned
// placement) through the l7-keepalive load, with l7.halo.yaml and with
// l7-stats.halo.yaml (sockets, the page and the metrics endpoint on, so
// every request is timed into the histograms), alternating in pairs as the
// main suite alternates halo and HAProxy. While the stats variant runs, the
// page and /metrics are fetched once a second, as a browser and Prometheus
// would.

const haloStats = "halo-stats"

var statsCostScenario = &scenario{name: "l7-stats-cost", title: "L7 keep-alive, stats off and on", config: "l7",
	metrics: requestMetrics, server: httpServer, measure: measureWrk(false)}

// measureStatsCost runs the comparison and reports it.
func (s *suite) measureStatsCost() error {
	s.place = placements["pinned"]
	addrs, err := freeAddrs(1)
	if err != nil {
		return err
	}
	s.backend = backendAddrs{HTTP: addrs[0]}
	backend := s.loadCommand(s.benchd, "serve", "-http", s.backend.HTTP)
	backend.Stderr = os.Stderr
	if err := backend.Start(); err != nil {
		return err
	}
	defer func() { backend.Process.Kill(); backend.Wait() }()
	if err := waitListening(s.backend.HTTP, 10*time.Second, nil); err != nil {
		return err
	}
	runs := map[string][]bench.Run{}
	for i := range s.runs {
		order := []string{bench.Halo, haloStats}
		if i%2 == 1 {
			order = []string{haloStats, bench.Halo}
		}
		for _, kind := range order {
			r, err := s.measureStatsRun(kind)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", kind, i+1, err)
			}
			runs[kind] = append(runs[kind], r)
			logf("stats cost: %s run %d: %.0f req/s, %.3f CPU s/100k", kind, i+1, r[bench.RequestsPerSec], r[bench.CPUPer100k])
		}
	}
	res := &bench.Scenario{Runs: runs}
	cpu, pairs := res.Ratio(haloStats, bench.Halo, bench.CPUPer100k)
	var b strings.Builder
	fmt.Fprintf(&b, "# What the stats cost the data path (pinned, l7-keepalive, %d pairs)\n\n", s.runs)
	fmt.Fprintf(&b, "| | stats off | stats on | on/off |\n|---|---|---|---|\n")
	for _, m := range []bench.Metric{bench.RequestsPerSec, bench.CPUPer100k, bench.P99} {
		r, _ := res.Ratio(haloStats, bench.Halo, m)
		fmt.Fprintf(&b, "| %s | %.4g | %.4g | %.3f |\n", m, res.Median(bench.Halo, m), res.Median(haloStats, m), r)
	}
	fmt.Fprintf(&b, "\nCPU per request, on/off per pair:")
	for _, p := range pairs {
		fmt.Fprintf(&b, " %.3f", p)
	}
	fmt.Fprintf(&b, "; median of the pairs %.3f\n", cpu)
	fmt.Print(b.String())
	dir := filepath.Join(s.out, "stats-cost-"+time.Now().UTC().Format("2006-01-02T1504Z"))
	if !filepath.IsAbs(dir) {
		root, err := repoRoot()
		if err != nil {
			return err
		}
		dir = filepath.Join(root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "stats-cost.md"), []byte(b.String()), 0o644)
}

// measureStatsRun is one run of one variant; the stats variant's page and
// metrics are read once a second meanwhile.
func (s *suite) measureStatsRun(kind string) (bench.Run, error) {
	addrs, err := freeAddrs(2)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(s.work, "stats")
	if err != nil {
		return nil, err
	}
	params := configParams{Listen: addrs[0], StatsListen: addrs[1], StatsDir: dir, Threads: 1, MaxConn: 4096, Server: s.backend.HTTP}
	sc := *statsCostScenario
	if kind == haloStats {
		sc.config = "l7-stats"
	}
	p, err := s.startProxy(kind, &sc, params, false)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		if kind != haloStats {
			return
		}
		client := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			for _, path := range []string{"/stats", "/metrics"} {
				req, _ := http.NewRequest("GET", "http://"+addrs[1]+path, nil)
				req.SetBasicAuth("admin", "bench")
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}
	}()
	r, err := sc.measure(s, p)
	close(stop)
	<-done
	return r, err
}
