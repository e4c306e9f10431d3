package stats

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeCluster answers as the cluster module would.
type fakeCluster struct {
	unfenced []string
	reg      *prometheus.Registry
}

func (f *fakeCluster) Command(words []string) string {
	switch {
	case len(words) == 1 && words[0] == "status":
		return "node ctl1  leader ctl2  quorum yes  table index 7\n"
	case len(words) == 2 && words[0] == "status":
		return "{\"node\": \"ctl1\"}\n"
	case len(words) == 2 && words[0] == "unfence" && words[1] == "ctl3":
		f.unfenced = append(f.unfenced, words[1])
		return "asked the leader to unfence ctl3\n"
	}
	return "error: ctl9 is not fenced\n"
}

func (f *fakeCluster) Gatherer() prometheus.Gatherer { return f.reg }

func TestShowClusterAndUnfence(t *testing.T) {
	r, _, _ := twoServerRig(t)
	if out := r.cmd("admin.sock", "show cluster"); !strings.Contains(out, "no cluster section") {
		t.Fatalf("show cluster without a cluster: %q", out)
	}
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "halo_cluster_quorum", Help: "h"})
	g.Set(1)
	reg.MustRegister(g)
	f := &fakeCluster{reg: reg}
	r.s.SetCluster(f)
	if out := r.cmd("user.sock", "show cluster"); !strings.HasPrefix(out, "node ctl1  leader ctl2") {
		t.Fatalf("show cluster: %q", out)
	}
	if out := r.cmd("user.sock", "show cluster json"); !strings.Contains(out, `"node"`) {
		t.Fatalf("show cluster json: %q", out)
	}
	if out := r.cmd("user.sock", "cluster unfence ctl3"); !strings.Contains(out, "Permission denied") || len(f.unfenced) != 0 {
		t.Fatalf("cluster unfence at user level: %q (unfenced %v)", out, f.unfenced)
	}
	if out := r.cmd("admin.sock", "cluster unfence ctl3"); !strings.Contains(out, "asked the leader") || len(f.unfenced) != 1 {
		t.Fatalf("cluster unfence: %q", out)
	}
	if out := r.cmd("admin.sock", "cluster unfence ctl9"); !strings.HasPrefix(out, "ctl9 is not fenced") {
		t.Fatalf("cluster unfence of a node that is not fenced: %q", out)
	}
	fams := r.s.gather()
	found := false
	for _, f := range fams {
		found = found || f.GetName() == "halo_cluster_quorum"
	}
	if !found {
		t.Fatal("the metrics endpoint does not gather the cluster's metrics")
	}
}
