package stats

import (
	"github.com/prometheus/client_golang/prometheus"
)

// The metrics endpoint: HAProxy's built-in exporter's metric names and
// labels (haproxy_process_*, haproxy_frontend_*, haproxy_backend_*,
// haproxy_server_* with proxy and server labels), so dashboards built on
// HAProxy's work unchanged, plus what HAProxy does not have: latency
// histograms per backend and server. Every scrape reads the one table the
// CSV is made of; the Prometheus client library writes the text format.

// metricDef maps one column to a metric.
type metricDef struct {
	name  string
	help  string
	typ   prometheus.ValueType
	field Field
	scale float64 // 0: 1 (milliseconds columns give 0.001)
}

func gauge(name, help string, f Field) metricDef {
	return metricDef{name, help, prometheus.GaugeValue, f, 0}
}
func counter(name, help string, f Field) metricDef {
	return metricDef{name, help, prometheus.CounterValue, f, 0}
}
func seconds(name, help string, f Field, scale float64) metricDef {
	return metricDef{name, help, prometheus.GaugeValue, f, scale}
}

// Metrics common to backends and servers. HAProxy's exporter also has
// some that halo's table always has at 0 (denied responses, aborts,
// connection attempts and reuses): those are left out, as they would be a
// tenth of a large scrape saying nothing.
var sharedMetrics = []metricDef{
	gauge("current_queue", "Number of sessions waiting in the queue.", FQcur),
	gauge("max_queue", "Most sessions seen waiting in the queue.", FQmax),
	gauge("current_sessions", "Number of current sessions.", FScur),
	gauge("max_sessions", "Most sessions seen at once.", FSmax),
	gauge("limit_sessions", "Configured session limit.", FSlim),
	counter("sessions_total", "Total number of sessions.", FStot),
	counter("bytes_in_total", "Bytes received from clients.", FBin),
	counter("bytes_out_total", "Bytes sent to clients.", FBout),
	counter("connection_errors_total", "Failed connections to servers.", FEcon),
	counter("response_errors_total", "Responses aborted or refused.", FEresp),
	counter("retry_warnings_total", "Connection retries.", FWretr),
	counter("redispatch_warnings_total", "Sessions redispatched to another server.", FWredis),
	counter("internal_errors_total", "Internal errors (panics halo recovered).", FEint),
	gauge("weight", "Effective weight.", FWeight),
	gauge("uweight", "User weight.", FUweight),
	counter("check_up_down_total", "UP to DOWN transitions.", FChkdown),
	seconds("check_last_change_seconds", "Seconds since the last UP/DOWN change.", FLastchg, 1),
	counter("downtime_seconds_total", "Total time DOWN, in seconds.", FDowntime),
	counter("loadbalanced_total", "Times chosen by load balancing.", FLbtot),
	gauge("max_session_rate", "Highest sessions per second seen.", FRateMax),
	seconds("last_session_seconds", "Seconds since the last session (-1: none).", FLastsess, 1),
	seconds("queue_time_average_seconds", "Average queue time of the last 1024 sessions.", FQtime, 0.001),
	seconds("connect_time_average_seconds", "Average connect time of the last 1024 sessions.", FCtime, 0.001),
	seconds("response_time_average_seconds", "Average response time of the last 1024 sessions.", FRtime, 0.001),
	seconds("total_time_average_seconds", "Average total time of the last 1024 sessions.", FTtime, 0.001),
	seconds("max_queue_time_seconds", "Longest queue time seen.", FQtimeMax, 0.001),
	seconds("max_connect_time_seconds", "Longest connect time seen.", FCtimeMax, 0.001),
	seconds("max_response_time_seconds", "Longest response time seen.", FRtimeMax, 0.001),
	seconds("max_total_time_seconds", "Longest total time seen.", FTtimeMax, 0.001),
	counter("http_requests_total", "HTTP requests.", FReqTot),
}

var frontendMetrics = []metricDef{
	gauge("current_sessions", "Number of current sessions.", FScur),
	gauge("max_sessions", "Most sessions seen at once.", FSmax),
	gauge("limit_sessions", "Configured session limit.", FSlim),
	counter("sessions_total", "Total number of sessions.", FStot),
	counter("bytes_in_total", "Bytes received from clients.", FBin),
	counter("bytes_out_total", "Bytes sent to clients.", FBout),
	counter("requests_denied_total", "Requests denied.", FDreq),
	counter("responses_denied_total", "Responses denied.", FDresp),
	counter("request_errors_total", "Request errors.", FEreq),
	gauge("limit_session_rate", "Configured session rate limit.", FRateLim),
	gauge("max_session_rate", "Highest sessions per second seen.", FRateMax),
	gauge("http_requests_rate_max", "Highest HTTP requests per second seen.", FReqRateMax),
	counter("http_requests_total", "HTTP requests.", FReqTot),
	gauge("connections_rate_max", "Highest connections per second seen.", FConnRateMax),
	counter("connections_total", "Connections accepted.", FConnTot),
	counter("intercepted_requests_total", "Requests answered by halo itself.", FIntercepted),
	counter("denied_connections_total", "Connections denied by rules.", FDcon),
	counter("denied_sessions_total", "Sessions denied by rules.", FDses),
	counter("failed_header_rewriting_total", "Failed header rewrites.", FWrew),
	counter("internal_errors_total", "Internal errors (panics halo recovered).", FEint),
}

var backendOnlyMetrics = []metricDef{
	gauge("active_servers", "Active servers in use.", FAct),
	gauge("backup_servers", "Backup servers in use.", FBck),
	counter("requests_denied_total", "Requests denied.", FDreq),
}

var serverOnlyMetrics = []metricDef{
	gauge("queue_limit", "Configured queue limit.", FQlimit),
	gauge("current_throttle", "Slow start throttle, percent.", FThrottle),
	counter("check_failures_total", "Failed health checks.", FChkfail),
	seconds("check_duration_seconds", "Duration of the last health check.", FCheckDuration, 0.001),
	gauge("idle_connections_current", "Idle kept-alive connections to the server.", FIdleConnCur),
	gauge("used_connections_current", "Connections to the server in use.", FUsedConnCur),
}

// serverStates are the state labels of haproxy_server_status, one of
// which is 1.
var serverStates = []string{"DOWN", "UP", "MAINT", "DRAIN", "NOLB"}

// timingMetrics are halo's histograms, by timing.
var timingMetrics = [...]struct{ name, help string }{
	{"queue_time_seconds", "Time spent waiting for a server slot."},
	{"connect_time_seconds", "Time to get a connection to the server (0 for a reused one)."},
	{"http_response_time_seconds", "Time from sending the request to the response head (TCP: not measured)."},
	{"total_time_seconds", "Whole session time."},
}
