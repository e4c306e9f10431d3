package config

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
	"gopkg.in/yaml.v3"
)

var validate = func() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		return name
	})
	return v
}()

// Parse decodes, resolves and validates a configuration held in memory; file
// names it in error messages.
func Parse(file string, data []byte) (*Config, error) {
	p := &parser{decoder: decoder{file: file, positions: map[string]position{}}}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, ErrorList{yamlSyntaxError(file, err)}
	}
	var fc fileConfig
	if len(root.Content) == 0 {
		return nil, ErrorList{{File: file, Line: 1, Col: 1, Msg: "the configuration is empty"}}
	}
	// Shape errors do not stop here: the section and tag checks still run
	// on what did decode, so one "halo check" lists every problem. Only the
	// cross-field rules need a file without such errors.
	p.decode(root.Content[0], reflect.ValueOf(&fc).Elem(), "")
	p.checkSections(&fc)
	p.checkTags(&fc)
	if len(p.errs) > 0 {
		return nil, p.sorted()
	}
	cfg := p.resolve(&fc)
	p.checkCrossField(cfg, &fc)
	if len(p.errs) > 0 {
		return nil, p.sorted()
	}
	return cfg, nil
}

type parser struct {
	decoder
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlSyntaxError(file string, err error) *Error {
	e := &Error{File: file, Line: 1, Col: 1, Msg: err.Error()}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = m[2]
	}
	return e
}

// at reports an error at the position recorded for path, or for the
// nearest parent path that has one.
func (p *parser) at(path, format string, args ...any) {
	pos := position{1, 1}
	for q := path; q != ""; {
		if found, ok := p.positions[q]; ok {
			pos = found
			break
		}
		i := strings.LastIndexAny(q, ".[")
		if i < 0 {
			break
		}
		q = q[:i]
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: pos.line, Col: pos.col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) sorted() ErrorList {
	slices.SortStableFunc(p.errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	return p.errs
}

// checkSections rejects keys that exist in the schema but not in the kind of
// section they were written in.
func (p *parser) checkSections(fc *fileConfig) {
	check := func(kind, path string, s *fileProxy) {
		if s == nil {
			return
		}
		for key := range yamlFields(reflect.TypeOf(*s)) {
			if !sectionKeys[kind][key] && p.isSet(s, key) {
				p.at(joinPath(path, key), "%q is not allowed in %s", key, kind)
			}
		}
		if s.Timeout != nil {
			for key := range yamlFields(reflect.TypeOf(*s.Timeout)) {
				if !sectionTimeouts[kind][key] && !reflect.ValueOf(*s.Timeout).Field(yamlFields(reflect.TypeOf(*s.Timeout))[key]).IsNil() {
					p.at(joinPath(path, "timeout."+key), "timeout %q is not allowed in %s", key, kind)
				}
			}
		}
	}
	check("defaults", "defaults", fc.Defaults)
	for _, kind := range []string{"frontends", "backends", "listen"} {
		sections := map[string]map[string]*fileProxy{"frontends": fc.Frontends, "backends": fc.Backends, "listen": fc.Listen}[kind]
		for name, s := range sections {
			if s == nil {
				p.at(joinPath(kind, name), "section is empty")
				continue
			}
			check(kind, joinPath(kind, name), s)
		}
	}
}

func (p *parser) isSet(s *fileProxy, key string) bool {
	f := reflect.ValueOf(*s).Field(yamlFields(reflect.TypeOf(*s))[key])
	return !f.IsNil()
}

var mapIndex = regexp.MustCompile(`^(frontends|backends|listen)\[([^\]]*)\]`)

// checkTags runs the validator tags and reports each failure at its key.
func (p *parser) checkTags(fc *fileConfig) {
	err := validate.Struct(fc)
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		if err != nil {
			p.at("", "%v", err)
		}
		return
	}
	for _, fe := range verrs {
		_, path, _ := strings.Cut(fe.Namespace(), ".")
		path = mapIndex.ReplaceAllString(path, "$1.$2")
		p.at(path, "%s", tagMessage(fe))
	}
}

func tagMessage(fe validator.FieldError) string {
	val := fmt.Sprint(reflect.Indirect(reflect.ValueOf(fe.Value())))
	if d, ok := reflect.Indirect(reflect.ValueOf(fe.Value())).Interface().(Duration); ok {
		val = time.Duration(d).String()
	}
	switch fe.Tag() {
	case "min":
		return fmt.Sprintf("%s is too small: must be at least %s", val, fe.Param())
	case "max":
		return fmt.Sprintf("%s is too large: must be at most %s", val, fe.Param())
	case "hexadecimal":
		return fmt.Sprintf("%q is not hexadecimal: write bytes as pairs of 0-9, a-f", val)
	case "startswith":
		return fmt.Sprintf("%q must start with %q", val, fe.Param())
	case "oneof":
		return fmt.Sprintf("%q is not supported: must be one of %s", val, strings.ReplaceAll(fe.Param(), " ", ", "))
	default:
		return fmt.Sprintf("%s fails %s %s", val, fe.Tag(), fe.Param())
	}
}

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
		TCPKA:      tcpka,
		CliTCPKA:   or(tcpka, so.CliTCPKA, do.CliTCPKA),
		SrvTCPKA:   or(tcpka, so.SrvTCPKA, do.SrvTCPKA),
		ForwardFor: or(false, so.ForwardFor, do.ForwardFor),
		HTTPLog:    or(false, so.HTTPLog, do.HTTPLog),
		TCPLog:     or(false, so.TCPLog, do.TCPLog),
		// halo redispatches a failed connection to another server by
		// default, unlike HAProxy: nothing was sent, so it is always safe.
		Redispatch: or(true, so.Redispatch, do.Redispatch),
		AllBackups: or(false, so.AllBackups, do.AllBackups),
		HTTPChk:    or(false, co.HTTPChk),
		TCPCheck:   or(false, co.TCPCheck),
		RedisCheck: or(false, co.RedisCheck),
	}
}

func resolveFrontend(name string, s, def *fileProxy) *Frontend {
	return &Frontend{
		Name:           name,
		Binds:          slices.Clone(s.Bind),
		Mode:           Mode(or(string(ModeTCP), s.Mode, def.Mode)),
		MaxConn:        or(0, s.MaxConn, def.MaxConn),
		DefaultBackend: or("", s.DefaultBackend),
		Timeouts:       timeouts(s, def),
		Options:        options(s, def),
	}
}

func resolveBackend(name string, s, def *fileProxy) *Backend {
	b := &Backend{
		Name:              name,
		Mode:              Mode(or(string(ModeTCP), s.Mode, def.Mode)),
		Balance:           Balance{Algorithm: "roundrobin"}, // parsed by checkBalance
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
			OnError:             or("fail-check", fs.OnError, bd.OnError, dd.OnError),
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

// sectionPath is the key path of a proxy section, wherever it was written.
func sectionPath(fc *fileConfig, kind, name string) string {
	if _, ok := fc.Listen[name]; ok {
		return joinPath("listen", name)
	}
	return joinPath(kind, name)
}

func (p *parser) checkCrossField(cfg *Config, fc *fileConfig) {
	for name := range fc.Listen {
		if _, ok := fc.Frontends[name]; ok {
			p.at(joinPath("listen", name), "listen %q has the same name as frontend %q", name, name)
		}
		if _, ok := fc.Backends[name]; ok {
			p.at(joinPath("listen", name), "listen %q has the same name as backend %q", name, name)
		}
	}
	// Binds are checked in file order so that a duplicate is reported
	// where it is written a second time.
	type bindRef struct {
		path, addr string
		pos        position
	}
	var refs []bindRef
	for _, fe := range cfg.Frontends {
		path := sectionPath(fc, "frontends", fe.Name)
		if len(fe.Binds) == 0 {
			p.at(path, "no bind address: a frontend needs at least one")
		}
		for i, bind := range fe.Binds {
			bp := fmt.Sprintf("%s.bind[%d]", path, i)
			refs = append(refs, bindRef{bp, bind, p.positions[bp]})
		}
	}
	slices.SortFunc(refs, func(a, b bindRef) int {
		return cmp.Or(cmp.Compare(a.pos.line, b.pos.line), cmp.Compare(a.pos.col, b.pos.col))
	})
	binds := map[string]string{} // normalized bind -> key path of its first use
	for _, r := range refs {
		norm, err := normalizeBind(r.addr)
		if err != nil {
			p.at(r.path, "%v", err)
			continue
		}
		if strings.HasSuffix(norm, ":0") {
			continue // each port-0 bind gets its own free port
		}
		if first, dup := binds[norm]; dup {
			p.at(r.path, "%q is already bound by %s", r.addr, first)
			continue
		}
		binds[norm] = r.path
	}
	for _, fe := range cfg.Frontends {
		path := sectionPath(fc, "frontends", fe.Name)
		if _, isListen := fc.Listen[fe.Name]; isListen {
			continue
		}
		if fe.DefaultBackend == "" {
			p.at(path, "no default_backend: the frontend would have nowhere to send traffic")
			continue
		}
		be := cfg.Backend(fe.DefaultBackend)
		if be == nil {
			p.at(path+".default_backend", "backend %q does not exist", fe.DefaultBackend)
			continue
		}
		if be.Mode != fe.Mode {
			p.at(path+".default_backend", "backend %q is in mode %s but this frontend is in mode %s", be.Name, be.Mode, fe.Mode)
		}
	}
	p.checkWildcardOverlap(binds)
	for _, be := range cfg.Backends {
		path := sectionPath(fc, "backends", be.Name)
		p.checkBalance(fc, be, path)
		p.checkHTTPCheck(fc, be, path)
		p.checkTCPCheck(fc, be, path)
		p.checkDBCheck(fc, be, path)
		names := map[string]bool{}
		for i, s := range be.Servers {
			sp := fmt.Sprintf("%s.servers[%d]", path, i)
			switch {
			case s.Name == "":
				p.at(sp, "server has no name")
			case names[s.Name]:
				p.at(sp+".name", "server name %q is used twice in this backend", s.Name)
			}
			names[s.Name] = true
			if s.Address == "" {
				p.at(sp, "server %q has no address", s.Name)
			} else if err := checkServerAddress(s.Address); err != nil {
				p.at(sp+".address", "%v", err)
			}
			if s.Agent != nil && s.Agent.Port == 0 {
				p.at(sp, "server %q has agent-check but no agent-port", s.Name)
			}
			if s.Agent != nil && s.Agent.Addr != "" {
				if err := checkServerAddress(net.JoinHostPort(s.Agent.Addr, "1")); err != nil {
					p.at(sp+".agent-addr", "invalid agent address %q: want an IP address or a host name", s.Agent.Addr)
				}
			}
			if s.Observe != "" && !s.Check {
				p.at(sp+".observe", "observe needs check on this server: errors seen in traffic act through its health check")
			}
			if s.Observe == "layer7" && be.Mode != ModeHTTP {
				p.at(sp+".observe", "observe layer7 reads HTTP responses and needs mode http; this backend is in mode %s", be.Mode)
			}
			if s.CheckAddr != "" {
				if err := checkServerAddress(net.JoinHostPort(s.CheckAddr, "1")); err != nil {
					p.at(sp+".addr", "invalid check address %q: want an IP address or a host name", s.CheckAddr)
				}
			}
		}
	}
}

// checkWildcardOverlap rejects a specific address and a wildcard on the same
// port: the second bind would fail at run time with "address in use".
func (p *parser) checkWildcardOverlap(binds map[string]string) {
	for norm, path := range binds {
		host, port, _ := net.SplitHostPort(norm)
		if host == "0.0.0.0" || host == "::" {
			continue
		}
		for _, wild := range []string{"0.0.0.0", "::"} {
			wildPath, ok := binds[net.JoinHostPort(wild, port)]
			if !ok {
				continue
			}
			// Report it where the second of the two is written.
			a, b := p.positions[path], p.positions[wildPath]
			if cmp.Or(cmp.Compare(a.line, b.line), cmp.Compare(a.col, b.col)) > 0 {
				p.at(path, "port %s is already bound on every address by %s", port, wildPath)
			} else {
				p.at(wildPath, "port %s on every address overlaps %s", port, path)
			}
		}
	}
}

// normalizeBind turns "*:80", ":80" and "0.0.0.0:80" into one spelling.
func normalizeBind(bind string) (string, error) {
	host, port, err := net.SplitHostPort(bind)
	if err != nil {
		return "", fmt.Errorf("invalid bind address %q: want ADDRESS:PORT, *:PORT or [IPv6]:PORT", bind)
	}
	// Port 0 lets the kernel choose a free port (tests use it); any other
	// port must be a valid one.
	if err := checkPort(port); err != nil && port != "0" {
		return "", fmt.Errorf("invalid bind address %q: %v", bind, err)
	}
	switch host {
	case "", "*":
		host = "0.0.0.0"
	default:
		ip := net.ParseIP(host)
		if ip == nil {
			return "", fmt.Errorf("invalid bind address %q: %q is not an IP address", bind, host)
		}
		host = ip.String()
	}
	return net.JoinHostPort(host, port), nil
}

func checkPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

var hostnameLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

func checkServerAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid address %q: want HOST:PORT or [IPv6]:PORT", addr)
	}
	if err := checkPort(port); err != nil {
		return fmt.Errorf("invalid address %q: %v", addr, err)
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	for _, l := range labels {
		if !hostnameLabel.MatchString(l) {
			return fmt.Errorf("invalid address %q: %q is neither an IP address nor a host name", addr, host)
		}
	}
	return nil
}

// backendSection is the file section a backend was written in: its
// backends entry, or its listen entry.
func backendSection(fc *fileConfig, name string) *fileProxy {
	if s, ok := fc.Listen[name]; ok {
		return s
	}
	return fc.Backends[name]
}

// checkBalance parses the backend's balance line (its own or the one it
// inherits from defaults) into be.Balance, and checks that it fits the
// backend: HTTP algorithms in mode http, "first" with maxconn.
func (p *parser) checkBalance(fc *fileConfig, be *Backend, path string) {
	section := backendSection(fc, be.Name)
	line, where := "roundrobin", ""
	if section != nil && section.Balance != nil {
		line, where = *section.Balance, path+".balance"
	} else if fc.Defaults != nil && fc.Defaults.Balance != nil {
		line, where = *fc.Defaults.Balance, "defaults.balance"
	}
	b, err := ParseBalance(line)
	if err != nil {
		p.at(where, "%v", err)
		return
	}
	be.Balance = b
	if b.HTTPOnly() && be.Mode != ModeHTTP {
		if where == "defaults.balance" {
			where = path
		}
		p.at(where, "balance %s reads the HTTP request and needs mode http; this backend is in mode %s", b.Algorithm, be.Mode)
	}
	if b.Algorithm == "first" {
		for i, s := range be.Servers {
			if s.MaxConn == 0 && !s.Backup {
				p.at(fmt.Sprintf("%s.servers[%d]", path, i), "balance first needs maxconn on every server: %q has none, so it would take every connection", s.Name)
			}
		}
	}
}

// checkHTTPCheck builds be.HTTPCheck from "option httpchk" and the
// http-check section (the backend's own or the one from defaults).
func (p *parser) checkHTTPCheck(fc *fileConfig, be *Backend, path string) {
	section := backendSection(fc, be.Name)
	hc, where := (*fileHTTPCheck)(nil), ""
	if section != nil && section.HTTPCheck != nil {
		hc, where = section.HTTPCheck, path+".http-check"
	} else if fc.Defaults != nil && fc.Defaults.HTTPCheck != nil {
		hc, where = fc.Defaults.HTTPCheck, "defaults.http-check"
	}
	if !be.Options.HTTPChk {
		if hc != nil && where != "defaults.http-check" {
			p.at(where, "http-check needs option httpchk in this backend")
		}
		return
	}
	check := &HTTPCheck{Method: "OPTIONS", URI: "/", Version: "HTTP/1.0"}
	if hc != nil && hc.Send != nil {
		check.Method = or(check.Method, hc.Send.Meth)
		check.URI = or(check.URI, hc.Send.URI)
		check.Version = or(check.Version, hc.Send.Ver)
		for k, v := range hc.Send.Hdr {
			if k == "" || strings.ContainsAny(k, " :\r\n") || strings.ContainsAny(v, "\r\n") {
				p.at(where+".send.hdr", "invalid header %q", k)
				continue
			}
			check.Headers = append(check.Headers, [2]string{k, v})
		}
		slices.SortFunc(check.Headers, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	}
	if hc != nil && hc.Expect != nil {
		e, ep := hc.Expect, where+".expect"
		set := 0
		for kind, v := range map[string]*string{"status": e.Status, "rstatus": e.RStatus, "string": e.String, "rstring": e.RString} {
			if v != nil {
				set++
				check.Expect.Kind, check.Expect.Pattern = kind, *v
			}
		}
		if set != 1 {
			p.at(ep, "expect needs exactly one of status, rstatus, string, rstring")
			return
		}
		check.Expect.Not = or(false, e.Not)
		switch check.Expect.Kind {
		case "status":
			ranges, err := parseStatusRanges(check.Expect.Pattern)
			if err != nil {
				p.at(ep+".status", "%v", err)
			}
			check.Expect.StatusRanges = ranges
		case "rstatus", "rstring":
			re, err := regexp.Compile(check.Expect.Pattern)
			if err != nil {
				p.at(ep+"."+check.Expect.Kind, "invalid regular expression: %v", err)
			}
			check.Expect.Regexp = re
		}
	}
	be.HTTPCheck = check
}

// parseStatusRanges parses "http-check expect status" codes: a list of
// codes and ranges such as "200,301-308".
func parseStatusRanges(s string) ([][2]int, error) {
	var ranges [][2]int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
			return nil, fmt.Errorf("invalid status %q: want codes from 100 to 599 or ranges such as 200-299, separated by commas", part)
		}
		ranges = append(ranges, [2]int{a, b})
	}
	return ranges, nil
}

// checkTCPCheck builds be.TCPCheck from "option tcp-check" and its
// tcp-check rules (the backend's own or those from defaults).
func (p *parser) checkTCPCheck(fc *fileConfig, be *Backend, path string) {
	section := backendSection(fc, be.Name)
	steps, where := []*fileTCPStep(nil), ""
	if section != nil && section.TCPCheck != nil {
		steps, where = section.TCPCheck, path+".tcp-check"
	} else if fc.Defaults != nil && fc.Defaults.TCPCheck != nil {
		steps, where = fc.Defaults.TCPCheck, "defaults.tcp-check"
	}
	opts, _ := checkerOptions(section, fc.Defaults, path)
	checkers := 0
	for _, on := range []bool{be.Options.HTTPChk, be.Options.TCPCheck, be.Options.RedisCheck,
		opts.MySQLCheck != nil, opts.PgSQLCheck != nil, opts.GaleraCheck != nil,
		opts.MySQLReplicaCheck != nil, opts.PgSQLStandbyCheck != nil} {
		if on {
			checkers++
		}
	}
	if checkers > 1 {
		p.at(path+".option", "httpchk, tcp-check, redis-check, mysql-check, pgsql-check, galera-check, mysql-replica-check and pgsql-standby-check exclude each other: a server has one health check")
		return
	}
	if be.Options.RedisCheck {
		// HAProxy's "option redis-check": PING, expect +PONG.
		be.TCPCheck = []TCPStep{{Action: "connect"}, {Action: "send", Data: []byte("PING\r\n")},
			{Action: "expect", Data: []byte("+PONG\r\n"), Pattern: "+PONG\r\n"}}
	}
	if !be.Options.TCPCheck {
		if steps != nil && where != "defaults.tcp-check" {
			p.at(where, "tcp-check needs option tcp-check in this backend")
		}
		return
	}
	script := []TCPStep{}
	for i, st := range steps {
		sp := fmt.Sprintf("%s[%d]", where, i)
		if st == nil {
			p.at(sp, "empty tcp-check rule")
			continue
		}
		n := 0
		for _, set := range []bool{st.Connect != nil, st.Send != nil, st.SendBinary != nil, st.Expect != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			p.at(sp, "a tcp-check rule needs exactly one of connect, send, send-binary, expect")
			continue
		}
		switch {
		case st.Connect != nil:
			script = append(script, TCPStep{Action: "connect", Port: or(0, st.Connect.Port)})
		case st.Send != nil:
			script = append(script, TCPStep{Action: "send", Data: []byte(*st.Send)})
		case st.SendBinary != nil:
			b, err := hex.DecodeString(*st.SendBinary)
			if err != nil {
				p.at(sp+".send-binary", "%q is not hexadecimal: write bytes as pairs of 0-9, a-f", *st.SendBinary)
			}
			script = append(script, TCPStep{Action: "send", Data: b})
		default:
			e := st.Expect
			step := TCPStep{Action: "expect", Not: or(false, e.Not)}
			kinds := 0
			if e.String != nil {
				kinds++
				step.Data, step.Pattern = []byte(*e.String), *e.String
			}
			if e.Binary != nil {
				kinds++
				b, err := hex.DecodeString(*e.Binary)
				if err != nil {
					p.at(sp+".expect.binary", "%q is not hexadecimal: write bytes as pairs of 0-9, a-f", *e.Binary)
				}
				step.Data, step.Pattern = b, *e.Binary
			}
			if e.RString != nil {
				kinds++
				re, err := regexp.Compile(*e.RString)
				if err != nil {
					p.at(sp+".expect.rstring", "invalid regular expression: %v", err)
				}
				step.Regexp, step.Pattern = re, *e.RString
			}
			if kinds != 1 {
				p.at(sp+".expect", "expect needs exactly one of string, rstring, binary")
				continue
			}
			script = append(script, step)
		}
	}
	// As HAProxy: a script that does not start with a connect gets one.
	if len(script) == 0 || script[0].Action != "connect" {
		script = append([]TCPStep{{Action: "connect"}}, script...)
	}
	be.TCPCheck = script
}
