package h1

import (
	"strings"
	"testing"
)

// filterAll runs in through a new guard in reads of size step and returns
// what it passed on and its error.
func filterAll(in string, step int, l Limits) (string, *Error) {
	var g Guard
	g.Reset(l)
	var out []byte
	b := []byte(in)
	for len(b) > 0 {
		k := min(step, len(b))
		p := append([]byte(nil), b[:k]...)
		b = b[k:]
		n, err := g.Filter(p)
		out = append(out, p[:n]...)
		if err != nil {
			return string(out), err
		}
	}
	return string(out), nil
}

type guardCase struct {
	name, in string
	status   int    // 0: accepted
	out      string // what passes, if accepted; "" means the input itself
	at       int64  // the offending byte's offset, if refused (-1: not checked)
}

var guardCases = []guardCase{
	{"simple", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, "", 0},
	{"http/1.0 without host", "GET / HTTP/1.0\r\n\r\n", 0, "", 0},
	{"two pipelined", "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n", 0, "", 0},
	{"leading empty lines dropped", "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
	{"minor version 2 read as 1", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 0, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
	{"content-length body", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, "", 0},
	{"chunked canonical", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 0, "", 0},
	{"chunk leading zeros and extensions", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n000000000000000000000003 ; a=b; c=\"d\\\"e\"\r\nabc\r\n0000;x\r\n\r\n",
		0, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n03\r\nabc\r\n0\r\n\r\n", 0},
	{"trailers dropped", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nX-Sum: 1\r\nY: 2\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		0, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
	{"te with ows and case", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \tChunked \r\n\r\n0\r\n\r\n", 0, "", 0},
	{"obs-text in value", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xe9\r\n\r\n", 0, "", 0},
	{"absolute form", "GET http://a:80/x?y HTTP/1.1\r\nHost: a:80\r\n\r\n", 0, "", 0},
	{"options asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 0, "", 0},
	{"expect 100-continue", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx", 0, "", 0},
	{"underscore name forwarded", "GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded: 1\r\n\r\n", 0, "", 0},

	{"space in name", "GET / HTTP/1.1\r\nHost: a\r\nContent Length: 3\r\n\r\n", 400, "", 32},
	{"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400, "", 42},
	{"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400, "", 25},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400, "", 31},
	{"bare LF in request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "", 14},
	{"bare LF in field", "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400, "", 23},
	{"bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400, "", 30},
	{"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400, "", 29},
	{"version 2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "", 14},
	{"version 0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505, "", 14},
	{"version two digits", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400, "", 14},
	{"lowercase version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400, "", 6},
	{"no version", "GET /\r\nHost: a\r\n\r\n", 400, "", 5},
	{"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "", 5},
	{"userinfo in host", "GET / HTTP/1.1\r\nHost: user@evil.test\r\n\r\n", 400, "", 26},
	{"userinfo in target", "GET http://u:p@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "", 14},
	{"ftp scheme", "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400, "", 7},
	{"no host", "GET / HTTP/1.1\r\nX: y\r\n\r\n", 400, "", 23},
	{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "", 29},
	{"host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "", 23},
	{"te identity with cl", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc", 400, "", 75},
	{"te and cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "", -1},
	{"te gzip chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "", -1},
	{"te chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "", -1},
	{"te chunked not last", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400, "", -1},
	{"te xchunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 400, "", -1},
	{"te parameters", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", 400, "", 52},
	{"te empty element", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n", 400, "", 45},
	{"te in http/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "", -1},
	{"te vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n", 400, "", 44},
	{"underscore te", "POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\n\r\n", 400, "", 43},
	{"duplicate cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400, "", 59},
	{"cl list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx", 400, "", 43},
	{"cl sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx", 400, "", 42},
	{"cl overflow", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n", 400, "", 60},
	{"chunk size hex prefix", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n", 400, "", 57},
	{"chunk LF only", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", 400, "", 57},
	{"chunk data too long", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", 400, "", 62},
	{"chunk size too large", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", 400, "", -1},
	{"chunk whitespace without extension", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n", 400, "", 58},
	{"trailer content-length", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n", 400, "", -1},
	{"connect", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 405, "", 7},
	{"asterisk with GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "", 5},
	{"target with space", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", 400, "", 7},
	{"target with brace", "GET /{x} HTTP/1.1\r\nHost: a\r\n\r\n", 400, "", 5},
	{"target with fragment", "GET /#x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "", 5},
	{"method not a token", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "", 1},
	{"tls handshake", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, "", 0},
	{"expect other", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417, "", -1},
	{"valid then invalid", "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 47},
}

func TestGuard(t *testing.T) {
	for _, c := range guardCases {
		t.Run(c.name, func(t *testing.T) {
			for _, step := range []int{1, 2, 7, len(c.in)} {
				out, err := filterAll(c.in, step, DefaultLimits)
				if c.status == 0 {
					want := c.out
					if want == "" {
						want = c.in
					}
					if err != nil || out != want {
						t.Fatalf("reads of %d: got %q, %v; want %q accepted", step, out, err, want)
					}
					continue
				}
				if err == nil || err.Status != c.status {
					t.Fatalf("reads of %d: got %v, want status %d", step, err, c.status)
				}
				if c.at >= 0 && err.Offset != c.at {
					t.Errorf("reads of %d: error %q at byte %d, want %d", step, err.Reason, err.Offset, c.at)
				}
				// Nothing of the offending request beyond its bad byte
				// passes, and nothing at all once it is reached.
				if int64(len(out)) > err.Offset {
					t.Errorf("reads of %d: passed %d bytes, beyond the error at %d", step, len(out), err.Offset)
				}
				if c.out != "" && !strings.HasPrefix(out, c.out) {
					t.Errorf("reads of %d: passed %q, want %q first", step, out, c.out)
				}
			}
		})
	}
}

func TestGuardLimits(t *testing.T) {
	l := Limits{MaxHead: 100, MaxFields: 3}
	head := "GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("v", 100) + "\r\n\r\n"
	if _, err := filterAll(head, 1000, l); err == nil || err.Status != 431 || err.Offset != 100 {
		t.Errorf("head of %d bytes with MaxHead 100: %v, want 431 at byte 100", len(head), err)
	}
	fields := "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"
	if _, err := filterAll(fields, 1000, l); err == nil || err.Status != 431 {
		t.Errorf("4 fields with MaxFields 3: %v, want 431", err)
	}
	if _, err := filterAll("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", 1000, l); err != nil {
		t.Errorf("3 fields with MaxFields 3: %v", err)
	}
	// The limit is per head: a second request starts afresh.
	two := "GET / HTTP/1.1\r\nHost: a\r\nA: " + strings.Repeat("v", 60) + "\r\n\r\n"
	if _, err := filterAll(two+two, 1000, l); err != nil {
		t.Errorf("two heads each under the limit: %v", err)
	}
}

var responseCases = []struct {
	name, in string
	ok       bool
}{
	{"simple", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", true},
	{"no reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", true},
	{"empty reason", "HTTP/1.1 204 \r\n\r\n", true},
	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true},
	{"http/1.0", "HTTP/1.0 200 OK\r\n\r\n", true},
	{"cl and te", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", false},
	{"two cl", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", false},
	{"te gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false},
	{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", false},
	{"http/2", "HTTP/2.0 200 OK\r\n\r\n", false},
	{"four digit status", "HTTP/1.1 2000 OK\r\n\r\n", false},
	{"no status", "HTTP/1.1 OK\r\n\r\n", false},
	{"lowercase", "http/1.1 200 OK\r\n\r\n", false},
	{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", false},
	{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", false},
	{"NUL", "HTTP/1.1 200 OK\r\nX: \x00\r\n\r\n", false},
}

func TestCheckResponseHead(t *testing.T) {
	for _, c := range responseCases {
		end, err := CheckResponseHead([]byte(c.in), Limits{MaxHead: 16384, MaxFields: 100})
		if c.ok && (err != nil || end != strings.Index(c.in, "\r\n\r\n")+4) {
			t.Errorf("%s: got %d, %v; want the head accepted", c.name, end, err)
		}
		if !c.ok && (err == nil || err.Status != 502) {
			t.Errorf("%s: got %d, %v; want a 502 error", c.name, end, err)
		}
	}
	if end, err := CheckResponseHead([]byte("HTTP/1.1 200 OK\r\nContent-Le"), DefaultLimits); end != 0 || err != nil {
		t.Errorf("incomplete head: got %d, %v; want 0, nil", end, err)
	}
}

func TestGuardAllocatesNothing(t *testing.T) {
	req := []byte("POST /v3/auth/tokens HTTP/1.1\r\nHost: keystone.example:5000\r\nUser-Agent: python-keystoneclient\r\nAccept: application/json\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n0a;x=1\r\n0123456789\r\n0\r\n\r\n")
	buf := make([]byte, len(req))
	var g Guard
	if n := testing.AllocsPerRun(1000, func() {
		g.Reset(DefaultLimits)
		copy(buf, req)
		if _, err := g.Filter(buf); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Filter allocates %.1f times per request", n)
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nx-openstack-request-id: req-1\r\n\r\n{}")
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := CheckResponseHead(resp, DefaultLimits); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("CheckResponseHead allocates %.1f times per response", n)
	}
}

func BenchmarkGuard(b *testing.B) {
	req := []byte("GET /v3/auth/tokens?nocatalog HTTP/1.1\r\nHost: keystone.example:5000\r\nUser-Agent: python-keystoneclient\r\nAccept: application/json\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\nX-Auth-Token: " + strings.Repeat("gAAAAABk", 22) + "\r\nX-Subject-Token: " + strings.Repeat("gAAAAABk", 22) + "\r\n\r\n")
	buf := make([]byte, len(req))
	var g Guard
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		g.Reset(DefaultLimits)
		copy(buf, req)
		if _, err := g.Filter(buf); err != nil {
			b.Fatal(err)
		}
	}
}
