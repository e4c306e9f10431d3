package config

import (
	"slices"
	"strings"
	"time"
)

func pick[T any](vals ...*T) (T, bool) {
	for _, v := range vals {
		if v != nil {
			return *v, true
		}
	}
	var zero T
	return zero, false
}

func or[T any](def T, vals ...*T) T {
	if v, ok := pick(vals...); ok {
		return v
	}
	return def
}

func dur(def time.Duration, vals ...*Duration) time.Duration {
	return time.Duration(or(Duration(def), vals...))
}

func (p *parser) resolve(fc *fileConfig) *Config {
	g := fc.Global
	if g == nil {
		g = &fileGlobal{}
	}
	cfg := &Config{
		File: p.file,
		Global: Global{
			MaxConn:       or(0, g.MaxConn),
			HardStopAfter: dur(DefaultHardStopAfter, g.HardStopAfter),
			LogLevel:      or("info", g.LogLevel),
			SpreadChecks:  or(0, g.SpreadChecks),
		},
	}
	cfg.Global.BufSize, cfg.Global.HTTPMaxHdr = DefaultBufSize, DefaultHTTPMaxHdr
	if t := g.Tune; t != nil {
		cfg.Global.BufSize = or(DefaultBufSize, t.BufSize)
		cfg.Global.HTTPMaxHdr = or(DefaultHTTPMaxHdr, t.HTTPMaxHdr)
	}
	def := fc.Defaults
	if def == nil {
		def = &fileProxy{}
	}
	for name, s := range fc.Frontends {
		cfg.Frontends = append(cfg.Frontends, resolveFrontend(name, s, def))
	}
	for name, s := range fc.Backends {
		cfg.Backends = append(cfg.Backends, resolveBackend(name, s, def))
	}
	for name, s := range fc.Listen {
		fe := resolveFrontend(name, s, def)
		fe.DefaultBackend = name
		cfg.Frontends = append(cfg.Frontends, fe)
		cfg.Backends = append(cfg.Backends, resolveBackend(name, s, def))
	}
	byName := func(a, b string) int { return strings.Compare(a, b) }
	slices.SortFunc(cfg.Frontends, func(a, b *Frontend) int { return byName(a.Name, b.Name) })
	slices.SortFunc(cfg.Backends, func(a, b *Backend) int { return byName(a.Name, b.Name) })
	return cfg
}

func timeouts(s, def *fileProxy) Timeouts {
	st, dt := s.Timeout, def.Timeout
	if st == nil {
		st = &fileTimeout{}
	}
	if dt == nil {
		dt = &fileTimeout{}
	}
	t := Timeouts{
		Connect: dur(0, st.Connect, dt.Connect),
		Client:  dur(0, st.Client, dt.Client),
		Server:  dur(0, st.Server, dt.Server),
		Tunnel:  dur(0, st.Tunnel, dt.Tunnel),
		Check:   dur(0, st.Check, dt.Check),
	}
	// As in HAProxy: without "timeout http-request" the client timeout
	// bounds the wait for a request, and without "timeout http-keep-alive"
	// the http-request timeout bounds the idle time between requests.
	t.HTTPRequest = dur(t.Client, st.HTTPRequest, dt.HTTPRequest)
	t.HTTPKeepAlive = dur(t.HTTPRequest, st.HTTPKeepAlive, dt.HTTPKeepAlive)
	t.Queue = dur(t.Connect, st.Queue, dt.Queue)
	return t
}

// namesChecker reports whether o sets any of the options that choose a
// health checker.
func (o *fileOptions) namesChecker() bool {
	return o != nil && (o.HTTPChk != nil || o.TCPCheck != nil || o.RedisCheck != nil || o.MySQLCheck != nil ||
		o.PgSQLCheck != nil || o.GaleraCheck != nil || o.MySQLReplicaCheck != nil || o.PgSQLStandbyCheck != nil)
}

// checkerOptions returns the options that choose a section's health
// checker, and their key path: the section's own when it names a checker,
// otherwise those of defaults. As in HAProxy, where the last "option
// ...-check" line wins, a backend's checker replaces the one of defaults
// rather than adding to it.
func checkerOptions(s, def *fileProxy, path string) (*fileOptions, string) {
	if s != nil && s.Option.namesChecker() {
		return s.Option, path + ".option"
	}
	if def != nil && def.Option != nil {
		return def.Option, "defaults.option"
	}
	return &fileOptions{}, ""
}

func options(s, def *fileProxy) Options {
	so, do := s.Option, def.Option
	if so == nil {
		so = &fileOptions{}
	}
	if do == nil {
		do = &fileOptions{}
	}
	co, _ := checkerOptions(s, def, "")
	tcpka := or(false, so.TCPKA, do.TCPKA)
	return Options{
		TCPKA:            tcpka,
		CliTCPKA:         or(tcpka, so.CliTCPKA, do.CliTCPKA),
		SrvTCPKA:         or(tcpka, so.SrvTCPKA, do.SrvTCPKA),
		XForwardedProto:  or(false, so.XForwardedProto, do.XForwardedProto),
		SSLClientHeaders: or(false, so.SSLClientHeaders, do.SSLClientHeaders),
		HTTPLog:          or(false, so.HTTPLog, do.HTTPLog),
		TCPLog:           or(false, so.TCPLog, do.TCPLog),
		// halo redispatches a failed connection to another server by
		// default, unlike HAProxy: nothing was sent, so it is always safe.
		Redispatch:       or(true, so.Redispatch, do.Redispatch),
		Persist:          or(false, so.Persist, do.Persist),
		AllBackups:       or(false, so.AllBackups, do.AllBackups),
		ConnMode:         connMode(so, do),
		PretendKeepalive: or(false, so.HTTPPretendKeepalive, do.HTTPPretendKeepalive),
		BufferRequest:    or(false, so.HTTPBufferRequest, do.HTTPBufferRequest),
		HTTPChk:          or(false, co.HTTPChk),
		TCPCheck:         or(false, co.TCPCheck),
		RedisCheck:       or(false, co.RedisCheck),
	}
}

func resolveFrontend(name string, s, def *fileProxy) *Frontend {
	return &Frontend{
		Name:           name,
		Binds:          resolveBinds(s.Bind),
		Mode:           or(ModeTCP, s.Mode, def.Mode),
		MaxConn:        or(0, s.MaxConn, def.MaxConn),
		DefaultBackend: or("", s.DefaultBackend),
		Timeouts:       timeouts(s, def),
		Options:        options(s, def),
		HTTPSRedirect:  or(0, s.HTTPSRedirect),
	}
}

// resolveBinds takes the binds as written; buildBinds normalizes them.
func resolveBinds(fbs []*fileBind) []Bind {
	binds := make([]Bind, 0, len(fbs))
	for _, fb := range fbs {
		if fb == nil {
			fb = &fileBind{}
		}
		binds = append(binds, Bind{
			Address: or("", fb.Address),
			Socket: SocketOptions{
				V4V6:        or(false, fb.V4V6),
				V6Only:      or(false, fb.V6Only),
				Interface:   or("", fb.Interface),
				Transparent: or(false, fb.Transparent),
				FreeBind:    or(false, fb.FreeBind),
			},
			src: fb,
		})
	}
	return binds
}

func resolveBackend(name string, s, def *fileProxy) *Backend {
	b := &Backend{
		Name:              name,
		Mode:              or(ModeTCP, s.Mode, def.Mode),
		Balance:           Balance{Algorithm: AlgoRoundRobin}, // parsed by buildBalance
		HashConsistent:    or("map-based", s.HashType, def.HashType) == "consistent",
		HashBalanceFactor: or(0, s.HashFactor, def.HashFactor),
		Retries:           or(DefaultRetries, s.Retries, def.Retries),
		Timeouts:          timeouts(s, def),
		Options:           options(s, def),
	}
	bd, dd := s.DefaultServer, def.DefaultServer
	if bd == nil {
		bd = &fileServer{}
	}
	if dd == nil {
		dd = &fileServer{}
	}
	for _, fs := range s.Servers {
		if fs == nil {
			fs = &fileServer{}
		}
		b.Servers = append(b.Servers, Server{
			Name:                or("", fs.Name),
			Address:             or("", fs.Address),
			Weight:              or(DefaultWeight, fs.Weight, bd.Weight, dd.Weight),
			Backup:              or(false, fs.Backup, bd.Backup, dd.Backup),
			Disabled:            or(false, fs.Disabled, bd.Disabled, dd.Disabled),
			Check:               or(false, fs.Check, bd.Check, dd.Check),
			CheckPort:           or(0, fs.Port, bd.Port, dd.Port),
			CheckAddr:           or("", fs.Addr, bd.Addr, dd.Addr),
			ShutdownOnDown:      or("", fs.OnMarkedDown, bd.OnMarkedDown, dd.OnMarkedDown) == "shutdown-sessions",
			ShutdownBackupsOnUp: or("", fs.OnMarkedUp, bd.OnMarkedUp, dd.OnMarkedUp) == "shutdown-backup-sessions",
			Inter:               dur(DefaultInter, fs.Inter, bd.Inter, dd.Inter),
			Rise:                or(DefaultRise, fs.Rise, bd.Rise, dd.Rise),
			Fall:                or(DefaultFall, fs.Fall, bd.Fall, dd.Fall),
			MaxConn:             or(0, fs.MaxConn, bd.MaxConn, dd.MaxConn),
			MaxQueue:            or(0, fs.MaxQueue, bd.MaxQueue, dd.MaxQueue),
			SlowStart:           dur(0, fs.SlowStart, bd.SlowStart, dd.SlowStart),
			Observe:             or("", fs.Observe, bd.Observe, dd.Observe),
			ErrorLimit:          or(DefaultErrorLimit, fs.ErrorLimit, bd.ErrorLimit, dd.ErrorLimit),
			OnError:             or(OnErrorFailCheck, fs.OnError, bd.OnError, dd.OnError),
			Cookie:              or("", fs.Cookie, bd.Cookie, dd.Cookie),
		})
	}
	for i, fs := range s.Servers {
		if fs == nil {
			fs = &fileServer{}
		}
		srv := &b.Servers[i]
		if or(false, fs.AgentCheck, bd.AgentCheck, dd.AgentCheck) {
			srv.Agent = &Agent{
				Port:  or(0, fs.AgentPort, bd.AgentPort, dd.AgentPort),
				Addr:  or("", fs.AgentAddr, bd.AgentAddr, dd.AgentAddr),
				Inter: dur(srv.Inter, fs.AgentInter, bd.AgentInter, dd.AgentInter),
				Send:  or("", fs.AgentSend, bd.AgentSend, dd.AgentSend),
			}
		}
		srv.FastInter = dur(srv.Inter, fs.FastInter, bd.FastInter, dd.FastInter)
		srv.DownInter = dur(srv.Inter, fs.DownInter, bd.DownInter, dd.DownInter)
	}
	return b
}
