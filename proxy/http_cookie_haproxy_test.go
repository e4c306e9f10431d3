package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/internal/testnet"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// cookieExchange is what the differential test compares of one response.
type cookieExchange struct {
	server    string
	setCookie []string // the Set-Cookie values, in order
	cache     []string // the Cache-Control values
	seen      string   // the Cookie field the server got
}

// rawCookieGet sends one request on a fresh connection, so that both
// proxies balance it the same way, and reads the response as written.
func rawCookieGet(t *testing.T, addr, method, path, cookie string) cookieExchange {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	req := method + " " + path + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: 0\r\n"
	if cookie != "" {
		req += "Cookie: " + cookie + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var ex cookieExchange
	for first := true; ; first = false {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the response head: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		if first {
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "set-cookie":
			ex.setCookie = append(ex.setCookie, value)
		case "cache-control":
			ex.cache = append(ex.cache, value)
		case "x-seen-cookie":
			ex.seen = value
		}
	}
	body, _ := io.ReadAll(br)
	ex.server = string(body)
	return ex
}

// The requests of the differential test: no cookie, a valid one, an
// unknown one, a server setting its own, a POST, and prefix's form.
var cookieRequests = []struct{ method, path, cookie string }{
	{"GET", "/", ""},
	{"GET", "/", "SRV=c1"},
	{"GET", "/", "a=1; SRV=nope"},
	{"GET", "/?lm=1", ""},
	{"GET", "/?lm=1&cc=max-age%3D60", "SRV=c1"},
	{"GET", "/?cc=public", "SRV=c9"},
	{"GET", "/?lm=1&cc=no-cache", ""},
	{"GET", "/?set=SRV%3Dapp%3B%20Path%3D%2F", "SRV=c2"},
	{"POST", "/", ""},
	{"GET", "/?set=SRV%3Dapp", "x=1; SRV=c1~orig; y=2"},
	{"GET", "/", "SRV=c2|<1h ago>"},
	{"GET", "/", "SRV=c2|<now>|<3h ago>"},
	{"GET", "/", "SRV=c1|<now>|<1h ago>"},
}

// withDates writes the dates a request's cookie names.
func withDates(cookie string) string {
	now := time.Now().Unix()
	for _, d := range []struct {
		name string
		ago  int64
	}{{"<now>", 0}, {"<1h ago>", 3600}, {"<3h ago>", 3 * 3600}} {
		cookie = strings.ReplaceAll(cookie, d.name, string(appendCookieDate(nil, (now-d.ago)>>2)))
	}
	return cookie
}

var cookieDateRE = regexp.MustCompile(`\|([A-Za-z0-9+/]{5})`)

// undated checks the dates a cookie carries (within 8 s of now or of a
// date withDates wrote, HAProxy's resolution being 4 s) and replaces them
// with <date>.
func undated(t *testing.T, s string) string {
	t.Helper()
	return cookieDateRE.ReplaceAllStringFunc(s, func(m string) string {
		d := cookieDate([]byte(m[1:])) << 2
		now := time.Now().Unix()
		near := func(at int64) bool { return d >= at-8 && d <= at+8 }
		if !near(now) && !near(now-3600) && !near(now-3*3600) { // the dates withDates writes
			t.Errorf("cookie date %s is %d, now is %d", m[1:], d, now)
		}
		return "|<date>"
	})
}

// haloTerm reads the server and termination state with cookie letters
// of halo's httplog line.
var haloTerm = regexp.MustCompile(`/(\S+) \S+ \d+ \d+ - - (\S{4}) `)

// HAProxy 2.6 and halo, with the same cookie line and servers, send the
// same requests to the same servers, set the same cookies (text and
// order), pass the servers the same Cookie field and log the same cookie
// letters.
func TestCookieMatchesHAProxy(t *testing.T) {
	s1, s2 := startCookieBackend(t, "s1"), startCookieBackend(t, "s2")
	for _, line := range []string{
		"SRV insert indirect nocache",
		"SRV insert",
		"SRV insert postonly httponly secure domain .example.com attr SameSite=Lax",
		"SRV insert indirect preserve",
		"SRV prefix",
		"SRV rewrite",
		"SRV",
		"SRV insert indirect maxidle 30m maxlife 2h",
	} {
		t.Run(line, func(t *testing.T) {
			logs := newHAProxyLog(t)
			hp := testnet.FreeAddr(t)
			startHAProxy(t, fmt.Sprintf(`global
  maxconn 100
  log %s format raw local0
defaults
  mode http
  log global
  log-format "%%s %%tsc"
  timeout connect 1s
  timeout client 5s
  timeout server 5s
listen fe
  bind %s
  balance roundrobin
  cookie %s
  server s1 %s cookie c1
  server s2 %s cookie c2
`, logs.conn.LocalAddr(), hp, line, s1.addr, s2.addr), hp)
			core, haloLogs := observer.New(zap.InfoLevel)
			p := New(zap.New(core))
			if err := p.Apply(parseConfig(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
listen:
  fe:
    bind: "127.0.0.1:0"
    option: {httplog: true}
    cookie: "`+line+`"
    servers:
      - {name: s1, address: "{{s1}}", cookie: c1}
      - {name: s2, address: "{{s2}}", cookie: c2}
`, s1, s2)); err != nil {
				t.Fatal(err)
			}
			defer p.Shutdown(t.Context())
			halo := frontendAddr(t, p, "fe")
			var want, got []string
			for _, r := range cookieRequests {
				h := rawCookieGet(t, hp, r.method, r.path, withDates(r.cookie))
				g := rawCookieGet(t, halo, r.method, r.path, withDates(r.cookie))
				want = append(want, undated(t, fmt.Sprintf("%s %s %q: %+v", r.method, r.path, r.cookie, h)))
				got = append(got, undated(t, fmt.Sprintf("%s %s %q: %+v", r.method, r.path, r.cookie, g)))
			}
			waitFor(t, 3*time.Second, "haproxy's log lines", func() bool { return strings.Count(logs.String(), "\n") >= len(cookieRequests) })
			var hpLines []string
			for _, l := range strings.Split(logs.String(), "\n") {
				if !strings.HasPrefix(l, "<NOSRV>") { // startHAProxy's probe of the port
					hpLines = append(hpLines, l)
				}
			}
			want = append(want, "log: "+strings.Join(hpLines, "\n"))
			var haloLines []string
			waitFor(t, 3*time.Second, "halo's log lines", func() bool { return haloLogs.Len() >= len(cookieRequests) })
			for _, e := range haloLogs.All() {
				if m := haloTerm.FindStringSubmatch(e.Message); m != nil {
					haloLines = append(haloLines, m[1]+" "+m[2])
				}
			}
			got = append(got, "log: "+strings.Join(haloLines, "\n"))
			if w, g := strings.Join(want, "\n"), strings.Join(got, "\n"); w != g {
				t.Errorf("halo differs from HAProxy:\n--- haproxy ---\n%s\n--- halo ---\n%s", w, g)
			}
		})
	}
}

// With s1 draining, in maintenance, or in maintenance under option
// persist, HAProxy 2.6 and halo send a client with s1's cookie to the
// same server, set the same cookie and log the same letters.
func TestCookieServerStatesMatchHAProxy(t *testing.T) {
	s1, s2 := startCookieBackend(t, "s1"), startCookieBackend(t, "s2")
	for _, tc := range []struct {
		name, state string
		admin       balancer.Admin
		persist     bool
	}{
		{"drain", "drain", balancer.AdminDrain, false},
		{"maint", "maint", balancer.AdminMaint, false},
		{"maint with option persist", "maint", balancer.AdminMaint, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := newHAProxyLog(t)
			hp := testnet.FreeAddr(t)
			sock := filepath.Join(t.TempDir(), "hp.sock")
			persist := ""
			if tc.persist {
				persist = "  option persist\n"
			}
			startHAProxy(t, fmt.Sprintf(`global
  maxconn 100
  log %s format raw local0
  stats socket %s level admin
defaults
  mode http
  log global
  log-format "%%s %%tsc"
  timeout connect 1s
  timeout client 5s
  timeout server 5s
listen fe
  bind %s
  cookie SRV insert indirect
%s  server s1 %s cookie c1
  server s2 %s cookie c2
`, logs.conn.LocalAddr(), sock, hp, persist, s1.addr, s2.addr), hp)
			c, err := net.Dial("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "set server fe/s1 state %s\n", tc.state)
			io.ReadAll(c)
			c.Close()
			core, haloLogs := observer.New(zap.InfoLevel)
			p := New(zap.New(core))
			if err := p.Apply(parseConfig(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
listen:
  fe:
    bind: "127.0.0.1:0"
    option: {httplog: true, persist: `+fmt.Sprint(tc.persist)+`}
    cookie: SRV insert indirect
    servers:
      - {name: s1, address: "{{s1}}", cookie: c1}
      - {name: s2, address: "{{s2}}", cookie: c2}
`, s1, s2)); err != nil {
				t.Fatal(err)
			}
			defer p.Shutdown(t.Context())
			p.Registry().Lookup("fe", "s1").SetAdmin(tc.admin)
			halo := frontendAddr(t, p, "fe")
			h := rawCookieGet(t, hp, "GET", "/", "SRV=c1")
			g := rawCookieGet(t, halo, "GET", "/", "SRV=c1")
			waitFor(t, 3*time.Second, "haproxy's log line", func() bool { return logs.has(" --") })
			var m []string
			waitFor(t, 3*time.Second, "halo's log line", func() bool {
				for _, e := range haloLogs.All() {
					if m = haloTerm.FindStringSubmatch(e.Message); m != nil {
						return true
					}
				}
				return false
			})
			var hpLine string
			for _, l := range strings.Split(logs.String(), "\n") {
				if !strings.HasPrefix(l, "<NOSRV>") {
					hpLine = l
				}
			}
			want, got := fmt.Sprintf("%+v %s", h, hpLine), fmt.Sprintf("%+v %s %s", g, m[1], m[2])
			t.Logf("haproxy and halo: %s", want)
			if want != got {
				t.Errorf("halo differs from HAProxy:\nhaproxy: %s\nhalo:    %s", want, got)
			}
		})
	}
}
