package proxy

import (
	"os"
	"testing"
	"time"

	"github.com/halo-lb/halo/health"
	"github.com/halo-lb/halo/internal/testdb"
	"github.com/halo-lb/halo/internal/testnet"
	"go.uber.org/zap"
)

// TestMain fails the package's run when its tests leave goroutines or
// descriptors behind, once the database servers some tests share are
// stopped.
func TestMain(m *testing.M) {
	startHealthEngine()
	os.Exit(testnet.MainCheckingLeaks(m, testdb.StopAll, leakIgnores...))
}

// leakIgnores are the functions whose goroutines outlive the tests by
// design. Each
// is a fixed number per process or ends on its own after a proxy's
// Shutdown; what such a goroutine serves (a server, a connection) is still
// checked through its other goroutines and its descriptors.
var leakIgnores = []string{
	// fasthttp refreshes its Date header value once a second in one
	// goroutine for the process, started by the first server.
	"github.com/valyala/fasthttp.updateServerDate.func1",
	// TCP connect checks share one engine goroutine for the process
	// (health/tcpengine_linux.go); its descriptors exist before the
	// snapshot (startHealthEngine).
	"github.com/halo-lb/halo/health.(*tcpEngine).run",
	// A fasthttp server's worker pool cleaner sleeps for
	// MaxIdleWorkerDuration (10 s) between rounds and sees the pool
	// stopped only when it wakes. The server's own goroutines (Serve,
	// its connections) are not ignored.
	"github.com/valyala/fasthttp.(*workerPool).Start.func2",
	// A fasthttp host client's idle-connection cleaner sleeps for
	// MaxIdleConnDuration (10 s) and ends when it wakes to no
	// connection. The connections themselves are descriptors, counted.
	"github.com/valyala/fasthttp.(*HostClient).connsCleaner",
}

// startHealthEngine has the shared TCP check engine open its epoll and
// eventfd descriptors, which it keeps for the process's life, before the
// leak check counts descriptors: a check of a port nothing listens on,
// stopped at once.
func startHealthEngine() {
	m := health.Start(health.Spec{Backend: "leakcheck", Server: "s", Addr: "127.0.0.1:1", Inter: time.Hour, Timeout: time.Second, Rise: 1, Fall: 1, Up: true},
		health.TCPChecker{}, nopSetter{}, zap.NewNop())
	m.Stop()
}

type nopSetter struct{}

func (nopSetter) SetHealthy(bool) {}
