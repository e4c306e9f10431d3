package rules

import (
	"bytes"
	"testing"
)

// FuzzPayloadFetches runs the fetches that parse a client's bytes — the
// first bytes of a TCP stream (req.proto_http, req.rdp_cookie,
// req.payload) and a header's comma-separated values (valueEnd) — on any
// input: none may panic, and what they return lies within the input.
func FuzzPayloadFetches(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET /\r\n\r\n", "GET / HTTP/x.1\r\n\r\n",
		"\x03\x00\x00\x2c\x27\xe0\x00\x00\x00\x00\x00Cookie: mstshash=alice\r\n",
		"\x03\x00\x00\x2c\x27\xe0\x00\x00\x00\x00\x00Cookie: alice",
		`a="b,c", ,d`, `d,"q`, `a\", b" ,c`, "\x16\x03\x01\x00\x05hello",
	} {
		f.Add([]byte(s), int64(0), int64(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, off, n int64) {
		tx := &Txn{Payload: data}
		var v value
		fetchProtoHTTP(tx, &fetch{}, 0, &v)
		for _, name := range [][]byte{nil, []byte("mstshash")} {
			if fetchRDPCookie(tx, &fetch{name: name}, 0, &v) && !bytes.Contains(data, v.b) {
				t.Fatalf("rdp cookie %q is not in %q", v.b, data)
			}
		}
		if fetchPayload(tx, &fetch{n: off, length: n}, 0, &v) && !bytes.Contains(data, v.b) {
			t.Fatalf("req.payload(%d,%d) = %q, not in %q", off, n, v.b, data)
		}
		for rest := data; ; {
			i := valueEnd(rest)
			if i < 0 {
				break
			}
			if rest[i] != ',' {
				t.Fatalf("valueEnd(%q) = %d, not a comma", rest, i)
			}
			rest = rest[i+1:]
		}
	})
}
