package rules

import "github.com/halo-lb/halo/config/lang"

// format is a compiled format string.
type format struct {
	parts []formatPart
	// lit is the whole text when the format has no sample.
	lit   []byte
	isLit bool
}

type formatPart struct {
	lit   []byte
	s     *sample
	flags lang.LogFlags // the ones that apply to this part (lang decides)
}

func (c *Compiler) compileFormat(lf *lang.Format) (*format, error) {
	if lf == nil {
		return nil, nil
	}
	f := &format{}
	if s, ok := lf.Const(); ok {
		f.lit, f.isLit = []byte(s), true
		return f, nil
	}
	for _, p := range lf.Parts {
		if p.Sample == nil {
			f.parts = append(f.parts, formatPart{lit: []byte(p.Lit)})
			continue
		}
		s, err := c.compileSample(p.Sample)
		if err != nil {
			return nil, err
		}
		f.parts = append(f.parts, formatPart{s: s, flags: p.Flags})
	}
	return f, nil
}

// eval writes the format's text at the end of t's buffer and returns it.
// A sample without a value writes nothing, as in HAProxy's log-format.
func (f *format) eval(t *Txn) []byte {
	if f.isLit {
		return f.lit
	}
	if len(f.parts) == 1 && f.parts[0].s != nil && f.parts[0].flags == 0 {
		// One sample alone (%[dst_port], %[req.hdr(host)]): its bytes
		// as they are, with no copy, when it is a string.
		v := t.push()
		defer t.pop(v)
		start := len(t.buf)
		if !f.parts[0].s.eval(t, 0, v) {
			t.buf = t.buf[:start]
			return nil
		}
		switch v.t {
		case lang.TypeStr, lang.TypeBin, lang.TypeMeth:
			return v.b
		}
		end := len(t.buf)
		t.buf = v.appendTo(t.buf)
		return t.buf[end:len(t.buf):len(t.buf)]
	}
	start := len(t.buf)
	for i := range f.parts {
		p := &f.parts[i]
		if p.s == nil {
			t.buf = append(t.buf, p.lit...)
			continue
		}
		v := t.push()
		mark := len(t.buf)
		if !p.s.eval(t, 0, v) {
			t.buf = t.buf[:mark]
			if p.flags&lang.FlagQuote != 0 {
				t.buf = append(t.buf, '"', '"') // as HAProxy quotes a missing value
			}
			t.pop(v)
			continue
		}
		// v may point into the buffer past mark: print it after what
		// the expression wrote, then move it down over that.
		end := len(t.buf)
		if p.flags != 0 {
			t.buf = appendFlagged(t.buf, v, p.flags)
		} else {
			t.buf = v.appendTo(t.buf)
		}
		n := copy(t.buf[mark:], t.buf[end:])
		t.buf = t.buf[:mark+n]
		t.pop(v)
	}
	return t.buf[start:len(t.buf):len(t.buf)]
}

// Format is a compiled format string, for the proxy to evaluate where a
// name is computed (use_backend %[...]).
type Format struct{ f *format }

// CompileFormat builds a format string.
func (c *Compiler) CompileFormat(lf *lang.Format) (*Format, error) {
	f, err := c.compileFormat(lf)
	if err != nil {
		return nil, err
	}
	return &Format{f}, nil
}

// Eval writes the format's text in t's buffer and returns it; it is valid
// until the Txn is reset.
func (f *Format) Eval(t *Txn) []byte { return f.f.eval(t) }

// appendFlagged prints v as HAProxy's %{+X}, %{+Q} and %{+E} ask: an
// address or a number in upper-case hexadecimal (an address's bytes, a
// number in at least four digits, as %04X), else the text, escaped and
// quoted. Hexadecimal is never quoted, as in HAProxy.
func appendFlagged(b []byte, v *value, flags lang.LogFlags) []byte {
	if flags&lang.FlagHex != 0 {
		switch v.t {
		case lang.TypeIP:
			if v.ip.Is4() {
				a := v.ip.As4()
				return appendHexBytes(b, a[:])
			}
			a := v.ip.As16()
			return appendHexBytes(b, a[:])
		case lang.TypeInt:
			n := uint32(v.i)
			for shift := 28; shift >= 0; shift -= 4 {
				if d := n >> uint(shift); d != 0 || shift < 16 {
					b = append(b, upperHex[d&15])
				}
			}
			return b
		}
	}
	if flags&lang.FlagQuote != 0 {
		b = append(b, '"')
	}
	if flags&lang.FlagEscape != 0 {
		start := len(b)
		b = v.appendTo(b)
		b = escapeRFC5424(b, start)
	} else {
		b = v.appendTo(b)
	}
	if flags&lang.FlagQuote != 0 {
		b = append(b, '"')
	}
	return b
}

const upperHex = "0123456789ABCDEF"

func appendHexBytes(b, src []byte) []byte {
	for _, c := range src {
		b = append(b, upperHex[c>>4], upperHex[c&15])
	}
	return b
}

// escapeRFC5424 puts a '\' before each '"', '\\' and ']' of b[start:],
// in place (the buffer grows by one byte per escape).
func escapeRFC5424(b []byte, start int) []byte {
	n := 0
	for _, c := range b[start:] {
		if c == '"' || c == '\\' || c == ']' {
			n++
		}
	}
	if n == 0 {
		return b
	}
	end := len(b)
	for range n {
		b = append(b, 0)
	}
	// From the end, so that each byte moves once.
	w := len(b)
	for r := end - 1; r >= start; r-- {
		c := b[r]
		w--
		b[w] = c
		if c == '"' || c == '\\' || c == ']' {
			w--
			b[w] = '\\'
		}
	}
	return b
}
