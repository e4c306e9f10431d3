package h1

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzGuard checks the guard's promises on any input: the verdict does not
// depend on how the bytes are split into reads; what passes is never
// longer than what came in; and a head it lets through is one fasthttp
// parses without error and frames as the guard did, so that halo and the
// guard cannot disagree on where a request ends.
func FuzzGuard(f *testing.F) {
	for _, c := range guardCases {
		f.Add([]byte(c.in), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		whole, werr := filterAll(string(in), len(in)+1, DefaultLimits)
		split, serr := filterAll(string(in), int(step%16)+1, DefaultLimits)
		if (werr == nil) != (serr == nil) || werr != nil && (werr.Offset != serr.Offset || werr.Status != serr.Status) {
			t.Fatalf("verdict depends on reads: whole %v, in reads of %d %v", werr, step%16+1, serr)
		}
		if werr == nil && whole != split {
			t.Fatalf("output depends on reads: %q vs %q", whole, split)
		}
		if len(whole) > len(in) {
			t.Fatalf("passed %d bytes of %d", len(whole), len(in))
		}
		end := strings.Index(whole, "\r\n\r\n")
		if end < 0 {
			return
		}
		var h fasthttp.RequestHeader
		h.DisableNormalizing()
		if err := h.Read(bufio.NewReader(strings.NewReader(whole[:end+4]))); err != nil {
			t.Fatalf("guard passed a head fasthttp refuses: %v\n%q", err, whole[:end+4])
		}
		var g Guard
		g.Reset(DefaultLimits)
		p := []byte(whole[:end+4])
		if _, err := g.Filter(p); err != nil {
			t.Fatalf("the passed head does not pass again: %v", err)
		}
		switch {
		case g.st == stChunkSize:
			if h.ContentLength() != -1 {
				t.Fatalf("guard reads chunked, fasthttp Content-Length %d\n%q", h.ContentLength(), whole[:end+4])
			}
		case g.st == stBody:
			if int64(h.ContentLength()) != g.remaining {
				t.Fatalf("guard reads Content-Length %d, fasthttp %d\n%q", g.remaining, h.ContentLength(), whole[:end+4])
			}
		case g.st == stStart:
			if cl := h.ContentLength(); cl > 0 || cl == -1 {
				t.Fatalf("guard reads no body, fasthttp Content-Length %d\n%q", cl, whole[:end+4])
			}
		}
	})
}

// FuzzResponseHead checks that a response head CheckResponseHead accepts
// is one fasthttp parses, with the same framing.
func FuzzResponseHead(f *testing.F) {
	for _, c := range responseCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		end, err := CheckResponseHead(in, DefaultLimits)
		if err != nil || end == 0 {
			return
		}
		var h fasthttp.ResponseHeader
		h.DisableNormalizing()
		if rerr := h.Read(bufio.NewReader(bytes.NewReader(in[:end]))); rerr != nil {
			t.Fatalf("accepted a head fasthttp refuses: %v\n%q", rerr, in[:end])
		}
		chunked := bytes.Contains(bytes.ToLower(in[:end]), []byte("transfer-encoding"))
		if chunked != (h.ContentLength() == -1) {
			t.Fatalf("framing differs: chunked %v, fasthttp Content-Length %d\n%q", chunked, h.ContentLength(), in[:end])
		}
	})
}
