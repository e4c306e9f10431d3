package rules

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"time"

	"github.com/halo-lb/halo/config/lang"
)

// The fetches that identify a request: HAProxy's URL hashes, the request
// line as received, the clock, UUIDs, and the unique ID and the log
// variables (%Ts, %rt, %pid) unique-id-format is written with.

func init() {
	for name, fn := range map[string]fetchFn{
		"base32":             hashFetch(false, false),
		"base32+src":         hashFetch(false, true),
		"url32":              hashFetch(true, false),
		"url32+src":          hashFetch(true, true),
		"capture.req.method": fetchCaptureMethod,
		"capture.req.uri":    fetchCaptureURI,
		"capture.req.ver":    fetchCaptureVer,
		"date":               fetchDate,
		"uuid":               fetchUUID,
		"unique-id":          fetchUniqueID,
		"%ID":                fetchID,
		"%Ts":                fetchAcceptDate,
		"%rt":                fetchRequestNumber,
		"%pid":               func(_ *Txn, _ *fetch, _ int, out *value) bool { out.setInt(pid); return true },
	} {
		fetchFns[name] = fn
	}
}

var pid = int64(os.Getpid())

// sdbm is HAProxy's hash of base32 and url32: SDBM over the bytes as C's
// signed chars (a byte from 0x80 counts negative, as on the x86 and arm64
// builds HAProxy is compared with), continued from h.
func sdbm(h uint32, b []byte) uint32 {
	for _, c := range b {
		h = uint32(int32(int8(c))) + h<<6 + h<<16 - h
	}
	return h
}

// fullHash is Bob Jenkins' full-avalanche integer hash, as HAProxy ends
// base32 and url32 with it, then multiplied by the prime HAProxy uses.
func fullHash(a uint32) uint32 {
	a = (a + 0x7ed55d16) + (a << 12)
	a = (a ^ 0xc761c23c) ^ (a >> 19)
	a = (a + 0x165667b1) + (a << 5)
	a = (a + 0xd3a2646c) ^ (a << 9)
	a = (a + 0xfd7046c5) + (a << 3)
	a = (a ^ 0xb55a4f09) ^ (a >> 16)
	return a * 3221225473
}

// hashFetch is base32 (the first Host and the path, without the query)
// and url32 (the Host and the whole target from its first slash);
// withSrc appends the client's address to the hash's 4 bytes, as
// base32+src and url32+src do.
func hashFetch(whole, withSrc bool) fetchFn {
	return func(t *Txn, _ *fetch, _ int, out *value) bool {
		if t.Ctx == nil || withSrc && !t.Src.IsValid() {
			return false
		}
		h := sdbm(0, t.Ctx.Request.Header.Host())
		if p, ok := uriPath(t.currentURI()); ok {
			if !whole {
				if i := bytes.IndexByte(p, '?'); i >= 0 {
					p = p[:i]
				}
			}
			h = sdbm(h, p)
		}
		h = fullHash(h)
		if !withSrc {
			out.setInt(int64(h))
			return true
		}
		start := len(t.buf)
		t.buf = binary.BigEndian.AppendUint32(t.buf, h)
		a := t.Src.Addr()
		if a.Is4() {
			b := a.As4()
			t.buf = append(t.buf, b[:]...)
		} else {
			b := a.As16()
			t.buf = append(t.buf, b[:]...)
		}
		out.setStr(t.buf[start:len(t.buf):len(t.buf)])
		out.t = lang.TypeBin
		return true
	}
}

// currentURI is the request-target as the rules left it.
func (t *Txn) currentURI() []byte {
	if !t.uriChanged {
		return t.Ctx.Request.Header.RequestURI()
	}
	return t.Ctx.Request.URI().RequestURI()
}

// uriPath is the path of a request-target from its first slash, query
// included, as HAProxy's URI parser finds it: an origin-form target is
// its own path, an absolute-form one loses its scheme and authority;
// "*", an authority-form target and one without a path have none.
func uriPath(uri []byte) ([]byte, bool) {
	if len(uri) == 0 || uri[0] == '*' {
		return nil, false
	}
	if uri[0] == '/' {
		return uri, true
	}
	i := bytes.Index(uri, []byte("://"))
	if i < 0 {
		return nil, false
	}
	rest := uri[i+3:]
	j := bytes.IndexByte(rest, '/')
	if j < 0 {
		return nil, false
	}
	return rest[j:], true
}

// saveRequestLine keeps the method and target as received before a rule
// changes either, for capture.req.method and capture.req.uri: a copy is
// made only for a request a rule rewrites.
func (t *Txn) saveRequestLine() {
	if t.lineSaved {
		return
	}
	h := &t.Ctx.Request.Header
	t.origMethod = append(t.origMethod[:0], h.Method()...)
	t.origURI = append(t.origURI[:0], h.RequestURI()...)
	t.lineSaved = true
}

func fetchCaptureMethod(t *Txn, _ *fetch, _ int, out *value) bool {
	if t.Ctx == nil {
		return false
	}
	if t.lineSaved {
		out.setStr(t.origMethod)
	} else {
		out.setStr(t.Ctx.Request.Header.Method())
	}
	return true
}

// fetchCaptureURI is the path of the target as received (query
// included), as HAProxy reads it from the request line it captured.
func fetchCaptureURI(t *Txn, _ *fetch, _ int, out *value) bool {
	if t.Ctx == nil {
		return false
	}
	uri := t.Ctx.Request.Header.RequestURI()
	if t.lineSaved {
		uri = t.origURI
	}
	p, ok := uriPath(uri)
	out.setStr(p)
	return ok
}

var (
	http10 = []byte("HTTP/1.0")
	http11 = []byte("HTTP/1.1")
)

func fetchCaptureVer(t *Txn, _ *fetch, _ int, out *value) bool {
	if t.Ctx == nil {
		return false
	}
	if t.Ctx.Request.Header.IsHTTP11() {
		out.setStr(http11)
	} else {
		out.setStr(http10)
	}
	return true
}

// fetchDate is date([offset[,unit]]): now since the epoch, in seconds,
// milliseconds or microseconds (f.n: 1, 1000, 1000000), plus offset.
func fetchDate(_ *Txn, f *fetch, _ int, out *value) bool {
	now := time.Now()
	var n int64
	switch f.length {
	case 1000:
		n = now.UnixMilli()
	case 1000000:
		n = now.UnixMicro()
	default:
		n = now.Unix()
	}
	out.setInt(n + f.n)
	return true
}

const hexDigits = "0123456789abcdef"

// fetchUUID is a random (version 4) UUID in lower case, as HAProxy
// writes one. Its randomness is math/rand's, as HAProxy's is its own
// fast generator's: an identifier, not a secret.
func fetchUUID(t *Txn, _ *fetch, _ int, out *value) bool {
	var u [16]byte
	binary.LittleEndian.PutUint64(u[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(u[8:], rand.Uint64())
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // the RFC 4122 variant
	start := len(t.buf)
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			t.buf = append(t.buf, '-')
		}
		t.buf = append(t.buf, hexDigits[c>>4], hexDigits[c&15])
	}
	out.setStr(t.buf[start:len(t.buf):len(t.buf)])
	return true
}

// requests numbers the requests that ask for their number (%rt), from 0
// as HAProxy's counter; it lives as long as the process, across reloads.
var requests atomic.Uint64

func fetchRequestNumber(t *Txn, _ *fetch, _ int, out *value) bool {
	if !t.seqSet {
		t.seq, t.seqSet = requests.Add(1)-1, true
	}
	out.setInt(int64(uint32(t.seq)))
	return true
}

// fetchAcceptDate is %Ts: when the request was accepted, in seconds.
func fetchAcceptDate(t *Txn, _ *fetch, _ int, out *value) bool {
	if t.Start.IsZero() {
		t.Start = time.Now()
	}
	out.setInt(t.Start.Unix())
	return true
}

// maxUniqueID is HAProxy's UNIQUEID_LEN less its NUL: a longer ID is cut.
const maxUniqueID = 127

// UniqueID is the request's unique ID, made from the frontend's
// unique-id-format on first use and the same for the rest of the
// request; false without a format. Its bytes are the Txn's until Reset.
func (t *Txn) UniqueID() ([]byte, bool) {
	switch {
	case t.uidState == uidMade:
		return t.uid, true
	case t.uidState == uidMaking || t.UniqueIDFormat == nil:
		// A format that reads unique-id itself gets none, rather than
		// recursing.
		return nil, false
	}
	t.uidState = uidMaking
	mark := len(t.buf)
	b := t.UniqueIDFormat.f.eval(t)
	t.uid = append(t.uid[:0], b[:min(len(b), maxUniqueID)]...)
	t.buf = t.buf[:mark]
	t.uidState = uidMade
	return t.uid, true
}

const (
	uidNone uint8 = iota
	uidMaking
	uidMade
)

func fetchUniqueID(t *Txn, _ *fetch, _ int, out *value) bool {
	id, ok := t.UniqueID()
	out.setStr(id)
	return ok
}

// fetchID is %ID: the unique ID if one was made by now, which %ID does
// not do (a rule's %ID before the ID exists is empty in HAProxy too).
func fetchID(t *Txn, _ *fetch, _ int, out *value) bool {
	if t.uidState != uidMade {
		return false
	}
	out.setStr(t.uid)
	return true
}
