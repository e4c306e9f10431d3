package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// mixedServers are the real servers behind halo in the reload and upgrade
// tests: HTTP servers that answer their name (with the X-Gen request
// header they saw echoed as X-Seen-Gen), stream GET /download?bytes=N,
// count the bytes of POST /upload and echo WebSocket messages on /ws; and
// TCP servers that echo each line.
type mixedServers struct {
	http map[string]string // name → address
	tcp  map[string]string
}

// pattern is what downloads and uploads carry: byte i of a stream is
// pattern[i%len(pattern)], so a receiver can check every byte it got
// without holding the stream.
var pattern = func() []byte {
	b := make([]byte, 64<<10+7) // not a power of two: a shifted stream shows
	for i := range b {
		b[i] = byte(i*31 + i>>8)
	}
	return b
}()

// patternReader produces n bytes of pattern.
type patternReader struct{ off, n int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	done := 0
	for done < len(p) {
		i := int((r.off + int64(done)) % int64(len(pattern)))
		done += copy(p[done:], pattern[i:])
	}
	r.off += int64(done)
	return done, nil
}

// checkPattern reads r to its end and returns how many bytes it gave,
// with an error at the first byte that is not the pattern's.
func checkPattern(r io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var off int64
	for {
		n, err := r.Read(buf)
		for i := 0; i < n; {
			j := int((off + int64(i)) % int64(len(pattern)))
			m := min(n-i, len(pattern)-j)
			if string(buf[i:i+m]) != string(pattern[j:j+m]) {
				return off + int64(i), fmt.Errorf("the stream differs from what was sent near byte %d", off+int64(i))
			}
			i += m
		}
		off += int64(n)
		if err == io.EOF {
			return off, nil
		}
		if err != nil {
			return off, err
		}
	}
}

func startMixedServers(t *testing.T, httpNames, tcpNames []string) *mixedServers {
	t.Helper()
	s := &mixedServers{http: map[string]string{}, tcp: map[string]string{}}
	for _, name := range httpNames {
		s.http[name] = startMixedHTTP(t, name)
	}
	for _, name := range tcpNames {
		s.tcp[name] = startLineEcho(t)
	}
	return s
}

func startMixedHTTP(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	hijacked := map[*websocket.Conn]bool{} // http.Server.Close does not close these
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "bytes=N wanted", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		io.Copy(w, &patternReader{n: n})
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := checkPattern(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d", n)
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		mu.Lock()
		hijacked[c] = true
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(hijacked, c)
			mu.Unlock()
			c.Close()
		}()
		for {
			kind, msg, err := c.ReadMessage()
			if err != nil || c.WriteMessage(kind, msg) != nil {
				return
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Seen-Gen", r.Header.Get("X-Gen"))
		io.WriteString(w, name)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		mu.Lock()
		for c := range hijacked {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// startLineEcho serves TCP connections that get each line they send back.
func startLineEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadBytes('\n')
					if err != nil {
						return
					}
					if _, err := c.Write(line); err != nil {
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}
