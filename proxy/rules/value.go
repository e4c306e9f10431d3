package rules

import (
	"net/netip"
	"strconv"

	"github.com/halo-lb/halo/config/lang"
)

// value is one sample: its type and, by type, an integer (also a
// boolean), bytes (a string, binary or method) or an address. Bytes point
// into the request, the response or the Txn's scratch buffer, valid until
// the Txn is reset.
type value struct {
	t  lang.Type
	i  int64
	b  []byte
	ip netip.Addr
}

func (v *value) setInt(i int64)  { v.t, v.i, v.b = lang.TypeInt, i, nil }
func (v *value) setStr(b []byte) { v.t, v.b = lang.TypeStr, b }
func (v *value) setIP(a netip.Addr) {
	v.t, v.ip, v.b = lang.TypeIP, a.Unmap(), nil
}
func (v *value) setBool(b bool) {
	v.t, v.b = lang.TypeBool, nil
	v.i = 0
	if b {
		v.i = 1
	}
}

// appendTo appends the value as text, as HAProxy casts a sample to a
// string.
func (v *value) appendTo(b []byte) []byte {
	switch v.t {
	case lang.TypeInt, lang.TypeBool:
		return strconv.AppendInt(b, v.i, 10)
	case lang.TypeIP:
		return v.ip.AppendTo(b)
	}
	return append(b, v.b...)
}

// asStr makes the value a string, printing it into t's buffer when it
// is not one.
func (v *value) asStr(t *Txn) {
	switch v.t {
	case lang.TypeStr, lang.TypeBin, lang.TypeMeth:
		v.t = lang.TypeStr
		return
	}
	start := len(t.buf)
	t.buf = v.appendTo(t.buf)
	v.setStr(t.buf[start:len(t.buf):len(t.buf)])
}

// asInt makes the value an integer: a string is read as a leading
// decimal number as HAProxy's cast does (false when there is none).
func (v *value) asInt() bool {
	switch v.t {
	case lang.TypeInt, lang.TypeBool:
		v.t = lang.TypeInt
		return true
	case lang.TypeStr, lang.TypeBin, lang.TypeMeth:
		n, ok := leadingInt(v.b)
		if !ok {
			return false
		}
		v.setInt(n)
		return true
	}
	return false
}

// fieldInt makes a string read from a header, cookie or parameter an
// integer as HAProxy's *_val fetches do: its leading decimal digits, 0
// when there are none ("x" is 0, "12abc" 12). An empty string is 0 too
// unless empty is false (req.cook_val gives no value for "a=").
func (v *value) fieldInt(empty bool) bool {
	if len(v.b) == 0 && !empty {
		return false
	}
	n, _ := leadingInt(v.b)
	v.setInt(n)
	return true
}

// leadingInt reads an optionally signed decimal integer at the start of b.
func leadingInt(b []byte) (int64, bool) {
	i, neg := 0, false
	if i < len(b) && (b[i] == '-' || b[i] == '+') {
		neg = b[i] == '-'
		i++
	}
	start := i
	var n int64
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		n = n*10 + int64(b[i]-'0')
	}
	if i == start {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// asIP makes the value an address: a string is parsed.
func (v *value) asIP() bool {
	switch v.t {
	case lang.TypeIP:
		return true
	case lang.TypeStr, lang.TypeBin:
		a, err := netip.ParseAddr(bytesString(v.b))
		if err != nil {
			return false
		}
		v.setIP(a)
		return true
	case lang.TypeInt:
		u := uint32(v.i)
		v.setIP(netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}))
		return true
	}
	return false
}

// asBool makes the value a boolean: an integer is true when not 0, a
// string when not empty.
func (v *value) asBool() bool {
	switch v.t {
	case lang.TypeBool, lang.TypeInt:
		return v.i != 0
	case lang.TypeIP:
		return true
	}
	return len(v.b) > 0
}
