package main

import (
	"errors"
	"testing"

	"github.com/halo-lb/halo/cluster"
	"github.com/halo-lb/halo/config"
	"go.uber.org/zap"
)

// The cluster node of a process that replaced one with a node starts only
// when the handover frees it (the old node has left, or the old process
// is gone), never twice, and never once this process stops; a process
// without a cluster section starts none.
func TestClusterNodeWaitsForTheOldOne(t *testing.T) {
	starts := 0
	n := newClusterNode(&config.Cluster{Node: "n1"}, nil, nil, zap.NewNop())
	n.start = func(*config.Cluster, cluster.LocalHealth, *zap.Logger) (*cluster.Cluster, error) {
		starts++
		return nil, errors.New("the raft store is locked")
	}
	n.later()
	if !n.running() || starts != 0 {
		t.Fatalf("a node to start later: running %v, %d starts", n.running(), starts)
	}
	if err := n.startNow(); err == nil || starts != 1 {
		t.Fatalf("startNow: %v, %d starts", err, starts)
	}
	if n.running() {
		t.Error("a node whose start failed counts as running")
	}
	if n.stop() {
		t.Error("stop reports a node that never started")
	}
	if err := n.startNow(); err != nil || starts != 1 {
		t.Errorf("a node started after the process stopped: %v, %d starts", err, starts)
	}
	none := newClusterNode(nil, nil, nil, zap.NewNop())
	none.later()
	if none.running() || none.startNow() != nil {
		t.Error("a process without a cluster section runs a node")
	}
}
