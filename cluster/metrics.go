package cluster

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the cluster's Prometheus metrics, in their own registry that
// the stats endpoint gathers with the proxy's.
type metrics struct {
	lease    time.Duration
	reg      *prometheus.Registry
	quorum   prometheus.Gauge
	leader   prometheus.Gauge
	members  prometheus.Gauge
	fencedN  prometheus.Gauge
	held     *prometheus.GaugeVec
	holder   *prometheus.GaugeVec
	fences   *prometheus.CounterVec
	duration prometheus.Histogram
}

func newMetrics(lease time.Duration) *metrics {
	m := &metrics{
		lease:   lease,
		reg:     prometheus.NewRegistry(),
		quorum:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "halo_cluster_quorum", Help: "1 while this node holds a valid lease from a leader with quorum."}),
		leader:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "halo_cluster_leader", Help: "1 while this node is the cluster's leader."}),
		members: prometheus.NewGauge(prometheus.GaugeOpts{Name: "halo_cluster_members_heard", Help: "Voters heard from within a lease, this node included."}),
		fencedN: prometheus.NewGauge(prometheus.GaugeOpts{Name: "halo_cluster_fenced_nodes", Help: "Nodes fenced and not yet unfenced."}),
		held:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "halo_cluster_vip_held", Help: "1 while this node has the VIP in its kernel."}, []string{"vip"}),
		holder:  prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "halo_cluster_vip_assigned", Help: "1 while the replicated table gives the VIP to some node (0: the VIP is down)."}, []string{"vip"}),
		fences:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "halo_cluster_fence_runs_total", Help: "Fence agent runs by this node, by target node, action and result."}, []string{"node", "action", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "halo_cluster_fence_duration_seconds", Help: "How long fence agent runs took.",
			Buckets: []float64{0.1, 0.5, 1, 5, 15, 60}}),
	}
	m.reg.MustRegister(m.quorum, m.leader, m.members, m.fencedN, m.held, m.holder, m.fences, m.duration)
	return m
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *metrics) update(st *Status) {
	m.quorum.Set(b2f(st.Quorum))
	m.leader.Set(b2f(st.IsLeader))
	heard, fenced := 0, 0
	for _, mb := range st.Members {
		if mb.Name == st.Node || mb.HeardAgo >= 0 && mb.HeardAgo <= m.lease {
			heard++
		}
		if mb.Fenced {
			fenced++
		}
	}
	m.members.Set(float64(heard))
	m.fencedN.Set(float64(fenced))
	for _, v := range st.VIPs {
		m.held.WithLabelValues(v.Address).Set(b2f(v.HeldHere))
		m.holder.WithLabelValues(v.Address).Set(b2f(v.Holder != ""))
	}
}

func (m *metrics) fenced(r FenceRecord) {
	res := "ok"
	if !r.OK {
		res = "failed"
	}
	m.fences.WithLabelValues(r.Node, r.Action, res).Inc()
	m.duration.Observe(r.Duration.Seconds())
}

// Gatherer is the cluster's metrics, for the stats endpoint.
func (c *Cluster) Gatherer() prometheus.Gatherer { return c.metrics.reg }
