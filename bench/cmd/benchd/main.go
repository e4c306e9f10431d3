// Command benchd is the benchmark suite's backend and load client: one small,
// fast program of ours that both proxies forward to, run as a process of its
// own so that its CPU is never charged to the proxy under test.
//
//	benchd serve -http ADDR -bulk ADDR -tcp-source ADDR -openstack ADDR
//	benchd download URL            GET a large body, print bytes and seconds
//	benchd upload URL SIZE         POST SIZE bytes, print bytes and seconds
//	benchd tcp-read ADDR           read a connection to EOF, print bytes and seconds
//	benchd idle URL N              open N keep-alive connections, one request each, hold them
//	benchd drain-udp ADDR          read and drop datagrams (a syslog sink for HAProxy's log lines)
//	benchd openstack-bodies DIR    write -openstack's JSON bodies as files, for nginx to serve
//	benchd openstack-script FILE   write the wrk script of OpenStack clients' requests (bench.OpenStackWrkScript)
//
// Every client subcommand prints one JSON line on stdout so that the runner
// reads its result without scraping.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/halo-lb/halo/bench"
	"github.com/valyala/fasthttp"
)

// chunk is the write and read size of the bulk paths: large enough that the
// client and server cost a few syscalls per MiB and never limit the proxy.
const chunk = 1 << 20

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "download":
		err = needArgs(1, func(a []string) error { return download(a[0]) })
	case "upload":
		err = needArgs(2, func(a []string) error { return upload(a[0], a[1]) })
	case "tcp-read":
		err = needArgs(1, func(a []string) error { return tcpRead(a[0]) })
	case "idle":
		err = needArgs(2, func(a []string) error { return idle(a[0], a[1]) })
	case "drain-udp":
		err = needArgs(1, func(a []string) error { return drainUDP(a[0]) })
	case "openstack-bodies":
		err = needArgs(1, func(a []string) error { return writeOpenStackBodies(a[0]) })
	case "openstack-script":
		err = needArgs(1, func(a []string) error { return os.WriteFile(a[0], []byte(bench.OpenStackWrkScript), 0o644) })
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchd %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: benchd serve|download|upload|tcp-read|idle|drain-udp|openstack-bodies|openstack-script ...")
	os.Exit(2)
}

func needArgs(n int, f func([]string) error) error {
	if len(os.Args)-2 != n {
		usage()
	}
	return f(os.Args[2:])
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	httpAddr := fs.String("http", "", "small-response HTTP server address (fasthttp)")
	bulkAddr := fs.String("bulk", "", "large-body HTTP server address: GET /bytes?n=N, POST any path")
	sourceAddr := fs.String("tcp-source", "", "TCP server that writes -source-bytes to each connection")
	sourceBytes := fs.Int64("source-bytes", 1<<30, "bytes the TCP source writes per connection")
	openstackAddrs := fs.String("openstack", "", "comma-separated OpenStack-like HTTP API server addresses: ~10 headers, JSON bodies of 1-8 KiB by path")
	fs.Parse(args)

	errc := make(chan error, 8)
	for addr := range strings.SplitSeq(*openstackAddrs, ",") {
		if addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		srv := &fasthttp.Server{Handler: serveOpenStack, NoDefaultServerHeader: true, NoDefaultDate: true,
			Concurrency: 1 << 20, Logger: quietLogger{}}
		go func() { errc <- srv.Serve(ln) }()
	}
	if *httpAddr != "" {
		ln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			return err
		}
		body := []byte("hello from benchd\n")
		srv := &fasthttp.Server{
			Handler: func(ctx *fasthttp.RequestCtx) {
				ctx.Response.Header.SetContentTypeBytes(textPlain)
				ctx.Response.SetBodyRaw(body)
			},
			NoDefaultServerHeader: true,
			NoDefaultDate:         true,
			Concurrency:           1 << 20,
			Logger:                quietLogger{},
		}
		go func() { errc <- srv.Serve(ln) }()
	}
	if *bulkAddr != "" {
		ln, err := net.Listen("tcp", *bulkAddr)
		if err != nil {
			return err
		}
		go func() { errc <- http.Serve(ln, http.HandlerFunc(bulk)) }()
	}
	if *sourceAddr != "" {
		ln, err := net.Listen("tcp", *sourceAddr)
		if err != nil {
			return err
		}
		go func() { errc <- acceptLoop(ln, func(c net.Conn) { source(c, *sourceBytes) }) }()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case err := <-errc:
		return err
	case <-sig:
		return nil
	}
}

var textPlain = []byte("text/plain")

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

var zeros = make([]byte, chunk)

// bulk serves GET /bytes?n=N with N zero bytes and answers any other method
// by reading the whole request body and returning its length.
func bulk(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "want /bytes?n=COUNT", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		for n > 0 {
			k := min(n, chunk)
			if _, err := w.Write(zeros[:k]); err != nil {
				return
			}
			n -= k
		}
		return
	}
	n, err := readAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%d\n", n)
}

func readAll(r io.Reader) (int64, error) {
	buf := make([]byte, chunk)
	var n int64
	for {
		k, err := r.Read(buf)
		n += int64(k)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

func acceptLoop(ln net.Listener, handle func(net.Conn)) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go handle(c)
	}
}

func source(c net.Conn, n int64) {
	defer c.Close()
	for n > 0 {
		k := min(n, chunk)
		if _, err := c.Write(zeros[:k]); err != nil {
			return
		}
		n -= k
	}
}

// transfer is what every bulk client subcommand prints.
type transfer struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
}

func report(n int64, start time.Time) error {
	return json.NewEncoder(os.Stdout).Encode(transfer{n, time.Since(start).Seconds()})
}

func download(rawURL string) error {
	start := time.Now()
	resp, err := http.Get(rawURL)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	n, err := readAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return fmt.Errorf("read %d of %d bytes", n, resp.ContentLength)
	}
	return report(n, start)
}

func upload(rawURL, size string) error {
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil {
		return fmt.Errorf("size %q: %w", size, err)
	}
	start := time.Now()
	req, err := http.NewRequest(http.MethodPost, rawURL, io.LimitReader(zeroReader{}, n))
	if err != nil {
		return err
	}
	req.ContentLength = n
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if got, _ := strconv.ParseInt(string(trimNewline(answer)), 10, 64); resp.StatusCode != http.StatusOK || got != n {
		return fmt.Errorf("server answered %s %q after %d bytes were sent", resp.Status, answer, n)
	}
	return report(n, start)
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func tcpRead(addr string) error {
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	n, err := readAll(c)
	if err != nil {
		return err
	}
	return report(n, start)
}

// idle opens n connections to the URL's host, sends one keep-alive request
// on each and reads its response, prints {"open": n}, then holds them until
// stdin closes or a signal arrives.
func idle(rawURL, count string) error {
	n, err := strconv.Atoi(count)
	if err != nil {
		return fmt.Errorf("count %q: %w", count, err)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	req := []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\n\r\n")
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i+1, err)
		}
		conns = append(conns, c)
		if _, err := c.Write(req); err != nil {
			return fmt.Errorf("connection %d: %w", i+1, err)
		}
		resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
		if err != nil {
			return fmt.Errorf("connection %d: %w", i+1, err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return fmt.Errorf("connection %d: %w", i+1, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			return fmt.Errorf("connection %d: status %d, close %v", i+1, resp.StatusCode, resp.Close)
		}
	}
	fmt.Printf("{\"open\": %d}\n", n)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-sig:
	case <-done:
	}
	return nil
}

// drainUDP reads and drops what reaches addr until it is signalled: the
// local syslog sink HAProxy's access lines go to in the scenarios that
// log, run apart from the proxy so that its cost is nobody's.
func drainUDP(addr string) error {
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; c.Close() }()
	buf := make([]byte, 64<<10)
	for {
		if _, _, err := c.ReadFrom(buf); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
	}
}
