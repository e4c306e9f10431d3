package rules

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/halo-lb/halo/config/lang"
)

// conv is a compiled converter with its arguments read.
type conv struct {
	fn      convFn
	n, n2   int64
	s       []byte
	s2      []byte
	re      *regexp.Regexp
	global  bool
	m       *mapTable
	mask4   int
	mask6   int
	varSlot int
}

func (c *Compiler) compileConv(lc lang.Conv) (conv, error) {
	cv := conv{varSlot: -1}
	arg := func(i int) *lang.Arg {
		if i < len(lc.Args) && lc.Args[i].Set {
			return &lc.Args[i]
		}
		return nil
	}
	name := lc.Def.Name
	if lc.Def.Map != nil {
		a := arg(0)
		entries, ok := c.Names.Maps[a.Text]
		if !ok {
			return cv, &PosError{a.Pos, fmt.Sprintf("map file %q was not read", a.Text)}
		}
		key := name + "\x00" + a.Text
		m := c.maps[key]
		if m == nil {
			var err error
			if m, err = newMapTable(lc.Def.Map, entries); err != nil {
				return cv, &PosError{a.Pos, err.Error()}
			}
			c.maps[key] = m
		}
		cv.m = m
		if d := arg(1); d != nil {
			cv.s, cv.global = []byte(d.Text), true // global: has a default
		}
		cv.fn = convMap
		return cv, nil
	}
	fn, ok := convFns[name]
	if !ok {
		return cv, fmt.Errorf("converter %q has no implementation", name)
	}
	cv.fn = fn
	switch name {
	case "field", "word":
		cv.n = arg(0).Int
		cv.s = []byte(arg(1).Text)
		if a := arg(2); a != nil {
			cv.n2 = a.Int
		} else {
			cv.n2 = 1
		}
	case "bytes":
		cv.n = arg(0).Int
		cv.n2 = -1
		if a := arg(1); a != nil {
			cv.n2 = a.Int
		}
	case "regsub":
		re, err := regexp.Compile(arg(0).Text)
		if a := arg(2); a != nil {
			for _, f := range a.Text {
				switch f {
				case 'i':
					re, err = regexp.Compile("(?i)" + arg(0).Text)
				case 'g':
					cv.global = true
				}
			}
		}
		if err != nil {
			return cv, &PosError{arg(0).Pos, err.Error()}
		}
		cv.re, cv.s = re, []byte(arg(1).Text)
	case "ipmask":
		cv.mask4, _ = lang.ParseIPMask(arg(0).Text)
		cv.mask6 = 128
		if a := arg(1); a != nil {
			cv.mask6 = int(a.Int)
		}
	case "add", "sub", "mul", "div", "mod":
		cv.n = arg(0).Int
	case "ltrim", "rtrim":
		cv.s = []byte(arg(0).Text)
	case "concat":
		if a := arg(0); a != nil {
			cv.s = []byte(a.Text)
		}
		if a := arg(1); a != nil {
			cv.varSlot = c.varSlot(a.Text)
		}
		if a := arg(2); a != nil {
			cv.s2 = []byte(a.Text)
		}
	case "json":
		if a := arg(0); a != nil && a.Text != "ascii" && a.Text != "utf8" && a.Text != "utf8s" && a.Text != "utf8p" && a.Text != "utf8ps" {
			return cv, &PosError{a.Pos, "json takes ascii, utf8, utf8s, utf8p or utf8ps"}
		}
		// global: a utf8 mode, which keeps bytes of 0x80 and above.
		cv.global = arg(0) != nil && strings.HasPrefix(arg(0).Text, "utf8")
	}
	return cv, nil
}

// out starts a converted value at the end of t's buffer.
func out(t *Txn) int { return len(t.buf) }

func (t *Txn) done(v *value, start int) {
	v.setStr(t.buf[start:len(t.buf):len(t.buf)])
}

var convFns = map[string]convFn{
	"lower": func(t *Txn, _ *conv, v *value) bool {
		v.asStr(t)
		s := out(t)
		for _, c := range v.b {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			t.buf = append(t.buf, c)
		}
		t.done(v, s)
		return true
	},
	"upper": func(t *Txn, _ *conv, v *value) bool {
		v.asStr(t)
		s := out(t)
		for _, c := range v.b {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			t.buf = append(t.buf, c)
		}
		t.done(v, s)
		return true
	},
	"base64": func(t *Txn, _ *conv, v *value) bool {
		v.asStr(t)
		s := out(t)
		t.buf = base64.StdEncoding.AppendEncode(t.buf, v.b)
		t.done(v, s)
		return true
	},
	"b64dec": func(t *Txn, _ *conv, v *value) bool {
		v.asStr(t)
		s := out(t)
		var err error
		if t.buf, err = base64.StdEncoding.AppendDecode(t.buf, v.b); err != nil {
			t.buf = t.buf[:s]
			return false
		}
		t.done(v, s)
		v.t = lang.TypeBin
		return true
	},
	"hex": func(t *Txn, _ *conv, v *value) bool {
		v.asStr(t)
		s := out(t)
		t.buf = hex.AppendEncode(t.buf, v.b)
		for i := s; i < len(t.buf); i++ {
			if 'a' <= t.buf[i] && t.buf[i] <= 'f' {
				t.buf[i] -= 'a' - 'A' // HAProxy prints upper case
			}
		}
		t.done(v, s)
		return true
	},
	"url_dec": convURLDec,
	"json":    convJSON,
	"length": func(t *Txn, _ *conv, v *value) bool {
		v.asStr(t)
		v.setInt(int64(len(v.b)))
		return true
	},
	"field":  convField,
	"word":   convWord,
	"bytes":  convBytes,
	"regsub": convRegsub,
	"ipmask": func(t *Txn, c *conv, v *value) bool {
		if !v.asIP() {
			return false
		}
		bits := c.mask4
		if v.ip.Is6() {
			bits = c.mask6
		}
		p, err := v.ip.Prefix(bits)
		if err != nil {
			return false
		}
		v.setIP(p.Addr())
		return true
	},
	"add": intConv(func(a, b int64) (int64, bool) { return a + b, true }),
	"sub": intConv(func(a, b int64) (int64, bool) { return a - b, true }),
	"mul": intConv(func(a, b int64) (int64, bool) { return a * b, true }),
	"div": intConv(func(a, b int64) (int64, bool) {
		if b == 0 {
			return 0, false
		}
		return a / b, true
	}),
	"mod": intConv(func(a, b int64) (int64, bool) {
		if b == 0 {
			return 0, false
		}
		return a % b, true
	}),
	"neg":  intConv(func(a, _ int64) (int64, bool) { return -a, true }),
	"not":  boolConv(func(a int64) bool { return a == 0 }),
	"bool": boolConv(func(a int64) bool { return a != 0 }),
	"even": boolConv(func(a int64) bool { return a&1 == 0 }),
	"odd":  boolConv(func(a int64) bool { return a&1 == 1 }),
	"ltrim": func(t *Txn, c *conv, v *value) bool {
		v.asStr(t)
		for len(v.b) > 0 && containsByte(c.s, v.b[0]) {
			v.b = v.b[1:]
		}
		return true
	},
	"rtrim": func(t *Txn, c *conv, v *value) bool {
		v.asStr(t)
		for len(v.b) > 0 && containsByte(c.s, v.b[len(v.b)-1]) {
			v.b = v.b[:len(v.b)-1]
		}
		return true
	},
	"concat": func(t *Txn, c *conv, v *value) bool {
		v.asStr(t)
		s := out(t)
		t.buf = append(append(t.buf, v.b...), c.s...)
		if s := t.varAt(c.varSlot); s != nil && s.set {
			t.buf = s.v.appendTo(t.buf)
		}
		t.buf = append(t.buf, c.s2...)
		t.done(v, s)
		return true
	},
}

func containsByte(set []byte, c byte) bool {
	for _, s := range set {
		if s == c {
			return true
		}
	}
	return false
}

func intConv(op func(a, b int64) (int64, bool)) convFn {
	return func(_ *Txn, c *conv, v *value) bool {
		if !v.asInt() {
			return false
		}
		n, ok := op(v.i, c.n)
		v.setInt(n)
		return ok
	}
}

func boolConv(op func(a int64) bool) convFn {
	return func(_ *Txn, _ *conv, v *value) bool {
		if !v.asInt() {
			return false
		}
		v.setBool(op(v.i))
		return true
	}
}

// convField is field(N,DELIMS[,COUNT]): the N-th field (from the end when
// negative) and COUNT-1 more, split at any of DELIMS.
func convField(t *Txn, c *conv, v *value) bool {
	v.asStr(t)
	b := v.b
	start := 0
	t.fields = t.fields[:0]
	for i := 0; i <= len(b); i++ {
		if i == len(b) || containsByte(c.s, b[i]) {
			t.fields = append(t.fields, b[start:i])
			start = i + 1
		}
	}
	return pickFields(t, c, v, b, false)
}

// convWord is word(N,DELIMS[,COUNT]): as field, but runs of delimiters
// count as one and empty words are skipped.
func convWord(t *Txn, c *conv, v *value) bool {
	v.asStr(t)
	b := v.b
	t.fields = t.fields[:0]
	start := -1
	for i := 0; i <= len(b); i++ {
		if i == len(b) || containsByte(c.s, b[i]) {
			if start >= 0 {
				t.fields = append(t.fields, b[start:i])
			}
			start = -1
		} else if start < 0 {
			start = i
		}
	}
	return pickFields(t, c, v, b, true)
}

// pickFields selects fields N .. N+COUNT-1 of t.fields (all to the end with
// COUNT 0) and makes v the text from the first to the last of them.
func pickFields(t *Txn, c *conv, v *value, b []byte, _ bool) bool {
	n, count := int(c.n), int(c.n2)
	total := len(t.fields)
	if n == 0 || total == 0 {
		return false
	}
	first := n - 1
	last := first + count - 1
	if n < 0 {
		last = total + n
		first = last - count + 1
		if count == 0 {
			first = 0
		}
	} else if count == 0 {
		last = total - 1
	}
	first = max(first, 0)
	last = min(last, total-1)
	if first >= total || last < first || last < 0 {
		v.setStr(b[:0])
		return true
	}
	lo := offset(b, t.fields[first])
	hi := offset(b, t.fields[last]) + len(t.fields[last])
	v.setStr(b[lo:hi])
	return true
}

// offset is where sub, a subslice of b, starts in b: they share their
// backing array, so the difference of their capacities is the offset
// (which holds for an empty field too).
func offset(b, sub []byte) int { return cap(b) - cap(sub) }

func convBytes(t *Txn, c *conv, v *value) bool {
	v.asStr(t)
	off := int(c.n)
	if off >= len(v.b) {
		v.setStr(v.b[:0])
		return true
	}
	b := v.b[off:]
	if c.n2 >= 0 && int(c.n2) < len(b) {
		b = b[:c.n2]
	}
	v.setStr(b)
	v.t = lang.TypeBin
	return true
}

// convRegsub replaces the first match of the expression (every match
// with the g flag) with the substitution, where \1 to \9 are groups.
func convRegsub(t *Txn, c *conv, v *value) bool {
	v.asStr(t)
	in := v.b
	s := out(t)
	pos := 0
	for pos <= len(in) {
		loc := c.re.FindSubmatchIndex(in[pos:])
		if loc == nil {
			break
		}
		t.buf = append(t.buf, in[pos:pos+loc[0]]...)
		t.buf = expandSubst(t.buf, c.s, in[pos:], loc)
		next := pos + loc[1]
		if loc[1] == loc[0] {
			if next < len(in) {
				t.buf = append(t.buf, in[next])
			}
			next++
		}
		pos = next
		if !c.global {
			break
		}
	}
	if pos < len(in) {
		t.buf = append(t.buf, in[pos:]...)
	}
	t.done(v, s)
	return true
}

// expandSubst appends subst with \0-\9 replaced by the match's groups.
func expandSubst(dst, subst, in []byte, loc []int) []byte {
	for i := 0; i < len(subst); i++ {
		c := subst[i]
		if c == '\\' && i+1 < len(subst) && subst[i+1] >= '0' && subst[i+1] <= '9' {
			g := int(subst[i+1] - '0')
			i++
			if 2*g+1 < len(loc) && loc[2*g] >= 0 {
				dst = append(dst, in[loc[2*g]:loc[2*g+1]]...)
			}
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

func convURLDec(t *Txn, _ *conv, v *value) bool {
	v.asStr(t)
	s := out(t)
	b := v.b
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '%' && i+2 < len(b) && ishex(b[i+1]) && ishex(b[i+2]):
			t.buf = append(t.buf, unhex(b[i+1])<<4|unhex(b[i+2]))
			i += 2
		case b[i] == '+':
			t.buf = append(t.buf, ' ')
		default:
			t.buf = append(t.buf, b[i])
		}
	}
	t.done(v, s)
	return true
}

func ishex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// convJSON escapes the value for a JSON string, as HAProxy's json
// converter: quotes, backslashes and control bytes; in its default
// (ascii) mode every byte of 0x80 and above as \u00XX, as HAProxy reads
// the input as Latin-1; in the utf8 modes valid UTF-8 is kept.
func convJSON(t *Txn, c *conv, v *value) bool {
	v.asStr(t)
	s := out(t)
	ascii := !c.global
	for _, c := range v.b {
		switch {
		case c >= 0x80 && ascii:
			t.buf = append(t.buf, '\\', 'u', '0', '0', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		case c == '"' || c == '\\':
			t.buf = append(t.buf, '\\', c)
		case c == '\n':
			t.buf = append(t.buf, '\\', 'n')
		case c == '\r':
			t.buf = append(t.buf, '\\', 'r')
		case c == '\t':
			t.buf = append(t.buf, '\\', 't')
		case c < 0x20:
			t.buf = append(t.buf, '\\', 'u', '0', '0', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		default:
			t.buf = append(t.buf, c)
		}
	}
	t.done(v, s)
	return true
}
