package stats

import (
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// bigConfig is 1,000 backends of 3 servers each behind one frontend, as
// a large OpenStack region's balancer might hold.
func bigConfig() string {
	var b strings.Builder
	b.WriteString(`global:
  stats:
    socket:
      - {path: "{{DIR}}/admin.sock", level: admin}
defaults:
  mode: http
  timeout: {connect: 1s, client: 5s, server: 5s}
frontends:
  fe:
    bind: ["127.0.0.1:0"]
    default_backend: be0000
backends:
`)
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&b, "  be%04d:\n    servers:\n", i)
		for j := 0; j < 3; j++ {
			fmt.Fprintf(&b, "      - {name: s%d, address: \"127.0.0.1:%d\"}\n", j, 20000+j)
		}
	}
	return b.String()
}

// BenchmarkShowStat1000x3 is "show stat" over 1,000 backends × 3 servers,
// as the runtime API answers it.
func BenchmarkShowStat1000x3(b *testing.B) {
	r := newRig(b, bigConfig(), nil)
	sess := &session{s: r.s}
	for b.Loop() {
		out := r.s.Exec([]string{"show", "stat"}, 0, sess)
		if len(out) < 1000*4*100 {
			b.Fatalf("show stat answered %d bytes", len(out))
		}
	}
}

// BenchmarkMetrics1000x3 is one scrape of the metrics endpoint over 1,000
// backends × 3 servers.
func BenchmarkMetrics1000x3(b *testing.B) {
	r := newRig(b, bigConfig(), nil)
	var ctx fasthttp.RequestCtx
	for b.Loop() {
		ctx.Response.Reset()
		r.s.serveMetrics(&ctx)
		if ctx.Response.StatusCode() != 200 || len(ctx.Response.Body()) < 1000*3*1000 {
			b.Fatalf("metrics: %d, %d bytes", ctx.Response.StatusCode(), len(ctx.Response.Body()))
		}
	}
}
