package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
)

// Proxy names as they appear in results.
const (
	Halo    = "halo"
	HAProxy = "haproxy"
	// Direct is a connection straight to the backend: the physical limit
	// of the machine for a transfer, measured in the same alternation.
	Direct = "direct"
)

// Metric names a figure a run measured.
type Metric string

// The metrics the suite records. Each scenario records a subset.
const (
	RequestsPerSec Metric = "req/s"
	P50            Metric = "p50 ms"
	P99            Metric = "p99 ms"
	P999           Metric = "p99.9 ms"
	CPUPer100k     Metric = "CPU s/100k req"
	Throughput     Metric = "MiB/s"
	PeakRSS        Metric = "peak RSS MiB"
	RSS            Metric = "RSS MiB"
	CPUPercent     Metric = "CPU %"
	ReloadMillis   Metric = "reload ms"
	CPUPerGiB      Metric = "CPU s/GiB"
	ChecksPerSec   Metric = "checks/s"
	// What reloads under load cost: wrk's errors of a run divided by the
	// reloads done in it, and that per 10,000 new connections a second
	// (issue 17's unit: a loss that grows with the connection rate).
	ErrorsPerReloadPer10k Metric = "errors/reload per 10k conn/s"
	ErrorsPerReload       Metric = "errors/reload"
	Reloads               Metric = "reloads"
	ConnectErrors         Metric = "connect errors"
	ReadErrors            Metric = "read errors"
	WriteErrors           Metric = "write errors"
	Timeouts              Metric = "timeouts"
	StatusErrors          Metric = "status ≥ 400"
)

// lowerIsBetter lists the metrics where a smaller value wins.
var lowerIsBetter = map[Metric]bool{
	P50: true, P99: true, P999: true, CPUPer100k: true, PeakRSS: true, RSS: true, CPUPercent: true, ReloadMillis: true, CPUPerGiB: true,
	ErrorsPerReloadPer10k: true, ErrorsPerReload: true, ConnectErrors: true, ReadErrors: true, WriteErrors: true, Timeouts: true,
	StatusErrors: true,
}

// Run is what one run of one proxy measured.
type Run map[Metric]float64

// Scenario is one measured scenario of one table: every run of every proxy,
// in the order they were taken.
type Scenario struct {
	Name    string           `json:"name"`
	Title   string           `json:"title"`
	Primary Metric           `json:"primary"`
	Metrics []Metric         `json:"metrics"`
	Pending string           `json:"pending,omitempty"` // why the scenario was not measured
	Runs    map[string][]Run `json:"runs"`
	// Variants are further proxies measured in the same alternation as
	// halo and HAProxy (HAProxy reloaded other ways), named by their keys
	// in Runs. Such a scenario has a table of its own: one row per proxy.
	Variants []string `json:"variants,omitempty"`
	// Labels say what each proxy of the scenario is, where its key alone
	// would not (how HAProxy is reloaded).
	Labels map[string]string `json:"labels,omitempty"`
}

// Proxies are the scenario's proxies in the order its tables show them.
func (s *Scenario) Proxies() []string {
	return append([]string{Halo, HAProxy}, s.Variants...)
}

func (s *Scenario) label(proxy string) string {
	if l, ok := s.Labels[proxy]; ok {
		return l
	}
	return proxy
}

// Median is the median of metric m over proxy's runs.
func (s *Scenario) Median(proxy string, m Metric) float64 {
	return Median(s.values(proxy, m))
}

func (s *Scenario) values(proxy string, m Metric) []float64 {
	var xs []float64
	for _, r := range s.Runs[proxy] {
		if v, ok := r[m]; ok {
			xs = append(xs, v)
		}
	}
	return xs
}

// Ratio is the median of the per-pair ratios proxy/against for metric m,
// and the ratios themselves.
func (s *Scenario) Ratio(proxy, against string, m Metric) (float64, []float64) {
	r := PairRatios(s.values(proxy, m), s.values(against, m))
	return Median(r), r
}

// Table is every scenario measured under one placement of the processes.
type Table struct {
	Name      string      `json:"name"`
	About     string      `json:"about"`
	Scenarios []*Scenario `json:"scenarios"`
}

// Scenario returns the table's scenario of that name, or nil.
func (t *Table) Scenario(name string) *Scenario {
	for _, s := range t.Scenarios {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Target is one performance goal, checked on the pinned table.
type Target struct {
	Scenario string
	Metric   Metric
	Against  string // HAProxy or Direct
	AtLeast  bool   // ratio >= Bound; else ratio <= Bound
	Bound    float64
}

func (t Target) String() string {
	op := "≤"
	if t.AtLeast {
		op = "≥"
	}
	return fmt.Sprintf("%s %s: halo/%s %s %.2f", t.Scenario, t.Metric, t.Against, op, t.Bound)
}

// Check evaluates the target on table tab: the median pair ratio, and
// whether it holds. A scenario that was not measured does not hold.
func (t Target) Check(tab *Table) (float64, bool) {
	s := tab.Scenario(t.Scenario)
	if s == nil || s.Pending != "" {
		return math.NaN(), false
	}
	r, _ := s.Ratio(Halo, t.Against, t.Metric)
	if math.IsNaN(r) {
		return r, false
	}
	if t.AtLeast {
		return r, r >= t.Bound
	}
	return r, r <= t.Bound
}

// Machine describes where a run was taken.
type Machine struct {
	Date, CPU, Kernel, Go, HAProxy, Wrk string
	Cores                               int
	Settings                            string // runs, durations, sizes
}

// WriteMarkdown writes the results as markdown: the machine, each table
// with medians and pair ratios, the targets, and one summary line per
// scenario.
func WriteMarkdown(w io.Writer, m Machine, tables []*Table, targets []Target) {
	fmt.Fprintf(w, "# halo vs HAProxy — %s\n\n", m.Date)
	fmt.Fprintf(w, "Machine: %d cores, %s; kernel %s; %s; %s; %s.  \n", m.Cores, m.CPU, m.Kernel, m.Go, m.HAProxy, m.Wrk)
	fmt.Fprintf(w, "Settings: %s.\n\n", m.Settings)
	fmt.Fprintf(w, "Each figure is the median of the runs; **halo/haproxy** is the median of the ratios of runs taken\n")
	fmt.Fprintf(w, "back to back (one of each per pair, the first alternating), with every pair's ratio after it.\n")
	fmt.Fprintf(w, "For metrics marked ↓ lower is better.\n\n")
	for _, t := range tables {
		fmt.Fprintf(w, "## %s\n\n%s\n\n", t.Name, t.About)
		fmt.Fprintf(w, "| scenario | metric | halo | haproxy | halo/haproxy | pairs |\n|---|---|---:|---:|---:|---|\n")
		for _, s := range t.Scenarios {
			if s.Pending != "" {
				fmt.Fprintf(w, "| %s | — | pending | pending | — | %s |\n", s.Title, s.Pending)
				continue
			}
			if len(s.Variants) > 0 {
				writeVariantRows(w, s)
				continue
			}
			for _, met := range s.Metrics {
				name := metricName(s, met)
				r, pairs := s.Ratio(Halo, HAProxy, met)
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", s.Title, name,
					format(s.Median(Halo, met)), format(s.Median(HAProxy, met)), formatRatio(r), formatRatios(pairs))
				if len(s.Runs[Direct]) > 0 && met == s.Primary {
					r, pairs := s.Ratio(Halo, Direct, met)
					fmt.Fprintf(w, "| %s | %s, direct (no proxy) | %s | — | halo/direct %s | %s |\n", s.Title, name,
						format(s.Median(Direct, met)), formatRatio(r), formatRatios(pairs))
				}
			}
		}
		fmt.Fprintln(w)
		for _, s := range t.Scenarios {
			if s.Pending == "" && len(s.Variants) > 0 {
				writeProxyTable(w, t, s)
			}
		}
	}
	// A run of some scenarios (-scenarios) says nothing of the others'
	// targets: only those of scenarios in the table are listed.
	var listed []Target
	if len(tables) > 0 {
		for _, tg := range targets {
			if tables[0].Scenario(tg.Scenario) != nil {
				listed = append(listed, tg)
			}
		}
	}
	if len(listed) > 0 {
		fmt.Fprintf(w, "## Targets (on the %s table)\n\n| target | measured | holds |\n|---|---:|---|\n", tables[0].Name)
		for _, tg := range listed {
			r, ok := tg.Check(tables[0])
			fmt.Fprintf(w, "| %s | %s | %s |\n", tg, formatRatio(r), yesNo(ok))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "## Summary\n\n```\n")
	WriteSummary(w, tables)
	fmt.Fprintf(w, "```\n")
}

// WriteSummary writes one line per scenario and table: halo/haproxy = X on
// the scenario's primary metric.
func WriteSummary(w io.Writer, tables []*Table) {
	for _, t := range tables {
		for _, s := range t.Scenarios {
			if s.Pending != "" {
				fmt.Fprintf(w, "%-9s %-28s pending: %s\n", t.Name, s.Name, s.Pending)
				continue
			}
			r, _ := s.Ratio(Halo, HAProxy, s.Primary)
			fmt.Fprintf(w, "%-9s %-28s halo/haproxy = %s", t.Name, s.Name, formatRatio(r))
			for _, v := range s.Variants {
				r, _ := s.Ratio(Halo, v, s.Primary)
				fmt.Fprintf(w, ", halo/%s = %s", v, formatRatio(r))
			}
			fmt.Fprintf(w, " (%s)\n", s.Primary)
		}
	}
}

// metricName is how the tables name metric met of scenario s: ↓ when
// lower is better, bold when it is the primary one.
func metricName(s *Scenario, met Metric) string {
	name := string(met)
	if lowerIsBetter[met] {
		name += " ↓"
	}
	if met == s.Primary {
		name = "**" + name + "**"
	}
	return name
}

// writeVariantRows puts a scenario with variants into the main table by
// its primary metric alone: halo against each way of running HAProxy, the
// HAProxy figure in the haproxy column. Its other metrics are in its own
// table (writeProxyTable).
func writeVariantRows(w io.Writer, s *Scenario) {
	for _, p := range s.Proxies()[1:] {
		r, pairs := s.Ratio(Halo, p, s.Primary)
		fmt.Fprintf(w, "| %s | %s, against %s | %s | %s | %s | %s |\n", s.Title, metricName(s, s.Primary), s.label(p),
			format(s.Median(Halo, s.Primary)), format(s.Median(p, s.Primary)), formatRatio(r), formatRatios(pairs))
	}
}

// writeProxyTable writes every metric of a scenario with variants, one row
// per proxy, each figure the median of that proxy's runs.
func writeProxyTable(w io.Writer, t *Table, s *Scenario) {
	fmt.Fprintf(w, "### %s (%s)\n\nMedians over each proxy's %d runs, column by column.\n\n| proxy |", s.Title, t.Name, len(s.Runs[Halo]))
	for _, met := range s.Metrics {
		fmt.Fprintf(w, " %s |", metricName(s, met))
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---:|", len(s.Metrics)))
	for _, p := range s.Proxies() {
		fmt.Fprintf(w, "| %s |", s.label(p))
		for _, met := range s.Metrics {
			fmt.Fprintf(w, " %s |", format(s.Median(p, met)))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func format(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case math.Abs(v) >= 1000:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

func formatRatio(r float64) string {
	if math.IsNaN(r) {
		return "—"
	}
	return fmt.Sprintf("%.2f", r)
}

func formatRatios(rs []float64) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = formatRatio(r)
	}
	return strings.Join(s, " ")
}

// WriteSVG draws the halo/haproxy ratio of each scenario's primary metric,
// one bar per table, with a line at parity. Bars of lower-is-better metrics
// are drawn as the inverse, so that longer is better for every bar.
func WriteSVG(w io.Writer, title string, tables []*Table) {
	var names []string
	for _, t := range tables {
		for _, s := range t.Scenarios {
			if s.Pending == "" && !slices.Contains(names, s.Name) {
				names = append(names, s.Name)
			}
		}
	}
	const (
		left, barH, gap, width, maxRatio = 260, 14, 10, 720, 2.0
	)
	colors := []string{"#2b6cb0", "#dd6b20", "#38a169"}
	rowH := barH*len(tables) + gap
	height := 60 + rowH*len(names) + 40
	scale := float64(width-left-60) / maxRatio
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(w, `<text x="10" y="20" font-size="14" font-weight="bold">%s</text>`+"\n", html.EscapeString(title))
	fmt.Fprintf(w, `<text x="10" y="38">halo relative to HAProxy (1.0 = parity, longer is better; ↓ metrics drawn as haproxy/halo)</text>`+"\n")
	y := 55
	for _, name := range names {
		label := name
		for ti, t := range tables {
			s := t.Scenario(name)
			if s == nil || s.Pending != "" {
				continue
			}
			r, _ := s.Ratio(Halo, HAProxy, s.Primary)
			if lowerIsBetter[s.Primary] {
				// 1/0 is +Inf: halo at none where HAProxy had some (errors
				// per reload), drawn at the end of the scale.
				r = 1 / r
			}
			if ti == 0 {
				label = fmt.Sprintf("%s (%s)", name, s.Primary)
			}
			by := y + ti*barH
			bw := 0.0
			if !math.IsNaN(r) {
				bw = math.Min(r, maxRatio) * scale
			}
			fmt.Fprintf(w, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", left, by, bw, barH-2, colors[ti%len(colors)])
			value := formatRatio(r)
			if math.IsInf(r, 1) {
				value = "∞"
			}
			fmt.Fprintf(w, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(left)+bw+4, by+barH-4, value)
		}
		fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", left-6, y+barH, html.EscapeString(label))
		y += rowH
	}
	px := float64(left) + scale
	fmt.Fprintf(w, `<line x1="%.1f" y1="48" x2="%.1f" y2="%d" stroke="black" stroke-dasharray="4 3"/>`+"\n", px, px, y)
	fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">1.0</text>`+"\n", px, y+14)
	for ti, t := range tables {
		lx := left + ti*160
		fmt.Fprintf(w, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			lx, y+22, colors[ti%len(colors)], lx+16, y+32, html.EscapeString(t.Name))
	}
	fmt.Fprintln(w, `</svg>`)
}
