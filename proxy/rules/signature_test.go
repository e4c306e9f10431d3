package rules

import (
	"strings"
	"testing"

	"github.com/halo-lb/halo/config/lang"
)

// The header signature lets set-header and del-header skip the scan of
// every field when the name is absent. Names that differ only at their
// end (X-Forwarded-Host and -Port: same length, first, middle and last
// byte) must get different bits, or every request of the OpenStack rule
// set pays a scan; names that differ only in case must get the same bit,
// or a field would be reported absent when present.
func TestSignatureTellsNamesApart(t *testing.T) {
	names := []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Proto", "Host", "Cookie"}
	seen := map[uint]string{}
	for _, n := range names {
		b := nameBit([]byte(n))
		if other, ok := seen[b]; ok {
			t.Errorf("%s and %s share signature bit %d", n, other, b)
		}
		seen[b] = n
		if lower := nameBit([]byte(toLowerASCII(n))); lower != b {
			t.Errorf("%s: bit %d, in lower case %d", n, b, lower)
		}
	}
	var s signature
	s.add([]byte("x-forwarded-port"))
	if !s.hasBit(nameBit([]byte("X-Forwarded-Port"))) || s.hasBit(nameBit([]byte("X-Forwarded-Host"))) {
		t.Errorf("signature %x", s)
	}
}

func toLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// An ACL on the request's Host reads it straight from fasthttp
// (matcher.reqHost); it must match as the general path does, which a
// converter forces.
func TestHostACLMatchesAsTheGeneralPath(t *testing.T) {
	c := NewCompiler(testNames())
	for _, acl := range []string{
		"-i -m dom Example.ORG", "-m dom example.org", "-i api.example.org", "-m beg api.", "-i -m end .ORG",
		"-m sub mple", "-m dir example.org", "-m reg ^[a-z]+\\.example\\.org$", "-i -m reg ^API\\.",
	} {
		fast := compileRules(t, c, nil, "deny if { hdr(host) "+acl+" }")
		slow := compileRules(t, c, nil, "deny if { hdr(host),field(1,;) "+acl+" }")
		if !fast.rules[0].cond.single.reqHost || slow.rules[0].cond.single.reqHost {
			t.Fatalf("%s: the fast path is not where it should be", acl)
		}
		for _, host := range []string{"api.example.org", "API.Example.Org:8443", "example.org", "example.organic", "notexample.org", "-"} {
			raw := "GET / HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
			if host == "-" {
				raw = "GET / HTTP/1.0\r\n\r\n" // none
			}
			vf, _ := fast.Run(newTxn(t, raw, "10.1.2.3:40000"))
			vs, _ := slow.Run(newTxn(t, raw, "10.1.2.3:40000"))
			if vf != vs {
				t.Errorf("hdr(host) %s on %q: fast path %v, general path %v", acl, host, vf, vs)
			}
		}
	}
}

// -m bin, the default for a binary sample, matches the sample's bytes
// against the pattern's hexadecimal, exactly, as HAProxy's does.
func TestBinaryPatternsAreHexAndExact(t *testing.T) {
	c := NewCompiler(testNames())
	p := compileRules(t, c, nil, "deny if { hdr(host),bytes(0) 6170692e6f7267 }") // "api.org"
	for host, want := range map[string]Verdict{"api.org": Deny, "API.org": Continue, "api.org.example": Continue, "x.api.org": Continue} {
		if v, _ := p.Run(newTxn(t, "GET / HTTP/1.1\r\nHost: "+host+"\r\n\r\n", "10.1.2.3:40000")); v != want {
			t.Errorf("%s: %v, want %v", host, v, want)
		}
	}
	if _, err := lang.ParseACL("hdr(host),bytes(0) 6170z", lang.AtRequest); err == nil || !strings.Contains(err.Error(), "hexadecimal") {
		t.Errorf("a pattern that is not hexadecimal: %v", err)
	}
}
