package sticktable

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strconv"

	"github.com/halo-lb/halo/config"
)

// Key is a table's key, built without allocating: the bytes of an
// address or an integer inline, or a caller's bytes (string, binary)
// cut to the table's len. A Key that refers to caller bytes is valid
// while they are unchanged; the table copies what it keeps.
type Key struct {
	inline [16]byte
	n      int
	ext    []byte
	ok     bool
}

// Valid reports whether the key could be built (an IPv6 address does
// not fit a table of type ip).
func (k *Key) Valid() bool { return k.ok }

func (k *Key) bytes() []byte {
	if k.ext != nil {
		return k.ext
	}
	return k.inline[:k.n]
}

// AddrKey is the key of a client address. A table of type ip takes IPv4
// addresses, and IPv4-mapped IPv6 ones as their IPv4 address, as HAProxy
// converts them; other IPv6 addresses give an invalid key. A table of
// type ipv6 stores IPv4 as ::ffff:a.b.c.d. Other types give an invalid
// key.
func (t *Table) AddrKey(a netip.Addr) Key {
	var k Key
	switch t.spec.Type {
	case config.StickIP:
		if a = a.Unmap(); a.Is4() {
			b := a.As4()
			copy(k.inline[:], b[:])
			k.n, k.ok = 4, true
		}
	case config.StickIPv6:
		if a.IsValid() {
			k.inline, k.n, k.ok = a.As16(), 16, true
		}
	}
	return k
}

// IntKey is the key of an integer, for a table of type integer.
func (t *Table) IntKey(v int64) Key {
	var k Key
	if t.spec.Type == config.StickInteger {
		binary.BigEndian.PutUint64(k.inline[:], uint64(v))
		k.n, k.ok = 8, true
	}
	return k
}

// BytesKey is the key of b cut to the table's len, for a table of type
// string or binary. The key refers to b.
func (t *Table) BytesKey(b []byte) Key {
	var k Key
	if t.spec.Type == config.StickString || t.spec.Type == config.StickBinary {
		if len(b) > t.spec.KeyLen {
			b = b[:t.spec.KeyLen]
		}
		k.ext, k.ok = b[:len(b):len(b)], true
		if k.ext == nil {
			k.ext = []byte{}
		}
	}
	return k
}

// ParseKey reads a key as HAProxy 2.6's runtime API does: a dotted IPv4
// address for ip, an IPv6 one for ipv6, an unsigned 32-bit decimal for
// integer, the bytes for string, hex digits for binary. It is control
// path and may allocate.
func (t *Table) ParseKey(s string) (Key, bool) {
	switch t.spec.Type {
	case config.StickIP:
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return Key{}, false
		}
		return t.AddrKey(a), true
	case config.StickIPv6:
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() {
			return Key{}, false
		}
		return t.AddrKey(a), true
	case config.StickInteger:
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return Key{}, false
		}
		return t.IntKey(int64(v)), true
	case config.StickString:
		return t.BytesKey([]byte(s)), true
	default: // binary
		b, err := hex.DecodeString(s)
		if err != nil {
			return Key{}, false
		}
		return t.BytesKey(b), true
	}
}

// formatKey writes a stored key as "show table" does.
func (t *Table) formatKey(b []byte) string {
	switch t.spec.Type {
	case config.StickIP:
		return netip.AddrFrom4([4]byte(b)).String()
	case config.StickIPv6:
		return netip.AddrFrom16([16]byte(b)).String()
	case config.StickInteger:
		return strconv.FormatInt(int64(binary.BigEndian.Uint64(b)), 10)
	case config.StickString:
		return string(b)
	default:
		return hex.EncodeToString(b)
	}
}
