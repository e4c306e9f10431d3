package rules

import (
	"bytes"
	"strings"

	"github.com/halo-lb/halo/config/lang"
)

// The fetches of the buffered start of a TCP stream (Txn.Payload), which
// tcp-request content rules read after inspect-delay: its length and
// bytes, the ClientHello it may start with, an RDP cookie, whether it is
// an HTTP request.
func init() {
	for name, fn := range map[string]fetchFn{
		"req.len":            func(t *Txn, _ *fetch, _ int, out *value) bool { out.setInt(int64(len(t.Payload))); return true },
		"req.payload":        fetchPayload,
		"req.ssl_sni":        fetchSSLSNI,
		"req.ssl_hello_type": fetchSSLHelloType,
		"req.rdp_cookie":     fetchRDPCookie,
		"req.rdp_cookie_cnt": func(t *Txn, f *fetch, occ int, out *value) bool {
			n := int64(0)
			if fetchRDPCookie(t, f, occ, out) {
				n = 1
			}
			out.setInt(n)
			return true
		},
		"req.proto_http": fetchProtoHTTP,
		// halo runs content rules once, when its wait for the first bytes
		// is over: WAIT_END holds whenever they run.
		"wait_end": func(_ *Txn, _ *fetch, _ int, out *value) bool { out.setBool(true); return true },
	} {
		fetchFns[name] = fn
	}
}

// fetchPayload is req.payload(offset,length): length bytes from offset, or
// every byte from offset for length 0; no value when the stream's start
// is shorter, as HAProxy gives once its wait is over. HAProxy reads the
// arguments as unsigned: a negative one asks for more than any buffer
// holds, and gives no value either.
func fetchPayload(t *Txn, f *fetch, _ int, out *value) bool {
	off, n := f.n, int64(f.length)
	if off < 0 || n < 0 || off > int64(len(t.Payload)) || n > int64(len(t.Payload))-off {
		return false
	}
	end := int64(len(t.Payload))
	if n > 0 {
		end = off + n
	}
	out.setStr(t.Payload[off:end])
	out.t = lang.TypeBin
	return true
}

// fetchSSLSNI is the server name of the ClientHello that starts the
// stream, read without terminating TLS (tcp-request content, to route
// TLS passthrough by name).
func fetchSSLSNI(t *Txn, _ *fetch, _ int, out *value) bool {
	if !t.Hello {
		return false
	}
	out.setStr(t.HelloSNI)
	return len(t.HelloSNI) > 0
}

func fetchSSLHelloType(t *Txn, _ *fetch, _ int, out *value) bool {
	// A TLS handshake record (22) whose first message is a ClientHello
	// (1): HAProxy's req.ssl_hello_type 1.
	if len(t.Payload) < 6 || t.Payload[0] != 22 {
		return false
	}
	out.setInt(int64(t.Payload[5]))
	return true
}

// fetchRDPCookie is req.rdp_cookie([name]): the value of the cookie an RDP
// client sends in its X.224 connection request, "Cookie: NAME=VALUE"
// ending in CRLF after the 11 bytes of TPKT and X.224 headers, read as
// HAProxy reads it (the name compared without case; without a name,
// whichever the cookie is).
func fetchRDPCookie(t *Txn, f *fetch, _ int, out *value) bool {
	const skip = 11
	d := t.Payload
	if len(d) <= skip+7 || !bytes.EqualFold(d[skip:skip+7], []byte("Cookie:")) {
		return false
	}
	d = bytes.TrimLeft(d[skip+7:], " ")
	if len(f.name) > 0 {
		if len(d) <= len(f.name) || !bytes.EqualFold(d[:len(f.name)], f.name) || d[len(f.name)] != '=' {
			return false
		}
		d = d[len(f.name)+1:]
	} else {
		i := bytes.IndexAny(d, "=\r\n")
		if i < 0 || d[i] != '=' {
			return false
		}
		d = d[i+1:]
	}
	end := bytes.IndexByte(d, '\r')
	if end < 0 || end+1 >= len(d) || d[end+1] != '\n' {
		return false
	}
	out.setStr(d[:end])
	return true
}

// fetchProtoHTTP is req.proto_http: a request in mode http always is one;
// in mode tcp, the stream's start must be an HTTP/1 request head, whole:
// a request line (method, target, HTTP/x.y or no version) and header lines
// up to the empty line, as HAProxy's parse of the buffer requires.
func fetchProtoHTTP(t *Txn, _ *fetch, _ int, out *value) bool {
	if t.Ctx != nil {
		out.setBool(true)
		return true
	}
	out.setBool(isHTTPHead(t.Payload))
	return true
}

func isHTTPHead(d []byte) bool {
	line, rest, ok := bytes.Cut(d, []byte("\n"))
	if !ok {
		return false
	}
	line = bytes.TrimSuffix(line, []byte("\r"))
	// A request line without a version is HTTP/0.9's, which HAProxy's
	// parser takes too.
	method, line, ok1 := bytes.Cut(line, []byte(" "))
	target, version, ok2 := bytes.Cut(line, []byte(" "))
	if !ok1 || len(method) == 0 || len(target) == 0 || !isToken(method) ||
		ok2 && (len(version) != 8 || !bytes.HasPrefix(version, []byte("HTTP/")) || version[6] != '.' ||
			version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
		return false
	}
	for {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return false // the head is not whole
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return true
		}
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 || !isToken(name) {
			return false
		}
	}
}

// isToken reports whether b is an RFC 9110 token (a method, a field name).
func isToken(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}
