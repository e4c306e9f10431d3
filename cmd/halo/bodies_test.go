package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// repeatReader yields n bytes cheaply, so the test measures halo rather
// than the data generator.
type repeatReader struct {
	left int64
	buf  []byte
}

func newRepeatReader(n int64) *repeatReader {
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(i * 31)
	}
	return &repeatReader{left: n, buf: b}
}

// WriteTo writes what is left a whole buffer at a time: io.Copy uses it,
// so the generator's writes are 1 MiB rather than io.Copy's 32 KiB.
func (r *repeatReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for r.left > 0 {
		n, err := w.Write(r.buf[:min(int64(len(r.buf)), r.left)])
		total += int64(n)
		r.left -= int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	n := copy(p, r.buf)
	if int64(n) > r.left {
		n = int(r.left)
	}
	r.left -= int64(n)
	return n, nil
}

// startBulkBackend serves /upload (counts the body) and /download?n=SIZE.
func startBulkBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/upload":
			// Read in 1 MiB blocks (io.Discard's own ReadFrom would
			// read 8 KiB at a time): the test measures halo, not this.
			n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, r.Body, make([]byte, 1<<20))
			fmt.Fprintf(w, "%d %v", n, err)
		case "/download":
			n, _ := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
			w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
			io.Copy(w, newRepeatReader(n))
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// startHTTPHalo runs halo in mode http in front of backend, with extra
// arguments for "halo run", and returns it and its base URL once it listens.
func startHTTPHalo(t *testing.T, backend string, extra ...string) (*haloProc, string) {
	t.Helper()
	port := testnet.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "halo.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
defaults: {mode: http, timeout: {connect: 1s, client: 30s, server: 30s}}
frontends:
  web: {bind: "127.0.0.1:%d", default_backend: app}
backends:
  app: {servers: [{name: bulk, address: %q}]}
`, port, backend))
	h := startHalo(t, append([]string{"run", "-c", cfg}, extra...)...)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitUntil(t, 10*time.Second, "halo to listen", func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return h, base
}

// A 2 GiB upload (sent chunked, as python-glanceclient does, and with a
// Content-Length) and a 2 GiB download through mode http keep halo's peak
// RSS under 128 MiB: bodies stream, they are never buffered whole.
func TestLargeBodiesBoundedRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 6 GiB through halo")
	}
	const size = 2 << 30
	const limit = 128 << 20
	backend := startBulkBackend(t)
	h, base := startHTTPHalo(t, backend)
	pid := h.cmd.Process.Pid
	client := &http.Client{Timeout: 5 * time.Minute}

	for _, chunked := range []bool{true, false} {
		var body io.Reader = newRepeatReader(size)
		if chunked {
			body = struct{ io.Reader }{body}
		}
		req, _ := http.NewRequest("POST", base+"/upload", body)
		if !chunked {
			req.ContentLength = size
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("%d <nil>", int64(size)); string(got) != want {
			t.Fatalf("upload (chunked=%v): server answered %q, want %q", chunked, got, want)
		}
		t.Logf("2 GiB upload (chunked=%v) in %v; halo peak RSS so far %d MiB", chunked, time.Since(start).Round(time.Millisecond), vmHWM(t, pid)>>20)
	}

	start := time.Now()
	resp, err := client.Get(fmt.Sprintf("%s/download?n=%d", base, int64(size)))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("download: %d bytes, %v; want %d", n, err, int64(size))
	}
	peak := vmHWM(t, pid)
	t.Logf("2 GiB download in %v; halo peak RSS %d MiB (VmHWM), limit %d MiB", time.Since(start).Round(time.Millisecond), peak>>20, limit>>20)
	if peak >= limit {
		t.Fatalf("halo peak RSS %d MiB, want under %d MiB", peak>>20, limit>>20)
	}
}

// In mode tcp the payload never passes through halo's user space: Linux
// splices it between the sockets, so the bytes halo moves with read(2)
// and write(2)-like calls (rchar/wchar in /proc/PID/io) stay near zero
// while 512 MiB go through. Mode http, which does copy through user space,
// is the control that shows the measure sees such copies.
func TestL4PayloadBypassesUserSpace(t *testing.T) {
	const size = 512 << 20
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	var received atomic.Int64
	go func() {
		for {
			c, err := sink.Accept()
			if err != nil {
				return
			}
			go func() {
				n, _ := io.Copy(io.Discard, c)
				received.Add(n)
				c.Close()
			}()
		}
	}()
	port := testnet.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "halo.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
defaults: {timeout: {connect: 1s, client: 30s, server: 30s}}
frontends:
  l4: {bind: "127.0.0.1:%d", default_backend: sink}
backends:
  sink: {servers: [{name: s, address: %q}]}
`, port, sink.Addr().String()))
	h := startHalo(t, "run", "-c", cfg)
	pid := h.cmd.Process.Pid
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var c net.Conn
	waitUntil(t, 10*time.Second, "halo to listen", func() bool {
		c, err = net.Dial("tcp", addr)
		return err == nil
	})
	r0, w0 := procIO(t, pid)
	if _, err := io.Copy(c, newRepeatReader(size)); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	io.Copy(io.Discard, c)
	c.Close()
	waitUntil(t, 10*time.Second, "the sink to receive everything", func() bool { return received.Load() == size })
	r1, w1 := procIO(t, pid)
	t.Logf("mode tcp: %d MiB proxied; halo rchar +%d bytes, wchar +%d bytes", size>>20, r1-r0, w1-w0)
	if r1-r0 > 1<<20 || w1-w0 > 1<<20 {
		t.Errorf("mode tcp moved %d/%d bytes through read/write calls for a %d byte payload: not spliced", r1-r0, w1-w0, size)
	}

	// Control: the same measure on mode http, which copies in user space.
	backend := startBulkBackend(t)
	hh, base := startHTTPHalo(t, backend)
	hpid := hh.cmd.Process.Pid
	const httpSize = 64 << 20
	r0, w0 = procIO(t, hpid)
	resp, err := http.Post(base+"/upload", "application/octet-stream", newRepeatReader(httpSize))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	r1, w1 = procIO(t, hpid)
	t.Logf("control, mode http: %d MiB uploaded; halo rchar +%d, wchar +%d", httpSize>>20, r1-r0, w1-w0)
	if r1-r0 < httpSize || w1-w0 < httpSize {
		t.Errorf("control failed: mode http copied %d/%d bytes for %d, so rchar/wchar do not see user-space copies here", r1-r0, w1-w0, httpSize)
	}
}
