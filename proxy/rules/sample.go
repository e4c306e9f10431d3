package rules

import (
	"fmt"
	"os"
	"strings"

	"github.com/halo-lb/halo/config"

	"github.com/halo-lb/halo/config/lang"
)

// fetchFn reads a fetch's value into out. occ picks the occurrence of a
// multi-valued fetch: n > 0 the n-th, n < 0 the n-th from the end; an
// ACL iterates 1, 2, ... until the fetch reports none.
type fetchFn func(t *Txn, f *fetch, occ int, out *value) bool

// fetch is a compiled fetch: its function and its arguments, read once.
type fetch struct {
	fn   fetchFn
	def  *lang.FetchDef
	name []byte // a header, cookie or parameter name
	occ  int    // the occurrence the fetch's own argument names, 0: none
	str  string // str(), env()
	n    int64  // int(), req.payload's offset, capture.*.hdr's slot, date's offset
	// length is req.payload's length, date's units per second (0: 1).
	length int64
	idx    int // a backend, frontend or variable; -1: the current one
	srv    int
	delim  byte
	host   bool // the header is Host, which fasthttp keeps apart
	users  *config.Userlist
	stick  *stickFetch
	proc   *procVar // var(proc.NAME)
}

// convFn changes v in place; false means the conversion failed and the
// sample has no value.
type convFn func(t *Txn, c *conv, v *value) bool

// sample is a compiled sample expression.
type sample struct {
	f     fetch
	convs []conv
	// multi: in an ACL, every occurrence is tried.
	multi bool
}

// eval reads the sample's value: for a multi-valued fetch, occurrence occ
// (0: the fetch's own or the last).
func (s *sample) eval(t *Txn, occ int, out *value) bool {
	if occ == 0 {
		occ = s.f.occ
		if occ == 0 {
			occ = -1
		}
	}
	if !s.f.fn(t, &s.f, occ, out) {
		return false
	}
	for i := range s.convs {
		c := &s.convs[i]
		if !c.fn(t, c, out) {
			return false
		}
	}
	return true
}

// compileSample builds the program of a parsed sample expression.
func (c *Compiler) compileSample(ls *lang.Sample) (*sample, error) {
	s := &sample{}
	if err := c.compileFetch(ls, &s.f); err != nil {
		return nil, err
	}
	s.multi = ls.Fetch.Multi
	for _, lc := range ls.Convs {
		cv, err := c.compileConv(lc)
		if err != nil {
			return nil, err
		}
		s.convs = append(s.convs, cv)
	}
	return s, nil
}

func (c *Compiler) compileFetch(ls *lang.Sample, f *fetch) error {
	d := ls.Fetch
	f.def, f.idx = d, -1
	if d.Stick != nil {
		return c.compileStickFetch(ls, f)
	}
	fn, ok := fetchFns[d.Name]
	if !ok {
		return fmt.Errorf("sample fetch %q has no implementation", d.Name)
	}
	f.fn = fn
	arg := func(i int) *lang.Arg {
		if i < len(ls.Args) && ls.Args[i].Set {
			return &ls.Args[i]
		}
		return nil
	}
	switch d.Name {
	case "str":
		f.str = arg(0).Text
		f.name = []byte(f.str)
	case "int":
		f.n = arg(0).Int
	case "env":
		f.str = os.Getenv(arg(0).Text) // read at load, as HAProxy reads it once
		f.name = []byte(f.str)
	case "var":
		if isProc(arg(0).Text) {
			f.proc = c.procVar(arg(0).Text)
		} else {
			f.idx = c.varSlot(arg(0).Text)
		}
	case "date":
		if a := arg(0); a != nil {
			f.n = a.Int
		}
		f.length = map[string]int64{"ms": 1000, "us": 1000000}[argText(arg(1))]
	case "capture.req.hdr", "capture.res.hdr":
		f.n = arg(0).Int
	case "req.payload":
		f.n, f.length = arg(0).Int, arg(1).Int
	case "fe_conn":
		if a := arg(0); a != nil {
			i, ok := c.Names.Frontends[a.Text]
			if !ok {
				return &PosError{a.Pos, fmt.Sprintf("no frontend %q", a.Text)}
			}
			f.idx = i
		}
	case "be_conn", "nbsrv":
		if a := arg(0); a != nil {
			i, ok := c.Names.Backends[a.Text]
			if !ok {
				return &PosError{a.Pos, fmt.Sprintf("no backend %q", a.Text)}
			}
			f.idx = i
		}
	case "http_auth", "http_auth_group":
		a := arg(0)
		if f.users = c.Names.Userlists[a.Text]; f.users == nil {
			return &PosError{a.Pos, fmt.Sprintf("no userlist %q", a.Text)}
		}
	case "srv_is_up", "srv_conn":
		a := arg(0)
		b, s, ok := c.Names.server(a.Text)
		if !ok {
			return &PosError{a.Pos, fmt.Sprintf("no server %q", a.Text)}
		}
		f.idx, f.srv = b, s
	case "url_param", "url_param_val":
		if a := arg(0); a != nil {
			f.name = []byte(a.Text)
		}
		f.delim = '&'
		if a := arg(1); a != nil {
			f.delim = a.Text[0]
		}
	default:
		if a := arg(0); a != nil {
			f.name = []byte(a.Text)
			f.host = strings.EqualFold(a.Text, "host") && (d.Name == "req.hdr" || d.Name == "req.fhdr")
		}
		if a := arg(1); a != nil {
			f.occ = int(a.Int)
		}
	}
	return nil
}

func argText(a *lang.Arg) string {
	if a == nil {
		return ""
	}
	return a.Text
}

// PosError is a problem found while compiling, at byte offset Off of
// the rule's string.
type PosError struct {
	Off int
	Msg string
}

func (e *PosError) Error() string { return e.Msg }
