package stats

import (
	"net"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/health"
	"github.com/halo-lb/halo/proxy/h1"
)

// Source is what stats reads: the live configuration, its counters and the
// state kept for it. The proxy implements it over its live snapshot, so no
// call waits on a reload; every method is control path and may be called
// from any goroutine.
type Source interface {
	// Config is the live configuration, nil before the first one.
	Config() *config.Config
	FrontendCounters(name string) *balancer.Counters
	BackendCounters(name string) *balancer.Counters
	// Server is the state of backend/server in the live configuration.
	Server(backend, server string) *balancer.Server
	LastCheck(backend, server string) (health.Checked, bool)
	CheckProgress(backend, server string) (health.Progress, bool)
	AgentPaused(backend, server string) (paused, has bool)
	// QueueLengths fills servers (configuration order) with how many
	// sessions wait for each and returns how many wait for any.
	QueueLengths(backend string, servers []int) int
	ServerConns(backend, server string) int
	// BackendUpDown is the backend's own UP/DOWN history: how often it
	// had no usable server, its last change, its total time DOWN.
	BackendUpDown(name string) (downs uint64, lastChange time.Time, downtime time.Duration, ok bool)
	EffectiveWeight(backend, server string) int
	FrontendMaxConn(name string) int
	ActiveConns() int64
	GlobalMaxConn() int
	Listeners() int
	Stopping() bool
	EachSession(f func(id, frontend, mode string, client, local net.Addr, age time.Duration))
	LastBadRequest(frontend string) *h1.Capture
	LastBadResponse(backend string) *h1.Capture
}

// Admin is how the runtime API and the page change state, beside the
// setters of balancer.Server itself (SetAdmin, SetAgentUp, SetNoLB,
// SetMaxConn). The proxy implements it.
type Admin interface {
	SetWeight(backend, server string, value int, relative bool) error
	SetHealthPaused(backend, server string, paused bool) error
	ForceHealth(backend, server string, up bool) error
	SetAgentPaused(backend, server string, paused bool) error
	SetFrontendMaxConn(name string, n int) error
	SetGlobalMaxConn(n int)
	ShutdownServerSessions(backend, server string) (int, error)
	ShutdownSession(id string) bool
	ClearCounters(all bool)
}
