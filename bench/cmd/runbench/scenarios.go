package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/halo-lb/halo/bench"
)

// scenario is one row group of the tables: which configuration pair in
// bench/configs it runs, and how one run is measured.
type scenario struct {
	name, title string
	config      string         // base name in bench/configs: NAME.halo.yaml, NAME.haproxy.cfg
	metrics     []bench.Metric // the first is the one the ratio summarizes
	pending     string         // not measured yet, and why
	runs        int            // at most this many runs (slow scenarios); 0: -runs
	// server is the backend address the configuration forwards to.
	server func(*suite) string
	// prepare fills in what the scenario's configuration needs beyond
	// the listen and server addresses.
	prepare      func(s *suite, p *configParams)
	masterWorker bool // HAProxy runs with -W so that it can be reloaded
	nginx        bool // its servers are Debian nginx's (s.backend.Nginx)
	// accessLine, when set, is what each of halo's access lines in the
	// scenario holds: a run in which halo wrote none fails.
	accessLine string
	// variants are further ways of running HAProxy measured beside halo
	// and HAProxy, kinds startProxy knows (haproxySF, haproxySFX);
	// labels say what each proxy is in the scenario's tables.
	variants []string
	labels   map[string]string
	measure  func(*suite, *proxyProcess) (bench.Run, error)
	// direct, when set, measures the same transfer with no proxy at all.
	direct func(*suite) (bench.Run, error)
}

var requestMetrics = []bench.Metric{bench.RequestsPerSec, bench.P50, bench.P99, bench.P999, bench.CPUPer100k, bench.PeakRSS}
var transferMetrics = []bench.Metric{bench.Throughput, bench.CPUPerGiB, bench.PeakRSS}

func httpServer(s *suite) string   { return s.backend.HTTP }
func bulkServer(s *suite) string   { return s.backend.Bulk }
func sourceServer(s *suite) string { return s.backend.Source }

var scenarios = []*scenario{
	{name: "l7-keepalive", title: "1. L7 keep-alive, small responses", config: "l7", metrics: requestMetrics,
		server: httpServer, measure: measureWrk(false)},
	{name: "l7-close", title: "2. L7 new connection per request", config: "l7", metrics: requestMetrics,
		server: httpServer, measure: measureWrk(true)},
	{name: "l7-download", title: "3a. L7 1 GiB download", config: "l7", metrics: transferMetrics,
		server: bulkServer, measure: measureTransfer(func(s *suite, p *proxyProcess) []string {
			return []string{"download", fmt.Sprintf("http://%s/bytes?n=%d", p.params.Listen, s.bulkSize)}
		})},
	{name: "l7-upload", title: "3b. L7 1 GiB upload", config: "l7", metrics: transferMetrics,
		server: bulkServer, measure: measureTransfer(func(s *suite, p *proxyProcess) []string {
			return []string{"upload", "http://" + p.params.Listen + "/upload", strconv.FormatInt(s.bulkSize, 10)}
		})},
	{name: "l4-keepalive", title: "4a. L4 keep-alive, small messages", config: "l4", metrics: requestMetrics,
		server: httpServer, measure: measureWrk(false)},
	{name: "l4-close", title: "4b. L4 new connection per message", config: "l4", metrics: requestMetrics,
		server: httpServer, measure: measureWrk(true)},
	{name: "l4-bulk", title: "5. L4 1 GiB bulk transfer", config: "l4", metrics: transferMetrics,
		server: sourceServer,
		measure: measureTransfer(func(s *suite, p *proxyProcess) []string {
			return []string{"tcp-read", p.params.Listen}
		}),
		direct: func(s *suite) (bench.Run, error) { return s.transfer("tcp-read", s.backend.Source) }},
	tlsScenario("tls-keepalive-ecdsa", "6a. TLS keep-alive, ECDSA P-256", false, false),
	tlsScenario("tls-handshake-ecdsa", "6b. TLS full handshake per request, ECDSA P-256", false, true),
	tlsScenario("tls-keepalive-rsa", "6c. TLS keep-alive, RSA 2048", true, false),
	tlsScenario("tls-handshake-rsa", "6d. TLS full handshake per request, RSA 2048", true, true),
	{name: "idle-10k", title: "7. idle keep-alive client connections (count in Settings)", config: "l7", runs: 3,
		metrics: []bench.Metric{bench.RSS, bench.PeakRSS}, server: httpServer,
		prepare: func(s *suite, p *configParams) {
			p.MaxConn = s.idleConns + 100
			// HAProxy sizes its file limit at two per connection, more
			// than this machine may allow; the idle client connections
			// need only one each, so give it the hard limit as it is.
			p.ULimit = hardFileLimit()
		},
		measure: measureIdle},
	{name: "checks-2000", title: "8. health checks, 2,000 servers at inter 1s", config: "checks", runs: 3,
		metrics: []bench.Metric{bench.CPUPercent, bench.ChecksPerSec}, server: httpServer,
		prepare: func(s *suite, p *configParams) {
			for i := range s.checkServers {
				p.Servers = append(p.Servers, namedAddr{fmt.Sprintf("s%d", i+1), s.backend.HTTP})
			}
			p.MaxConn = 4096
		},
		measure: measureChecks},
	{name: "reload-1000", title: "9. reload with 1,000 backends", config: "reload",
		metrics: []bench.Metric{bench.ReloadMillis}, server: httpServer, masterWorker: true,
		prepare: func(s *suite, p *configParams) {
			for i := range s.reloadBackends {
				p.Backends = append(p.Backends, fmt.Sprintf("b%d", i+1))
			}
		},
		measure: measureReload},
	reloadLossScenario("reload-loss", "10a. reloads under load, a new connection per request", true),
	reloadLossScenario("reload-loss-keepalive", "10b. reloads under load, kept-alive connections", false),
	openstackScenario("l7-openstack-nginx", "11a. L7 keep-alive, OpenStack-like traffic, 3 nginx servers, httplog", "l7-openstack", true),
	openstackScenario("l4-openstack-nginx", "11b. L4 keep-alive, OpenStack-like traffic, 3 nginx servers, tcplog", "l4-openstack", true),
	openstackScenario("l7-openstack-benchd", "11c. L7 keep-alive, OpenStack-like traffic, 3 benchd servers, httplog", "l7-openstack", false),
	openstackScenario("l4-openstack-benchd", "11d. L4 keep-alive, OpenStack-like traffic, 3 benchd servers, tcplog", "l4-openstack", false),
}

// openstackScenario is one of issue 18's realistic scenarios: the
// OpenStack clients' requests (bench.OpenStackWrkScript) through config
// to three OpenStack-like servers, nginx's or benchd's, round-robin with
// TCP checks, logging on in both proxies; and the same load straight at
// one of the servers, the direct baseline.
func openstackScenario(name, title, config string, nginx bool) *scenario {
	servers := func(s *suite) []string { return s.backend.OpenStack }
	if nginx {
		servers = func(s *suite) []string { return s.backend.Nginx }
	}
	first := func(s *suite) string { return servers(s)[0] }
	return &scenario{name: name, title: title, config: config, metrics: requestMetrics, nginx: nginx,
		server: first, accessLine: " bench api/s",
		prepare: func(s *suite, p *configParams) {
			for i, a := range servers(s) {
				p.Servers = append(p.Servers, namedAddr{fmt.Sprintf("s%d", i+1), a})
			}
			p.Syslog = s.backend.Syslog
		},
		measure: measureWrkScript("http", openstackScript, false),
		direct:  directWrk(openstackScript, first, false)}
}

func openstackScript(s *suite) string { return s.openstackScript }

func scenarioByName(name string) *scenario {
	for _, sc := range scenarios {
		if sc.name == name {
			return sc
		}
	}
	return nil
}

func scenarioNames() []string {
	var names []string
	for _, sc := range scenarios {
		names = append(names, sc.name)
	}
	return names
}

// targets are issue 3's goals, checked on the pinned table.
var targets = []bench.Target{
	{Scenario: "l7-keepalive", Metric: bench.RequestsPerSec, Against: bench.HAProxy, AtLeast: true, Bound: 1.0},
	{Scenario: "l7-keepalive", Metric: bench.CPUPer100k, Against: bench.HAProxy, Bound: 1.0},
	{Scenario: "l4-keepalive", Metric: bench.RequestsPerSec, Against: bench.HAProxy, AtLeast: true, Bound: 1.0},
	{Scenario: "l4-keepalive", Metric: bench.CPUPer100k, Against: bench.HAProxy, Bound: 1.0},
	{Scenario: "l7-close", Metric: bench.RequestsPerSec, Against: bench.HAProxy, AtLeast: true, Bound: 0.9},
	{Scenario: "l4-close", Metric: bench.RequestsPerSec, Against: bench.HAProxy, AtLeast: true, Bound: 0.9},
	{Scenario: "l4-bulk", Metric: bench.Throughput, Against: bench.HAProxy, AtLeast: true, Bound: 1.5},
	{Scenario: "l4-bulk", Metric: bench.Throughput, Against: bench.Direct, AtLeast: true, Bound: 0.9},
	{Scenario: "l7-keepalive", Metric: bench.P99, Against: bench.HAProxy, Bound: 1.2},
	{Scenario: "l7-close", Metric: bench.P99, Against: bench.HAProxy, Bound: 1.2},
	{Scenario: "l4-keepalive", Metric: bench.P99, Against: bench.HAProxy, Bound: 1.2},
	{Scenario: "l4-close", Metric: bench.P99, Against: bench.HAProxy, Bound: 1.2},
	{Scenario: "idle-10k", Metric: bench.RSS, Against: bench.HAProxy, Bound: 2.0},
	// Issue 15's: TLS at least as fast as HAProxy's OpenSSL, p99 within 1.2×.
	{Scenario: "tls-keepalive-ecdsa", Metric: bench.RequestsPerSec, Against: bench.HAProxy, AtLeast: true, Bound: 1.0},
	{Scenario: "tls-handshake-ecdsa", Metric: bench.RequestsPerSec, Against: bench.HAProxy, AtLeast: true, Bound: 1.0},
	{Scenario: "tls-keepalive-rsa", Metric: bench.RequestsPerSec, Against: bench.HAProxy, AtLeast: true, Bound: 1.0},
	{Scenario: "tls-handshake-rsa", Metric: bench.RequestsPerSec, Against: bench.HAProxy, AtLeast: true, Bound: 1.0},
	{Scenario: "tls-keepalive-ecdsa", Metric: bench.P99, Against: bench.HAProxy, Bound: 1.2},
	{Scenario: "tls-handshake-ecdsa", Metric: bench.P99, Against: bench.HAProxy, Bound: 1.2},
	{Scenario: "tls-keepalive-rsa", Metric: bench.P99, Against: bench.HAProxy, Bound: 1.2},
	{Scenario: "tls-handshake-rsa", Metric: bench.P99, Against: bench.HAProxy, Bound: 1.2},
}

// Issue 18's targets, on realistic traffic with logging on: each
// realistic scenario at least HAProxy's rate, at most its CPU per
// request, a p99 within 1.2x, and at least 0.9x the direct rate.
func init() {
	for _, sc := range scenarios {
		if !strings.Contains(sc.name, "-openstack-") {
			continue
		}
		targets = append(targets,
			bench.Target{Scenario: sc.name, Metric: bench.RequestsPerSec, Against: bench.HAProxy, AtLeast: true, Bound: 1.0},
			bench.Target{Scenario: sc.name, Metric: bench.CPUPer100k, Against: bench.HAProxy, Bound: 1.0},
			bench.Target{Scenario: sc.name, Metric: bench.P99, Against: bench.HAProxy, Bound: 1.2},
			bench.Target{Scenario: sc.name, Metric: bench.RequestsPerSec, Against: bench.Direct, AtLeast: true, Bound: 0.9})
	}
}
