package stats

import (
	"fmt"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/health"
)

// serverRow reads one server's row.
func (s *Stats) serverRow(r *Row, p proxyEntry, sc *config.Server, st *balancer.Server, queued int) {
	be := p.be
	r.Type, r.IID, r.SID = ObjServer, p.iid, s.ids.server(be.Name, sc.Name)
	r.setS(FPxname, be.Name)
	r.setS(FSvname, sc.Name)
	v := s.samples.view(sampleKey{ObjServer, be.Name, sc.Name})
	r.setN(FQcur, int64(queued))
	r.setN(FQmax, st.MaxQueued.Load())
	r.setN(FScur, st.CurConns())
	r.setN(FSmax, st.MaxServed.Load())
	if limit := serverMaxConn(sc, st); limit > 0 {
		r.setN(FSlim, int64(limit))
	}
	r.setU(FStot, st.TotalConns.Load())
	r.setU(FBin, st.BytesIn.Load())
	r.setU(FBout, st.BytesOut.Load())
	r.setU(FEcon, st.ConnErrors.Load())
	r.setU(FEresp, st.RespErrors.Load())
	r.setU(FDresp, st.DeniedResp.Load())
	r.setU(FWretr, st.Retries.Load())
	r.setU(FWredis, st.Redispatch.Load())
	r.setU(FEint, st.InternalErrors.Load())
	progress, checked := s.src.CheckProgress(be.Name, sc.Name)
	agentPaused, hasAgent := s.src.AgentPaused(be.Name, sc.Name)
	r.setS(FStatus, serverStatus(st, sc, progress, checked))
	r.setN(FWeight, int64(s.src.EffectiveWeight(be.Name, sc.Name)))
	r.setN(FUweight, int64(st.Weight(sc.Weight)))
	if sc.Backup {
		r.setN(FAct, 0)
		r.setN(FBck, 1)
	} else {
		r.setN(FAct, 1)
		r.setN(FBck, 0)
	}
	r.setN(FLastchg, int64(time.Since(st.LastChange())/time.Second))
	if sc.MaxQueue > 0 {
		r.setN(FQlimit, int64(sc.MaxQueue))
	}
	r.setN(FPid, 1)
	r.setN(FIid, int64(p.iid))
	r.setN(FSid, int64(r.SID))
	r.setU(FLbtot, st.TotalConns.Load())
	r.setN(FType, int64(ObjServer))
	r.setU(FRate, v.sessRate)
	r.setU(FRateMax, v.sessMax)
	r.setN(FLastsess, lastSession(v))
	r.setS(FAddr, sc.Address)
	r.setS(FMode, string(be.Mode))
	if sc.Check {
		r.setU(FChkfail, st.ChecksFailed.Load())
		r.setU(FChkdown, st.ChecksDown.Load())
		r.setN(FDowntime, int64(st.Downtime()/time.Second))
		if checked {
			r.setN(FCheckRise, int64(progress.Rise))
			r.setN(FCheckFall, int64(progress.Fall))
			r.setN(FCheckHealth, int64(progress.Health))
		}
		if last, ok := s.src.LastCheck(be.Name, sc.Name); ok {
			setCheck(r, last, checked && progress.Paused)
		}
	}
	if hasAgent {
		r.setN(FAgentRise, 1)
		r.setN(FAgentFall, 1)
		if st.AgentUp() {
			r.setN(FAgentHealth, 1)
		} else {
			r.setN(FAgentHealth, 0)
		}
		status := "L7OK"
		if !st.AgentUp() {
			status = "L7STS"
		}
		if agentPaused {
			status = "* " + status
		}
		r.setS(FAgentStatus, status)
	}
	if be.Mode == config.ModeHTTP {
		setStatusClasses(r, &st.HTTPStatus)
		var total uint64
		for i := range st.HTTPStatus {
			total += st.HTTPStatus[i].Load()
		}
		r.setU(FReqTot, total)
	}
	setTimes(r, v, st)
	r.setN(FUsedConnCur, st.CurConns())
	if n := s.src.ServerConns(be.Name, sc.Name); be.Mode == config.ModeHTTP {
		r.setN(FIdleConnCur, max(0, int64(n)-st.CurConns()))
	}
	r.zero(serverZeros)
}

// serverMaxConn is the server's maxconn as applied now: an agent's or the
// runtime API's, else the configured one (0: none).
func serverMaxConn(sc *config.Server, st *balancer.Server) int {
	if m := st.MaxConn(); m >= 0 {
		return m
	}
	return sc.MaxConn
}

// lastSession is HAProxy's lastsess: seconds since the last session, -1
// when there was none.
func lastSession(v view) int64 {
	if v.lastSession.IsZero() {
		return -1
	}
	return int64(time.Since(v.lastSession) / time.Second)
}

// setTimes fills the averages (qtime, ctime, rtime, ttime) and maxima, in
// milliseconds as HAProxy shows them.
func setTimes(r *Row, v view, st *balancer.Server) {
	avg := []Field{FQtime, FCtime, FRtime, FTtime}
	maxes := []Field{FQtimeMax, FCtimeMax, FRtimeMax, FTtimeMax}
	for k := range avg {
		r.setN(avg[k], int64(v.averages[k]*1000+0.5))
		if st != nil {
			r.setN(maxes[k], int64(st.Timings.Read(balancer.TimingKind(k)).Max/time.Millisecond))
		}
	}
}

func setCheck(r *Row, last health.Checked, paused bool) {
	status := string(last.Status)
	if paused {
		status = "* " + status // HAProxy marks a disabled check this way
	}
	r.setS(FCheckStatus, status)
	r.setN(FCheckDuration, int64(last.Duration/time.Millisecond))
	// As HAProxy: check_desc says what the status means, last_chk what
	// the check found.
	desc, ok := checkDescs[last.Status]
	if !ok {
		desc = last.Desc
	}
	r.setS(FCheckDesc, desc)
	r.setS(FLastChk, last.Desc)
}

// checkDescs are the statuses' meanings, for check_desc.
var checkDescs = map[health.Status]string{
	health.L4OK: "Layer4 check passed", health.L4TOUT: "Layer4 timeout", health.L4CON: "Layer4 connection problem",
	health.L7OK: "Layer7 check passed", health.L7STS: "Layer7 wrong status", health.L7RSP: "Layer7 invalid response",
	health.L7TOUT: "Layer7 timeout", health.HANA: "Health analyze", health.SOCKERR: "Socket error",
}

// serverStatus is the status word HAProxy shows for a server: MAINT,
// DRAIN, NOLB, "no check", UP, DOWN, or a check on its way ("UP 1/3":
// one failed check of the 3 that take it down; "DOWN 1/2": one good check
// of the 2 that bring it up).
func serverStatus(st *balancer.Server, sc *config.Server, p health.Progress, checked bool) string {
	switch st.Admin() {
	case balancer.AdminMaint:
		return "MAINT"
	case balancer.AdminDrain:
		if st.Up() {
			return "DRAIN"
		}
	}
	if !st.AgentUp() {
		return "DOWN (agent)"
	}
	if !sc.Check || !checked || p.Paused {
		if !st.Up() {
			return "DOWN"
		}
		if st.NoLB() || st.LagDrained() {
			return "NOLB"
		}
		return "no check"
	}
	top := p.Rise + p.Fall - 1
	if st.Up() {
		word := "UP"
		if st.NoLB() || st.LagDrained() {
			word = "NOLB"
		}
		if p.Health < top && p.Health >= p.Rise {
			return fmt.Sprintf("%s %d/%d", word, p.Health-p.Rise+1, p.Fall)
		}
		return word
	}
	if p.Health > 0 {
		return fmt.Sprintf("DOWN %d/%d", p.Health, p.Rise)
	}
	return "DOWN"
}

// backendTotals sums what a backend row shows of its servers.
type backendTotals struct {
	act, bck, weight, uweight int64
	econ, eresp, retr, redis  uint64
	usable                    int
	servers                   int
	timings                   [4]float64 // weighted by each server's count
	timedCount                uint64
	maxTimes                  [4]int64
}

func (a *backendTotals) add(r *Row, sc *config.Server, st *balancer.Server) {
	a.servers++
	a.econ += uint64(r.Num(FEcon))
	a.eresp += uint64(r.Num(FEresp))
	a.retr += uint64(r.Num(FWretr))
	a.redis += uint64(r.Num(FWredis))
	if w := r.Num(FWeight); w > 0 {
		a.usable++
		a.weight += w
		if sc.Backup {
			a.bck++
		} else {
			a.act++
		}
	}
	a.uweight += r.Num(FUweight)
	n := st.Timings.Count.Load()
	a.timedCount += n
	for k, f := range []Field{FQtime, FCtime, FRtime, FTtime} {
		a.timings[k] += float64(r.Num(f)) * float64(n)
	}
	for k, f := range []Field{FQtimeMax, FCtimeMax, FRtimeMax, FTtimeMax} {
		a.maxTimes[k] = max(a.maxTimes[k], r.Num(f))
	}
}

func (s *Stats) backendRow(r *Row, p proxyEntry, queued int, a *backendTotals) {
	be := p.be
	r.Type, r.IID = ObjBackend, p.iid
	r.setS(FPxname, be.Name)
	r.setS(FSvname, "BACKEND")
	c := s.src.BackendCounters(be.Name)
	if c == nil {
		c = &balancer.Counters{}
	}
	v := s.samples.view(sampleKey{ObjBackend, be.Name, ""})
	r.setN(FQcur, int64(queued))
	r.setN(FQmax, c.MaxQueued.Load())
	r.setN(FScur, c.CurConns.Load())
	r.setN(FSmax, c.MaxConns.Load())
	// A backend's session limit is HAProxy's fullconn default: a tenth
	// of the frontends' maxconn; halo has no fullconn, and shows the
	// global limit's tenth the same way.
	if g := s.src.GlobalMaxConn(); g > 0 {
		r.setN(FSlim, int64(max(1, g/10)))
	}
	r.setU(FStot, c.TotalConns.Load())
	r.setU(FBin, c.BytesIn.Load())
	r.setU(FBout, c.BytesOut.Load())
	r.setU(FEcon, a.econ)
	r.setU(FEresp, a.eresp)
	r.setU(FWretr, a.retr)
	r.setU(FWredis, a.redis)
	status := "UP"
	if a.servers > 0 && a.usable == 0 {
		status = "DOWN"
	}
	r.setS(FStatus, status)
	r.setN(FWeight, a.weight)
	r.setN(FUweight, a.uweight)
	r.setN(FAct, a.act)
	r.setN(FBck, a.bck)
	// The backend's own history, as HAProxy's: DOWN when no server is
	// usable.
	if downs, lastChange, downtime, ok := s.src.BackendUpDown(be.Name); ok {
		r.setU(FChkdown, downs)
		r.setN(FLastchg, int64(time.Since(lastChange)/time.Second))
		r.setN(FDowntime, int64(downtime/time.Second))
	}
	r.setN(FPid, 1)
	r.setN(FIid, int64(p.iid))
	r.setN(FSid, 0)
	r.setU(FLbtot, c.TotalConns.Load())
	r.setN(FType, int64(ObjBackend))
	r.setU(FRate, v.sessRate)
	r.setU(FRateMax, v.sessMax)
	r.setN(FLastsess, lastSession(v))
	r.setS(FMode, string(be.Mode))
	r.setS(FAlgo, string(be.Balance.Algorithm))
	if be.Mode == config.ModeHTTP {
		setStatusClasses(r, &c.HTTPStatus)
		r.setU(FReqTot, c.Requests.Load())
		r.zero(httpBackendZeros)
	}
	for k, f := range []Field{FQtime, FCtime, FRtime, FTtime} {
		avg := int64(0)
		if a.timedCount > 0 {
			avg = int64(a.timings[k]/float64(a.timedCount) + 0.5)
		}
		r.setN(f, avg)
	}
	for k, f := range []Field{FQtimeMax, FCtimeMax, FRtimeMax, FTtimeMax} {
		r.setN(f, a.maxTimes[k])
	}
	// HAProxy's aggregated states: 0 when every server is fine.
	r.setN(FAggServerStatus, 0)
	r.setN(FAggServerCheckStatus, 0)
	if status == "DOWN" {
		r.setN(FAggServerStatus, 1)
	}
	r.setU(FDreq, c.DeniedReq.Load())
	r.setU(FDresp, c.DeniedResp.Load())
	r.setU(FEint, c.InternalErrors.Load())
	r.zero(backendZeros)
	moduleZeros(r)
}
