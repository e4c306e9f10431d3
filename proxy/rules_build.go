package proxy

import (
	"fmt"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/proxy/rules"
)

// sectionRules are the compiled rule sets of a frontend or a backend.
type sectionRules struct {
	request  *rules.Program // http-request
	redirect *rules.Program // redirect lines, after http-request
	response *rules.Program // http-response
}

func (r *sectionRules) empty() bool {
	return r.request.Empty() && r.redirect.Empty() && r.response.Empty()
}

// useBackend is a compiled use_backend line: a backend, or a format
// that names one (use_backend %[...]).
type useBackend struct {
	cond *rules.Cond
	be   *backend
	name *rules.Format
}

// target is the backend the line names for t: nil when a computed name
// names no backend of the frontend's mode, and the next line is tried,
// as in HAProxy.
func (ub *useBackend) target(t *rules.Txn, byName map[string]*backend, mode config.Mode) *backend {
	if ub.name == nil {
		return ub.be
	}
	be := byName[rules.BytesString(ub.name.Eval(t))]
	if be == nil || be.cfg.Mode != mode {
		return nil
	}
	return be
}

// compileRules builds the programs of every frontend and backend of s,
// numbering variables across them (a txn variable a frontend sets, its
// backend reads); proc are the process-wide variables, the proxy's.
func (s *Snapshot) compileRules(cfg *config.Config, proc *rules.ProcVars) error {
	names := rules.Names{Frontends: map[string]int{}, Backends: map[string]int{}, Servers: map[string]map[string]int{},
		Maps: map[string][]rules.MapEntry{}, Tables: s.tables, Userlists: cfg.Userlists}
	for i, fe := range s.frontends {
		names.Frontends[fe.cfg.Name] = i
	}
	for i, be := range s.backends {
		names.Backends[be.cfg.Name] = i
		srvs := map[string]int{}
		for j, srv := range be.servers {
			srvs[srv.cfg.Name] = j
		}
		names.Servers[be.cfg.Name] = srvs
	}
	for path, entries := range cfg.Maps {
		// An empty map file is a map that finds nothing, as in HAProxy,
		// not a file that was not read.
		m := make([]rules.MapEntry, 0, len(entries))
		for _, e := range entries {
			m = append(m, rules.MapEntry{Key: e.Key, Value: e.Value})
		}
		names.Maps[path] = m
	}
	c := rules.NewCompiler(names)
	c.Proc = proc
	for i, fe := range s.frontends {
		r := &fe.cfg.Rules
		c.Section = fe.cfg.Name
		var err error
		if fe.rules, err = compileSection(c, r); err != nil {
			return fmt.Errorf("frontend %s: %w", fe.cfg.Name, err)
		}
		if err = fe.buildHTTPExtras(c); err != nil {
			return fmt.Errorf("frontend %s: %w", fe.cfg.Name, err)
		}
		for _, ub := range r.UseBackends {
			cond, err := c.CompileCond(ub.Cond, r.ACLs)
			if err != nil {
				return fmt.Errorf("frontend %s: %w", fe.cfg.Name, err)
			}
			u := useBackend{cond: cond}
			if name, ok := ub.Name.Const(); ok {
				u.be = s.backendsByName[name]
			} else if u.name, err = c.CompileFormat(ub.Name); err != nil {
				return fmt.Errorf("frontend %s: %w", fe.cfg.Name, err)
			}
			fe.useBackends = append(fe.useBackends, u)
		}
		if fe.tcp, err = compileTCP(c, r); err != nil {
			return fmt.Errorf("frontend %s: %w", fe.cfg.Name, err)
		}
		fe.index = i
	}
	for i, be := range s.backends {
		c.Section = be.cfg.Name
		var err error
		if be.rules, err = compileSection(c, &be.cfg.Rules); err != nil {
			return fmt.Errorf("backend %s: %w", be.cfg.Name, err)
		}
		if be.tcpContent, err = c.CompileRules(be.cfg.Rules.TCPContent, rules.ACLs(be.cfg.Rules.ACLs), nil); err != nil {
			return fmt.Errorf("backend %s: %w", be.cfg.Name, err)
		}
		for _, ls := range be.cfg.Rules.Sticks {
			st, err := c.CompileStick(ls, rules.ACLs(be.cfg.Rules.ACLs))
			if err != nil {
				return fmt.Errorf("backend %s: %w", be.cfg.Name, err)
			}
			be.sticks = append(be.sticks, st)
		}
		if be.cfg.Cookie != nil && be.cfg.Mode == config.ModeHTTP {
			if be.cookie, err = newPersistence(be, c); err != nil {
				return fmt.Errorf("backend %s: %w", be.cfg.Name, err)
			}
		}
		be.index = i
	}
	s.vars = c.Vars()
	anyBackend, anyTCPBackend := false, false
	for _, be := range s.backends {
		be.hasRules = !be.rules.empty() || be.cfg.Mode == config.ModeHTTP && !be.tcpContent.Empty()
		// force-persist and ignore-persist read the request through the
		// rules' Txn, which the frontend then starts.
		anyBackend = anyBackend || be.hasRules || be.cookie != nil && be.cookie.hasConds() || len(be.sticks) > 0
		anyTCPBackend = anyTCPBackend || !be.tcpContent.Empty() || len(be.sticks) > 0
	}
	for _, fe := range s.frontends {
		fe.vars = s.vars
		fe.env = s
		fe.backendsByName = s.backendsByName
		http := fe.cfg.Mode == config.ModeHTTP
		fe.tcpRouted = !http && (len(fe.useBackends) > 0 || !fe.tcp.content.Empty() || fe.cfg.Rules.InspectDelay > 0 || anyTCPBackend)
		// Session variables and what connection and session rules track
		// live as long as the connection, which then has a Txn of its own;
		// in mode http each request's Txn reaches it.
		fe.connRules = fe.tcpRouted || !fe.tcp.connection.Empty() || !fe.tcp.session.Empty() || c.SessionVars()
		fe.hasRules = http && (!fe.rules.empty() || len(fe.useBackends) > 0 || anyBackend || !fe.tcp.content.Empty() || fe.connRules || fe.uniqueID != nil)
	}
	return nil
}

func compileTCP(c *rules.Compiler, r *config.Rules) (tcpRules, error) {
	var tr tcpRules
	var err error
	acls := rules.ACLs(r.ACLs)
	if tr.connection, err = c.CompileRules(r.TCPConnection, acls, nil); err != nil {
		return tr, err
	}
	if tr.session, err = c.CompileRules(r.TCPSession, acls, nil); err != nil {
		return tr, err
	}
	if tr.content, err = c.CompileRules(r.TCPContent, acls, nil); err != nil {
		return tr, err
	}
	return tr, nil
}

func compileSection(c *rules.Compiler, r *config.Rules) (sectionRules, error) {
	var sr sectionRules
	var err error
	acls := rules.ACLs(r.ACLs)
	if sr.request, err = c.CompileRules(r.HTTPRequest, acls, r.Files); err != nil {
		return sr, err
	}
	if sr.redirect, err = c.CompileRules(r.Redirects, acls, r.Files); err != nil {
		return sr, err
	}
	if sr.response, err = c.CompileRules(r.HTTPResponse, acls, r.Files); err != nil {
		return sr, err
	}
	return sr, nil
}

// The snapshot is the rules' Env: what they read of servers and
// connection counts, by the indexes compileRules gave.

// NbSrv is nbsrv(backend): its usable servers.
func (s *Snapshot) NbSrv(b int) int { return s.backends[b].pool.UsableCount() }

// SrvIsUp is srv_is_up(backend/server).
func (s *Snapshot) SrvIsUp(b, i int) bool {
	st := s.backends[b].servers[i].state
	return st.Up() && st.Admin() != balancer.AdminMaint
}

// SrvConn is srv_conn(backend/server).
func (s *Snapshot) SrvConn(b, i int) int { return int(s.backends[b].servers[i].state.CurConns()) }

// BeConn is be_conn(backend).
func (s *Snapshot) BeConn(b int) int { return int(s.backends[b].counters.CurConns.Load()) }

// FeConn is fe_conn(frontend).
func (s *Snapshot) FeConn(f int) int { return int(s.frontends[f].state.CurConns.Load()) }
