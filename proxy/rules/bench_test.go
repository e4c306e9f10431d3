package rules

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/halo-lb/halo/config/lang"
)

// srcMatcher is "src -f LIST" over n networks of mixed prefix lengths, as
// a blocklist holds them.
func srcMatcher(tb testing.TB, n int) *matcher {
	tb.Helper()
	m := &lang.Match{Method: lang.MatchIP}
	var err error
	if m.Sample, err = lang.ParseSample(mustWord(tb, "src"), lang.AtRequest); err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		// 10.x.y.z/32, /24 and /16 networks, none holding the client.
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		bits := []int{32, 24, 16}[i%3]
		p, _ := a.Prefix(bits)
		m.Patterns = append(m.Patterns, lang.Pattern{Text: p.String(), Net: p})
	}
	cm, err := NewCompiler(Names{}).compileMatch(m)
	if err != nil {
		tb.Fatal(err)
	}
	return cm
}

func mustWord(tb testing.TB, s string) lang.Word {
	ws, err := lang.Split(s)
	if err != nil || len(ws) != 1 {
		tb.Fatalf("%q: %v", s, err)
	}
	return ws[0]
}

// BenchmarkSrcList: a src -f list costs the same per request at 10, 1,000
// and 100,000 entries (one lookup per distinct prefix length).
func BenchmarkSrcList(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			m := srcMatcher(b, n)
			tx := newTxn(b, openstackRequest, "192.0.2.77:40000")
			b.ReportAllocs()
			for b.Loop() {
				if m.eval(tx) {
					b.Fatal("matched")
				}
			}
		})
	}
}

// BenchmarkPathBegList is path_beg -f over n prefixes.
func BenchmarkPathBegList(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			m := &lang.Match{Method: lang.MatchBeg}
			m.Sample, _ = lang.ParseSample(mustWord(b, "path"), lang.AtRequest)
			for i := range n {
				m.Patterns = append(m.Patterns, lang.Pattern{Text: fmt.Sprintf("/api/v%d/", i)})
			}
			cm, err := NewCompiler(Names{}).compileMatch(m)
			if err != nil {
				b.Fatal(err)
			}
			tx := newTxn(b, openstackRequest, "192.0.2.77:40000")
			b.ReportAllocs()
			for b.Loop() {
				cm.eval(tx)
			}
		})
	}
}

// A list's lookups find what they should at every size.
func TestSrcListMatches(t *testing.T) {
	m := srcMatcher(t, 100000)
	for src, want := range map[string]bool{
		"10.0.0.0:1": true, "10.0.0.1:1": true, "10.0.1.77:1": true, "10.2.0.1:1": false,
		"10.1.134.159:1": true, "192.0.2.1:1": false, "[::ffff:10.0.0.0]:1": true,
	} {
		tx := newTxn(t, openstackRequest, src)
		if got := m.eval(tx); got != want {
			t.Errorf("%s: %v, want %v", src, got, want)
		}
	}
}

// A regular expression that makes a backtracking engine take exponential
// time, against a long header: RE2 answers in linear time.
func TestRegexBombIsLinear(t *testing.T) {
	c := NewCompiler(testNames())
	raw := "GET / HTTP/1.1\r\nHost: x\r\nX-Bomb: " + strings.Repeat("a", 60000) + "!\r\n\r\n"
	tx := newTxn(t, raw, "10.0.0.1:1")
	for _, acl := range []string{`hdr(x-bomb) -m reg ^(a+)+$`, `hdr(x-bomb) -m reg ^(a|aa)+$`, `hdr(x-bomb) -m reg ^(a|a?)+$`} {
		if evalACL(t, c, tx, acl) {
			t.Errorf("%s matched", acl)
		}
	}
}

// BenchmarkBenchRuleSet is the rule set of bench/configs/l7-rules.halo.yaml
// on the benchmark's request (wrk's GET / with a Host only), the request
// rebuilt each time as a server parses a new one.
func BenchmarkBenchRuleSet(b *testing.B) {
	c := NewCompiler(Names{Backends: map[string]int{"app": 0, "other": 1}})
	acls := map[string]string{
		"blocked": "src 203.0.113.0/24 198.51.100.66", "is_identity": "path_beg /identity /v3",
		"dashboard":  "hdr(host) -i -m dom dashboard.overcloud.example.org",
		"to_glance":  "hdr(host) -i -m dom image.overcloud.example.org",
		"to_nova":    "hdr(host) -i -m dom compute.overcloud.example.org",
		"to_neutron": "hdr(host) -i -m dom network.overcloud.example.org",
		"health":     "path /healthcheck",
	}
	p := compileRules(b, c, acls,
		"deny deny_status 403 if blocked",
		"redirect scheme https code 301 if { hdr(host) -i insecure.overcloud.example.org } !health",
		"return status 200 content-type text/plain string OK if health",
		"set-header X-Forwarded-Proto https if { ssl_fc }",
		"set-header X-Forwarded-Proto http unless { ssl_fc }",
		"set-header X-Forwarded-Port %[dst_port]",
		"del-header X-Forwarded-Host",
		"set-header X-Forwarded-Host %[req.hdr(host)]",
	)
	route := compileRules(b, c, acls, "deny if is_identity", "deny if to_glance", "deny if to_nova", "deny if to_neutron", "deny if dashboard")
	tx := newTxn(b, "GET / HTTP/1.1\r\nHost: 127.0.0.1:21080\r\n\r\n", "127.0.0.1:40000")
	req := &tx.Ctx.Request
	b.ReportAllocs()
	for b.Loop() {
		req.Header.Del("X-Forwarded-Proto")
		req.Header.Del("X-Forwarded-Port")
		req.Header.Del("X-Forwarded-Host")
		tx.Reset(c.Vars())
		p.Run(tx)
		route.Run(tx)
	}
}
