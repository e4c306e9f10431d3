package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	// The suite's work directory (binaries, configurations, the wrk
	// script) goes under a directory of this test's, so that any process
	// it leaves running can be found by its command line.
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	out := t.TempDir()
	readme := filepath.Join(out, "README.md")
	if err := os.WriteFile(readme, []byte("# x\n\n"+readmeStart+"\nold\n"+readmeEnd+"\n\ntail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := options{
		runs: 2, duration: time.Second, connections: 8, bulkSize: 64 << 20, idleConns: 100,
		checkServers: 10, checkTime: time.Second, reloadBackends: 20, reloadEvery: 200 * time.Millisecond,
		scenarios: []string{"l7-keepalive", "l4-bulk", "reload-1000", "tls-handshake-ecdsa", "reload-loss"},
		tables:    []string{"pinned"}, out: out, readme: readme,
	}
	dir, md := runSuite(t, o, tmp)
	for _, want := range []string{
		"| 1. L7 keep-alive, small responses | **req/s** |",
		"| 5. L4 1 GiB bulk transfer | **MiB/s**, direct (no proxy) |",
		"| 9. reload with 1,000 backends | **reload ms ↓** |",
		"pinned    l7-keepalive                 halo/haproxy = ",
		"| 6b. TLS full handshake per request, ECDSA P-256 | **req/s** |",
		"## Targets",
		"| 10a. reloads under load, a new connection per request | **errors/reload per 10k conn/s ↓**, against haproxy -D -sf (no socket passing) |",
		"### 10a. reloads under load, a new connection per request (pinned)",
		"\n| halo (SIGHUP) | ",
		"\n| haproxy -W (SIGUSR2 to the master) | ",
		"\n| haproxy -D -sf (no socket passing) | ",
		"\n| haproxy -D -sf -x (socket passing) | ",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(string(md), "| — | — |") {
		t.Errorf("a measured scenario has no figures:\n%s", md)
	}
	if svg, err := os.ReadFile(filepath.Join(dir, "chart.svg")); err != nil || !strings.HasPrefix(string(svg), "<svg") {
		t.Errorf("chart.svg: %v %q", err, svg)
	}
	r, _ := os.ReadFile(readme)
	if !strings.Contains(string(r), "| 1. L7 keep-alive, small responses | **req/s** |") ||
		strings.Contains(string(r), "\nold\n") || !strings.HasSuffix(string(r), readmeEnd+"\n\ntail\n") {
		t.Errorf("README section not replaced:\n%s", r)
	}
}

// runSuite runs the suite with o, its work directory under tmp, and
// returns the one dated results directory it wrote under o.out and its
// results.md. Every process is stopped after, the legacy HAProxy daemons
// (which are not the suite's children) included.
func runSuite(t *testing.T, o options, tmp string) (string, []byte) {
	t.Helper()
	if err := run(o); err != nil {
		t.Fatal(err)
	}
	if left := processesUnder(tmp); len(left) > 0 {
		t.Errorf("processes left running: %v", left)
	}
	dirs, _ := filepath.Glob(filepath.Join(o.out, "20*"))
	if len(dirs) != 1 {
		t.Fatalf("want one dated results directory, got %v", dirs)
	}
	md, err := os.ReadFile(filepath.Join(dirs[0], "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	return dirs[0], md
}

// processesUnder lists the live processes whose command line names a path
// under dir, as "pid: command line".
func processesUnder(dir string) []string {
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, path := range procs {
		b, err := os.ReadFile(path)
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err != nil || pid == os.Getpid() || !alive(pid) || !strings.Contains(string(b), dir+"/") {
			continue
		}
		found = append(found, fmt.Sprintf("%d: %s", pid, strings.ReplaceAll(string(b), "\x00", " ")))
	}
	return found
}

// TestSuiteSmokeOpenStack runs two of issue 18's realistic scenarios once,
// briefly: OpenStack clients' requests to three Debian nginx servers in
// mode http and to three benchd -openstack servers in mode tcp, logging on
// (a run in which halo logs nothing fails), each with its direct baseline.
func TestSuiteSmokeOpenStack(t *testing.T) {
	needTools(t)
	if _, err := exec.LookPath("nginx"); err != nil {
		testnet.SkipOrFail(t, "nginx is not installed (bench/setup installs nginx-light)")
	}
	if testing.Short() {
		t.Skip("starts both proxies and nginx; skipped with -short")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	out := t.TempDir()
	o := options{
		runs: 1, duration: time.Second, connections: 8,
		scenarios: []string{"l7-openstack-nginx", "l4-openstack-benchd"},
		tables:    []string{"pinned"}, out: out,
	}
	_, md := runSuite(t, o, tmp)
	for _, want := range []string{
		"| 11a. L7 keep-alive, OpenStack-like traffic, 3 nginx servers, httplog | **req/s** |",
		"| 11a. L7 keep-alive, OpenStack-like traffic, 3 nginx servers, httplog | **req/s**, direct (no proxy) |",
		"| 11d. L4 keep-alive, OpenStack-like traffic, 3 benchd servers, tcplog | **req/s**, direct (no proxy) |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(string(md), "| — | — |") {
		t.Errorf("a measured scenario has no figures:\n%s", md)
	}
}
