package stats

import (
	"strconv"
	"strings"
)

// ObjType is HAProxy's "type" column: what a row describes.
type ObjType int

// The kinds of rows, with HAProxy's numbers.
const (
	ObjFrontend ObjType = 0
	ObjBackend  ObjType = 1
	ObjServer   ObjType = 2
)

// letter is the object's letter in "show stat typed".
func (t ObjType) letter() byte { return "FBSL"[t] }

// objName is the object's name in "show stat json".
func (t ObjType) objName() string {
	return [...]string{"Frontend", "Backend", "Server", "Listener"}[t]
}

// mask is the object's bit in show stat's type filter.
func (t ObjType) mask() int { return 1 << t }

type value struct {
	set   bool
	isStr bool
	n     int64
	s     string
}

// Row is one line of "show stat": a frontend, a server or a backend. A
// column that is not set prints empty.
type Row struct {
	Type     ObjType
	IID, SID int
	v        [NumFields]value
}

func (r *Row) setN(f Field, n int64) { r.v[f] = value{set: true, n: n} }
func (r *Row) setU(f Field, n uint64) {
	r.v[f] = value{set: true, n: int64(min(n, 1<<63-1))}
}

// setS sets a string column. Control characters (a server's check reply
// may hold a line break) become spaces: a line break would end an answer
// of the runtime API early.
func (r *Row) setS(f Field, s string) {
	if strings.ContainsFunc(s, isControl) {
		s = strings.Map(func(c rune) rune {
			if isControl(c) {
				return ' '
			}
			return c
		}, s)
	}
	r.v[f] = value{set: true, isStr: true, s: s}
}

func isControl(c rune) bool { return c < 0x20 || c == 0x7f }

// zero sets fields to 0 where nothing more precise is known: the columns
// HAProxy fills for this kind of row even when nothing happened.
func (r *Row) zero(fields []Field) {
	for _, f := range fields {
		if !r.v[f].set {
			r.setN(f, 0)
		}
	}
}

// appendTo writes the value as show stat typed and show info write it.
func (v value) appendTo(b []byte) []byte {
	if v.isStr {
		return append(b, v.s...)
	}
	return strconv.AppendInt(b, v.n, 10)
}

// jsonValue is the value as the JSON outputs carry it.
func (v value) jsonValue(typ valueType) jsonValue {
	if v.isStr {
		return jsonValue{Type: typ.String(), Value: v.s}
	}
	return jsonValue{Type: typ.String(), Value: v.n}
}

// Set reports whether column f has a value.
func (r *Row) Set(f Field) bool { return r.v[f].set }

// Num returns column f as a number (0 when empty or a string).
func (r *Row) Num(f Field) int64 { return r.v[f].n }

// Str returns column f as written in the CSV.
func (r *Row) Str(f Field) string {
	v := r.v[f]
	switch {
	case !v.set:
		return ""
	case v.isStr:
		return v.s
	default:
		return strconv.FormatInt(v.n, 10)
	}
}

// Proxy and Name are the row's pxname and svname.
func (r *Row) Proxy() string { return r.v[FPxname].s }
func (r *Row) Name() string  { return r.v[FSvname].s }
