package stats

import (
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Cluster is what the runtime API and the metrics endpoint need of the
// cluster module, when the configuration has one.
type Cluster interface {
	// Command runs "status [json]" or "unfence NODE" and returns the
	// output; an error's starts with "error: ".
	Command(words []string) string
	// Gatherer is the cluster's metrics.
	Gatherer() prometheus.Gatherer
}

type clusterRef struct{ c atomic.Pointer[Cluster] }

// SetCluster gives the runtime API its "show cluster" and "cluster unfence"
// commands, and the metrics endpoint the cluster's metrics.
func (s *Stats) SetCluster(c Cluster) { s.cluster.c.Store(&c) }

func (s *Stats) clusterOf() Cluster {
	if p := s.cluster.c.Load(); p != nil {
		return *p
	}
	return nil
}

func cmdShowCluster(s *Stats, _ *session, args []string) string {
	c := s.clusterOf()
	if c == nil {
		return "This process runs no cluster node (no cluster section).\n"
	}
	words := []string{"status"}
	if len(args) == 1 && args[0] == "json" {
		words = append(words, "json")
	} else if len(args) > 0 {
		return "Usage: show cluster [json]\n"
	}
	return c.Command(words)
}

func cmdClusterUnfence(s *Stats, _ *session, args []string) string {
	c := s.clusterOf()
	if c == nil {
		return "This process runs no cluster node (no cluster section).\n"
	}
	if len(args) != 1 {
		return "Usage: cluster unfence <node>\n"
	}
	out := c.Command([]string{"unfence", args[0]})
	return strings.TrimPrefix(out, "error: ")
}
