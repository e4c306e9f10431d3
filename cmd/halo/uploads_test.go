package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"
)

// 16 concurrent 1 GiB uploads through halo in mode http, streamed from a
// generator to a server that discards and counts them, all arrive whole
// while halo's resident memory stays bounded: sampled every 50 ms, it
// never passes rssBound.
//
// The bound, from what halo holds per transfer (proxy/http_forward.go,
// http_server.go): the client connection's read buffer (bufsize + 4 KiB,
// 20 KiB), the 32 KiB chunk a streamed body moves through, and the server
// connection's 16 KiB read and write buffers: under 100 KiB a transfer,
// under 2 MiB for 16, on top of what halo holds before any transfer (the
// Go runtime and its heap, 22 MiB measured). With the runtime's slack
// (the heap may grow to twice what is live before a collection, pools,
// stacks) halo measured 29 MiB at most; 64 MiB leaves room for that and
// is far below what buffering the bodies would cost (16 GiB).
func TestConcurrentLargeUploadsBoundedRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 16 GiB through halo")
	}
	if raceEnabled {
		t.Skip("run without the race detector (scripts/test runs it so): under it the clients take 55 s instead of 15-25 s")
	}
	const uploads = 16
	const size = 1 << 30
	const rssBound = 64 << 20
	backend := startBulkBackend(t)
	h, base := startHTTPHalo(t, backend)
	pid := h.cmd.Process.Pid
	idle := procStatusKB(t, pid, "VmRSS:") << 10

	var peak int64
	stop := make(chan struct{})
	sampled := make(chan int, 1)
	go func() {
		n := 0
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				sampled <- n
				return
			case <-tick.C:
				// Not procStatusKB: its t.Fatal must not run on this
				// goroutine. A failed read (halo died) shows below.
				if rss, err := vmRSS(pid); err == nil {
					peak = max(peak, rss)
					n++
				}
			}
		}
	}()

	start := time.Now()
	var wg sync.WaitGroup
	results := make([]string, uploads)
	for i := range uploads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Half are sent with a Content-Length, half chunked.
			var body io.Reader = newRepeatReader(size)
			if i%2 == 1 {
				body = struct{ io.Reader }{body}
			}
			req, _ := http.NewRequest("POST", base+"/upload", body)
			if i%2 == 0 {
				req.ContentLength = size
			}
			client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := client.Do(req)
			if err != nil {
				results[i] = err.Error()
				return
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results[i] = string(got)
		}()
	}
	cpu0, self0 := procCPU(t, pid), procCPU(t, os.Getpid())
	wg.Wait()
	elapsed := time.Since(start)
	cpu, self := procCPU(t, pid)-cpu0, procCPU(t, os.Getpid())-self0
	close(stop)
	samples := <-sampled
	hwm := vmHWM(t, pid)
	for i, r := range results {
		if want := fmt.Sprintf("%d <nil>", int64(size)); r != want {
			t.Errorf("upload %d (chunked=%v): server answered %q, want %q", i, i%2 == 1, r, want)
		}
	}
	t.Logf("%d uploads of %d MiB in %v (%.0f MiB/s through halo; CPU: halo %v, this process's clients and server %v); halo RSS: %d MiB idle, %d MiB at most in %d samples (VmHWM %d MiB), bound %d MiB",
		uploads, size>>20, elapsed.Round(time.Millisecond), float64(uploads*size)/elapsed.Seconds()/(1<<20), cpu, self,
		idle>>20, peak>>20, samples, hwm>>20, rssBound>>20)
	if peak >= rssBound || hwm >= rssBound {
		t.Errorf("halo's RSS reached %d MiB (VmHWM %d MiB), want under %d MiB", peak>>20, hwm>>20, rssBound>>20)
	}
}
