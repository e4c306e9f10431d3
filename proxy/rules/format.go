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
	lit []byte
	s   *sample
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
		f.parts = append(f.parts, formatPart{s: s})
	}
	return f, nil
}

// eval writes the format's text at the end of t's buffer and returns it.
// A sample without a value writes nothing, as in HAProxy's log-format.
func (f *format) eval(t *Txn) []byte {
	if f.isLit {
		return f.lit
	}
	if len(f.parts) == 1 && f.parts[0].s != nil {
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
			t.pop(v)
			continue
		}
		// v may point into the buffer past mark: print it after what
		// the expression wrote, then move it down over that.
		end := len(t.buf)
		t.buf = v.appendTo(t.buf)
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
