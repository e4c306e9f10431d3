package rules

import "testing"

// TestRedirectIgnoreEmpty checks ignore-empty: a target that evaluates to
// nothing skips the rule, and the next rule runs; one that gives a value
// redirects. The options come in HAProxy's any order.
func TestRedirectIgnoreEmpty(t *testing.T) {
	c := NewCompiler(testNames())
	p := compileRules(t, c, nil,
		"redirect ignore-empty code 301 location %[req.hdr(x-absent)]",
		"redirect code 308 location /v3%[req.hdr(x-absent)] ignore-empty",
	)
	tx := newTxn(t, openstackRequest, "10.1.2.3:40000")
	v, r := p.Run(tx)
	if v != Redirect || r.Status != 308 {
		t.Fatalf("verdict %v, rule %+v: want the second rule's 308", v, r)
	}
	r.WriteRedirect(tx)
	if got := string(tx.Ctx.Response.Header.Peek("Location")); got != "/v3" {
		t.Errorf("Location %q, want /v3", got)
	}
	tx = newTxn(t, openstackRequest, "10.1.2.3:40000")
	if n := testing.AllocsPerRun(100, func() { p.Run(tx) }); n != 0 {
		t.Errorf("an ignore-empty redirect allocates %.1f times", n)
	}
}
