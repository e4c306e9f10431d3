package stats

import (
	"bytes"
	"strconv"
	"strings"
	"sync"

	"github.com/halo-lb/halo/balancer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
	"github.com/valyala/fasthttp"
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

// Metrics common to backends and servers.
var sharedMetrics = []metricDef{
	gauge("current_queue", "Number of sessions waiting in the queue.", FQcur),
	gauge("max_queue", "Most sessions seen waiting in the queue.", FQmax),
	gauge("current_sessions", "Number of current sessions.", FScur),
	gauge("max_sessions", "Most sessions seen at once.", FSmax),
	gauge("limit_sessions", "Configured session limit.", FSlim),
	counter("sessions_total", "Total number of sessions.", FStot),
	counter("bytes_in_total", "Bytes received from clients.", FBin),
	counter("bytes_out_total", "Bytes sent to clients.", FBout),
	counter("responses_denied_total", "Responses denied.", FDresp),
	counter("connection_errors_total", "Failed connections to servers.", FEcon),
	counter("response_errors_total", "Responses aborted or refused.", FEresp),
	counter("retry_warnings_total", "Connection retries.", FWretr),
	counter("redispatch_warnings_total", "Sessions redispatched to another server.", FWredis),
	gauge("weight", "Effective weight.", FWeight),
	gauge("uweight", "User weight.", FUweight),
	counter("check_up_down_total", "UP to DOWN transitions.", FChkdown),
	seconds("check_last_change_seconds", "Seconds since the last UP/DOWN change.", FLastchg, 1),
	counter("downtime_seconds_total", "Total time DOWN, in seconds.", FDowntime),
	counter("loadbalanced_total", "Times chosen by load balancing.", FLbtot),
	gauge("max_session_rate", "Highest sessions per second seen.", FRateMax),
	counter("client_aborts_total", "Transfers aborted by the client.", FCliAbrt),
	counter("server_aborts_total", "Transfers aborted by the server.", FSrvAbrt),
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
	counter("connection_attempts_total", "Connection attempts.", FConnect),
	counter("connection_reuses_total", "Connection reuses.", FReuse),
	counter("internal_errors_total", "Internal errors.", FEint),
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
	counter("internal_errors_total", "Internal errors.", FEint),
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

// metricsCollector reads the table at each scrape.
type metricsCollector struct{ s *Stats }

func (c metricsCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c metricsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	in := s.Info()
	c.process(ch, &in)
	t := s.Table(AllRows)
	backendHist := map[string]*[4]balancer.Histogram{}
	for i := range t.Rows {
		r := &t.Rows[i]
		switch r.Type {
		case ObjFrontend:
			emit(ch, "frontend", frontendMetrics, r, []string{"proxy"}, r.Proxy())
			statusClasses(ch, "frontend", r, []string{"proxy"}, r.Proxy())
			emitState(ch, "haproxy_frontend_status", "Frontend status: 1 when open.", r.Str(FStatus) == "OPEN", []string{"proxy"}, r.Proxy())
		case ObjBackend:
			labels := []string{"proxy"}
			emit(ch, "backend", sharedMetrics, r, labels, r.Proxy())
			emit(ch, "backend", backendOnlyMetrics, r, labels, r.Proxy())
			statusClasses(ch, "backend", r, labels, r.Proxy())
			emitState(ch, "haproxy_backend_status", "Backend status: 1 when a server is usable.", r.Str(FStatus) == "UP", labels, r.Proxy())
			if h := backendHist[r.Proxy()]; h != nil {
				histograms(ch, "backend", h, labels, r.Proxy())
			}
		case ObjServer:
			labels := []string{"proxy", "server"}
			emit(ch, "server", sharedMetrics, r, labels, r.Proxy(), r.Name())
			emit(ch, "server", serverOnlyMetrics, r, labels, r.Proxy(), r.Name())
			statusClasses(ch, "server", r, labels, r.Proxy(), r.Name())
			state := strings.Fields(r.Str(FStatus) + " ")[0]
			if state == "no" { // "no check": UP without a check
				state = "UP"
			}
			for _, st := range serverStates {
				ch <- prometheus.MustNewConstMetric(desc("haproxy_server_status", "Server state: 1 for the state it is in.", append(labels, "state")),
					prometheus.GaugeValue, b2f(st == state), r.Proxy(), r.Name(), st)
			}
			if st := s.src.Server(r.Proxy(), r.Name()); st != nil {
				var h [4]balancer.Histogram
				for k := range h {
					h[k] = st.Timings.Read(balancer.TimingKind(k))
				}
				histograms(ch, "server", &h, labels, r.Proxy(), r.Name())
				agg := backendHist[r.Proxy()]
				if agg == nil {
					agg = &[4]balancer.Histogram{}
					backendHist[r.Proxy()] = agg
				}
				for k := range h {
					agg[k].Add(h[k])
				}
			}
		}
	}
}

func (c metricsCollector) process(ch chan<- prometheus.Metric, in *Info) {
	num := func(name string) float64 {
		f, _ := strconv.ParseFloat(in.Get(name), 64)
		return f
	}
	for _, m := range []struct {
		name, help, field string
		typ               prometheus.ValueType
	}{
		{"nbthread", "Threads (GOMAXPROCS).", "Nbthread", prometheus.GaugeValue},
		{"nbproc", "Processes.", "Nbproc", prometheus.GaugeValue},
		{"relative_process_id", "Process number.", "Process_num", prometheus.GaugeValue},
		{"start_time_seconds", "Start time, in seconds since the epoch.", "Start_time_sec", prometheus.GaugeValue},
		{"pool_allocated_bytes", "Heap obtained from the system.", "PoolAlloc_bytes", prometheus.GaugeValue},
		{"pool_used_bytes", "Heap in use.", "PoolUsed_bytes", prometheus.GaugeValue},
		{"max_fds", "File descriptor limit.", "Ulimit-n", prometheus.GaugeValue},
		{"max_sockets", "Socket limit.", "Maxsock", prometheus.GaugeValue},
		{"max_connections", "Maximum number of concurrent connections.", "Maxconn", prometheus.GaugeValue},
		{"hard_max_connections", "Hard limit of concurrent connections.", "Hard_maxconn", prometheus.GaugeValue},
		{"current_connections", "Current client connections.", "CurrConns", prometheus.GaugeValue},
		{"connections_total", "Client connections accepted.", "CumConns", prometheus.CounterValue},
		{"requests_total", "HTTP requests.", "CumReq", prometheus.CounterValue},
		{"current_connection_rate", "Connections in the last second.", "ConnRate", prometheus.GaugeValue},
		{"max_connection_rate", "Highest connections per second seen.", "MaxConnRate", prometheus.GaugeValue},
		{"current_tasks", "Goroutines.", "Tasks", prometheus.GaugeValue},
		{"stopping", "1 while stopping.", "Stopping", prometheus.GaugeValue},
		{"jobs", "Active jobs (connections and listeners).", "Jobs", prometheus.GaugeValue},
		{"listeners", "Listening sockets.", "Listeners", prometheus.GaugeValue},
		{"bytes_out_total", "Bytes sent to clients.", "TotalBytesOut", prometheus.CounterValue},
	} {
		ch <- prometheus.MustNewConstMetric(desc("haproxy_process_"+m.name, m.help, nil), m.typ, num(m.field))
	}
	ch <- prometheus.MustNewConstMetric(desc("haproxy_process_build_info", "Build information.", []string{"version"}),
		prometheus.GaugeValue, 1, in.Get("Version"))
}

// descs caches the descriptions, which the library compares by identity
// of their strings' content; building them per scrape is what costs.
var descs = struct {
	mu sync.Mutex
	m  map[string]*prometheus.Desc
}{m: map[string]*prometheus.Desc{}}

func desc(name, help string, labels []string) *prometheus.Desc {
	key := name + "\x00" + strings.Join(labels, ",")
	descs.mu.Lock()
	defer descs.mu.Unlock()
	if d := descs.m[key]; d != nil {
		return d
	}
	d := prometheus.NewDesc(name, help, labels, nil)
	descs.m[key] = d
	return d
}

func emit(ch chan<- prometheus.Metric, kind string, defs []metricDef, r *Row, labels []string, values ...string) {
	for _, m := range defs {
		if !r.Set(m.field) {
			continue
		}
		v := float64(r.Num(m.field))
		if m.scale != 0 {
			v *= m.scale
		}
		ch <- prometheus.MustNewConstMetric(desc("haproxy_"+kind+"_"+m.name, m.help, labels), m.typ, v, values...)
	}
}

func statusClasses(ch chan<- prometheus.Metric, kind string, r *Row, labels []string, values ...string) {
	if !r.Set(FHrsp2xx) {
		return
	}
	d := desc("haproxy_"+kind+"_http_responses_total", "HTTP responses by status class.", append(labels, "code"))
	for _, c := range []struct {
		code string
		f    Field
	}{{"1xx", FHrsp1xx}, {"2xx", FHrsp2xx}, {"3xx", FHrsp3xx}, {"4xx", FHrsp4xx}, {"5xx", FHrsp5xx}, {"other", FHrspOther}} {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(r.Num(c.f)), append(values, c.code)...)
	}
}

func emitState(ch chan<- prometheus.Metric, name, help string, up bool, labels []string, values ...string) {
	ch <- prometheus.MustNewConstMetric(desc(name, help, labels), prometheus.GaugeValue, b2f(up), values...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func histograms(ch chan<- prometheus.Metric, kind string, h *[4]balancer.Histogram, labels []string, values ...string) {
	for k, m := range timingMetrics {
		buckets := make(map[float64]uint64, len(balancer.TimingBuckets))
		for i, le := range balancer.TimingBuckets {
			buckets[le] = h[k].Cumulative[i]
		}
		ch <- prometheus.MustNewConstHistogram(desc("haproxy_"+kind+"_"+m.name, m.help, labels), h[k].Count, h[k].Sum, buckets, values...)
	}
}

// metricsRegistry is the scrape's registry: the table's metrics and the
// Go runtime's.
func (s *Stats) metricsRegistry() *prometheus.Registry {
	s.metricsOnce.Do(func() {
		r := prometheus.NewRegistry()
		r.MustRegister(metricsCollector{s}, collectors.NewGoCollector())
		s.registry = r
	})
	return s.registry
}

// serveMetrics writes the metrics in the text format.
func (s *Stats) serveMetrics(ctx *fasthttp.RequestCtx) {
	s.metricsMu.Lock()
	defer s.metricsMu.Unlock()
	families, err := s.metricsRegistry().Gather()
	var buf bytes.Buffer
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	enc := expfmt.NewEncoder(&buf, format)
	for _, mf := range families {
		if e := enc.Encode(mf); e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		ctx.SetBodyString("gathering metrics: " + err.Error() + "\n")
		return
	}
	ctx.Response.Header.SetContentType(string(format))
	ctx.SetBody(buf.Bytes())
}
