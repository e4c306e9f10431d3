package lang

import (
	"encoding/hex"
	"math"
	"net/netip"
	"strconv"
	"strings"
)

// Method is how an ACL matches its sample against its patterns (-m).
type Method uint8

// The match methods, HAProxy's -m words.
const (
	MatchStr Method = iota + 1
	MatchBeg
	MatchEnd
	MatchSub
	MatchDir
	MatchDom
	MatchReg
	MatchLen
	MatchFound
	MatchInt
	MatchIP
	MatchBool
	MatchBin
)

var methodNames = map[string]Method{
	"str": MatchStr, "beg": MatchBeg, "end": MatchEnd, "sub": MatchSub, "dir": MatchDir,
	"dom": MatchDom, "reg": MatchReg, "len": MatchLen, "found": MatchFound, "int": MatchInt,
	"ip": MatchIP, "bool": MatchBool, "bin": MatchBin,
}

func (m Method) String() string {
	for n, v := range methodNames {
		if v == m {
			return n
		}
	}
	return "?"
}

// defaultMethod is how a fetch of type t matches without -m.
func defaultMethod(t Type) Method {
	switch t {
	case TypeBool:
		return MatchBool
	case TypeInt:
		return MatchInt
	case TypeIP:
		return MatchIP
	case TypeBin:
		return MatchBin
	}
	return MatchStr
}

// Match is an ACL's test: a sample, how it matches, and the patterns.
type Match struct {
	Pos      int
	Sample   *Sample
	Method   Method
	NoCase   bool // -i
	Patterns []Pattern
	// Files are -f pattern files, to be read by the caller (ReadPatterns)
	// each time the configuration is loaded.
	Files []FileRef
}

// FileRef is a file named in a rule, with where it is named.
type FileRef struct {
	Pos  int
	Path string
}

// Pattern is one pattern of an ACL, read for the match method: text for
// the string methods, an inclusive range for int and len, a network for
// ip.
type Pattern struct {
	Pos    int
	Text   string
	Lo, Hi int64
	Net    netip.Prefix
}

// parseMatch parses "fetch [flags] [patterns]" from ws.
func parseMatch(e *errs, ws []Word, where Where) *Match {
	if len(ws) == 0 {
		return nil
	}
	name, _, ok := call(e, splitTop(ws[0], ',')[0])
	if !ok {
		return nil
	}
	m := &Match{Pos: ws[0].Pos()}
	fd, implied := aclFetch(name.Text)
	if fd != nil && implied != 0 {
		// path_beg(...) etc.: parse as the fetch itself.
		base := fd.Name
		w := ws[0]
		rest := w.Text[len(name.Text):]
		fake := Word{Text: base + rest, at: append(append(make([]int, 0, len(base)+len(w.at)), repeat(w.Pos(), len(base))...), w.at[len(name.Text):]...)}
		m.Sample = parseSample(e, fake, where)
		m.Method = implied
	} else {
		m.Sample = parseSample(e, ws[0], where)
	}
	if m.Sample == nil {
		return nil
	}
	i := 1
flags:
	for ; i < len(ws); i++ {
		w := ws[i]
		if w.Quoted || !strings.HasPrefix(w.Text, "-") {
			break
		}
		switch w.Text {
		case "-i":
			m.NoCase = true
		case "-n", "-u":
			// -n: no DNS resolution (halo never resolves); -u: unique
			// ID, which halo does not need.
		case "--":
			i++
			break flags
		case "-m", "-f", "-M":
			if i+1 >= len(ws) {
				e.at(w.Pos(), "%s needs an argument", w.Text)
				return m
			}
			i++
			arg := ws[i]
			switch w.Text {
			case "-m":
				mm, ok := methodNames[arg.Text]
				if !ok {
					e.at(arg.Pos(), "unknown match method %q (str, beg, end, sub, dir, dom, reg, len, found, int, ip, bool, bin)", arg.Text)
					continue
				}
				if implied != 0 {
					e.at(arg.Pos(), "-m %s contradicts the match method %s that %s implies", arg.Text, implied, name.Text)
				}
				m.Method = mm
			default:
				m.Files = append(m.Files, FileRef{Pos: arg.Pos(), Path: arg.Text})
			}
		default:
			if isNumber(w.Text) && (m.method() == MatchInt || m.method() == MatchLen) {
				break flags // a negative integer pattern
			}
			e.at(w.Pos(), "unknown ACL flag %q (use -- before a pattern that starts with '-')", w.Text)
		}
	}
	if m.Method == 0 {
		m.Method = defaultMethod(m.Sample.Out)
	}
	checkMethod(e, m, name)
	pats := ws[i:]
	switch m.Method {
	case MatchFound, MatchBool:
		if len(pats) > 0 {
			e.at(pats[0].Pos(), "-m %s takes no pattern", m.Method)
		}
		return m
	case MatchInt, MatchLen:
		m.Patterns = parseIntPatterns(e, pats)
		return m
	}
	for _, p := range pats {
		if pat, msg := ParsePattern(m.Method, p.Text); msg != "" {
			e.at(p.Pos(), "%s", msg)
		} else {
			pat.Pos = p.Pos()
			if m.Method == MatchReg {
				checkRegex(e, p)
			}
			m.Patterns = append(m.Patterns, pat)
		}
	}
	return m
}

func (m *Match) method() Method {
	if m.Method != 0 {
		return m.Method
	}
	return defaultMethod(m.Sample.Out)
}

// checkMethod reports a match method that cannot apply to the sample.
func checkMethod(e *errs, m *Match, name Word) {
	out := m.Sample.Out
	switch m.Method {
	case MatchIP:
		if out != TypeIP && out != TypeStr && out != TypeAny {
			e.at(name.Pos(), "-m ip needs an address or a string, but %s gives %s", name.Text, out)
		}
	case MatchInt:
		if out == TypeIP {
			e.at(name.Pos(), "-m int needs an integer, but %s gives an address", name.Text)
		}
	case MatchBool:
		if out != TypeBool && out != TypeInt && out != TypeAny {
			e.at(name.Pos(), "a %s sample needs patterns or a match method (-m found, -m str, ...)", out)
		}
	}
}

func repeat(v, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func isNumber(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// parseIntPatterns reads integer patterns: N, LO:HI, LO:, :HI, or an
// operator eq|ge|gt|le|lt and one value.
func parseIntPatterns(e *errs, ws []Word) []Pattern {
	var pats []Pattern
	for k := 0; k < len(ws); k++ {
		w := ws[k]
		switch w.Text {
		case "eq", "ge", "gt", "le", "lt":
			if k+1 >= len(ws) {
				e.at(w.Pos(), "operator %s needs a value", w.Text)
				return pats
			}
			k++
			v, err := strconv.ParseInt(ws[k].Text, 10, 64)
			if err != nil {
				e.at(ws[k].Pos(), "%q is not an integer", ws[k].Text)
				continue
			}
			p := Pattern{Pos: w.Pos(), Text: w.Text + " " + ws[k].Text, Lo: v, Hi: v}
			switch w.Text {
			case "ge":
				p.Hi = math.MaxInt64
			case "gt":
				if v == math.MaxInt64 {
					p.Lo, p.Hi = 1, 0 // empty
				} else {
					p.Lo, p.Hi = v+1, math.MaxInt64
				}
			case "le":
				p.Lo = math.MinInt64
			case "lt":
				if v == math.MinInt64 {
					p.Lo, p.Hi = 1, 0
				} else {
					p.Lo, p.Hi = math.MinInt64, v-1
				}
			}
			pats = append(pats, p)
		default:
			p, msg := ParsePattern(MatchInt, w.Text)
			if msg != "" {
				e.at(w.Pos(), "%s", msg)
				continue
			}
			p.Pos = w.Pos()
			pats = append(pats, p)
		}
	}
	return pats
}

// ParsePattern reads one pattern for method m, as written on an ACL line
// or a line of a -f file; the message is "" when it is good.
func ParsePattern(m Method, s string) (Pattern, string) {
	p := Pattern{Text: s}
	switch m {
	case MatchInt, MatchLen:
		lo, hi, ok := strings.Cut(s, ":")
		var err error
		p.Lo, p.Hi = math.MinInt64, math.MaxInt64
		if lo != "" {
			if p.Lo, err = strconv.ParseInt(lo, 10, 64); err != nil {
				return p, "integer pattern " + strconv.Quote(s) + " is not N, LO:HI, or an operator (eq, ge, gt, le, lt) and N"
			}
		}
		if !ok {
			p.Hi = p.Lo
		} else if hi != "" {
			if p.Hi, err = strconv.ParseInt(hi, 10, 64); err != nil {
				return p, "integer range " + strconv.Quote(s) + " has a bad upper bound"
			}
		}
		if ok && lo == "" && hi == "" {
			return p, "integer range \":\" has no bound"
		}
	case MatchIP:
		n, msg := ParseNet(s)
		if msg != "" {
			return p, msg
		}
		p.Net = n
	case MatchBin:
		// HAProxy's binary patterns are written in hexadecimal; Text
		// becomes the bytes they stand for.
		b, err := hex.DecodeString(s)
		if err != nil {
			return p, "binary pattern " + strconv.Quote(s) + " is not an even count of hexadecimal digits"
		}
		p.Text = string(b)
	}
	return p, ""
}

// ParseNet reads an address or network: 10.0.0.1, 10.0.0.0/8,
// 10.0.0.0/255.0.0.0, ::1, fd00::/8. A host name is refused: HAProxy would
// resolve it once at load, which hides a mistake.
func ParseNet(s string) (netip.Prefix, string) {
	addr, bits, hasBits := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Prefix{}, "\"" + s + "\" is not an IPv4 or IPv6 address or network (halo does not resolve host names in patterns)"
	}
	a = a.Unmap()
	n := a.BitLen()
	if hasBits {
		var err error
		if n, err = strconv.Atoi(bits); err != nil {
			m, merr := ParseIPMask(bits)
			if merr != "" || !a.Is4() {
				return netip.Prefix{}, "network \"" + s + "\" has a bad prefix length"
			}
			n = m
		}
		if n < 0 || n > a.BitLen() {
			return netip.Prefix{}, "network \"" + s + "\" has a prefix length beyond its address"
		}
	}
	return netip.PrefixFrom(a, n).Masked(), ""
}

// ParseIPMask reads an IPv4 mask: a prefix length or a dotted mask
// (255.255.255.0), which must be contiguous.
func ParseIPMask(s string) (int, string) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 32 {
			return 0, "mask " + strconv.Quote(s) + " is not 0-32"
		}
		return n, ""
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, "mask " + strconv.Quote(s) + " is neither a prefix length nor a dotted IPv4 mask"
	}
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for v&(1<<31) != 0 {
		n++
		v <<= 1
	}
	if v != 0 {
		return 0, "mask " + strconv.Quote(s) + " is not contiguous"
	}
	return n, ""
}

// ParseFilePattern reads one line of a -f pattern file for method m; the
// message is "" when it is good.
func ParseFilePattern(m Method, s string) (Pattern, string) {
	if m == MatchReg {
		var e errs
		checkRegex(&e, Word{Text: s, at: make([]int, len(s)+1)})
		if len(e.list) > 0 {
			return Pattern{}, e.list[0].Msg
		}
	}
	if m == MatchFound || m == MatchBool {
		return Pattern{}, "-m " + m.String() + " takes no pattern"
	}
	return ParsePattern(m, s)
}

// MatchNames are the words -m takes, for docs and tests.
func MatchNames() []string {
	var names []string
	for n := range methodNames {
		names = append(names, n)
	}
	return names
}
