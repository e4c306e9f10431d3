// Package stats owns halo's operator interfaces: HAProxy's runtime API on
// UNIX sockets (and "halo ctl"), the HTTP stats page, and the Prometheus
// metrics. All of them render one column table, HAProxy's "show stat" in
// its order (columns.go), built from the counters and state the proxy
// keeps. It reads through the narrow Source interface and changes state
// only through Admin and the balancer's setters: it never reaches into the
// data path, which pays nothing for it beyond the counters and timings it
// keeps anyway. A binary upgrade passes its sockets, and the numbers it
// gives proxies and servers, to the next process (upgrade.go).
package stats

import (
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Stats serves the runtime API, the page and the metrics of one process.
// It outlives configurations: identifiers, rate samples and the sockets'
// listeners are kept across reloads.
type Stats struct {
	src     Source
	admin   Admin
	log     *zap.Logger
	version string
	started time.Time
	pid     int

	ids     ids
	samples *sampler
	stop    chan struct{}
	once    sync.Once

	sockets sockets
	page    pageState

	metrics  metricsState
	cluster  clusterRef
	upgrader upgraderRef
}

// Options are what Stats needs to know about the process.
type Options struct {
	// Version is halo's version, shown unless a page hides it.
	Version string
	// Started is when the process started (show info's uptime).
	Started time.Time
}

// New returns a Stats reading src and changing state through admin. It
// starts sampling rates at once; Close stops it and the sockets.
func New(src Source, admin Admin, log *zap.Logger, opt Options) *Stats {
	s := &Stats{src: src, admin: admin, log: log, version: opt.Version, started: opt.Started, pid: os.Getpid(),
		samples: newSampler(), stop: make(chan struct{})}
	if s.started.IsZero() {
		s.started = time.Now()
	}
	s.ids.init()
	s.page.init()
	go s.samples.run(src, s.stop)
	return s
}

// Close stops the sampler and closes the sockets.
func (s *Stats) Close() {
	s.once.Do(func() { close(s.stop) })
	s.sockets.closeAll()
}

// ids gives every proxy and server a number that stays the same across
// reloads (HAProxy's iid and sid), as long as the process runs: a name seen
// again keeps its number, a new one gets the next.
type ids struct {
	mu       sync.Mutex
	proxies  map[string]int
	servers  map[[2]string]int
	nextIID  int
	nextSIDs map[string]int
}

func (d *ids) init() {
	d.proxies, d.servers, d.nextSIDs = map[string]int{}, map[[2]string]int{}, map[string]int{}
	d.nextIID = 2 // as HAProxy, whose first proxy of a file is 2
}

func (d *ids) proxy(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	id, ok := d.proxies[name]
	if !ok {
		id = d.nextIID
		d.nextIID++
		d.proxies[name] = id
	}
	return id
}

func (d *ids) server(backend, name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := [2]string{backend, name}
	id, ok := d.servers[k]
	if !ok {
		d.nextSIDs[backend]++
		id = d.nextSIDs[backend]
		d.servers[k] = id
	}
	return id
}
