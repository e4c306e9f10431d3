package stats

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/internal/panics"
	"github.com/halo-lb/halo/proxy"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// panickySource is the proxy as stats reads it, but its Listeners panics
// while panicking is set, as a bug in what a command reads would.
type panickySource struct {
	*proxy.Proxy
	panicking atomic.Bool
}

func (p *panickySource) Listeners() int {
	if p.panicking.Load() {
		panic("test panic reading the source")
	}
	return p.Proxy.Listeners()
}

// A command that panics ends its own runtime API session, not the process:
// the client's connection closes without an answer, the socket's one
// session slot is free again, and the next session's show info and the
// metrics count the panic (RecoveredPanics, halo_process_recovered_panics_total);
// the panic is logged once with the socket.
func TestPanicInCommandEndsOnlyItsSession(t *testing.T) {
	r, _, _ := twoServerRig(t)
	core, logs := observer.New(zap.ErrorLevel)
	src := &panickySource{Proxy: r.p}
	s := New(src, r.p, zap.New(core), Options{Version: "test"})
	t.Cleanup(s.Close)
	path := filepath.Join(r.dir, "panicky.sock")
	if err := s.ServeSockets(config.Stats{Sockets: []config.StatsSocket{{Path: path, Mode: 0o600, Level: config.LevelAdmin, MaxConn: 1}}}); err != nil {
		t.Fatal(err)
	}
	ask := func(line string) string {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, line+"\n")
		out, err := io.ReadAll(c)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return string(out)
	}
	before := panics.Count()
	src.panicking.Store(true)
	if out := ask("show info"); out != "" {
		t.Fatalf("the session whose command panicked answered %q", out)
	}
	src.panicking.Store(false)
	want := fmt.Sprintf("RecoveredPanics: %d\n", before+1)
	if out := ask("show info"); !strings.Contains(out, want) {
		t.Fatalf("show info after the panic lacks %q:\n%s", want, out)
	}
	if got := metricValue(t, s.gather(), "halo_process_recovered_panics_total"); got != float64(before+1) {
		t.Errorf("halo_process_recovered_panics_total is %v, want %d", got, before+1)
	}
	lines := logs.FilterMessage("panic in a runtime API session")
	if lines.Len() != 1 || lines.All()[0].ContextMap()["socket"] != path || lines.All()[0].ContextMap()["panic"] != "test panic reading the source" {
		t.Errorf("panic lines: %v", lines.All())
	}
}

// show stat's eint and the internal_errors_total metrics read the
// frontend's, backend's and server's InternalErrors, which the proxy
// counts when it recovers a panic (its own tests make it panic).
func TestInternalErrorsShown(t *testing.T) {
	r, _, _ := twoServerRig(t)
	r.p.FrontendCounters("fe").InternalErrors.Add(2)
	r.p.BackendCounters("be").InternalErrors.Add(3)
	r.p.Server("be", "s1").InternalErrors.Add(4)
	_, rows, _ := csvRows(t, r.cmd("admin.sock", "show stat"))
	for key, want := range map[string]string{"fe/FRONTEND": "2", "be/BACKEND": "3", "be/s1": "4", "be/s2": "0"} {
		if got := rows[key]["eint"]; got != want {
			t.Errorf("%s eint = %q, want %s", key, got, want)
		}
	}
	fams := r.s.gather()
	for name, want := range map[string]float64{`haproxy_frontend_internal_errors_total{proxy="fe"}`: 2,
		`haproxy_backend_internal_errors_total{proxy="be"}`: 3, `haproxy_server_internal_errors_total{proxy="be",server="s1"}`: 4} {
		if got := metricValue(t, fams, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// metricValue reads one sample, named as the text format names it
// (name{label="value",...}, labels in their order).
func metricValue(t *testing.T, fams []*dto.MetricFamily, sample string) float64 {
	t.Helper()
	for _, f := range fams {
		for _, m := range f.Metric {
			name := f.GetName()
			if len(m.Label) > 0 {
				var ls []string
				for _, l := range m.Label {
					ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				name += "{" + strings.Join(ls, ",") + "}"
			}
			if name != sample {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	t.Fatalf("no sample %s", sample)
	return 0
}
