package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestParseWrkFindsTheScriptLine(t *testing.T) {
	out := []byte(`Running 5s test @ http://127.0.0.1:8080/
  1 threads and 64 connections
Requests/sec:  85103.12

HALO-BENCH {"requests":425515,"duration_us":5000100,"errors":7,"connect_errors":1,"read_errors":2,"write_errors":0,"timeouts":4,"status_errors":3,"p50_us":661,"p99_us":1629,"p999_us":3670}
`)
	r, err := ParseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	want := WrkResult{Requests: 425515, DurationUS: 5000100, Errors: 7, ConnectErrors: 1, ReadErrors: 2, Timeouts: 4,
		StatusErrors: 3, P50US: 661, P99US: 1629, P999US: 3670}
	if r != want {
		t.Fatalf("got %+v, want %+v", r, want)
	}
	if rps := r.RequestsPerSecond(); math.Abs(rps-85101.3) > 0.1 {
		t.Fatalf("requests/s = %f", rps)
	}
}

func TestParseWrkRejectsMissingOrEmptyRuns(t *testing.T) {
	for name, out := range map[string]string{
		"no line":     "Requests/sec: 10\n",
		"no requests": `HALO-BENCH {"requests":0,"duration_us":1000000,"errors":64}` + "\n",
		"bad json":    "HALO-BENCH {\"requests\":\n",
	} {
		if _, err := ParseWrk([]byte(out)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses, as /proc allows.
	line := "1234 (ha (x) proxy) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 2 0 100 1000000 300 18446744073709551615"
	got, err := parseStatCPU([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if got != 3.8 {
		t.Fatalf("cpu = %v, want 3.8 (380 ticks)", got)
	}
	if _, err := parseStatCPU([]byte("1234 (x) S 1 2")); err == nil {
		t.Fatal("short line accepted")
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\thaproxy\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nSigCgt:\t0000000100004803\n"
	m, err := parseStatus([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 10<<20 || m.Peak != 20<<20 {
		t.Fatalf("got %+v", m)
	}
	caught, err := SignalsCaught([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	// SIGHUP (1) and SIGUSR2 (12) are caught, SIGUSR1 (10) is not.
	if caught&(1<<0) == 0 || caught&(1<<11) == 0 || caught&(1<<9) != 0 {
		t.Fatalf("caught mask %x", caught)
	}
	if _, err := parseStatus([]byte("Name:\tx\n")); err == nil {
		t.Fatal("status without memory lines accepted")
	}
}

func TestSNMPCounter(t *testing.T) {
	snmp := []byte("Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm ActiveOpens PassiveOpens\nTcp: 1 561848 555419\n")
	got, err := SNMPCounter(snmp, "Tcp", "ActiveOpens")
	if err != nil || got != 561848 {
		t.Fatalf("got %d, %v", got, err)
	}
	if _, err := SNMPCounter(snmp, "Tcp", "Nope"); err == nil {
		t.Fatal("missing counter found")
	}
}

func TestMedianAndPairRatios(t *testing.T) {
	if m := Median([]float64{5, 1, 3}); m != 3 {
		t.Fatalf("median %v", m)
	}
	if m := Median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Fatalf("median %v", m)
	}
	if !math.IsNaN(Median(nil)) || !math.IsNaN(Median([]float64{math.NaN()})) {
		t.Fatal("median of nothing is a number")
	}
	if m := Median([]float64{math.NaN(), 0, 2, math.NaN()}); m != 1 {
		t.Fatalf("median with undefined ratios %v", m)
	}
	r := PairRatios([]float64{2, 3, 4}, []float64{1, 3})
	if len(r) != 2 || r[0] != 2 || r[1] != 1 {
		t.Fatalf("ratios %v", r)
	}
}

func sampleTable() *Table {
	return &Table{Name: "pinned", About: "test", Scenarios: []*Scenario{
		{Name: "l7", Title: "L7", Primary: RequestsPerSec, Metrics: []Metric{RequestsPerSec, P99}, Runs: map[string][]Run{
			Halo:    {{RequestsPerSec: 110, P99: 1.0}, {RequestsPerSec: 90, P99: 2.0}, {RequestsPerSec: 100, P99: 1.5}},
			HAProxy: {{RequestsPerSec: 100, P99: 1.0}, {RequestsPerSec: 100, P99: 1.0}, {RequestsPerSec: 80, P99: 1.0}},
		}},
		{Name: "bulk", Title: "bulk", Primary: Throughput, Metrics: []Metric{Throughput}, Runs: map[string][]Run{
			Halo: {{Throughput: 900}}, HAProxy: {{Throughput: 500}}, Direct: {{Throughput: 1000}},
		}},
		{Name: "tls", Title: "TLS", Pending: "not yet", Metrics: []Metric{RequestsPerSec}, Runs: map[string][]Run{}},
	}}
}

func TestTargetsUsePairRatios(t *testing.T) {
	tab := sampleTable()
	// Pair ratios 1.1, 0.9, 1.25: median 1.1, although the medians of
	// the runs (100 vs 100) would say 1.0.
	r, ok := Target{Scenario: "l7", Metric: RequestsPerSec, Against: HAProxy, AtLeast: true, Bound: 1.05}.Check(tab)
	if !ok || math.Abs(r-1.1) > 1e-9 {
		t.Fatalf("req/s target: %v %v", r, ok)
	}
	if r, ok := (Target{Scenario: "l7", Metric: P99, Against: HAProxy, Bound: 1.2}).Check(tab); ok || r != 1.5 {
		t.Fatalf("p99 target: %v %v", r, ok)
	}
	if _, ok := (Target{Scenario: "bulk", Metric: Throughput, Against: Direct, AtLeast: true, Bound: 0.9}).Check(tab); !ok {
		t.Fatal("bulk vs direct should hold at 0.9")
	}
	if _, ok := (Target{Scenario: "tls", Metric: RequestsPerSec, Against: HAProxy, AtLeast: true, Bound: 1}).Check(tab); ok {
		t.Fatal("a pending scenario cannot meet a target")
	}
	if _, ok := (Target{Scenario: "missing", Metric: RequestsPerSec, Against: HAProxy, AtLeast: true, Bound: 0}).Check(tab); ok {
		t.Fatal("a scenario that was not run cannot meet a target")
	}
}

func TestReportShowsEveryScenario(t *testing.T) {
	tabs := []*Table{sampleTable()}
	var md, svg, sum bytes.Buffer
	WriteMarkdown(&md, Machine{Date: "2026-11-25", Cores: 2}, tabs, []Target{
		{Scenario: "l7", Metric: RequestsPerSec, Against: HAProxy, AtLeast: true, Bound: 1.0},
	})
	WriteSVG(&svg, "t", tabs)
	WriteSummary(&sum, tabs)
	for _, want := range []string{
		"| L7 | **req/s** | 100.0 | 100.0 | 1.10 | 1.10 0.90 1.25 |",
		"| L7 | p99 ms ↓ | 1.500 | 1.000 | 1.50 | 1.00 2.00 1.50 |",
		"halo/direct 0.90",
		"| l7 req/s: halo/haproxy ≥ 1.00 | 1.10 | yes |",
		"pending",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if !strings.Contains(sum.String(), "l7                           halo/haproxy = 1.10 (req/s)") {
		t.Errorf("summary:\n%s", sum.String())
	}
	if !strings.HasPrefix(svg.String(), "<svg") || !strings.Contains(svg.String(), ">1.10<") || !strings.Contains(svg.String(), ">1.80<") {
		t.Errorf("svg lacks the ratio bars:\n%s", svg.String())
	}
}

// A scenario with variants (HAProxy reloaded three ways) shows its primary
// metric against each in the main table, every metric per proxy in its own
// table, and each variant's ratio in the summary.
func TestReportShowsVariants(t *testing.T) {
	sc := &Scenario{Name: "reload-loss", Title: "R", Primary: ErrorsPerReload, Metrics: []Metric{ErrorsPerReload, Reloads},
		Variants: []string{"haproxy-sf"}, Labels: map[string]string{HAProxy: "haproxy -W", "haproxy-sf": "haproxy -sf"},
		Runs: map[string][]Run{
			Halo:         {{ErrorsPerReload: 0, Reloads: 25}, {ErrorsPerReload: 0, Reloads: 24}},
			HAProxy:      {{ErrorsPerReload: 0, Reloads: 20}, {ErrorsPerReload: 0.5, Reloads: 22}},
			"haproxy-sf": {{ErrorsPerReload: 2, Reloads: 25}, {ErrorsPerReload: 4, Reloads: 25}},
		}}
	tabs := []*Table{{Name: "pinned", About: "test", Scenarios: []*Scenario{sc}}}
	var md, svg, sum bytes.Buffer
	WriteMarkdown(&md, Machine{Date: "2026-12-05", Cores: 2}, tabs, []Target{
		{Scenario: "l7", Metric: RequestsPerSec, Against: HAProxy, AtLeast: true, Bound: 1.0},
	})
	WriteSVG(&svg, "t", tabs)
	WriteSummary(&sum, tabs)
	for _, want := range []string{
		"| R | **errors/reload ↓**, against haproxy -W | 0.000 | 0.250 | 0.00 | — 0.00 |",
		"| R | **errors/reload ↓**, against haproxy -sf | 0.000 | 3.000 | 0.00 | 0.00 0.00 |",
		"### R (pinned)",
		"| proxy | **errors/reload ↓** | reloads |",
		"| halo | 0.000 | 24.5 |",
		"| haproxy -W | 0.250 | 21.0 |",
		"| haproxy -sf | 3.000 | 25.0 |",
	} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if strings.Contains(md.String(), "## Targets") {
		t.Errorf("a target of a scenario not run is listed:\n%s", md.String())
	}
	if strings.Contains(md.String(), "| R | reloads |") {
		t.Errorf("the main table repeats a variant scenario's secondary metrics:\n%s", md.String())
	}
	if !strings.Contains(sum.String(), "halo/haproxy-sf = 0.00 (errors/reload)") {
		t.Errorf("summary:\n%s", sum.String())
	}
	// halo had no errors where HAProxy -W had some: the bar is drawn at
	// the end of the scale, not as nothing.
	if !strings.Contains(svg.String(), ">∞<") {
		t.Errorf("svg:\n%s", svg.String())
	}
}
