// Package proxy owns halo's data path and its reloads: listeners and their
// accept loops, the per-connection preamble, the L4 (mode tcp) relay, the
// L7 (mode http) request pipeline, routing a session to its backend,
// connect timeouts, retries, queues and inactivity timeouts; and the
// snapshots a reload builds from a *config.Config, swaps in atomically and
// retires. It never parses YAML.
//
// State that outlives a snapshot has one owner each: server state in the
// balancer's Registry; frontend state and counters, backend counters and
// refused responses, each server's session set and health checks in a kept
// (state.go); listeners, stick tables and the rules' process-wide
// variables (rules.ProcVars) in the Proxy. A snapshot only references them.
//
// Where things are, by phase:
//
//	listener.go      sockets, their reuse across reloads, the accept loop and maxconn gating
//	conn.go          a connection on its worker: the preamble, then the mode's handler
//	route.go         the routing step: the backend of a request or connection
//	tcp.go, relay.go mode tcp: connect with retries, then the relay (splice between TCP sockets)
//	http_server.go   mode http: fasthttp server generations, their retirement
//	http_request.go  the request pipeline: route, take a slot, forward, retry, account
//	http_forward.go  one exchange with a server; http_stream.go the bodies that stream
//	http_headers.go  hop-by-hop headers; http_forwarded.go forwardfor and originalto
//	http_errors.go   errors, statuses, halo's pages; http_errorfiles.go errorfile and http-error pages
//	http_monitor.go  monitor-uri and monitor fail; http_capture.go a request's capture slots, for the httplog line
//	http_rules.go    the rules on a request and its response; tcp_rules.go on a connection
//	queue.go, limiter.go, balancekey.go   server slots and queues, maxconn, hashing keys
//	snapshot.go      building a snapshot; apply.go swapping it in and releasing the old
//	state.go         the kept state and counters; checks.go, check_targets.go health checks
//	sessions.go      L4 sessions a check may shut down; log.go tcplog and httplog lines
//	carry.go         state a start takes from a previous process: server state, counters
//	upgrade.go       a binary upgrade: listening sockets passed on by name, the old proxy's handover
//	stats_source.go  what the stats package reads (its Source) and the runtime API's setters,
//	                 over the live snapshot; the stats page's route on a frontend
//	recover.go       crash safety: where a panic is recovered and what it releases
//
// Concurrency: a Proxy's exported methods may be called from any goroutine;
// Apply and Shutdown serialize among themselves. The data path and readers
// such as stats reach the live configuration through atomic pointers only
// and never wait on a reload.
package proxy
