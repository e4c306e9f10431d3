package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/halo-lb/halo/bench"
	"github.com/halo-lb/halo/internal/testnet"
	"github.com/valyala/fasthttp"
)

// The OpenStack-like answers weigh what their path's API would, carry
// about ten headers, and are valid JSON.
func TestOpenStackAnswers(t *testing.T) {
	for path, size := range map[string]int{"/identity/v3/auth/projects": 1 << 10, "/compute/v2.1/servers/detail": 2 << 10,
		"/image/v2/images?limit=20": 4 << 10, "/network/v2.0/ports": 8 << 10} {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(path)
		serveOpenStack(&ctx)
		body := ctx.Response.Body()
		if len(body) != size {
			t.Errorf("%s: body of %d bytes, want %d", path, len(body), size)
		}
		if !json.Valid(body) {
			t.Errorf("%s: the body is not JSON: %.80q", path, body)
		}
		n := 0
		for range ctx.Response.Header.All() {
			n++
		}
		// Content-Length is written with the head, not kept as a field.
		if n < 9 {
			t.Errorf("%s: %d header fields besides Content-Length, want at least 9", path, n)
		}
		if id := ctx.Response.Header.Peek("x-openstack-request-id"); !bytes.HasPrefix(id, []byte("req-")) || len(id) != 40 {
			t.Errorf("%s: x-openstack-request-id %q", path, id)
		}
	}
}

// wrk with OpenStackWrkScript sends the four APIs' paths with a client's
// headers (a 183-byte token among them) and reports its JSON line.
func TestOpenStackWrkScript(t *testing.T) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		testnet.SkipOrFail(t, "wrk is not installed (bench/setup installs it)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	paths := map[string]int{}
	var token, agent string
	fields := 0
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		paths[string(ctx.Path())]++
		token, agent = string(ctx.Request.Header.Peek("X-Auth-Token")), string(ctx.Request.Header.UserAgent())
		fields = ctx.Request.Header.Len()
		mu.Unlock()
		serveOpenStack(ctx)
	}, Logger: quietLogger{}}
	go srv.Serve(ln)
	defer srv.Shutdown()
	script := filepath.Join(t.TempDir(), "openstack.lua")
	if err := os.WriteFile(script, []byte(bench.OpenStackWrkScript), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(wrk, "-t1", "-c2", "-d1s", "-s", script, "http://"+ln.Addr().String()).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	r, err := bench.ParseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d requests, paths %v, %d header fields, token of %d bytes", r.Requests, paths, fields, len(token))
	if r.StatusErrors != 0 || r.Errors != 0 {
		t.Errorf("wrk: %d status errors, %d socket errors", r.StatusErrors, r.Errors)
	}
	if len(paths) != 4 {
		t.Errorf("paths %v, want the four APIs'", paths)
	}
	if len(token) != 183 || !strings.HasPrefix(agent, "python-keystoneclient") || fields < 8 {
		t.Errorf("token of %d bytes, User-Agent %q, %d fields: not an OpenStack client's request", len(token), agent, fields)
	}
}
