package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// needTools skips without the suite's tools, unless HALO_INTEGRATION=1
// (CI), where a missing tool is a failure.
func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"haproxy", "wrk", "taskset"} {
		if _, err := exec.LookPath(tool); err != nil {
			testnet.SkipOrFail(t, tool+" is not installed (bench/setup installs it)")
		}
	}
}

// TestSuiteSmoke runs a few scenarios of the real suite once, at small
// sizes, against the real HAProxy: the suite must start both proxies,
// measure them, and write the table, chart and README section.
func TestSuiteSmoke(t *testing.T) {
	needTools(t)
	if testing.Short() {
		t.Skip("starts both proxies; skipped with -short")
	}
	out := t.TempDir()
	readme := filepath.Join(out, "README.md")
	if err := os.WriteFile(readme, []byte("# x\n\n"+readmeStart+"\nold\n"+readmeEnd+"\n\ntail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := options{
		runs: 2, duration: time.Second, connections: 8, bulkSize: 64 << 20, idleConns: 100,
		checkServers: 10, checkTime: time.Second, reloadBackends: 20,
		scenarios: []string{"l7-keepalive", "l4-bulk", "reload-1000", "tls-handshake-ecdsa"},
		tables:    []string{"pinned"}, out: out, readme: readme,
	}
	if err := run(o); err != nil {
		t.Fatal(err)
	}
	dirs, _ := filepath.Glob(filepath.Join(out, "20*"))
	if len(dirs) != 1 {
		t.Fatalf("want one dated results directory, got %v", dirs)
	}
	md, err := os.ReadFile(filepath.Join(dirs[0], "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| 1. L7 keep-alive, small responses | **req/s** |",
		"| 5. L4 1 GiB bulk transfer | **MiB/s**, direct (no proxy) |",
		"| 9. reload with 1,000 backends | **reload ms ↓** |",
		"pinned    l7-keepalive                 halo/haproxy = ",
		"| 6b. TLS full handshake per request, ECDSA P-256 | **req/s** |",
		"## Targets",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(string(md), "| — | — |") {
		t.Errorf("a measured scenario has no figures:\n%s", md)
	}
	if svg, err := os.ReadFile(filepath.Join(dirs[0], "chart.svg")); err != nil || !strings.HasPrefix(string(svg), "<svg") {
		t.Errorf("chart.svg: %v %q", err, svg)
	}
	r, _ := os.ReadFile(readme)
	if !strings.Contains(string(r), "| 1. L7 keep-alive, small responses | **req/s** |") ||
		strings.Contains(string(r), "\nold\n") || !strings.HasSuffix(string(r), readmeEnd+"\n\ntail\n") {
		t.Errorf("README section not replaced:\n%s", r)
	}
}
