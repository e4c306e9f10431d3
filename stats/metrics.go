package stats

import (
	"bytes"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/halo-lb/halo/balancer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/valyala/fasthttp"
	"google.golang.org/protobuf/proto"
)

// A scrape reads the one table and writes it with the Prometheus client
// library's text encoder. The metric families are built once per shape of
// the table (which rows, which columns set) and kept: a scrape refreshes
// their values in place, so that 1,000 backends × 3 servers cost neither a
// few hundred thousand allocations nor the client registry's sorting and
// checks every time. The families are encoded on every core, each family
// whole by one encoder.

// rowKey identifies a row and which of its columns are set.
type rowKey struct {
	typ         ObjType
	proxy, name string
	setColumns  uint64
	moreColumns uint64
}

func keyOf(r *Row) rowKey {
	k := rowKey{typ: r.Type, proxy: r.Proxy(), name: r.Name()}
	for f := Field(0); f < NumFields; f++ {
		if r.v[f].set {
			if f < 64 {
				k.setColumns |= 1 << f
			} else {
				k.moreColumns |= 1 << (f - 64)
			}
		}
	}
	return k
}

// valueSlot is one sample's value and where it is read from.
type valueSlot struct {
	v     *float64
	row   int
	field Field
	scale float64
	state string // haproxy_server_status: 1 when the row's state is this
}

// histSlot is one histogram and the timings it shows.
type histSlot struct {
	h       *dto.Histogram
	row     int // a server's row, or a backend's
	kind    balancer.TimingKind
	backend bool
}

// familySet is the families of one shape of the table.
type familySet struct {
	keys   []rowKey
	fams   []*dto.MetricFamily
	byName map[string]*dto.MetricFamily
	values []valueSlot
	hists  []histSlot
}

func (fs *familySet) family(name, help string, typ dto.MetricType) *dto.MetricFamily {
	if f := fs.byName[name]; f != nil {
		return f
	}
	f := &dto.MetricFamily{Name: proto.String(name), Help: proto.String(help), Type: typ.Enum()}
	fs.byName[name] = f
	fs.fams = append(fs.fams, f)
	return f
}

func labelPairs(names []string, values ...string) []*dto.LabelPair {
	lp := make([]*dto.LabelPair, len(names))
	for i := range names {
		lp[i] = &dto.LabelPair{Name: proto.String(names[i]), Value: proto.String(values[i])}
	}
	return lp
}

// add appends a sample of a gauge or counter family, reading field of row.
func (fs *familySet) add(name, help string, typ prometheus.ValueType, labels []*dto.LabelPair, slot valueSlot) {
	m := &dto.Metric{Label: labels}
	slot.v = new(float64)
	if typ == prometheus.CounterValue {
		m.Counter = &dto.Counter{Value: slot.v}
		fs.family(name, help, dto.MetricType_COUNTER).Metric = append(fs.byName[name].Metric, m)
	} else {
		m.Gauge = &dto.Gauge{Value: slot.v}
		fs.family(name, help, dto.MetricType_GAUGE).Metric = append(fs.byName[name].Metric, m)
	}
	fs.values = append(fs.values, slot)
}

func (fs *familySet) addHistogram(name, help string, labels []*dto.LabelPair, slot histSlot) {
	h := &dto.Histogram{SampleCount: new(uint64), SampleSum: new(float64)}
	for _, le := range balancer.TimingBuckets {
		h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: proto.Float64(le), CumulativeCount: new(uint64)})
	}
	slot.h = h
	f := fs.family(name, help, dto.MetricType_HISTOGRAM)
	f.Metric = append(f.Metric, &dto.Metric{Label: labels, Histogram: h})
	fs.hists = append(fs.hists, slot)
}

// serverHistograms are the timings each server has a histogram of: the
// response time. A backend has all four (queue, connect, response, total):
// queueing and connecting are the backend's concerns, and a histogram per
// server and kind would make a scrape of 1,000 backends × 3 servers too
// big to answer quickly (docs/operations.md).
var serverHistograms = []balancer.TimingKind{balancer.TimeResponse}

// buildFamilies lays out the families of t.
func buildFamilies(t *Table) *familySet {
	fs := &familySet{byName: map[string]*dto.MetricFamily{}}
	proxyLabel, serverLabels := []string{"proxy"}, []string{"proxy", "server"}
	for i := range t.Rows {
		r := &t.Rows[i]
		fs.keys = append(fs.keys, keyOf(r))
		var kind string
		var names []string
		var values []string
		var defs [][]metricDef
		switch r.Type {
		case ObjFrontend:
			kind, names, values, defs = "frontend", proxyLabel, []string{r.Proxy()}, [][]metricDef{frontendMetrics}
		case ObjBackend:
			kind, names, values, defs = "backend", proxyLabel, []string{r.Proxy()}, [][]metricDef{sharedMetrics, backendOnlyMetrics}
		case ObjServer:
			kind, names, values, defs = "server", serverLabels, []string{r.Proxy(), r.Name()}, [][]metricDef{sharedMetrics, serverOnlyMetrics}
		}
		labels := labelPairs(names, values...)
		for _, list := range defs {
			for _, m := range list {
				if r.Set(m.field) {
					fs.add("haproxy_"+kind+"_"+m.name, m.help, m.typ, labels, valueSlot{row: i, field: m.field, scale: m.scale})
				}
			}
		}
		if r.Set(FHrsp2xx) {
			codeNames := append(append([]string(nil), names...), "code")
			for _, c := range statusCodeFields {
				fs.add("haproxy_"+kind+"_http_responses_total", "HTTP responses by status class.", prometheus.CounterValue,
					labelPairs(codeNames, append(append([]string(nil), values...), c.code)...), valueSlot{row: i, field: c.f})
			}
		}
		switch r.Type {
		case ObjFrontend:
			fs.add("haproxy_frontend_status", "Frontend status: 1 when open.", prometheus.GaugeValue, labels, valueSlot{row: i, field: FStatus, state: "OPEN"})
		case ObjBackend:
			fs.add("haproxy_backend_status", "Backend status: 1 when a server is usable.", prometheus.GaugeValue, labels, valueSlot{row: i, field: FStatus, state: "UP"})
			for k, m := range timingMetrics {
				fs.addHistogram("haproxy_backend_"+m.name, m.help, labels, histSlot{row: i, kind: balancer.TimingKind(k), backend: true})
			}
		case ObjServer:
			stateNames := append(append([]string(nil), names...), "state")
			for _, st := range serverStates {
				fs.add("haproxy_server_status", "Server state: 1 for the state it is in.", prometheus.GaugeValue,
					labelPairs(stateNames, r.Proxy(), r.Name(), st), valueSlot{row: i, field: FStatus, state: st})
			}
			for _, k := range serverHistograms {
				m := timingMetrics[k]
				fs.addHistogram("haproxy_server_"+m.name, m.help, labels, histSlot{row: i, kind: k})
			}
		}
	}
	return fs
}

var statusCodeFields = []struct {
	code string
	f    Field
}{{"1xx", FHrsp1xx}, {"2xx", FHrsp2xx}, {"3xx", FHrsp3xx}, {"4xx", FHrsp4xx}, {"5xx", FHrsp5xx}, {"other", FHrspOther}}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// matches reports whether fs was built for the rows of t.
func (fs *familySet) matches(t *Table) bool {
	if fs == nil || len(fs.keys) != len(t.Rows) {
		return false
	}
	for i := range t.Rows {
		if keyOf(&t.Rows[i]) != fs.keys[i] {
			return false
		}
	}
	return true
}

// rowState is a status word as haproxy_server_status names it.
func rowState(r *Row) string {
	st := r.Str(FStatus)
	word, _, _ := strings.Cut(st, " ")
	if st == "no check" {
		return "UP" // UP without a check
	}
	return word
}

// refresh reads the values of t (and the servers' timings) into fs.
func (fs *familySet) refresh(s *Stats, t *Table) {
	for _, v := range fs.values {
		r := &t.Rows[v.row]
		switch {
		case v.state != "" && r.Type == ObjServer:
			*v.v = b2f(rowState(r) == v.state)
		case v.state != "":
			*v.v = b2f(r.Str(FStatus) == v.state)
		default:
			*v.v = float64(r.Num(v.field))
			if v.scale != 0 {
				*v.v *= v.scale
			}
		}
	}
	// Servers first, then each backend sums its servers' histograms.
	byServer := map[int]*[4]balancer.Histogram{}
	backendSum := map[string]*[4]balancer.Histogram{}
	for i := range t.Rows {
		r := &t.Rows[i]
		if r.Type != ObjServer {
			continue
		}
		st := s.src.Server(r.Proxy(), r.Name())
		if st == nil {
			continue
		}
		var h [4]balancer.Histogram
		for k := range h {
			h[k] = st.Timings.Read(balancer.TimingKind(k))
		}
		byServer[i] = &h
		sum := backendSum[r.Proxy()]
		if sum == nil {
			sum = &[4]balancer.Histogram{}
			backendSum[r.Proxy()] = sum
		}
		for k := range h {
			sum[k].Add(h[k])
		}
	}
	for _, hs := range fs.hists {
		var h *balancer.Histogram
		if hs.backend {
			if sum := backendSum[t.Rows[hs.row].Proxy()]; sum != nil {
				h = &sum[hs.kind]
			}
		} else if got := byServer[hs.row]; got != nil {
			h = &got[hs.kind]
		}
		if h == nil {
			h = &balancer.Histogram{}
		}
		*hs.h.SampleCount, *hs.h.SampleSum = h.Count, h.Sum
		for i, b := range hs.h.Bucket {
			*b.CumulativeCount = h.Cumulative[i]
		}
	}
}

// processFamilies are the process's metrics, from show info.
func processFamilies(in *Info) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for _, m := range processMetrics {
		v, _ := strconv.ParseFloat(in.Get(m.field), 64)
		typ, metric := dto.MetricType_GAUGE, &dto.Metric{Gauge: &dto.Gauge{Value: proto.Float64(v)}}
		if m.typ == prometheus.CounterValue {
			typ, metric = dto.MetricType_COUNTER, &dto.Metric{Counter: &dto.Counter{Value: proto.Float64(v)}}
		}
		out = append(out, &dto.MetricFamily{Name: proto.String("haproxy_process_" + m.name), Help: proto.String(m.help),
			Type: typ.Enum(), Metric: []*dto.Metric{metric}})
	}
	for _, m := range haloProcessMetrics {
		v, _ := strconv.ParseFloat(in.Get(m.field), 64)
		out = append(out, &dto.MetricFamily{Name: proto.String(m.name), Help: proto.String(m.help),
			Type: dto.MetricType_COUNTER.Enum(), Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(v)}}}})
	}
	out = append(out, &dto.MetricFamily{Name: proto.String("haproxy_process_build_info"), Help: proto.String("Build information."),
		Type: dto.MetricType_GAUGE.Enum(), Metric: []*dto.Metric{{Label: labelPairs([]string{"version"}, in.Get("Version")),
			Gauge: &dto.Gauge{Value: proto.Float64(1)}}}})
	return out
}

var processMetrics = []struct {
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
}

// haloProcessMetrics are the process's counters HAProxy has no metric
// for, named in halo's namespace as the cluster's are.
var haloProcessMetrics = []struct{ name, help, field string }{
	{"halo_process_recovered_panics_total", "Panics halo recovered: bugs, each logged with its stack.", "RecoveredPanics"},
}

// metricsState is what the endpoint keeps between scrapes.
type metricsState struct {
	mu       sync.Mutex // one scrape at a time: they share the families
	families *familySet
	runtime  *prometheus.Registry // the Go runtime's metrics
	once     sync.Once
	bufs     []bytes.Buffer // one per encoder, reused by every scrape
	rows     []Row          // the table's rows, reused likewise
}

// gather reads every family of one scrape; serveMetrics holds the lock.
func (s *Stats) gather() []*dto.MetricFamily {
	m := &s.metrics
	m.once.Do(func() {
		m.runtime = prometheus.NewRegistry()
		m.runtime.MustRegister(collectors.NewGoCollector())
	})
	in := s.Info()
	t := s.tableInto(m.rows, AllRows)
	m.rows = t.Rows
	if !m.families.matches(&t) {
		m.families = buildFamilies(&t)
	}
	m.families.refresh(s, &t)
	out := processFamilies(&in)
	out = append(out, m.families.fams...)
	if goFams, err := m.runtime.Gather(); err == nil {
		out = append(out, goFams...)
	}
	if c := s.clusterOf(); c != nil {
		if fams, err := c.Gatherer().Gather(); err == nil {
			out = append(out, fams...)
		}
	}
	return out
}

// encodeFamilies writes the families in the text format, spread over
// workers: each takes whole families, the largest first, so that their
// shares even out; the outputs follow one another.
func encodeFamilies(fams []*dto.MetricFamily, bufs []bytes.Buffer) error {
	workers := len(bufs)
	shares := make([][]*dto.MetricFamily, workers)
	load := make([]int, workers)
	order := append([]*dto.MetricFamily(nil), fams...)
	sortBySize(order)
	for _, f := range order {
		w := 0
		for i := range load {
			if load[i] < load[w] {
				w = i
			}
		}
		shares[w] = append(shares[w], f)
		load[w] += len(f.Metric) * samplesPer(f)
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range shares {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bufs[w].Reset()
			bufs[w].Grow(load[w] * 80)
			for _, f := range shares[w] {
				if len(f.Metric) == 0 {
					continue
				}
				if _, err := expfmt.MetricFamilyToText(&bufs[w], f); err != nil && errs[w] == nil {
					errs[w] = err
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func samplesPer(f *dto.MetricFamily) int {
	if f.GetType() == dto.MetricType_HISTOGRAM {
		return len(balancer.TimingBuckets) + 3
	}
	return 1
}

func sortBySize(fams []*dto.MetricFamily) {
	size := func(f *dto.MetricFamily) int { return len(f.Metric) * samplesPer(f) }
	for i := 1; i < len(fams); i++ {
		for j := i; j > 0 && size(fams[j]) > size(fams[j-1]); j-- {
			fams[j], fams[j-1] = fams[j-1], fams[j]
		}
	}
}

// serveMetrics answers a scrape.
func (s *Stats) serveMetrics(ctx *fasthttp.RequestCtx) {
	m := &s.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.bufs) != runtime.GOMAXPROCS(0) {
		m.bufs = make([]bytes.Buffer, runtime.GOMAXPROCS(0))
	}
	if err := encodeFamilies(s.gather(), m.bufs); err != nil {
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		ctx.SetBodyString("encoding metrics: " + err.Error() + "\n")
		return
	}
	ctx.Response.Header.SetContentType(string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	ctx.Response.ResetBody()
	for i := range m.bufs {
		_, _ = ctx.Write(m.bufs[i].Bytes())
	}
}
