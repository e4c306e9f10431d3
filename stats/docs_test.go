package stats

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

var updateMetricDocs = flag.Bool("update-metric-docs", false, "rewrite the metric list of docs/operations.md from a scrape")

const operationsDoc = "../docs/operations.md"

// The list of every metric starts here and runs to the end of the file.
const metricListStart = "### `haproxy_process_*`"

// TestEveryMetricDocumented: docs/operations.md lists every metric a scrape
// has, and no metric a scrape does not have. -update-metric-docs rewrites
// the list.
func TestEveryMetricDocumented(t *testing.T) {
	s1 := startBackend(t, "s1")
	r := newRig(t, twoServers+`
listen:
  stats:
    bind: ["127.0.0.1:0"]
    stats: {enable: true, uri: /stats, prometheus: /metrics}
`, map[string]string{"S1": s1.addr(), "S2": "127.0.0.1:9"})
	// Every metric a server can have: its checks have run.
	waitFor(t, 3*time.Second, "both servers checked", func() bool {
		_, rows, _ := csvRows(t, r.cmd("admin.sock", "show stat"))
		return rows["be/s1"]["check_status"] != "" && rows["be/s2"]["check_status"] != ""
	})
	resp, err := http.Get("http://" + r.frontend("fe") + "/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	fams := r.s.gather()
	doc, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	if *updateMetricDocs {
		i := strings.Index(string(doc), metricListStart)
		if i < 0 {
			t.Fatalf("%s has no %q", operationsDoc, metricListStart)
		}
		out := string(doc[:i]) + metricList(fams)
		if err := os.WriteFile(operationsDoc, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	scraped := map[string]bool{}
	for _, f := range fams {
		scraped[f.GetName()] = true
		if !strings.Contains(string(doc), "`"+f.GetName()+"`") && !strings.Contains(string(doc), "`"+f.GetName()+"{") {
			t.Errorf("%s does not list %s (run go test ./stats -run TestEveryMetricDocumented -update-metric-docs)", operationsDoc, f.GetName())
		}
	}
	list := string(doc)[strings.Index(string(doc), metricListStart):]
	for _, m := range regexp.MustCompile("`((haproxy|halo_process|go)_[a-z0-9_]+)[`{]").FindAllStringSubmatch(list, -1) {
		name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m[1], "_bucket"), "_sum"), "_count")
		if !scraped[m[1]] && !scraped[name] {
			t.Errorf("%s names %s, which a scrape does not have", operationsDoc, m[1])
		}
	}
}

// metricList writes the list: per prefix, each family with its labels,
// type and help.
func metricList(fams []*dto.MetricFamily) string {
	groups := map[string][]*dto.MetricFamily{}
	for _, f := range fams {
		prefix := "go_"
		for _, p := range []string{"haproxy_process_", "haproxy_frontend_", "haproxy_backend_", "haproxy_server_", "halo_process_"} {
			if strings.HasPrefix(f.GetName(), p) {
				prefix = p
			}
		}
		groups[prefix] = append(groups[prefix], f)
	}
	var b strings.Builder
	for _, prefix := range []string{"haproxy_process_", "haproxy_frontend_", "haproxy_backend_", "haproxy_server_", "halo_process_", "go_"} {
		list := groups[prefix]
		sort.Slice(list, func(i, j int) bool { return list[i].GetName() < list[j].GetName() })
		fmt.Fprintf(&b, "### `%s*` (%d)\n\n", prefix, len(list))
		for _, f := range list {
			var labels []string
			if len(f.Metric) > 0 {
				for _, lp := range f.Metric[0].Label {
					labels = append(labels, lp.GetName())
				}
			}
			name := f.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			fmt.Fprintf(&b, "- `%s` %s: %s\n", name, strings.ToLower(f.GetType().String()), f.GetHelp())
		}
		b.WriteString("\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}
