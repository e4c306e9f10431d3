package convert

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/halo-lb/halo/config"
)

// wordKind is how a server or bind word takes its value.
type wordKind int

const (
	flagWord wordKind = iota // a bare word: true
	text                     // one word: a string
	number                   // one word: an integer
	duration                 // one word: an HAProxy time
	crtPath                  // a file under crt-base
	caPath                   // a file under ca-base
)

// serverWords are the server and default-server words halo has, under
// the same names.
var serverWords = map[string]wordKind{
	"weight": number, "backup": flagWord, "disabled": flagWord, "check": flagWord, "port": number,
	"inter": duration, "fastinter": duration, "downinter": duration, "addr": text,
	"agent-check": flagWord, "agent-port": number, "agent-addr": text, "agent-inter": duration, "agent-send": text,
	"on-marked-down": text, "on-marked-up": text, "rise": number, "fall": number,
	"maxconn": number, "maxqueue": number, "slowstart": duration, "observe": text,
	"error-limit": number, "on-error": text, "ssl": flagWord, "verify": text, "ca-file": caPath,
	"crl-file": caPath, "sni": text, "verifyhost": text, "crt": crtPath, "ssl-min-ver": text,
	"ssl-max-ver": text, "ciphers": text, "ciphersuites": text, "no-ssl-reuse": flagWord, "alpn": text,
	"check-ssl": flagWord, "check-sni": text, "send-proxy": flagWord, "send-proxy-v2": flagWord,
	"send-proxy-v2-ssl": flagWord, "send-proxy-v2-ssl-cn": flagWord, "check-send-proxy": flagWord, "cookie": text,
}

// bindWords are the bind words halo has.
var bindWords = map[string]wordKind{
	"v4v6": flagWord, "v6only": flagWord, "interface": text, "transparent": flagWord, "freebind": flagWord,
	"ssl": flagWord, "crt": crtPath, "ssl-min-ver": text, "ssl-max-ver": text, "ciphers": text,
	"ciphersuites": text, "alpn": text, "verify": text, "ca-file": caPath, "crl-file": caPath,
	"no-tls-tickets": flagWord, "strict-sni": flagWord, "accept-proxy": flagWord,
}

// unsupportedValued are words of server and bind lines that take a value,
// so that the value is dropped with them rather than read as a word.
var unsupportedValued = map[string]bool{
	"id": true, "track": true, "minconn": true, "proto": true, "check-proto": true, "resolvers": true,
	"init-addr": true, "resolve-prefer": true, "resolve-net": true, "source": true, "redir": true,
	"namespace": true, "pool-max-conn": true, "pool-purge-delay": true, "pool-low-conn": true,
	"max-reuse": true, "usesrc": true, "check-alpn": true, "curves": true,
	"ecdhe": true, "npn": true, "name": true, "process": true, "thread": true, "backlog": true,
	"mss": true, "nice": true, "level": true, "user": true, "group": true,
	"mode": true, "uid": true, "gid": true, "crt-list": true, "severity-output": true, "tcp-ut": true,
	"sigalgs": true, "client-sigalgs": true, "ca-verify-file": true, "crt-ignore-err": true,
	"ca-ignore-err": true, "ws": true, "set-proxy-v2-tlv-fmt": true, "hash-key": true,
	"log-proto": true, "shard": true, "label": true, "guid": true,
	"ca-sign-file": true, "ca-sign-pass": true, "quic-cc-algo": true, "proxy-v2-options": true,
	"resolve-opts": true, "init-state": true, "log-bufsize": true, "pool-conn-name": true,
	"socks4": true, "maxconn": true, "tcp-md5sig": true, "accept-netscaler-cip": true, "shards": true,
	"default-crt":          true,
	"check-pool-conn-name": true, "idle-ping": true,
	"ktls": true,
}

// words maps the words of a server, default-server or bind line from i
// on into out; "no-X" turns a flag X off.
func (m *proxyMapper) words(w []string, i int, table map[string]wordKind, out *node, what string) {
	for ; i < len(w); i++ {
		word := w[i]
		kind, ok := table[word]
		off := false
		if !ok && strings.HasPrefix(word, "no-") {
			if k, found := table[strings.TrimPrefix(word, "no-")]; found && k == flagWord {
				kind, ok, off, word = flagWord, true, true, strings.TrimPrefix(word, "no-")
			}
		}
		if !ok && word == "enabled" && what != "bind" {
			out.set("disabled", boolean(false))
			continue
		}
		if !ok && word == "name" && what == "bind" && i+1 < len(w) {
			m.note("bind name %q: halo names a bind by its address in the stats and logs", w[i+1])
			i++
			continue
		}
		if !ok {
			if unsupportedValued[word] && i+1 < len(w) {
				m.warn("%s word %q (with its value %q) is not in halo; dropped", what, word, w[i+1])
				i++
			} else {
				m.warn("%s word %q is not in halo; dropped", what, word)
			}
			continue
		}
		if kind == flagWord {
			out.set(word, boolean(!off))
			continue
		}
		if i+1 >= len(w) {
			m.warn("%s word %q needs a value; dropped", what, word)
			continue
		}
		v := w[i+1]
		i++
		switch kind {
		case number:
			n, err := parseInt(v)
			if err != nil {
				m.warn("%s word %q: %q is not a whole number; dropped", what, word, v)
				continue
			}
			out.set(word, integer(n))
		case duration:
			if _, err := config.ParseDuration(v); err != nil {
				m.warn("%s word %q: %v; dropped", what, word, err)
				continue
			}
			out.set(word, str(v))
		case crtPath:
			v = underBase(m.c.crtBase, v)
			if what == "bind" {
				out.list("crt").items = append(out.list("crt").items, str(v))
				continue
			}
			out.set(word, str(v))
		case caPath:
			out.set(word, str(underBase(m.c.caBase, v)))
		default:
			out.set(word, str(v))
		}
	}
}

// underBase puts a relative path under HAProxy's crt-base or ca-base.
func underBase(base, p string) string {
	if base == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}

func parseInt(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }

func (m *proxyMapper) server() {
	w := m.st.Texts()
	if !m.need(1, 2, "the server's name and address") || !m.accepts("servers", "") {
		return
	}
	srv := newMap()
	srv.flow = true
	srv.set("name", str(w[1]))
	addr, ok := m.serverAddress(w[2])
	if !ok {
		return
	}
	srv.set("address", str(addr))
	m.words(w, 3, serverWords, srv, "server")
	m.appendTo("servers", srv)
}

func (m *proxyMapper) defaultServer() {
	w := m.st.Texts()
	if !m.accepts("default-server", "") {
		return
	}
	if srv := m.out.get("servers"); srv != nil && len(srv.items) > 0 && !m.inherited {
		m.warn("HAProxy applies default-server to the server lines after it only; halo's applies to every server of the section, the %d before it too", len(srv.items))
	}
	ds := m.out.child("default-server")
	ds.flow = true
	m.words(w, 1, serverWords, ds, "default-server")
	if !m.inherited {
		ds.head = joinComment(ds.head, m.st.Head)
		if m.st.Comment != "" {
			ds.line = m.st.Comment
		}
	}
}

// serverAddress turns HAProxy's server address into halo's HOST:PORT.
func (m *proxyMapper) serverAddress(a string) (string, bool) {
	for _, p := range []string{"ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"} {
		a = strings.TrimPrefix(a, p)
	}
	if strings.Contains(a, "@") || strings.HasPrefix(a, "/") {
		m.warn("halo connects to servers over TCP only: address %q; the server is dropped", a)
		return "", false
	}
	host, port, ok := splitHostPort(a)
	if !ok || port == "" {
		m.warn("the server address %q has no port: halo needs HOST:PORT (HAProxy would use the port the client connected to); the server is dropped", a)
		return "", false
	}
	if strings.HasPrefix(port, "+") || strings.HasPrefix(port, "-") {
		m.warn("the port offset %q (the client's port plus or minus) is not in halo; the server is dropped", port)
		return "", false
	}
	return net.JoinHostPort(host, port), true
}

// splitHostPort splits HAProxy's ADDRESS:PORT, where an IPv6 address may
// be written without brackets (the last colon starts the port).
func splitHostPort(a string) (host, port string, ok bool) {
	if strings.HasPrefix(a, "[") {
		h, p, err := net.SplitHostPort(a)
		return h, p, err == nil
	}
	i := strings.LastIndexByte(a, ':')
	if i < 0 {
		return a, "", true
	}
	return a[:i], a[i+1:], true
}

// bind maps "bind ADDR[,ADDR...] [words]": one halo bind per address and
// port of a range, each with the words.
func (m *proxyMapper) bind() {
	w := m.st.Texts()
	if !m.need(1, 1, "the address") || !m.accepts("bind", "") {
		return
	}
	opts := newMap()
	m.words(w, 2, bindWords, opts, "bind")
	for a := range strings.SplitSeq(w[1], ",") {
		addrs, ok := m.bindAddresses(a)
		if !ok {
			continue
		}
		for _, addr := range addrs {
			if opts.isEmpty() {
				m.appendTo("bind", str(addr))
				continue
			}
			b := opts.clone()
			b.flow = true
			b.keys = append([]string{"address"}, b.keys...)
			b.vals = append([]*node{str(addr)}, b.vals...)
			m.appendTo("bind", b)
		}
	}
}

// bindAddresses turns one HAProxy bind address into halo's, expanding a
// port range.
func (m *proxyMapper) bindAddresses(a string) ([]string, bool) {
	v6 := strings.HasPrefix(a, "ipv6@") || strings.HasPrefix(a, "tcp6@")
	for _, p := range []string{"ipv4@", "ipv6@", "tcp@", "tcp4@", "tcp6@"} {
		a = strings.TrimPrefix(a, p)
	}
	if strings.Contains(a, "@") || strings.HasPrefix(a, "/") {
		m.warn("halo listens on TCP addresses only: %q; dropped", a)
		return nil, false
	}
	host, port, _ := splitHostPort(a)
	if port == "" {
		m.warn("the bind address %q has no port; dropped", a)
		return nil, false
	}
	switch {
	case (host == "" || host == "*") && v6:
		host = "::" // ipv6@:PORT: every IPv6 address
	case host == "" || host == "*":
		host = "0.0.0.0"
	}
	lo, hi, isRange := strings.Cut(port, "-")
	if !isRange {
		hi = lo
	}
	from, err1 := strconv.Atoi(lo)
	to, err2 := strconv.Atoi(hi)
	if err1 != nil || err2 != nil || from < 0 || to > 65535 || from > to {
		m.warn("the port %q of bind %q is not a port or a range of them; dropped", port, a)
		return nil, false
	}
	if to-from >= 1024 {
		m.warn("the port range %q is over 1,024 ports; dropped", port)
		return nil, false
	}
	var out []string
	for p := from; p <= to; p++ {
		out = append(out, net.JoinHostPort(host, strconv.Itoa(p)))
	}
	return out, true
}

// stats maps the "stats ..." lines of a proxy: the stats page.
func (m *proxyMapper) stats(w []string) {
	if !m.need(1, 1, "the stats directive") {
		return
	}
	// In defaults the lines are kept, to be carried into each frontend
	// and listen, where HAProxy serves the page too.
	if !m.accepts("stats", "") {
		return
	}
	arg := func(n int) (string, bool) {
		if len(w) <= n {
			m.warn("stats %s needs a value; dropped", w[1])
			return "", false
		}
		return strings.Join(w[n:], " "), true
	}
	// As HAProxy's manual says of stats uri, auth, realm and refresh:
	// any of them alone enables the page.
	enable := func() {
		if m.out.child("stats").get("enable") == nil {
			m.out.child("stats").set("enable", boolean(true))
		}
	}
	switch w[1] {
	case "enable":
		m.put(boolean(true), "stats", "enable")
	case "uri", "realm":
		if v, ok := arg(2); ok {
			enable()
			m.put(str(v), "stats", w[1])
		}
	case "refresh":
		if v, ok := arg(2); ok && m.putDuration(v, "stats", "refresh") {
			enable()
		}
	case "auth":
		if v, ok := arg(2); ok {
			enable()
			m.out.child("stats").list("auth").items = append(m.out.child("stats").list("auth").items, str(v))
		}
	case "hide-version":
		m.put(boolean(true), "stats", "hide-version")
	case "admin":
		if strings.Join(w[2:], " ") == "if TRUE" {
			m.put(boolean(true), "stats", "admin")
			return
		}
		m.warn("halo's stats admin is on or off: %q needs a condition halo does not take; written as admin: true only if it is \"if TRUE\"; dropped", strings.Join(w[2:], " "))
	case "show-legends", "show-node", "show-desc", "show-modules":
		m.note("halo's page shows what it shows; nothing to do")
	case "scope":
		m.warn("halo's page shows every proxy; dropped")
	default:
		m.warn("dropped")
	}
}
