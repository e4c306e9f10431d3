package config

// ConnMode is an HTTP connection mode, HAProxy's "option http-keep-alive",
// "option http-server-close" and "option httpclose". They are ordered:
// when a frontend and the backend a request goes to set different ones,
// the more closing one applies, as in HAProxy.
type ConnMode int

// The connection modes, from the least to the most closing.
const (
	// KeepAlive keeps both connections open between requests (the
	// default).
	KeepAlive ConnMode = iota
	// ServerClose closes the server connection after each response and
	// keeps the client's.
	ServerClose
	// Close closes both after each response.
	Close
)

func (m ConnMode) String() string {
	switch m {
	case ServerClose:
		return "http-server-close"
	case Close:
		return "httpclose"
	}
	return "http-keep-alive"
}

// MarshalText writes the option's name.
func (m ConnMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// connModeOf is the connection mode a section's options set, if any.
func connModeOf(o *fileOptions) (ConnMode, bool) {
	if o == nil {
		return KeepAlive, false
	}
	m, set := KeepAlive, false
	for _, c := range []struct {
		v *bool
		m ConnMode
	}{{o.HTTPKeepAlive, KeepAlive}, {o.HTTPServerClose, ServerClose}, {o.HTTPClose, Close}} {
		if c.v != nil && *c.v {
			m, set = max(m, c.m), true
		}
	}
	return m, set
}

// connMode resolves a section's connection mode: the one it sets itself,
// else the one of defaults, else keep-alive.
func connMode(own, def *fileOptions) ConnMode {
	if m, ok := connModeOf(own); ok {
		return m
	}
	m, _ := connModeOf(def)
	return m
}

// checkConnModes refuses two connection modes in one section, where
// HAProxy would let the last line win: YAML keys have no order.
func (p *parser) checkConnModes(fc *fileConfig) {
	check := func(path string, s *fileProxy) {
		if s == nil || s.Option == nil {
			return
		}
		o := s.Option
		var set []string
		for _, c := range []struct {
			v    *bool
			name string
		}{{o.HTTPKeepAlive, "http-keep-alive"}, {o.HTTPServerClose, "http-server-close"}, {o.HTTPClose, "httpclose"}} {
			if c.v != nil && *c.v {
				set = append(set, c.name)
			}
		}
		if len(set) > 1 {
			p.at(path+".option."+set[1], "%s and %s exclude each other: a section has one HTTP connection mode", set[0], set[1])
		}
	}
	check("defaults", fc.Defaults)
	for kind, sections := range map[string]map[string]*fileProxy{"frontends": fc.Frontends, "backends": fc.Backends, "listen": fc.Listen} {
		for name, s := range sections {
			check(kind+"."+name, s)
		}
	}
}
