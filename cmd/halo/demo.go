package main

import (
	"bytes"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"text/template"

	"github.com/halo-lb/halo/config"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

//go:embed demo.yaml.tmpl
var demoTemplate string

type demoServer struct{ Name, Addr string }

type demoParams struct {
	Listen  string
	Servers []demoServer
}

// renderDemo returns the demo configuration for the given addresses.
func renderDemo(p demoParams) ([]byte, error) {
	t, err := template.New("demo").Parse(demoTemplate)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address halo listens on")
	backendPorts := fs.String("backend-ports", "8081,8082,8083", "comma-separated ports of the three demo servers on 127.0.0.1 (0: any free port)")
	printConfig := fs.Bool("print-config", false, "print the demo configuration and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ports := strings.Split(*backendPorts, ",")
	if len(ports) != 3 {
		fmt.Fprintln(stderr, "halo demo: -backend-ports wants three ports, e.g. 8081,8082,8083")
		return 2
	}
	log, closeLog := newLogger("info", stderr)
	defer closeLog()
	params := demoParams{Listen: *listen}
	for i, port := range ports {
		name := "demo-" + strconv.Itoa(i+1)
		if *printConfig {
			params.Servers = append(params.Servers, demoServer{name, "127.0.0.1:" + port})
			continue
		}
		addr, err := startDemoServer(name, "127.0.0.1:"+strings.TrimSpace(port), log)
		if err != nil {
			fmt.Fprintf(stderr, "halo demo: starting %s: %v\n", name, err)
			return 1
		}
		params.Servers = append(params.Servers, demoServer{name, addr})
	}
	yaml, err := renderDemo(params)
	if err != nil {
		fmt.Fprintf(stderr, "halo demo: %v\n", err)
		return 1
	}
	if *printConfig {
		stdout.Write(yaml)
		return 0
	}
	cfg, err := config.Parse("<demo>", yaml)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, `halo demo: three demo servers behind halo, balanced round-robin with health checks.

  servers:  %s (demo-1), %s (demo-2), %s (demo-3)
  halo:     http://%s/

Try:
  for i in 1 2 3 4 5 6; do curl -s http://%s/; done    # each server in turn
  halo demo -print-config                             # the configuration being run
Press Ctrl-C to stop.

`, params.Servers[0].Addr, params.Servers[1].Addr, params.Servers[2].Addr, *listen, *listen)
	reloadDemo := func() (*config.Config, error) { return cfg, nil }
	return serve(log, cfg, reloadDemo, nil)
}

// startDemoServer runs a small HTTP server that says which server answered.
func startDemoServer(name, addr string, log *zap.Logger) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &fasthttp.Server{
		Name: name,
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("text/plain; charset=utf-8")
			fmt.Fprintf(ctx, "served by %s: %s %s from %s\n", name, ctx.Method(), ctx.RequestURI(), ctx.Request.Header.Peek("X-Forwarded-For"))
		},
	}
	go func() {
		if err := srv.Serve(ln); err != nil {
			log.Error("demo server stopped", zap.String("server", name), zap.Error(err))
		}
	}()
	return ln.Addr().String(), nil
}
