package convert

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/config/lang"
)

// proxyMapper maps the lines of one proxy section (or of a defaults
// section, into the YAML defaults or into a proxy that inherits it).
type proxyMapper struct {
	c    *converter
	kind string // the YAML section kind: defaults, frontends, backends, listen
	out  *node
	// inherited: these are a defaults section's lines carried into a
	// proxy; lines that do not apply to its kind are left out silently,
	// as HAProxy applies only what the proxy's capabilities use, and
	// their warnings were said once for the defaults section.
	inherited bool
	sec       *Section
	st        *Stmt
}

// haproxyKind names the YAML kind as HAProxy's section keyword.
var haproxyKind = map[string]string{"defaults": "defaults", "frontends": "frontend", "backends": "backend", "listen": "listen"}

func (c *converter) mapProxy(s *Section, kind string, out *node, inherited bool) {
	m := &proxyMapper{c: c, kind: kind, out: out, inherited: inherited, sec: s}
	for _, st := range s.Body {
		m.st = st
		m.line()
	}
}

// sectionBody is the statements of the section being mapped.
func (m *proxyMapper) sectionBody() []*Stmt { return m.sec.Body }

func (m *proxyMapper) warn(format string, args ...any) {
	if m.inherited {
		return
	}
	m.out.pendingHead(m.c.diags.warn(m.st.Line, m.keyword(), fmt.Sprintf(format, args...)))
}

func (m *proxyMapper) note(format string, args ...any) {
	if m.inherited {
		return
	}
	m.out.pendingHead(m.c.diags.note(m.st.Line, m.keyword(), fmt.Sprintf(format, args...)))
}

// keyword is the line's keyword as messages name it: "option httpchk",
// "timeout client", "no option redispatch".
func (m *proxyMapper) keyword() string {
	w := m.st.Texts()
	n := 1
	switch w[0] {
	case "option", "timeout", "stats", "http-check", "tcp-check", "hash-type", "http-request", "http-response", "tcp-request", "stick", "capture":
		n = 2
	case "no":
		n = 3
	}
	return strings.Join(w[:min(n, len(w))], " ")
}

// accepts says whether the line's key (and timeout name) can be written
// in this section. A line HAProxy ignores there is dropped with the
// warning HAProxy gives; one HAProxy applies but halo's section does not
// take is dropped with a warning that says so. A defaults section takes
// every key HAProxy's does: what halo's defaults lacks is carried into
// the proxies afterwards (fixDefaults).
func (m *proxyMapper) accepts(key, timeout string) bool {
	switch {
	case !haproxyApplies(m.kind, key, timeout):
		m.warn("HAProxy ignores it in a %s section too (it warns); dropped", haproxyKind[m.kind])
		return false
	case m.kind == "defaults", config.SectionAccepts(m.kind, key, timeout):
		return true
	}
	// Said once per line, also for a defaults line carried into several
	// proxies.
	was := m.inherited
	m.inherited = false
	m.warn("halo does not take it in a %s section; dropped", haproxyKind[m.kind])
	m.inherited = was
	return false
}

// put sets the value at path in the section, with the line's comments.
func (m *proxyMapper) put(v *node, path ...string) {
	n := m.out
	for _, k := range path[:len(path)-1] {
		n = n.child(k)
	}
	v.src = m.st.Line
	if !m.inherited {
		v.head = joinComment(m.st.Head, v.head)
		if m.st.Comment != "" && v.line == "" {
			v.line = m.st.Comment
		}
	}
	n.set(path[len(path)-1], v)
}

// appendTo adds v to the list at key.
func (m *proxyMapper) appendTo(key string, v *node) {
	l := m.out.list(key)
	v.src = m.st.Line
	if !m.inherited {
		v.head = joinComment(m.st.Head, v.head)
		if m.st.Comment != "" {
			v.line = m.st.Comment
		}
	}
	if m.out.pending != "" {
		v.head = joinComment(m.out.pending, v.head)
		m.out.pending = ""
	}
	l.items = append(l.items, v)
}

// rest is the line's text from word i on, as a rule string halo reads
// with HAProxy's own quoting: the source as written, or, when the line
// expanded environment variables, its words quoted again.
func (m *proxyMapper) rest(i int) string {
	if raw := m.st.RawFrom(i); len(m.st.Env) == 0 && sameWords(raw, m.st.Words[i:]) {
		return raw
	}
	parts := make([]string, 0, len(m.st.Words)-i)
	for _, w := range m.st.Words[i:] {
		parts = append(parts, quoteWord(w.Text))
	}
	return strings.Join(parts, " ")
}

// stickTable drops the peers word of a stick-table line: halo has no
// peers section (the table stays on its node).
func (m *proxyMapper) stickTable(v string) string {
	ws := strings.Fields(v)
	for i := 0; i+1 < len(ws); i++ {
		if ws[i] == "peers" {
			m.warn("halo has no peers: the table %q is not shared with other nodes (each node keeps its own); the peers word is dropped", ws[i+1])
			ws = append(ws[:i], ws[i+2:]...)
			break
		}
	}
	return strings.Join(ws, " ")
}

// balance checks that halo has the algorithm.
func (m *proxyMapper) balance(algo string) bool {
	name, _, _ := strings.Cut(algo, "(")
	switch name {
	case "roundrobin", "static-rr", "leastconn", "first", "source", "uri", "url_param", "hdr", "random":
		return true
	}
	m.warn("halo has no balance %s: the backend balances round robin", algo)
	m.put(str("roundrobin"), "balance")
	return false
}

// sameWords reports whether halo's reader of HAProxy's words (config/lang)
// reads raw as the words HAProxy read: it does not expand "\$" inside
// double quotes, for one, and then the words are quoted again.
func sameWords(raw string, want []Word) bool {
	got, err := lang.Split(raw)
	if err != nil || len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].Text != want[i].Text {
			return false
		}
	}
	return true
}

// words joins the line's words from i on with single spaces, for the
// values halo splits on blanks (cookie, stick-table, balance, retry-on);
// a word with a blank inside cannot be written there.
func (m *proxyMapper) wordsFrom(i int) (string, bool) {
	var parts []string
	for _, w := range m.st.Words[i:] {
		if strings.ContainsAny(w.Text, " \t") || w.Text == "" {
			m.warn("the word %q has a blank in it, which halo cannot carry in this value; dropped", w.Text)
			return "", false
		}
		parts = append(parts, w.Text)
	}
	return strings.Join(parts, " "), true
}

// quoteWord writes a word so that HAProxy's line parser reads it back.
func quoteWord(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t#'\"\\$\r\n") {
		return s
	}
	if !strings.ContainsAny(s, "'\r\n\t") {
		return "'" + s + "'"
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", `\r`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// need checks that the line has at least n words after its keyword words.
func (m *proxyMapper) need(from, n int, what string) bool {
	if len(m.st.Words)-from >= n {
		return true
	}
	m.warn("%s is missing; dropped", what)
	return false
}

// ruleKeys are HAProxy's line keywords that halo takes as strings of
// HAProxy's language, keyed by the keyword; the value is the YAML key and
// how many words of the line the string leaves out.
var ruleKeys = map[string]struct {
	key  string
	skip int
}{
	"http-request": {"http-request", 1}, "http-response": {"http-response", 1}, "tcp-request": {"tcp-request", 1},
	"redirect": {"redirect", 1}, "use_backend": {"use_backend", 1}, "stick": {"stick", 1},
	"force-persist": {"force-persist", 1}, "ignore-persist": {"ignore-persist", 1}, "monitor": {"monitor", 1},
	"capture": {"capture", 1}, "declare": {"declare", 1}, "http-error": {"http-error", 1},
}

// oneString are keywords whose whole argument text is one YAML string.
var oneString = map[string]string{
	"balance": "balance", "retry-on": "retry-on", "stick-table": "stick-table", "cookie": "cookie",
	"monitor-uri": "monitor-uri", "unique-id-format": "unique-id-format", "unique-id-header": "unique-id-header",
	"load-server-state-from-file": "load-server-state-from-file", "server-state-file-name": "server-state-file-name",
	"default_backend": "default_backend",
}

func (m *proxyMapper) line() {
	w := m.st.Texts()
	kw := w[0]
	if r, ok := ruleKeys[kw]; ok {
		if !m.need(r.skip, 1, "the rule") || !m.accepts(r.key, "") {
			return
		}
		text := m.rest(r.skip)
		if !m.ruleLanguage(kw, text, r.skip) {
			return
		}
		m.appendTo(r.key, str(text))
		return
	}
	if key, ok := oneString[kw]; ok {
		if !m.need(1, 1, "the value") || !m.accepts(key, "") {
			return
		}
		v := m.rest(1)
		switch kw {
		case "default_backend", "monitor-uri", "unique-id-header", "load-server-state-from-file", "server-state-file-name":
			v = w[1] // one word, unquoted
		case "cookie", "stick-table", "balance", "retry-on":
			// halo reads these as blank-separated words, without
			// HAProxy's quoting.
			var ok bool
			if v, ok = m.wordsFrom(1); !ok {
				return
			}
			if kw == "stick-table" {
				v = m.stickTable(v)
			}
			if kw == "balance" && !m.balance(w[1]) {
				return
			}
		}
		m.put(str(v), key)
		return
	}
	switch kw {
	case "mode":
		m.mode(w)
	case "maxconn":
		if m.need(1, 1, "the number") && m.accepts("maxconn", "") {
			m.putInt(w[1], 1, 1<<31-1, "maxconn")
		}
	case "retries":
		if m.need(1, 1, "the number") && m.accepts("retries", "") {
			m.putInt(w[1], 0, 100, "retries")
		}
	case "hash-balance-factor":
		if m.need(1, 1, "the factor") && m.accepts("hash-balance-factor", "") {
			if w[1] == "0" {
				m.note("0 is off, halo's default; nothing to write")
				return
			}
			m.putInt(w[1], 100, 65535, "hash-balance-factor")
		}
	case "hash-type":
		m.hashType(w)
	case "bind":
		m.bind()
	case "timeout":
		m.timeout(w)
	case "option":
		m.option(w[1:], true)
	case "no":
		if len(w) >= 2 && w[1] == "option" {
			m.option(w[2:], false)
			return
		}
		if len(w) >= 2 && w[1] == "log" {
			m.note("halo writes a proxy's log lines only with option httplog or tcplog; nothing to do")
			return
		}
		m.warn("dropped")
	case "server":
		m.server()
	case "default-server":
		m.defaultServer()
	case "http-check":
		m.httpCheck(w)
	case "tcp-check":
		m.tcpCheck(w)
	case "stats":
		m.stats(w)
	case "acl":
		m.acl()
	case "errorfile":
		if m.need(1, 2, "the status and the file") && m.accepts("errorfile", "") {
			m.put(str(w[2]), "errorfile", w[1])
		}
	case "log":
		if len(w) >= 2 && w[1] == "global" {
			m.note("halo writes the log lines of option httplog/tcplog to its own log output; nothing to do")
			return
		}
		m.warn("halo has no syslog output yet: its log lines go to its own log output; the target is dropped")
	case "description":
		m.note("halo has no proxy descriptions: kept as this comment: %s", m.rest(1))
	case "id":
		m.note("halo numbers proxies itself (stats show names); dropped")
	case "enabled":
		m.note("sections are enabled by default; nothing to do")
	case "disabled":
		m.warn("halo has no disabled proxy sections: the section is converted as enabled; delete it or set its servers disabled")
	default:
		m.warn("dropped")
	}
}

func (m *proxyMapper) putInt(s string, lo, hi int, path ...string) {
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		m.warn("%q is not a whole number from %d to %d; dropped", s, lo, hi)
		return
	}
	m.put(integer(int64(n)), path...)
}

func (m *proxyMapper) putDuration(s string, path ...string) bool {
	if _, err := config.ParseDuration(s); err != nil {
		m.warn("%v; dropped", err)
		return false
	}
	m.put(str(s), path...)
	return true
}

func (m *proxyMapper) mode(w []string) {
	if !m.need(1, 1, "the mode") || !m.accepts("mode", "") {
		return
	}
	switch w[1] {
	case "tcp", "http":
		m.put(str(w[1]), "mode")
	case "health":
		m.warn("mode health (answer OK and close) is not in halo: use mode http with monitor-uri; dropped")
	default:
		m.warn("unknown mode %q; dropped", w[1])
	}
}

func (m *proxyMapper) hashType(w []string) {
	if !m.need(1, 1, "the method") || !m.accepts("hash-type", "") {
		return
	}
	switch w[1] {
	case "map-based", "consistent":
		m.put(str(w[1]), "hash-type")
	default:
		m.warn("hash method %q is not in halo (map-based, consistent); dropped", w[1])
		return
	}
	if len(w) > 2 {
		m.warn("the hash function %q is not chosen in halo: halo hashes with its own function, so keys map to other servers than in HAProxy", strings.Join(w[2:], " "))
	} else {
		m.note("halo's hash function is not HAProxy's: each key goes to one server as before, but not the same one as under HAProxy (once, at the switch)")
	}
}

// timeouts maps HAProxy's timeout names to halo's.
var timeouts = map[string]string{
	"client": "client", "server": "server", "connect": "connect", "check": "check", "tunnel": "tunnel",
	"http-request": "http-request", "http-keep-alive": "http-keep-alive", "queue": "queue",
}

func (m *proxyMapper) timeout(w []string) {
	if !m.need(1, 2, "the timeout's name and value") {
		return
	}
	name, ok := timeouts[w[1]]
	if !ok {
		switch w[1] {
		case "client-fin", "server-fin":
			m.warn("halo closes a half-closed session at the inactivity timeout (client, server or tunnel); dropped")
		case "tarpit":
			m.warn("halo has no tarpit; dropped")
		default:
			m.warn("unknown timeout; dropped")
		}
		return
	}
	if !m.accepts("timeout", name) {
		return
	}
	m.putDuration(w[2], "timeout", name)
}

func (m *proxyMapper) acl() {
	if !m.need(1, 2, "the ACL's name and condition") || !m.accepts("acl", "") {
		return
	}
	name := m.st.Words[1].Text
	if !m.ruleLanguage("acl", m.rest(2), 2) {
		return
	}
	cond := str(m.rest(2))
	acls := m.out.child("acl")
	prev := acls.get(name)
	switch {
	case prev == nil:
		m.put(cond, "acl", name)
	case prev.kind == cond.kind: // a second line of the same ACL: a list
		l := newSeq()
		l.head, prev.head = prev.head, ""
		l.items = []*node{prev, cond}
		acls.set(name, l)
	default:
		prev.items = append(prev.items, cond)
	}
}
