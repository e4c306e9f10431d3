package convert

import (
	"fmt"
	"strings"
	"testing"
)

// largeConfig is a haproxy.cfg of about n lines: frontends and backends
// of four servers each, with rules, as a big controller's file is.
func largeConfig(n int) []byte {
	var b strings.Builder
	b.WriteString("global\n  maxconn 100000\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 1m\n  timeout server 1m\n")
	for i := 0; b.Len() < n*40; i++ {
		fmt.Fprintf(&b, "frontend fe%d\n  bind 127.0.%d.%d:%d\n  acl api%d path_beg /v%d\n  http-request set-header X-Id %d if api%d\n  use_backend be%d if api%d\n  default_backend be%d\n",
			i, i/250%250, i%250+1, 10000+i%50000, i, i, i, i, i, i, i)
		fmt.Fprintf(&b, "backend be%d\n  balance roundrobin\n  option httpchk GET /health\n", i)
		for s := range 4 {
			fmt.Fprintf(&b, "  server s%d 10.%d.%d.%d:80 check inter 2s rise 2 fall 3\n", s, i/250%250, i%250, s+1)
		}
	}
	return []byte(b.String())
}

// BenchmarkConvert5000Lines: the issue asks for a 5,000-line file in
// under one second.
func BenchmarkConvert5000Lines(b *testing.B) {
	src := largeConfig(5000)
	b.ReportMetric(float64(strings.Count(string(src), "\n")), "lines")
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Convert(src, Options{File: "big.cfg"}); err != nil {
			b.Fatal(err)
		}
	}
}
