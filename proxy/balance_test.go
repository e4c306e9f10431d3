package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/balancer"
)

func threeHTTP(t *testing.T) []*testBackend {
	return []*testBackend{startHTTPBackend(t, "a", nil), startHTTPBackend(t, "b", nil), startHTTPBackend(t, "c", nil)}
}

func httpBackendConfig(balance, extra string) string {
	return `
defaults: {mode: http, timeout: {connect: 2s, client: 10s, server: 10s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    balance: ` + balance + `
` + extra + `
    servers:
      - {name: a, address: "{{a}}"}
      - {name: b, address: "{{b}}"}
      - {name: c, address: "{{c}}"}
`
}

func getWith(t *testing.T, url string, header map[string]string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return string(body)
}

// TestHashAlgorithmsKeepAKeyOnOneServer runs each HTTP hashing algorithm
// against three real servers: a key always reaches the same server, keys
// spread over several servers, and a request without the key is balanced
// round robin.
func TestHashAlgorithmsKeepAKeyOnOneServer(t *testing.T) {
	cases := []struct {
		balance string
		request func(k int) (path string, header map[string]string)
		keyless func() (string, map[string]string)
	}{
		{"uri", func(k int) (string, map[string]string) { return fmt.Sprintf("/image/%d?x=%d", k, k*7+1), nil }, nil},
		{"uri depth 2", func(k int) (string, map[string]string) {
			return fmt.Sprintf("/v2/%d/images/%d", k, time.Now().UnixNano()), nil // only /v2/K counts
		}, nil},
		{"url_param tenant", func(k int) (string, map[string]string) {
			return fmt.Sprintf("/servers?tenant=t%d&page=%d", k, time.Now().UnixNano()), nil
		}, func() (string, map[string]string) { return "/servers?page=1", nil }},
		{"hdr(X-Auth-Project) ", func(k int) (string, map[string]string) {
			return "/", map[string]string{"X-Auth-Project": fmt.Sprint("project-", k)}
		}, func() (string, map[string]string) { return "/", nil }},
		{"hdr(Host) use_domain_only", func(k int) (string, map[string]string) {
			// Only the label before the top-level domain counts.
			return "/", map[string]string{"Host": fmt.Sprintf("api%d.tenant%d.example:%d", time.Now().UnixNano()%1000, k, 8000+k)}
		}, nil},
		{"source", func(k int) (string, map[string]string) { return fmt.Sprint("/", k), nil }, nil},
	}
	for _, hashType := range []string{"map-based", "consistent"} {
		for _, tc := range cases {
			t.Run(hashType+"/"+tc.balance, func(t *testing.T) {
				bs := threeHTTP(t)
				p := startProxy(t, httpBackendConfig(tc.balance, "    hash-type: "+hashType), bs...)
				base := "http://" + frontendAddr(t, p, "fe")
				seen := map[string]bool{}
				for k := range 12 {
					path, h := tc.request(k)
					first := getWith(t, base+path, h)
					seen[first] = true
					for range 4 {
						path, h := tc.request(k)
						if got := getWith(t, base+path, h); got != first {
							t.Fatalf("key %d went to %s, then to %s", k, first, got)
						}
					}
				}
				if tc.balance == "source" {
					if len(seen) != 1 {
						t.Fatalf("one client address reached %d servers", len(seen))
					}
				} else if len(seen) < 2 {
					t.Fatalf("12 keys all went to %v", seen)
				}
				if tc.keyless != nil {
					rotation := map[string]bool{}
					for range 3 {
						path, h := tc.keyless()
						rotation[getWith(t, base+path, h)] = true
					}
					if len(rotation) != 3 {
						t.Fatalf("requests without the key reached %v, want all three in turn", rotation)
					}
				}
			})
		}
	}
}

func TestSourceHashInTCPMode(t *testing.T) {
	a, b, c := startTCPBackend(t, "a"), startTCPBackend(t, "b"), startTCPBackend(t, "c")
	p := startProxy(t, `
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    balance: source
    hash-type: consistent
    servers: [{name: a, address: "{{a}}"}, {name: b, address: "{{b}}"}, {name: c, address: "{{c}}"}]
`, a, b, c)
	addr := frontendAddr(t, p, "fe")
	bySource := map[string]string{}
	for _, src := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"} {
		for range 4 {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
			conn, err := d.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(conn, "hi")
			line, err := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSpace(line)
			if prev, ok := bySource[src]; ok && prev != name {
				t.Fatalf("client %s went to %s, then %s", src, prev, name)
			}
			bySource[src] = name
		}
	}
	servers := map[string]bool{}
	for _, s := range bySource {
		servers[s] = true
	}
	if len(servers) < 2 {
		t.Fatalf("six client addresses all went to %v", servers)
	}
}

// holdTCP opens a session through addr and returns the server's name and
// the open connection.
func holdTCP(t *testing.T, addr string) (string, net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintln(conn, "hi")
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("session through %s: %v", addr, err)
	}
	return strings.TrimSpace(line), conn, r
}

func TestFirstFillsServersInOrder(t *testing.T) {
	a, b, c := startTCPBackend(t, "a"), startTCPBackend(t, "b"), startTCPBackend(t, "c")
	p := startProxy(t, `
defaults: {timeout: {connect: 2s, queue: 2s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    balance: first
    default-server: {maxconn: 2}
    servers: [{name: a, address: "{{a}}"}, {name: b, address: "{{b}}"}, {name: c, address: "{{c}}"}]
`, a, b, c)
	addr := frontendAddr(t, p, "fe")
	var got []string
	var conns []net.Conn
	for range 5 {
		name, conn, _ := holdTCP(t, addr)
		got = append(got, name)
		conns = append(conns, conn)
	}
	if fmt.Sprint(got) != "[a a b b c]" {
		t.Fatalf("first filled %v, want [a a b b c]", got)
	}
	conns[0].Close()
	st := p.Registry().Lookup("be", "a")
	waitFor(t, 2*time.Second, "a's slot to free", func() bool { return st.Served() == 1 })
	if name, _, _ := holdTCP(t, addr); name != "a" {
		t.Fatalf("after a session on a ended, the next went to %s, want a", name)
	}
}

func TestAllBackupsShareTheLoad(t *testing.T) {
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprint("allbackups=", all), func(t *testing.T) {
			p1, b1, b2 := startHTTPBackend(t, "p1", nil), startHTTPBackend(t, "b1", nil), startHTTPBackend(t, "b2", nil)
			p := startProxy(t, fmt.Sprintf(`
defaults: {mode: http, timeout: {connect: 2s, client: 10s, server: 10s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    option: {allbackups: %v}
    servers:
      - {name: p1, address: "{{p1}}"}
      - {name: b1, address: "{{b1}}", backup: true}
      - {name: b2, address: "{{b2}}", backup: true, weight: 3}
`, all), p1, b1, b2)
			url := "http://" + frontendAddr(t, p, "fe") + "/"
			ask := func() (string, error) { body, _, err := httpGet(httpClient(), url); return body, err }
			if got := tally(t, ask, 20); got["p1"] != 20 {
				t.Fatalf("primary up: %v", got)
			}
			p.Registry().Lookup("be", "p1").SetAdmin(balancer.AdminMaint)
			got := tally(t, ask, 40)
			want := map[string]int{"b1": 40}
			if all {
				want = map[string]int{"b1": 10, "b2": 30}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("primary in maintenance: %v, want %v", got, want)
			}
		})
	}
}

// TestDrainAndMaint: a draining server keeps its established session but
// gets no new one; in maintenance it gets nothing new either; ready again,
// it takes its share.
func TestDrainAndMaint(t *testing.T) {
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	p := startProxy(t, `
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    balance: leastconn
    servers: [{name: a, address: "{{a}}"}, {name: b, address: "{{b}}"}]
`, a, b)
	addr := frontendAddr(t, p, "fe")
	var held net.Conn
	var heldReader *bufio.Reader
	for held == nil {
		name, conn, r := holdTCP(t, addr)
		if name == "a" {
			held, heldReader = conn, r
		} else {
			conn.Close()
		}
	}
	sa := p.Registry().Lookup("be", "a")
	for _, state := range []balancer.Admin{balancer.AdminDrain, balancer.AdminMaint} {
		sa.SetAdmin(state)
		for range 20 {
			if name, err := tcpAsk(addr); err != nil || name != "b" {
				t.Fatalf("a in %v: new session went to %q (%v), want b", state, name, err)
			}
		}
		fmt.Fprintln(held, "still there?")
		if line, err := heldReader.ReadString('\n'); err != nil || strings.TrimSpace(line) != "a" {
			t.Fatalf("a in %v: the established session answered %q, %v", state, line, err)
		}
	}
	sa.SetAdmin(balancer.AdminReady)
	got := tally(t, func() (string, error) { return tcpAsk(addr) }, 20)
	if got["a"] == 0 {
		t.Fatalf("a ready again: %v", got)
	}
}

// TestSlowStartRampsTraffic: a server back from maintenance with slowstart
// 2s gets a small share at first and its full share after the period.
func TestSlowStartRampsTraffic(t *testing.T) {
	a, b := startHTTPBackend(t, "a", nil), startHTTPBackend(t, "b", nil)
	p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 2s, client: 10s, server: 10s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    default-server: {weight: 100, slowstart: 2s}
    servers: [{name: a, address: "{{a}}"}, {name: b, address: "{{b}}"}]
`, a, b)
	url := "http://" + frontendAddr(t, p, "fe") + "/"
	client := httpClient()
	ask := func() (string, error) { body, _, err := httpGet(client, url); return body, err }
	if got := tally(t, ask, 100); got["a"] != 50 {
		t.Fatalf("before: %v, want 50/50 (no slow start for servers up since start)", got)
	}
	sa := p.Registry().Lookup("be", "a")
	sa.SetAdmin(balancer.AdminMaint)
	sa.SetAdmin(balancer.AdminReady)
	early := tally(t, ask, 100)
	time.Sleep(2200 * time.Millisecond)
	late := tally(t, ask, 100)
	t.Logf("share of a in the first 100 requests after its return: %d%%; after 2.2 s: %d%%", early["a"], late["a"])
	if early["a"] > 20 {
		t.Fatalf("right after its return a took %d of 100 requests, want a small share", early["a"])
	}
	if late["a"] != 50 {
		t.Fatalf("after the slow start a took %d of 100, want 50", late["a"])
	}
}

// TestLeastConnAvoidsTheBusyServer: while one server works on a long
// request, leastconn sends every short one to the other, where roundrobin
// would alternate.
func TestLeastConnAvoidsTheBusyServer(t *testing.T) {
	for _, alg := range []string{"leastconn", "roundrobin"} {
		t.Run(alg, func(t *testing.T) {
			a, b := startBlockingBackend(t, "a"), startBlockingBackend(t, "b")
			p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 2s, client: 10s, server: 10s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    balance: `+alg+`
    servers: [{name: a, address: "{{a}}"}, {name: b, address: "{{b}}"}]
`, a.testBackend, b.testBackend)
			base := "http://" + frontendAddr(t, p, "fe")
			long := getAsync(base+"/?seq=long", true)
			waitFor(t, 2*time.Second, "the long request at a server", func() bool { return a.active.Load()+b.active.Load() == 1 })
			busy, idle := "a", "b"
			if b.active.Load() == 1 {
				busy, idle = "b", "a"
			}
			got := tally(t, func() (string, error) { body, _, err := httpGet(httpClient(), base+"/?seq=short"); return body, err }, 10)
			a.release <- struct{}{}
			b.release <- struct{}{}
			<-long
			if alg == "leastconn" && got[idle] != 10 {
				t.Fatalf("leastconn with %s busy: %v, want all 10 on %s", busy, got, idle)
			}
			if alg == "roundrobin" && got[busy] == 0 {
				t.Fatalf("roundrobin skipped the busy server: %v", got)
			}
		})
	}
}

func TestRuntimeWeight(t *testing.T) {
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	yaml := `
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}", weight: 10}, {name: b, address: "{{b}}", weight: 10}]}
`
	p := startProxy(t, yaml, a, b)
	addr := frontendAddr(t, p, "fe")
	ask := func() (string, error) { return tcpAsk(addr) }
	if err := p.SetWeight("be", "a", 300, true); err != nil { // 300% of 10
		t.Fatal(err)
	}
	if got := tally(t, ask, 40); got["a"] != 30 || got["b"] != 10 {
		t.Fatalf("a at 30, b at 10: %v", got)
	}
	if err := p.SetWeight("be", "a", 0, false); err != nil {
		t.Fatal(err)
	}
	if got := tally(t, ask, 10); got["b"] != 10 {
		t.Fatalf("a at weight 0: %v", got)
	}
	// A reload that leaves a's weight alone keeps the runtime weight.
	if err := p.Apply(parseConfig(t, yaml, a, b)); err != nil {
		t.Fatal(err)
	}
	if got := tally(t, func() (string, error) { return tcpAsk(frontendAddr(t, p, "fe")) }, 10); got["b"] != 10 {
		t.Fatalf("after a reload, a at runtime weight 0: %v", got)
	}
	for _, bad := range []struct {
		be, srv string
		w       int
	}{{"be", "a", 257}, {"be", "nope", 1}, {"nope", "a", 1}} {
		if err := p.SetWeight(bad.be, bad.srv, bad.w, false); err == nil {
			t.Errorf("SetWeight(%s/%s, %d) accepted", bad.be, bad.srv, bad.w)
		}
	}
}
