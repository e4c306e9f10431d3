package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

var haloBin string

// currentCase names the case running, for the recorder's report.
var currentCase atomic.Value

func TestMain(m *testing.M) {
	currentCase.Store("")
	testnet.MainWithBinary(m, "../cmd/halo", &haloBin)
}

// outcome is what one case did through one proxy.
type outcome struct {
	statuses []int // final statuses, with 100 for each interim 100 Continue
	fromRec  int   // responses that came from the backend
	forward  int   // requests the backend answered
}

// proxyProc is a proxy process the corpus runs through; exited is closed
// when it ends, so that a crash during a case is seen at once.
type proxyProc struct {
	name   string
	exited chan struct{}
}

func (p *proxyProc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// startProxy runs cmd until the test ends and waits for addr to listen.
func startProxy(t *testing.T, addr string, cmd *exec.Cmd) *proxyProc {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proxyProc{name: filepath.Base(cmd.Path), exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("%s stderr:\n%s", p.name, stderr.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if !p.alive() {
			t.Fatalf("%s exited before listening", p.name)
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s", cmd.Path, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startHalo(t *testing.T, backend string) (string, *proxyProc) {
	addr := "127.0.0.1:" + strconv.Itoa(testnet.FreePort(t))
	cfg := filepath.Join(t.TempDir(), "halo.yaml")
	yaml := fmt.Sprintf(`defaults: {mode: http, timeout: {connect: 1s, client: 2s, server: 2s, http-request: 2s}}
frontends:
  fe: {bind: [%q], default_backend: rec}
backends:
  rec: {servers: [{name: rec, address: %q}]}
`, addr, backend)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return addr, startProxy(t, addr, exec.Command(haloBin, "run", "-c", cfg))
}

func startHAProxy(t *testing.T, backend string) (string, *proxyProc) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		testnet.SkipOrFail(t, "haproxy is not installed (scripts/install-deps installs it)")
	}
	addr := "127.0.0.1:" + strconv.Itoa(testnet.FreePort(t))
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	text := fmt.Sprintf(`global
    maxconn 1000
defaults
    mode http
    timeout connect 1s
    timeout client 2s
    timeout server 2s
    timeout http-request 2s
frontend fe
    bind %s
    default_backend rec
backend rec
    server rec %s
`, addr, backend)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return addr, startProxy(t, addr, exec.Command(bin, "-db", "-f", cfg))
}

// send runs one case: the payload in one write, the write side shut, then
// every response read until the proxy closes or goes quiet.
func send(t *testing.T, addr string, payload []byte) (statuses []int, fromRec int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(payload); err != nil {
		return nil, 0
	}
	c.(*net.TCPConn).CloseWrite()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	br := bufio.NewReader(c)
	for {
		st, rec, err := readResponse(br)
		if err != nil {
			return statuses, fromRec
		}
		statuses = append(statuses, st)
		if rec {
			fromRec++
		}
	}
}

// readResponse reads one response: status line, fields, and a body framed
// by Content-Length or chunked (the proxies send nothing else).
func readResponse(br *bufio.Reader) (status int, fromRec bool, err error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return 0, false, err
	}
	parts := strings.SplitN(strings.TrimRight(line, "\r\n"), " ", 3)
	if len(parts) < 2 {
		return 0, false, fmt.Errorf("status line %q", line)
	}
	if status, err = strconv.Atoi(parts[1]); err != nil {
		return 0, false, err
	}
	cl, chunked := 0, false
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return 0, false, err
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			break
		}
		k, v, _ := strings.Cut(l, ":")
		v = strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "content-length":
			cl, _ = strconv.Atoi(v)
		case "transfer-encoding":
			chunked = true
		case "x-rec":
			fromRec = true
		}
	}
	if status < 200 {
		return status, false, nil
	}
	if chunked {
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return 0, false, err
			}
			n, _ := strconv.ParseInt(strings.TrimRight(l, "\r\n"), 16, 32)
			if _, err := br.Discard(int(n) + 2); err != nil {
				return 0, false, err
			}
			if n == 0 {
				break
			}
		}
	} else if _, err := br.Discard(cl); err != nil {
		return 0, false, err
	}
	return status, fromRec, nil
}

// runCorpus sends every case through the proxy at addr, one at a time so
// that each backend request is attributed to its case.
func runCorpus(t *testing.T, cases []corpusCase, addr string, rec *recorder, proc *proxyProc) map[string]outcome {
	out := map[string]outcome{}
	for _, c := range cases {
		currentCase.Store(c.name)
		before := rec.count()
		st, fromRec := send(t, addr, c.payload)
		// A request the proxy forwarded but did not wait for (a client
		// that half-closed) may still be reaching the backend.
		time.Sleep(5 * time.Millisecond)
		out[c.name] = outcome{statuses: st, fromRec: fromRec, forward: rec.count() - before}
		if !proc.alive() {
			t.Fatalf("%s exited during case %s", proc.name, c.name)
		}
	}
	currentCase.Store("")
	return out
}

// checkFraming frames everything the backend received with every framer
// and reports, through report, where one reads it differently from the
// strict one.
func checkFraming(report func(format string, args ...any), proxy string, rec *recorder) (disagreements int) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i, conn := range rec.conns {
		strict := framers[0].frame(conn.data)
		for _, fr := range framers[1:] {
			if f := fr.frame(conn.data); !f.equal(strict) {
				disagreements++
				report("%s: backend connection %d (cases %v): framer %s reads %v, strict reads %v\n%q",
					proxy, i, conn.cases, fr.name, f, strict, conn.data)
			}
		}
	}
	return disagreements
}

func tally(cases []corpusCase, out map[string]outcome) string {
	byStatus := map[int]int{}
	forwarded, rejected, splits := 0, 0, 0
	for _, c := range cases {
		o := out[c.name]
		if o.forward > 0 {
			forwarded++
		}
		if o.forward > o.fromRec {
			splits++
		}
		for _, s := range o.statuses {
			if s >= 400 {
				byStatus[s]++
				rejected++
				break
			}
		}
	}
	var ks []int
	for k := range byStatus {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	var b strings.Builder
	fmt.Fprintf(&b, "%d cases: %d forwarded, %d refused by the proxy (", len(cases), forwarded, rejected)
	for i, k := range ks {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d: %d", k, byStatus[k])
	}
	fmt.Fprintf(&b, "), %d splits", splits)
	return b.String()
}

func TestRequestCorpus(t *testing.T) {
	cases := loadCorpus(t, "testdata/requests.corpus")
	if len(cases) < 150 {
		t.Fatalf("the corpus has %d cases; it must keep at least 150", len(cases))
	}

	rec := startRecorder(t)
	addr, proc := startHalo(t, rec.addr())
	halo := runCorpus(t, cases, addr, rec, proc)
	for _, c := range cases {
		o := halo[c.name]
		if fmt.Sprint(o.statuses) != fmt.Sprint(c.statuses) || o.forward != c.forward {
			t.Errorf("testdata/requests.corpus:%d: %s: got statuses %v with %d forwarded, want %v with %d",
				c.line, c.name, o.statuses, o.forward, c.statuses, c.forward)
		}
		if o.forward > o.fromRec {
			t.Errorf("%s: split: the backend framed %d requests, the client got %d of its responses", c.name, o.forward, o.fromRec)
		}
	}
	haloDis := checkFraming(t.Errorf, "halo", rec)
	checkForwarded(t, rec)
	t.Logf("halo:    %s, %d framing disagreements", tally(cases, halo), haloDis)

	hrec := startRecorder(t)
	haddr, hproc := startHAProxy(t, hrec.addr())
	ha := runCorpus(t, cases, haddr, hrec, hproc)
	// HAProxy is the reference, not under test: its disagreements are
	// counted and shown with -v, not failed.
	haDis := checkFraming(t.Logf, "haproxy", hrec)
	t.Logf("haproxy: %s, %d framing disagreements", tally(cases, ha), haDis)

	// Where halo lets through what HAProxy refuses, the docs must say why.
	doc, err := os.ReadFile("../docs/http-conformance.md")
	if err != nil {
		t.Fatal(err)
	}
	var lenient []string
	for _, c := range cases {
		h, a := halo[c.name], ha[c.name]
		if h.forward > 0 && a.forward == 0 {
			lenient = append(lenient, c.name)
			if !bytes.Contains(doc, []byte("`"+c.name+"`")) {
				t.Errorf("%s: halo forwards it, HAProxy %v does not: docs/http-conformance.md must justify it", c.name, a.statuses)
			}
		}
	}
	var stricter []string
	for _, c := range cases {
		h, a := halo[c.name], ha[c.name]
		if h.forward == 0 && a.forward > 0 {
			stricter = append(stricter, c.name)
		}
	}
	t.Logf("halo more lenient than HAProxy (%d): %v", len(lenient), lenient)
	t.Logf("halo stricter than HAProxy (%d): %v", len(stricter), stricter)
}

// Nothing halo sends a server may carry what the client's request had only
// as a hop-by-hop field, nor anything halo invented.
var neverForwarded = []string{"content-type: application/octet-stream", "authorization:", "x-secret:", "http2-settings:",
	"upgrade:", "expect:", "keep-alive:", "proxy-connection:", "te:", "trailer:", "x-checksum:"}

// checkForwarded holds every request halo sent the backend to halo's
// promises: request lines in origin-form (or "*") and HTTP/1.1, and none
// of neverForwarded.
func checkForwarded(t *testing.T, rec *recorder) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, conn := range rec.conns {
		f := framers[0].frame(conn.data)
		start := 0
		for k, end := range f.ends {
			req := conn.data[start:end]
			start = end
			line, _, _ := bytes.Cut(req, []byte("\r\n"))
			parts := bytes.Split(line, []byte(" "))
			if len(parts) != 3 || string(parts[2]) != "HTTP/1.1" || parts[1][0] != '/' && string(parts[1]) != "*" {
				t.Errorf("case %s: halo sent request line %q", conn.cases[k], line)
			}
			head, _, _ := bytes.Cut(req, []byte("\r\n\r\n"))
			for _, bad := range neverForwarded {
				if bytes.Contains(bytes.ToLower(head), []byte("\r\n"+bad)) {
					t.Errorf("case %s: halo sent %q\n%q", conn.cases[k], bad, head)
				}
			}
		}
	}
}
