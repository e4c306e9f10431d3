package proxy

import (
	"bytes"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/halo-lb/halo/config"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// linesCore is a log core that takes access lines as bytes, as
// cmd/halo's does: it keeps the last one and counts them.
type linesCore struct {
	zapcore.Core
	n    atomic.Int64
	last []byte
}

func (c *linesCore) WriteAccess(_ zapcore.Level, line []byte) {
	c.last = append(c.last[:0], line...)
	c.n.Add(1)
}

// The realistic request path (issue 18) with option httplog allocates
// nothing: an OpenStack client's request (a 183-byte token, eight header
// fields) to a server answering as an OpenStack API does (ten fields, 2
// KiB of JSON), its access line built and handed to the process's log
// core as bytes. The line through zap cost nine allocations.
func TestLoggedOpenStackRequestAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	body := bytes.Repeat([]byte(`{"id": "5d2c4b6e", "status": "ACTIVE"}, `), 2048/40)
	backend := &fasthttp.Server{NoDefaultServerHeader: true, Handler: func(ctx *fasthttp.RequestCtx) {
		h := &ctx.Response.Header
		h.SetContentType("application/json")
		h.SetServer("Apache/2.4.57 (Debian) mod_wsgi/4.9.4 Python/3.11")
		h.Set("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
		h.Set("x-openstack-request-id", "req-0000002a-2f3c-4d5e-8f9a-0b1c2d3e4f50")
		h.Set("x-compute-request-id", "req-0000002a-2f3c-4d5e-8f9a-0b1c2d3e4f50")
		h.Set("OpenStack-API-Version", "compute 2.1")
		h.Set("X-OpenStack-Nova-API-Version", "2.1")
		h.Set("Cache-Control", "no-cache")
		ctx.SetBody(body)
	}}
	core := &linesCore{Core: zapcore.NewNopCore()}
	yaml := strings.Replace(httpConfig, "option: {forwardfor: true}", "option: {forwardfor: true, httplog: true}", 1)
	r := newLoggedForwardRig(t, func(server string) *config.Config {
		cfg, err := config.Parse("rig.yaml", []byte(strings.ReplaceAll(yaml, "{{a}}", server)))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}, zap.New(core), backend)
	fe, ctx := r.fe, r.ctx
	ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 7), Port: 40000}, nil)
	token := "gAAAAABnX2mQ" + strings.Repeat("k3Yv8Jq0ZtR1wL5pN9sC", 7) + "xZ7bQ2mT4rW6yU8iO0pA5sD7fG9hJ1k"
	forward := func() {
		ctx.Request.Reset()
		ctx.Request.SetRequestURI("/compute/v2.1/servers/detail")
		h := &ctx.Request.Header
		h.SetHost("controller:8774")
		h.SetUserAgent("python-keystoneclient keystoneauth1/5.1.2 python-requests/2.28.1 CPython/3.11.2")
		h.Set("Accept", "application/json")
		h.Set("Accept-Encoding", "gzip, deflate")
		h.Set("X-Auth-Token", token)
		h.Set("OpenStack-API-Version", "compute 2.79")
		h.Set("X-OpenStack-Nova-API-Version", "2.79")
		h.Set("X-OpenStack-Request-ID", "req-0000002a-2f3c-4d5e-8f9a-0b1c2d3e4f50")
		ctx.Request.URI()
		ctx.Response.Reset()
		fe.handleHTTP(ctx)
		if ctx.Response.StatusCode() != 200 || !bytes.Equal(ctx.Response.Body(), body) {
			t.Fatalf("forward: %d, %d bytes", ctx.Response.StatusCode(), len(ctx.Response.Body()))
		}
	}
	for range 10 {
		forward()
	}
	before := core.n.Load()
	if n := testing.AllocsPerRun(500, forward); n != 0 {
		t.Errorf("a logged OpenStack request allocates %.1f times, want 0", n)
	}
	if logged := core.n.Load() - before; logged != 501 {
		t.Errorf("%d access lines for 501 requests", logged)
	}
	line := string(core.last)
	for _, want := range []string{"127.0.0.7:40000 [", "] fe be/a ", " 200 ", ` "GET /compute/v2.1/servers/detail HTTP/1.1"`} {
		if !strings.Contains(line, want) {
			t.Errorf("access line %q lacks %q", line, want)
		}
	}
}

// A client's address is written as net.Addr's String writes it, IPv4,
// IPv4-mapped IPv6, IPv6 and scoped IPv6 alike.
func TestAppendAddrIsString(t *testing.T) {
	for _, a := range []net.Addr{
		&net.TCPAddr{IP: net.IPv4(127, 0, 0, 7), Port: 40000},
		&net.TCPAddr{IP: net.ParseIP("10.1.2.3").To4(), Port: 1},
		&net.TCPAddr{IP: net.ParseIP("::1"), Port: 443},
		&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 8080, Zone: "eth0"},
		&net.TCPAddr{IP: net.ParseIP("2001:db8::ff00:42:8329"), Port: 65535},
		&net.UnixAddr{Name: "/run/halo.sock", Net: "unix"},
	} {
		if got := string(appendAddr(nil, a)); got != a.String() {
			t.Errorf("appendAddr(%v) = %q, want %q", a, got, a.String())
		}
	}
}
