package proxy

import "testing"

// A request that a rule denies while it tracks a counter, answered by
// halo (countAnswered now measures its heads for bytes_in/bytes_out):
// still no allocation once warm.
func TestTrackedDenyAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	r := newForwardRigConfig(t, `defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s, http-request: 5s}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    stick-table: type ip size 100k expire 30s store http_req_cnt,http_err_cnt,bytes_in_rate(10s),bytes_out_rate(10s)
    http-request:
      - track-sc0 src
      - 'deny if { path_beg /v3 }'
    default_backend: be
backends:
  be:
    servers: [{name: a, address: "{{a}}"}]
`)
	deny := func() {
		ctx := r.ctx
		ctx.Request.Reset()
		ctx.Request.SetRequestURI("/v3/auth/tokens")
		ctx.Request.Header.SetHost("keystone.example")
		ctx.Request.URI()
		ctx.Response.Reset()
		r.fe.handleHTTP(ctx)
		if ctx.Response.StatusCode() != 403 {
			t.Fatalf("status %d", ctx.Response.StatusCode())
		}
	}
	for range 10 {
		deny()
	}
	if n := testing.AllocsPerRun(500, deny); n != 0 {
		t.Fatalf("a tracked deny allocates %.1f times per request, want 0", n)
	}
}
