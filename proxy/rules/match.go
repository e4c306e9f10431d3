package rules

import (
	"bytes"
	"net/netip"
	"regexp"
	"slices"

	"github.com/halo-lb/halo/config/lang"
)

// matcher is a compiled ACL: its sample and its patterns, indexed for the
// match method so that a long -f list costs a few lookups, not a scan.
type matcher struct {
	s      *sample
	method lang.Method
	nocase bool
	// str: exact strings; beg and end: by length, so that a sample is
	// looked up once per distinct pattern length.
	set     map[string]struct{}
	lengths []int
	// sub, dir, dom: the patterns, scanned (as HAProxy does).
	list [][]byte
	res  []*regexp.Regexp
	// int and len: inclusive ranges.
	ranges [][2]int64
	// ip: networks by prefix length, longest first.
	nets  map[netip.Prefix]struct{}
	bits4 []int
	bits6 []int
	// few holds the patterns of a short list (str, beg, end), netList
	// the networks of a short ip list: a scan of a few beats hashing.
	few     [][]byte
	netList []netip.Prefix
	// reqHost: the ACL matches the request's Host header as a string
	// (hdr(host) -i -m dom ..., the commonest routing ACL), with no
	// converter: read straight from fasthttp, which keeps Host apart,
	// without the sample machinery's value slot and occurrence loop.
	reqHost bool
}

// fewPatterns is up to how many patterns a list is scanned rather than
// looked up.
const fewPatterns = 4

func (c *Compiler) compileMatch(lm *lang.Match) (*matcher, error) {
	s, err := c.compileSample(lm.Sample)
	if err != nil {
		return nil, err
	}
	m := &matcher{s: s, method: lm.Method, nocase: lm.NoCase}
	if m.method == lang.MatchBin {
		// HAProxy's bin: the sample's bytes equal the (hex-decoded)
		// pattern's, -i or not.
		m.method, m.nocase = lang.MatchStr, false
	}
	switch m.method {
	case lang.MatchStr, lang.MatchBeg, lang.MatchEnd, lang.MatchSub, lang.MatchDir, lang.MatchDom, lang.MatchReg:
		m.reqHost = s.f.host && s.f.occ == 0 && len(s.convs) == 0
	}
	pats := lm.Patterns
	switch m.method {
	case lang.MatchStr, lang.MatchBeg, lang.MatchEnd:
		m.set = map[string]struct{}{}
		for _, p := range pats {
			k := p.Text
			if m.nocase {
				k = string(lowerASCII([]byte(k)))
			}
			m.set[k] = struct{}{}
			if !slices.Contains(m.lengths, len(k)) {
				m.lengths = append(m.lengths, len(k))
			}
		}
		slices.Sort(m.lengths)
		if len(pats) <= fewPatterns {
			for k := range m.set {
				m.few = append(m.few, []byte(k))
			}
		}
	case lang.MatchSub, lang.MatchDir, lang.MatchDom:
		for _, p := range pats {
			b := []byte(p.Text)
			if m.nocase {
				b = lowerASCII(b)
			}
			m.list = append(m.list, b)
		}
	case lang.MatchReg:
		for _, p := range pats {
			expr := p.Text
			if m.nocase {
				expr = "(?i)" + expr
			}
			re, err := regexp.Compile(expr)
			if err != nil {
				return nil, &PosError{p.Pos, err.Error()}
			}
			m.res = append(m.res, re)
		}
	case lang.MatchInt, lang.MatchLen:
		for _, p := range pats {
			m.ranges = append(m.ranges, [2]int64{p.Lo, p.Hi})
		}
	case lang.MatchIP:
		m.nets = map[netip.Prefix]struct{}{}
		for _, p := range pats {
			m.nets[p.Net] = struct{}{}
			bits := &m.bits4
			if p.Net.Addr().Is6() {
				bits = &m.bits6
			}
			if !slices.Contains(*bits, p.Net.Bits()) {
				*bits = append(*bits, p.Net.Bits())
			}
		}
		slices.Sort(m.bits4)
		slices.Sort(m.bits6)
		if len(pats) <= 2*fewPatterns {
			for n := range m.nets {
				m.netList = append(m.netList, n)
			}
		}
	}
	return m, nil
}

// eval reports whether the ACL matches: for a multi-valued fetch, whether
// one of its occurrences does.
func (m *matcher) eval(t *Txn) bool {
	if t.charge(patternCost) {
		return false
	}
	if m.reqHost {
		// What headerFetch's Host case gives: one occurrence, none
		// when empty.
		if t.Ctx == nil {
			return false
		}
		h := t.Ctx.Request.Header.Host()
		mark := len(t.buf)
		ok := len(h) > 0 && m.testStr(t, h)
		t.buf = t.buf[:mark]
		return ok
	}
	v := t.push()
	ok := m.evalInto(t, v)
	t.pop(v)
	return ok
}

func (m *matcher) evalInto(t *Txn, v *value) bool {
	if !m.s.multi || m.s.f.occ != 0 {
		mark := len(t.buf)
		ok := m.s.eval(t, 0, v) && m.test(t, v)
		t.buf = t.buf[:mark]
		return ok
	}
	for occ := 1; ; occ++ {
		mark := len(t.buf)
		if !m.s.eval(t, occ, v) {
			return false
		}
		ok := m.test(t, v)
		t.buf = t.buf[:mark]
		if ok {
			return true
		}
	}
}

// test matches one value.
func (m *matcher) test(t *Txn, v *value) bool {
	switch m.method {
	case lang.MatchFound:
		return true
	case lang.MatchBool:
		return v.asBool()
	case lang.MatchInt:
		if !v.asInt() {
			return false
		}
		return m.inRange(v.i)
	case lang.MatchLen:
		v.asStr(t)
		return m.inRange(int64(len(v.b)))
	case lang.MatchIP:
		if !v.asIP() {
			return false
		}
		return m.hasAddr(v.ip)
	}
	v.asStr(t)
	return m.testStr(t, v.b)
}

// testStr matches a string by the string methods.
func (m *matcher) testStr(t *Txn, b []byte) bool {
	if m.nocase && m.method != lang.MatchReg {
		b = t.lower(b)
	}
	if m.few != nil {
		for _, p := range m.few {
			switch {
			case m.method == lang.MatchStr && bytes.Equal(b, p),
				m.method == lang.MatchBeg && bytes.HasPrefix(b, p),
				m.method == lang.MatchEnd && bytes.HasSuffix(b, p):
				return true
			}
		}
		return false
	}
	switch m.method {
	case lang.MatchStr:
		_, ok := m.set[bytesString(b)]
		return ok
	case lang.MatchBeg:
		for _, n := range m.lengths {
			if n > len(b) || t.charge(n+patternCost) {
				break
			}
			if _, ok := m.set[bytesString(b[:n])]; ok {
				return true
			}
		}
	case lang.MatchEnd:
		for _, n := range m.lengths {
			if n > len(b) || t.charge(n+patternCost) {
				break
			}
			if _, ok := m.set[bytesString(b[len(b)-n:])]; ok {
				return true
			}
		}
	case lang.MatchSub:
		for _, p := range m.list {
			if t.charge(len(b) + patternCost) {
				return false
			}
			if bytes.Contains(b, p) {
				return true
			}
		}
	case lang.MatchDir:
		for _, p := range m.list {
			if t.charge(len(b) + patternCost) {
				return false
			}
			if delimited(b, p, "/?") {
				return true
			}
		}
	case lang.MatchDom:
		for _, p := range m.list {
			if t.charge(len(b) + patternCost) {
				return false
			}
			if delimited(b, p, "/?.:") {
				return true
			}
		}
	case lang.MatchReg:
		for _, re := range m.res {
			if t.charge(len(b) + patternCost) {
				return false
			}
			if re.Match(b) {
				return true
			}
		}
	}
	return false
}

func (m *matcher) inRange(n int64) bool {
	for _, r := range m.ranges {
		if r[0] <= n && n <= r[1] {
			return true
		}
	}
	return false
}

func (m *matcher) hasAddr(a netip.Addr) bool {
	if m.netList != nil {
		for _, n := range m.netList {
			if n.Contains(a) {
				return true
			}
		}
		return false
	}
	bits := m.bits4
	if a.Is6() {
		bits = m.bits6
	}
	for i := len(bits) - 1; i >= 0; i-- {
		p, err := a.Prefix(bits[i])
		if err != nil {
			continue
		}
		if _, ok := m.nets[p]; ok {
			return true
		}
	}
	return false
}

// delimited reports whether pattern p occurs in b as a run of whole
// delimited words: at the start or after a delimiter, and at the end or
// before one (HAProxy's -m dir with '/' and '?', -m dom adding '.' and
// ':'). The pattern's own leading and trailing delimiters are ignored.
func delimited(b, p []byte, delims string) bool {
	isDelim := func(c byte) bool {
		// A loop over the two or four delimiters: cheaper than
		// IndexByte's call for so few.
		for i := 0; i < len(delims); i++ {
			if delims[i] == c {
				return true
			}
		}
		return false
	}
	for len(p) > 0 && isDelim(p[0]) {
		p = p[1:]
	}
	for len(p) > 0 && isDelim(p[len(p)-1]) {
		p = p[:len(p)-1]
	}
	if len(p) == 0 {
		return false
	}
	for off := 0; off+len(p) <= len(b); {
		j := bytes.Index(b[off:], p)
		if j < 0 {
			return false
		}
		i := off + j
		if (i == 0 || isDelim(b[i-1])) && (i+len(p) == len(b) || isDelim(b[i+len(p)])) {
			return true
		}
		off = i + 1
	}
	return false
}

// lower returns b in lower case: b itself when it has no upper case,
// else a copy at the end of t's buffer.
func (t *Txn) lower(b []byte) []byte {
	if !hasUpper(b) {
		return b
	}
	start := len(t.buf)
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		t.buf = append(t.buf, c)
	}
	return t.buf[start:]
}

// lowerASCII is b in lower case as -i compares, in place: ASCII letters
// only, as HAProxy's strncasecmp in the C locale and t.lower, which
// lowers the sample. bytes.ToLower would also fold a pattern's other
// letters (É to é) and turn a byte that is not UTF-8 into U+FFFD, and
// the pattern would no longer match the very text it was written as.
func lowerASCII(b []byte) []byte {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return b
}

// hasUpper reports whether b holds an ASCII upper-case letter: -i need
// not copy a value that has none.
func hasUpper(b []byte) bool {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}
