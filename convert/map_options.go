package convert

import (
	"slices"
	"strings"

	"github.com/halo-lb/halo/config"
)

// boolOptions are HAProxy's options that halo has under the same name.
var boolOptions = map[string]bool{
	"tcpka": true, "clitcpka": true, "srvtcpka": true, "httplog": true, "tcplog": true, "redispatch": true,
	"persist": true, "http-keep-alive": true, "http-server-close": true, "httpclose": true,
	"http-pretend-keepalive": true, "http-buffer-request": true, "allbackups": true,
}

// connModes exclude each other in a halo section; in HAProxy the last
// line wins.
var connModes = []string{"http-keep-alive", "http-server-close", "httpclose"}

// checkers exclude each other too; the last "option ...-check" wins.
var checkers = []string{"httpchk", "tcp-check", "redis-check", "mysql-check", "pgsql-check", "galera-check", "mysql-replica-check", "pgsql-standby-check"}

// optionNotes are options whose effect halo has without them.
var optionNotes = map[string]string{
	"http-use-htx":        "halo always parses HTTP as HAProxy's HTX does; nothing to do",
	"splice-auto":         "halo always splices mode tcp between plain sockets; nothing to do",
	"splice-request":      "halo always splices mode tcp between plain sockets; nothing to do",
	"splice-response":     "halo always splices mode tcp between plain sockets; nothing to do",
	"contstats":           "halo's byte counters always count as the bytes move; nothing to do",
	"socket-stats":        "halo's counters are per frontend, backend and server; nothing to do",
	"independent-streams": "halo's inactivity timeout counts both directions of a session; nothing to do",
	"http-no-delay":       "halo sends each response as soon as it has it; nothing to do",
	"forceclose":          "removed from HAProxy 1.9 on; it meant httpclose, which is written instead",
}

// option maps "option NAME [args]" (on) and "no option NAME" (off).
func (m *proxyMapper) option(w []string, on bool) {
	if len(w) == 0 {
		m.warn("the option's name is missing; dropped")
		return
	}
	name, args := w[0], w[1:]
	if !m.accepts("option", "") {
		return
	}
	if name == "forceclose" {
		name = "httpclose"
		m.note("%s", optionNotes["forceclose"])
	} else if msg, ok := optionNotes[name]; ok {
		m.note("%s", msg)
		return
	}
	switch {
	case boolOptions[name]:
		if len(args) > 0 && !(name == "httplog" || name == "redispatch") {
			m.warn("halo's option %s takes no arguments; %q dropped", name, strings.Join(args, " "))
		}
		if name == "httplog" && len(args) > 0 {
			m.warn("halo writes HAProxy's httplog format, not %q", strings.Join(args, " "))
		}
		if name == "redispatch" && len(args) > 0 {
			m.warn("halo redispatches on every retry; the interval %q is dropped", strings.Join(args, " "))
		}
		if on {
			m.exclude(name, connModes)
		} else if slices.Contains(connModes, name) {
			// HAProxy's "no option X" of a connection mode clears the
			// mode only when X is the one in force, and then the
			// connection is kept alive.
			if m.connMode() == name {
				m.exclude("http-keep-alive", connModes)
				m.put(boolean(true), "option", "http-keep-alive")
			} else {
				m.note("%s is not the connection mode in force here; nothing to do", name)
			}
			return
		}
		m.put(boolean(on), "option", name)
	case name == "forwardfor" || name == "originalto":
		m.forwardFor(name, args, on)
	case name == "httpchk":
		m.httpchk(args, on)
	case name == "tcp-check" || name == "redis-check":
		if on {
			m.exclude(name, checkers)
		}
		m.put(boolean(on), "option", name)
	case name == "mysql-check" || name == "pgsql-check":
		m.dbCheck(name, args, on)
	case name == "dontlognull":
		m.note("halo writes no access line for a mode http connection that sent no request; in mode tcp it logs every session, empty ones too")
	case name == "dontlog-normal", name == "log-health-checks", name == "log-separate-errors", name == "logasap":
		m.warn("halo's access log has no such filter or mode; every request (httplog) or session (tcplog) is logged once, at its end")
	case name == "abortonclose":
		m.warn("halo does not abort a queued or connecting request whose client closed; the option is dropped")
	case name == "accept-invalid-http-request", name == "accept-invalid-http-response":
		m.warn("halo refuses invalid HTTP messages (request smuggling); dropped")
	case name == "prefer-last-server":
		m.warn("halo does not prefer the server of a client's previous request on a kept-alive connection; dropped")
	default:
		m.warn("dropped")
	}
}

// connMode is the connection mode in force for the section so far: its
// own option, or the YAML defaults' ("http-keep-alive" without either).
func (m *proxyMapper) connMode() string {
	for _, n := range []*node{m.out, m.c.defaults} {
		if n == nil {
			continue
		}
		if opt := n.get("option"); opt != nil {
			for _, mode := range connModes {
				if v := opt.get(mode); v != nil && v.value == "true" {
					return mode
				}
			}
		}
	}
	return "http-keep-alive"
}

// exclude removes the other members of a group of exclusive options that
// the section set on earlier lines: the later line wins.
func (m *proxyMapper) exclude(name string, group []string) {
	opt := m.out.get("option")
	if opt == nil {
		return
	}
	member := false
	for _, g := range group {
		member = member || g == name
	}
	if !member {
		return
	}
	for _, g := range group {
		if g != name && opt.get(g) != nil {
			opt.del(g)
		}
	}
}

func (m *proxyMapper) forwardFor(name string, args []string, on bool) {
	if !on || len(args) == 0 {
		m.put(boolean(on), "option", name)
		return
	}
	ff := newMap()
	ff.set("enabled", boolean(true))
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "except" && i+1 < len(args):
			ff.set("except", str(args[i+1]))
			i++
		case a == "header" && i+1 < len(args):
			ff.set("header", str(args[i+1]))
			i++
		case a == "if-none" && name == "forwardfor":
			ff.set("if-none", boolean(true))
		default:
			m.warn("unknown argument %q of option %s; dropped", a, name)
		}
	}
	m.put(ff, "option", name)
}

// httpchk maps "option httpchk [METH] [URI] [VERSION]" to the checker and
// its request (HAProxy's older form of "http-check send").
func (m *proxyMapper) httpchk(args []string, on bool) {
	if !on {
		m.put(boolean(false), "option", "httpchk")
		return
	}
	m.exclude("httpchk", checkers)
	m.put(boolean(true), "option", "httpchk")
	if !config.SectionAccepts(m.kind, "http-check", "") {
		return // a frontend carrying defaults: HAProxy checks no server there
	}
	switch len(args) {
	case 0:
		// HAProxy starts a fresh check for a section's own "option
		// httpchk" (OPTIONS / HTTP/1.0, any 2xx or 3xx), where halo's
		// section would take the defaults' http-check lines.
		if d := m.c.defaults; d != nil && m.kind != "defaults" && !m.inherited && d.get("http-check") != nil {
			m.put(str("OPTIONS"), "http-check", "send", "meth")
			m.put(str("/"), "http-check", "send", "uri")
			m.put(str("HTTP/1.0"), "http-check", "send", "ver")
			if d.get("http-check").get("expect") != nil {
				m.warn("HAProxy's own option httpchk here drops the defaults' http-check expect; halo's section keeps it")
			}
		}
	case 1:
		m.put(str(args[0]), "http-check", "send", "uri")
	default:
		m.put(str(args[0]), "http-check", "send", "meth")
		m.put(str(args[1]), "http-check", "send", "uri")
		if len(args) > 2 {
			// HAProxy's older form hides headers after the version:
			// "HTTP/1.1\r\nHost:\ www" (the escapes are bytes by now).
			lines := strings.Split(strings.Join(args[2:], " "), "\r\n")
			m.put(str(lines[0]), "http-check", "send", "ver")
			for _, h := range lines[1:] {
				name, value, ok := strings.Cut(h, ":")
				if h == "" {
					continue
				}
				if !ok || strings.TrimSpace(name) == "" {
					m.warn("%q after the version is not a header; dropped", h)
					continue
				}
				m.put(str(strings.TrimSpace(value)), "http-check", "send", "hdr", strings.TrimSpace(name))
			}
		}
	}
	if m.kind != "frontends" && m.usesPort9200() {
		m.note("a clustercheck script on port 9200 answers this check; halo's own galera-check (option galera-check) reads the node's wsrep state itself, with no xinetd script (see docs/configuration.md)")
	}
}

// usesPort9200 reports whether the section's servers check port 9200, as
// the OpenStack guides' clustercheck does.
func (m *proxyMapper) usesPort9200() bool {
	for _, st := range m.sectionBody() {
		w := st.Texts()
		if w[0] != "server" && w[0] != "default-server" {
			continue
		}
		for i := 1; i+1 < len(w); i++ {
			if w[i] == "port" && w[i+1] == "9200" {
				return true
			}
		}
	}
	return false
}

func (m *proxyMapper) dbCheck(name string, args []string, on bool) {
	if !on {
		m.warn("no option %s: halo's checkers are replaced by setting another; dropped", name)
		return
	}
	m.exclude(name, checkers)
	v := newMap()
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "user" && i+1 < len(args):
			v.set("user", str(args[i+1]))
			i++
		case name == "mysql-check" && (a == "post-41" || a == "pre-41"):
			m.note("halo speaks the MySQL 4.1 protocol and later; %q needs nothing", a)
		default:
			m.warn("unknown argument %q of option %s; dropped", a, name)
		}
	}
	if v.isEmpty() {
		if name == "pgsql-check" {
			m.warn("option pgsql-check needs \"user\"; dropped")
			return
		}
		m.put(boolean(true), "option", name)
		return
	}
	v.flow = true
	m.put(v, "option", name)
}

// httpCheck maps "http-check send|expect ...".
func (m *proxyMapper) httpCheck(w []string) {
	if !m.need(1, 1, "the http-check directive") || !m.accepts("http-check", "") {
		return
	}
	switch w[1] {
	case "send":
		for i := 2; i < len(w); i++ {
			switch a := w[i]; {
			case (a == "meth" || a == "uri" || a == "ver") && i+1 < len(w):
				m.put(str(w[i+1]), "http-check", "send", a)
				i++
			case a == "hdr" && i+2 < len(w):
				m.put(str(w[i+2]), "http-check", "send", "hdr", w[i+1])
				i += 2
			default:
				m.warn("argument %q of http-check send is not in halo; dropped", a)
			}
		}
	case "expect":
		args := w[2:]
		not := len(args) > 0 && args[0] == "!"
		if not {
			args = args[1:]
		}
		if len(args) < 2 {
			m.warn("http-check expect needs a match and a pattern; dropped")
			return
		}
		if prev := m.out.get("http-check"); prev != nil && prev.get("expect") != nil && !m.inherited {
			m.warn("halo's http-check takes one expect: HAProxy's checks every expect line in turn, halo only the last; the earlier one is replaced")
		}
		switch args[0] {
		case "status", "rstatus", "string", "rstring":
			e := newMap()
			e.set(args[0], str(strings.Join(args[1:], " ")))
			if not {
				e.set("not", boolean(true))
			}
			m.put(e, "http-check", "expect")
		default:
			m.warn("http-check expect %s is not in halo (status, rstatus, string, rstring); dropped", args[0])
		}
	case "disable-on-404":
		m.warn("halo does not drain a server whose check answers 404; dropped")
	default:
		m.warn("dropped")
	}
}

// tcpCheck maps one "tcp-check" rule.
func (m *proxyMapper) tcpCheck(w []string) {
	if !m.need(1, 1, "the tcp-check rule") || !m.accepts("tcp-check", "") {
		return
	}
	step := newMap()
	step.flow = true
	switch w[1] {
	case "connect":
		c := newMap()
		c.flow = true
		for i := 2; i < len(w); i++ {
			if w[i] == "port" && i+1 < len(w) {
				c.set("port", str(w[i+1]))
				i++
				continue
			}
			m.warn("argument %q of tcp-check connect is not in halo; dropped", w[i])
		}
		if p := c.get("port"); p != nil {
			c.set("port", integerOr(p.value))
		}
		step.set("connect", c)
	case "send", "send-binary":
		if len(w) < 3 {
			m.warn("nothing to send; dropped")
			return
		}
		step.set(w[1], str(w[2]))
	case "expect":
		args := w[2:]
		not := len(args) > 0 && args[0] == "!"
		if not {
			args = args[1:]
		}
		if len(args) < 2 || !(args[0] == "string" || args[0] == "rstring" || args[0] == "binary") {
			m.warn("halo's tcp-check expect takes string, rstring or binary and a pattern; dropped")
			return
		}
		e := newMap()
		e.flow = true
		e.set(args[0], str(args[1]))
		if not {
			e.set("not", boolean(true))
		}
		step.set("expect", e)
	case "comment":
		m.note("kept as this comment: %s", m.rest(2))
		return
	default:
		m.warn("dropped")
		return
	}
	m.appendTo("tcp-check", step)
}

// integerOr is n as an integer node, or as a string when it is not one
// (halo's check then names it).
func integerOr(n string) *node {
	v := str(n)
	if _, err := parseInt(n); err == nil {
		v = &node{kind: v.kind, tag: "!!int", value: n}
	}
	return v
}
