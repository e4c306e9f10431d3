package stats

import (
	"cmp"
	"slices"
	"sync/atomic"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
)

// Filter selects rows as show stat's "{proxy} {type} {sid}" arguments do.
type Filter struct {
	Proxy string // a name or an iid; "" or "-1": every proxy
	Types int    // bit 1 frontends, 2 backends, 4 servers; -1: all
	SID   int    // a server id; -1: every server
}

// AllRows selects everything.
var AllRows = Filter{Types: -1, SID: -1}

// Table is every row of one reading, in HAProxy's order: per proxy (by
// iid) its FRONTEND, its servers, its BACKEND.
type Table struct {
	Rows []Row
	At   time.Time
}

// proxyEntry is one name of the configuration with what it is.
type proxyEntry struct {
	name string
	iid  int
	fe   *config.Frontend
	be   *config.Backend
}

func (s *Stats) proxies(cfg *config.Config) []proxyEntry {
	byName := map[string]*proxyEntry{}
	var list []*proxyEntry
	get := func(name string) *proxyEntry {
		if e := byName[name]; e != nil {
			return e
		}
		e := &proxyEntry{name: name}
		byName[name] = e
		list = append(list, e)
		return e
	}
	for _, fe := range cfg.Frontends {
		get(fe.Name).fe = fe
	}
	for _, be := range cfg.Backends {
		get(be.Name).be = be
	}
	// Names first seen together get their numbers in name order; the
	// numbers then stay put.
	slices.SortFunc(list, func(a, b *proxyEntry) int { return cmp.Compare(a.name, b.name) })
	out := make([]proxyEntry, len(list))
	for i, e := range list {
		e.iid = s.ids.proxy(e.name)
		out[i] = *e
	}
	slices.SortFunc(out, func(a, b proxyEntry) int { return cmp.Compare(a.iid, b.iid) })
	return out
}

// Table reads the rows that f selects.
func (s *Stats) Table(f Filter) Table { return s.tableInto(nil, f) }

// tableInto is Table appending to rows[:0], so that a caller reading
// tables often (the metrics endpoint) reuses one array.
func (s *Stats) tableInto(rows []Row, f Filter) Table {
	t := Table{At: time.Now(), Rows: rows[:0]}
	cfg := s.src.Config()
	if cfg == nil {
		return t
	}
	n := len(cfg.Frontends) + len(cfg.Backends)
	for _, be := range cfg.Backends {
		n += len(be.Servers)
	}
	if cap(t.Rows) < n {
		t.Rows = make([]Row, 0, n)
	}
	for _, p := range s.proxies(cfg) {
		if f.Proxy != "" && f.Proxy != "-1" && f.Proxy != p.name && f.Proxy != itoa(p.iid) {
			continue
		}
		if p.fe != nil && f.wants(ObjFrontend) {
			t.Rows = append(t.Rows, Row{})
			s.frontendRow(&t.Rows[len(t.Rows)-1], p)
		}
		if p.be == nil {
			continue
		}
		queues := make([]int, len(p.be.Servers))
		anyQueued := s.src.QueueLengths(p.be.Name, queues)
		agg := backendTotals{}
		for i := range p.be.Servers {
			sc := &p.be.Servers[i]
			st := s.src.Server(p.be.Name, sc.Name)
			if st == nil {
				continue
			}
			t.Rows = append(t.Rows, Row{})
			r := &t.Rows[len(t.Rows)-1]
			s.serverRow(r, p, sc, st, queues[i])
			agg.add(r, sc, st)
			if !f.wants(ObjServer) || (f.SID >= 0 && f.SID != r.SID) {
				t.Rows = t.Rows[:len(t.Rows)-1]
			}
		}
		if f.wants(ObjBackend) {
			t.Rows = append(t.Rows, Row{})
			s.backendRow(&t.Rows[len(t.Rows)-1], p, anyQueued, &agg)
		}
	}
	return t
}

func (f Filter) wants(t ObjType) bool { return f.Types < 0 || f.Types&t.mask() != 0 }

// The columns HAProxy 2.6 fills for each kind of row even when nothing
// happened (read off the real HAProxy's output): halo sets them to 0 where
// it has nothing more to say (no compression, no TLS or HTTP/2 yet), so
// that tools reading them as numbers find numbers.
var (
	frontendZeros = []Field{FDreq, FDresp, FRateLim, FCompIn, FCompOut, FCompByp, FCompRsp, FIntercepted, FDcon, FDses,
		FWrew, FEint}
	httpFrontendZeros = []Field{FCacheLookups, FCacheHits}
	backendZeros      = []Field{FDreq, FDresp, FCliAbrt, FSrvAbrt, FCompIn, FCompOut, FCompByp, FCompRsp, FWrew, FConnect,
		FReuse, FEint, FAggCheckStatus}
	httpBackendZeros = []Field{FCacheLookups, FCacheHits}
	serverZeros      = []Field{FCliAbrt, FSrvAbrt, FWrew, FConnect, FReuse, FSrvIcur, FEint, FIdleConnCur,
		FSafeConnCur, FNeedConnEst, FSslSess, FSslReusedSess, FSslFailedHandshake}
)

// moduleZeros are the module columns (ssl, h2, h1) of frontends and
// backends.
func moduleZeros(r *Row) {
	for f := firstModuleField; f < NumFields; f++ {
		r.setN(f, 0)
	}
}

func (s *Stats) frontendRow(r *Row, p proxyEntry) {
	r.Type, r.IID = ObjFrontend, p.iid
	r.setS(FPxname, p.name)
	r.setS(FSvname, "FRONTEND")
	c := s.src.FrontendCounters(p.name)
	if c == nil {
		c = &balancer.Counters{}
	}
	v := s.samples.view(sampleKey{ObjFrontend, p.name, ""})
	r.setN(FScur, c.CurConns.Load())
	r.setN(FSmax, c.MaxConns.Load())
	slim := s.src.FrontendMaxConn(p.name)
	if slim == 0 {
		slim = s.src.GlobalMaxConn()
	}
	if slim > 0 {
		r.setN(FSlim, int64(slim))
	}
	r.setU(FStot, c.TotalConns.Load())
	r.setU(FBin, c.BytesIn.Load())
	r.setU(FBout, c.BytesOut.Load())
	r.setU(FEreq, c.Errors.Load())
	status := "OPEN"
	if s.src.Stopping() {
		status = "STOP"
	}
	r.setS(FStatus, status)
	r.setN(FPid, 1)
	r.setN(FIid, int64(p.iid))
	r.setN(FSid, 0)
	r.setN(FType, int64(ObjFrontend))
	r.setU(FRate, v.sessRate)
	r.setU(FRateMax, v.sessMax)
	r.setU(FConnRate, v.sessRate)
	r.setU(FConnRateMax, v.sessMax)
	r.setU(FConnTot, c.TotalConns.Load())
	r.setS(FMode, string(p.fe.Mode))
	r.setU(FReqRate, v.reqRate)
	r.setU(FReqRateMax, v.reqMax)
	r.setU(FReqTot, c.Requests.Load())
	if p.fe.Mode == config.ModeHTTP {
		setStatusClasses(r, &c.HTTPStatus)
		r.zero(httpFrontendZeros)
	}
	r.zero(frontendZeros)
	r.setU(FDreq, c.DeniedReq.Load())
	r.setU(FDresp, c.DeniedResp.Load())
	r.setU(FDcon, c.DeniedConn.Load())
	r.setU(FDses, c.DeniedSess.Load())
	r.setU(FEint, c.InternalErrors.Load())
	moduleZeros(r)
	r.setU(FSslSess, c.TLSSessions.Load())
	r.setU(FSslReusedSess, c.TLSReused.Load())
	r.setU(FSslFailedHandshake, c.TLSFailed.Load())
}

func setStatusClasses(r *Row, st *[6]atomic.Uint64) {
	for i, f := range []Field{FHrspOther, FHrsp1xx, FHrsp2xx, FHrsp3xx, FHrsp4xx, FHrsp5xx} {
		r.setU(f, st[i].Load())
	}
}
