package conformance

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/internal/testnet"
)

// The side-by-side test of halo convert: each haproxy.cfg (the OpenStack
// reference deployments and convert/testdata/configs) has its addresses
// rewritten to loopback, runs in the real HAProxy as it is, and in halo as
// "halo convert" writes it, in front of the same real servers. Every
// frontend gets the same requests through both, each on a new connection,
// and what came back is compared: the status, which server answered, the
// persistence cookie and whether a client holding it stays on its server,
// and the forwarding headers the server saw.

// sideServer is one server of the rewritten file: HTTP, answering with
// the address it stands for in X-Server and what it received in X-Seen-*.
func sideServer(t *testing.T, name string) string {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Server", name)
		for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Proto"} {
			w.Header().Set("X-Seen-"+k, r.Header.Get(k))
		}
		io.WriteString(w, name)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A check of another protocol (mysql-check waits for a greeting) fails
	// when the server closes, within a second, in both proxies.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// rewrite is one rewriting of a file's addresses: binds to ports of this
// proxy, servers (and their check ports) to the test's servers, shared by
// both proxies.
type rewrite struct {
	binds   map[string]string // original bind address -> 127.0.0.1:port
	tls     map[string]bool   // rewritten bind address -> the bind has "ssl"
	servers map[string]string // original server address -> test server
	checks  map[string]string // original check port -> test server's port
	dir     string
	// inGlobal: the line being read is in the global section.
	inGlobal bool
}

var bindLine = regexp.MustCompile(`^(\s*bind\s+)(\S+)(.*)$`)
var serverLine = regexp.MustCompile(`^(\s*server\s+\S+\s+)(\S+)(.*)$`)
var checkPort = regexp.MustCompile(`(\sport\s+)(\d+)`)
var statsSocket = regexp.MustCompile(`^stats\s+socket\s`)

// apply rewrites the file's text; binds are numbered in file order.
func (rw *rewrite) apply(t *testing.T, text string, shared *rewrite) (string, []string) {
	var out, order []string
	for line := range strings.SplitSeq(text, "\n") {
		trimmed := strings.TrimSpace(line)
		word, _, _ := strings.Cut(trimmed, " ")
		if line != "" && line[0] != ' ' && line[0] != '\t' && line[0] != '#' {
			rw.inGlobal = word == "global"
		}
		switch {
		case word == "chroot" || word == "user" || word == "group":
			continue // the test runs both proxies as the user it is
		case word == "maxconn" && rw.inGlobal:
			// HAProxy raises its descriptor limit to twice the global
			// maxconn; the test's limit may be lower.
			if n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(trimmed, "maxconn"))); err == nil && n > 4000 {
				line = "    maxconn 4000"
			}
		case statsSocket.MatchString(trimmed):
			line = fmt.Sprintf("    stats socket %s mode 600 level admin", filepath.Join(rw.dir, "stats.sock"))
		case bindLine.MatchString(line):
			m := bindLine.FindStringSubmatch(line)
			var addrs []string
			for a := range strings.SplitSeq(m[2], ",") {
				if rw.binds[a] == "" {
					rw.binds[a] = "127.0.0.1:" + strconv.Itoa(testnet.FreePort(t))
					order = append(order, a)
				}
				addrs = append(addrs, rw.binds[a])
				rw.tls[rw.binds[a]] = strings.Contains(m[3]+" ", " ssl ")
			}
			line = m[1] + strings.Join(addrs, ",") + m[3]
		case serverLine.MatchString(line):
			m := serverLine.FindStringSubmatch(line)
			if shared.servers[m[2]] == "" {
				shared.servers[m[2]] = sideServer(t, m[2])
			}
			rest := checkPort.ReplaceAllStringFunc(m[3], func(s string) string {
				p := checkPort.FindStringSubmatch(s)
				if shared.checks[p[2]] == "" {
					_, port, _ := net.SplitHostPort(sideServer(t, "check:"+p[2]))
					shared.checks[p[2]] = port
				}
				return p[1] + shared.checks[p[2]]
			})
			line = m[1] + shared.servers[m[2]] + rest
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n"), order
}

// sideAnswer is what one request through one proxy came back with.
type sideAnswer struct {
	status  int
	server  string
	cookie  string // the Set-Cookie name=value of a persistence cookie
	fwdFor  bool   // the server saw X-Forwarded-For
	fwdProt string
	// headers are the other response headers, "Name: value" sorted,
	// less those each proxy writes its own way (framing, dates).
	headers []string
	err     string
}

// ownHeaders are response headers each proxy (or its stats page and error
// pages) writes its own way.
var ownHeaders = map[string]bool{
	"Date": true, "Content-Length": true, "Content-Type": true, "Connection": true, "Keep-Alive": true,
	"Transfer-Encoding": true, "Set-Cookie": true, "X-Server": true, "X-Seen-X-Forwarded-For": true,
	"X-Seen-X-Forwarded-Proto": true, "Cache-Control": true, "Pragma": true, "Expires": true,
	"Last-Modified": true, "Refresh": true, "Vary": true, "Server": true,
}

func (a sideAnswer) String() string {
	if a.err != "" {
		return "error " + a.err
	}
	return fmt.Sprintf("%d server=%q cookie=%q xff=%v xfp=%q headers=%q", a.status, a.server, a.cookie, a.fwdFor, a.fwdProt, a.headers)
}

// sideAsk sends one GET on a new connection, over TLS to a bind with
// "ssl".
func sideAsk(addr, path, cookie string, overTLS bool) sideAnswer {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return sideAnswer{err: "connect refused"}
	}
	defer c.Close()
	if overTLS {
		tc := tls.Client(c, &tls.Config{ServerName: "www.example.org", InsecureSkipVerify: true})
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			return sideAnswer{err: "TLS handshake failed"}
		}
		c = tc
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nHost: www.example.org\r\nConnection: close\r\n"
	if cookie != "" {
		req += "Cookie: " + cookie + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		return sideAnswer{err: "write failed"}
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return sideAnswer{err: "no response"}
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	a := sideAnswer{status: resp.StatusCode, server: resp.Header.Get("X-Server"), fwdProt: resp.Header.Get("X-Seen-X-Forwarded-Proto"), fwdFor: resp.Header.Get("X-Seen-X-Forwarded-For") != ""}
	for _, sc := range resp.Header.Values("Set-Cookie") {
		nv, _, _ := strings.Cut(sc, ";")
		a.cookie = nv
	}
	for k, vs := range resp.Header {
		// halo's stats page refuses to be framed (docs/configuration.md,
		// stats admin): its own headers on a page no server wrote.
		own := a.server == "" && (k == "X-Frame-Options" || k == "Content-Security-Policy")
		if !ownHeaders[k] && !own {
			a.headers = append(a.headers, k+": "+strings.Join(vs, ", "))
		}
	}
	slices.Sort(a.headers)
	return a
}

// sideProbe is every request a frontend gets, and what it says of them:
// the servers six requests for / reached (as a sorted multiset, which a
// round robin's starting point does not change), each other path's
// answer, and whether a client holding the persistence cookie of its
// first answer stays on that server.
func sideProbe(addr string, overTLS bool) []string {
	var out, servers []string
	var first sideAnswer
	for i := range 6 {
		a := sideAsk(addr, "/", "", overTLS)
		if i == 0 {
			first = a
		}
		servers = append(servers, fmt.Sprintf("%d %s", a.status, a.server))
	}
	slices.Sort(servers)
	out = append(out, "GET / x6: "+strings.Join(servers, ", "))
	out = append(out, "GET / first: cookie="+strconv.Quote(first.cookie)+fmt.Sprintf(" xff=%v xfp=%q", first.fwdFor, first.fwdProt))
	if first.cookie != "" {
		stayed := true
		for range 3 {
			stayed = stayed && sideAsk(addr, "/", first.cookie, overTLS).server == first.server
		}
		out = append(out, fmt.Sprintf("with its cookie, stays on its server: %v", stayed))
	}
	for _, p := range []string{"/status", "/admin", "/healthcheck", "/api/v1", "/static/a.css"} {
		a := sideAsk(addr, p, "", overTLS)
		a.cookie = "" // a round robin's choice of server sets it
		if a.server != "" {
			a.server = "(a server)" // which one follows the round robin's position
		}
		out = append(out, "GET "+p+": "+a.String())
	}
	return out
}

// waitUp waits until every frontend answers, or the time is up: one that
// never does (its servers never come up) is compared as it is.
func waitUp(addrs []string, overTLS map[string]bool) {
	deadline := time.Now().Add(6 * time.Second)
	waiting := slices.Clone(addrs)
	for len(waiting) > 0 && time.Now().Before(deadline) {
		// Servers start UP in both proxies, so any answer is the
		// frontend's; checks that fail are waited for below.
		waiting = slices.DeleteFunc(waiting, func(a string) bool { return sideAsk(a, "/", "", overTLS[a]).err == "" })
		time.Sleep(100 * time.Millisecond)
	}
}

// convertDifferences are where a converted file answers otherwise, each for
// a reason halo convert warns about: response headers not compared, and
// binds whose choice of server is random in both proxies.
var convertDifferences = map[string]struct {
	headers []string
	random  []string
}{
	// Line 85, http-after-response (not in halo: convert warns and drops
	// it); app1 balances at random.
	"web-haproxy-basic-edge.cfg": {headers: []string{"Strict-Transport-Security"}, random: []string{"127.0.0.1:20443"}},
}

// withoutHeaders drops the named headers from a probe's lines.
func withoutHeaders(lines []string, names []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		for _, n := range names {
			l = regexp.MustCompile(` ?"`+regexp.QuoteMeta(n)+`: [^"]*"`).ReplaceAllString(l, "")
		}
		out[i] = l
	}
	return out
}

func TestConvertedConfigsBehaveAsHAProxy(t *testing.T) {
	haproxy, err := exec.LookPath("haproxy")
	if err != nil {
		testnet.SkipOrFail(t, "haproxy is not installed (scripts/install-deps installs it)")
	}
	files, _ := filepath.Glob("../../shared/reference/openstack/*.cfg")
	if len(files) == 0 && os.Getenv("HALO_INTEGRATION") == "1" {
		t.Fatal("no reference configurations in ../../shared/reference/openstack")
	}
	more, _ := filepath.Glob("../convert/testdata/configs/*.cfg")
	files = append(files, more...)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			shared := &rewrite{servers: map[string]string{}, checks: map[string]string{}}
			dirH, dirL := t.TempDir(), t.TempDir()
			for _, d := range []string{dirH, dirL} {
				// Relative files of the source (error pages) are
				// found from both proxies' directories.
				entries, _ := os.ReadDir(filepath.Dir(f))
				for _, e := range entries {
					os.Symlink(filepath.Join(must(filepath.Abs(filepath.Dir(f))), e.Name()), filepath.Join(d, e.Name()))
				}
			}
			rwH := &rewrite{binds: map[string]string{}, tls: map[string]bool{}, dir: dirH}
			rwL := &rewrite{binds: map[string]string{}, tls: map[string]bool{}, dir: dirL}
			textH, order := rwH.apply(t, string(src), shared)
			textL, _ := rwL.apply(t, string(src), shared)
			cfgH := filepath.Join(dirH, "haproxy.cfg")
			cfgL := filepath.Join(dirL, "haproxy.cfg")
			yamlL := filepath.Join(dirL, "halo.yaml")
			os.Remove(cfgH)
			os.Remove(cfgL)
			if err := os.WriteFile(cfgH, []byte(textH), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cfgL, []byte(textL), 0o644); err != nil {
				t.Fatal(err)
			}
			conv := exec.Command(haloBin, "convert", "-o", yamlL, cfgL)
			said, err := conv.CombinedOutput()
			if err != nil {
				t.Fatalf("halo convert: %v\n%s", err, said)
			}
			// An address two sections bind: HAProxy spreads its
			// connections between both at random, halo serves it from
			// the first; convert warned, and which servers answer is
			// not compared there.
			spread := map[string]bool{}
			for orig, a := range rwL.binds {
				spread[orig] = strings.Contains(string(said), a+" is bound by")
			}
			first := func(rw *rewrite) string { return rw.binds[order[0]] }
			hcmd := exec.Command(haproxy, "-db", "-f", cfgH)
			hcmd.Dir = dirH
			startProxy(t, first(rwH), hcmd)
			startProxy(t, first(rwL), exec.Command(haloBin, "run", "-c", yamlL))
			var hAddrs, lAddrs []string
			for _, a := range order {
				hAddrs = append(hAddrs, rwH.binds[a])
				lAddrs = append(lAddrs, rwL.binds[a])
			}
			done := make(chan struct{})
			go func() { waitUp(hAddrs, rwH.tls); close(done) }()
			waitUp(lAddrs, rwL.tls)
			<-done
			// Then the checks that fail against the test's servers (they
			// speak HTTP only) have failed in both: the first check of a
			// server starts within its inter, and one failure at start
			// takes it DOWN.
			if otherCheck.MatchString(string(src)) {
				time.Sleep(2*longestInter(string(src)) + time.Second)
			}
			differences := 0
			for i, a := range order {
				known := convertDifferences[filepath.Base(f)]
				h, l := sideProbe(hAddrs[i], rwH.tls[hAddrs[i]]), sideProbe(lAddrs[i], rwL.tls[lAddrs[i]])
				h, l = withoutHeaders(h, known.headers), withoutHeaders(l, known.headers)
				for j := range h {
					if spread[a] && strings.HasPrefix(h[j], "GET / x6") {
						t.Logf("bind %s: bound by two sections in HAProxy (convert warned): servers not compared", a)
						continue
					}
					if slices.Contains(known.random, a) && (strings.HasPrefix(h[j], "GET / x6") || strings.HasPrefix(h[j], "GET / first")) {
						continue // a random balance: which server, and its cookie, differ run to run
					}
					if h[j] != l[j] {
						differences++
						t.Errorf("bind %s: %s\n  haproxy: %s\n  halo:    %s", a, strings.SplitN(h[j], ":", 2)[0], h[j], l[j])
					}
				}
			}
			t.Logf("%d binds compared through both proxies, 12 to 15 requests each, %d differences", len(order), differences)
		})
	}
}

// otherCheck finds checks of another protocol than HTTP or plain TCP.
var otherCheck = regexp.MustCompile(`(?m)^\s*(option\s+(mysql-check|pgsql-check|redis-check|ssl-hello-chk|smtpchk|ldap-check|tcp-check)|tcp-check\s)`)

var interWord = regexp.MustCompile(`\sinter\s+(\S+)`)

// longestInter is the longest "inter" of the file, 2 s (HAProxy's
// default) at least.
func longestInter(text string) time.Duration {
	longest := 2 * time.Second
	for _, m := range interWord.FindAllStringSubmatch(text, -1) {
		if d, err := config.ParseDuration(m[1]); err == nil && d > longest {
			longest = d
		}
	}
	return longest
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
