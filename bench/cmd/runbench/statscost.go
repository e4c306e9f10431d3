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

// What a feature costs the data path: halo alone on CPU 1 (the pinned
// placement) through the l7-keepalive load, with l7.halo.yaml and with a
// variant of it, alternating in pairs as the main suite alternates halo
// and HAProxy. The variants:
//   - stats: l7-stats.halo.yaml (sockets, the page and the metrics
//     endpoint on, so every request is timed into the histograms); while
//     it runs, the page and /metrics are fetched once a second, as a
//     browser and Prometheus would.
//   - rules: l7-rules.halo.yaml, the rule set of
//     examples/openstack-public.yaml's public frontend (ACLs, header
//     rewrites, a redirect and use_backend lines that do not match the
//     benchmark's requests, so that every rule is evaluated).

const (
	haloStats = "halo-stats"
	haloRules = "halo-rules"
)

// costVariant is a variant of l7.halo.yaml measured against it.
type costVariant struct {
	kind, config, title, file string
	poll                      bool // fetch the stats page and metrics meanwhile
}

var (
	statsCost = costVariant{kind: haloStats, config: "l7-stats", file: "stats-cost",
		title: "What the stats (sockets, page, metrics) cost the data path", poll: true}
	rulesCost = costVariant{kind: haloRules, config: "l7-rules", file: "rules-cost",
		title: "What the OpenStack public frontend's rule set costs the data path"}
)

var costScenario = &scenario{name: "l7-cost", title: "L7 keep-alive, a feature off and on", config: "l7",
	metrics: requestMetrics, server: httpServer, measure: measureWrk(false)}

// measureCost runs the comparison of variant v and reports it.
func (s *suite) measureCost(v costVariant) error {
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
		order := []string{bench.Halo, v.kind}
		if i%2 == 1 {
			order = []string{v.kind, bench.Halo}
		}
		for _, kind := range order {
			r, err := s.measureCostRun(v, kind)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", kind, i+1, err)
			}
			runs[kind] = append(runs[kind], r)
			logf("%s: %s run %d: %.0f req/s, %.3f CPU s/100k", v.file, kind, i+1, r[bench.RequestsPerSec], r[bench.CPUPer100k])
		}
	}
	res := &bench.Scenario{Runs: runs}
	cpu, pairs := res.Ratio(v.kind, bench.Halo, bench.CPUPer100k)
	var b strings.Builder
	fmt.Fprintf(&b, "# %s (pinned, l7-keepalive, %d pairs)\n\n", v.title, s.runs)
	fmt.Fprintf(&b, "| | off | on | on/off |\n|---|---|---|---|\n")
	for _, m := range []bench.Metric{bench.RequestsPerSec, bench.CPUPer100k, bench.P99} {
		r, _ := res.Ratio(v.kind, bench.Halo, m)
		fmt.Fprintf(&b, "| %s | %.4g | %.4g | %.3f |\n", m, res.Median(bench.Halo, m), res.Median(v.kind, m), r)
	}
	fmt.Fprintf(&b, "\nCPU per request, on/off per pair:")
	for _, p := range pairs {
		fmt.Fprintf(&b, " %.3f", p)
	}
	fmt.Fprintf(&b, "; median of the pairs %.3f\n", cpu)
	fmt.Print(b.String())
	dir := filepath.Join(s.out, v.file+"-"+time.Now().UTC().Format("2006-01-02T1504Z"))
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
	return os.WriteFile(filepath.Join(dir, v.file+".md"), []byte(b.String()), 0o644)
}

// measureCostRun is one run of the base (kind halo) or of the variant; the
// stats variant's page and metrics are read once a second meanwhile.
func (s *suite) measureCostRun(v costVariant, kind string) (bench.Run, error) {
	addrs, err := freeAddrs(2)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(s.work, "stats")
	if err != nil {
		return nil, err
	}
	params := configParams{Listen: addrs[0], StatsListen: addrs[1], StatsDir: dir, Threads: 1, MaxConn: 4096, Server: s.backend.HTTP}
	sc := *costScenario
	if kind == v.kind {
		sc.config = v.config
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
		if kind != v.kind || !v.poll {
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
