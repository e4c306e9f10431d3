package proxy

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
	"golang.org/x/sys/unix"
)

// oneBindConfig is frontend fe with the given bind entry in front of one
// TCP server a.
func oneBindConfig(bind string) string {
	return `
defaults: {timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: [` + bind + `], default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`
}

func listenerOf(p *Proxy) *listener { return p.Snapshot().frontendsByName["fe"].listeners[0] }

func answers(addr string) bool {
	name, err := tcpAsk(addr)
	return err == nil && name == "a"
}

// A reload keeps the socket of a bind whose address and socket options
// are unchanged, and opens a new one, on the same port, when an option
// changed; the frontend answers throughout and the old socket is closed.
func TestListenerKeptUnlessSocketOptionsChange(t *testing.T) {
	a := startTCPBackend(t, "a")
	addr := testnet.FreeAddr(t)
	plain := oneBindConfig(`"` + addr + `"`)
	p := startProxy(t, plain, a)
	first := listenerOf(p)
	if err := p.Apply(parseConfig(t, oneBindConfig(`{address: "`+addr+`"}`), a)); err != nil {
		t.Fatal(err)
	}
	if listenerOf(p) != first {
		t.Fatal("the same bind written as a mapping got a new socket")
	}
	if err := p.Apply(parseConfig(t, oneBindConfig(`{address: "`+addr+`", freebind: true}`), a)); err != nil {
		t.Fatal(err)
	}
	second := listenerOf(p)
	if second == first {
		t.Fatal("freebind changed but the socket was kept")
	}
	if !first.closed.Load() {
		t.Error("the old socket is still open")
	}
	if !answers(addr) {
		t.Fatal("no answer on the new socket")
	}
	if err := p.Apply(parseConfig(t, oneBindConfig(`{address: "`+addr+`", freebind: true}`), a)); err != nil {
		t.Fatal(err)
	}
	if listenerOf(p) != second {
		t.Fatal("an unchanged reload replaced the socket")
	}
}

// "*:PORT" takes IPv4 only, as in HAProxy; "[::]:PORT" takes IPv4 too,
// unless v6only.
func TestWildcardFamilies(t *testing.T) {
	a := startTCPBackend(t, "a")
	for _, tc := range []struct {
		bind       string
		ipv4, ipv6 bool
	}{
		{`"*:0"`, true, false},
		{`"[::]:0"`, true, true},
		{`{address: "[::]:0", v4v6: true}`, true, true},
		{`{address: "[::]:0", v6only: true}`, false, true},
	} {
		t.Run(tc.bind, func(t *testing.T) {
			p := startProxy(t, oneBindConfig(tc.bind), a)
			_, port, _ := net.SplitHostPort(frontendAddr(t, p, "fe"))
			if got := answers("127.0.0.1:" + port); got != tc.ipv4 {
				t.Errorf("IPv4 client answered: %v, want %v", got, tc.ipv4)
			}
			if got := answers("[::1]:" + port); got != tc.ipv6 {
				t.Errorf("IPv6 client answered: %v, want %v", got, tc.ipv6)
			}
		})
	}
}

// freebind binds an address that no interface has (yet), as a standby
// node binds a VIP; without it the bind fails and the reload with it.
// transparent does the same for an address held elsewhere (root only).
// No traffic goes to these documentation addresses: only bind() runs.
func TestNonLocalBinds(t *testing.T) {
	a := startTCPBackend(t, "a")
	p := startProxy(t, oneBindConfig(`"127.0.0.1:0"`), a)
	err := p.Apply(parseConfig(t, oneBindConfig(`"192.0.2.10:5000"`), a))
	if err == nil || !strings.Contains(err.Error(), "binding 192.0.2.10:5000") {
		t.Fatalf("binding a non-local address without freebind: %v, want a bind error", err)
	}
	if !answers(frontendAddr(t, p, "fe")) {
		t.Fatal("the failed reload stopped the running frontend")
	}
	if err := p.Apply(parseConfig(t, oneBindConfig(`{address: "192.0.2.10:5000", freebind: true}`), a)); err != nil {
		t.Fatalf("freebind: %v", err)
	}
	if got := frontendAddr(t, p, "fe"); got != "192.0.2.10:5000" {
		t.Fatalf("bound %s", got)
	}
	t.Run("transparent", func(t *testing.T) {
		testnet.NeedRoot(t, "IP_TRANSPARENT")
		if err := p.Apply(parseConfig(t, oneBindConfig(`{address: "192.0.2.11:5000", transparent: true}`), a)); err != nil {
			t.Fatalf("transparent: %v", err)
		}
		if v := sockoptInt(t, listenerOf(p), unix.SOL_IP, unix.IP_TRANSPARENT); v != 1 {
			t.Fatalf("IP_TRANSPARENT = %d on the socket", v)
		}
	})
}

// interface binds to one network interface; a name the host does not have
// fails the reload, naming it.
func TestInterfaceBind(t *testing.T) {
	testnet.NeedRoot(t, "SO_BINDTODEVICE")
	a := startTCPBackend(t, "a")
	p := startProxy(t, oneBindConfig(`{address: "127.0.0.1:0", interface: lo}`), a)
	l := listenerOf(p)
	raw, err := l.ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var dev string
	raw.Control(func(fd uintptr) { dev, err = unix.GetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE) })
	if err != nil || dev != "lo" {
		t.Fatalf("SO_BINDTODEVICE = %q, %v", dev, err)
	}
	if !answers(frontendAddr(t, p, "fe")) {
		t.Fatal("no answer on lo")
	}
	err = p.Apply(parseConfig(t, oneBindConfig(`{address: "127.0.0.1:0", interface: nosuch0}`), a))
	if err == nil || !strings.Contains(err.Error(), "interface nosuch0") {
		t.Fatalf("binding to a missing interface: %v", err)
	}
}

func sockoptInt(t *testing.T, l *listener, level, opt int) int {
	t.Helper()
	raw, err := l.ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var serr error
	raw.Control(func(fd uintptr) { v, serr = unix.GetsockoptInt(int(fd), level, opt) })
	if serr != nil {
		t.Fatal(serr)
	}
	return v
}

// Reloads that fail on a later bind, while they change the socket options
// of a running one (so that its new socket would share the port through
// SO_REUSEPORT), lose no connection of the running configuration: no new
// socket listens until every one can be bound. Before, a new socket
// listened, took connections and was closed again: 27 of 1,493 connections
// failed over 300 such reloads.
func TestFailedReloadLosesNoConnection(t *testing.T) {
	l := startTCPBackend(t, "l")
	addr := testnet.FreeAddr(t)
	blocker, err := net.Listen("tcp", "127.0.0.1:0") // no SO_REUSEPORT: binding its port fails
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	good := `
defaults: {timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "` + addr + `", default_backend: lines}
backends:
  lines: {servers: [{name: l, address: "{{l}}"}]}
`
	bad := strings.Replace(good, `fe: {bind: "`+addr+`",`, `fe: {bind: [{address: "`+addr+`", freebind: true}],`, 1)
	bad = strings.Replace(bad, "backends:", "  zz: {bind: \""+blocker.Addr().String()+"\", default_backend: lines}\nbackends:", 1)
	p := startProxy(t, good, l)
	badCfg := parseConfig(t, bad, l)
	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if name, err := tcpAsk(addr); err == nil && name == "l" {
					ok.Add(1)
				} else {
					failed.Add(1)
				}
			}
		}()
	}
	for range 300 {
		if err := p.Apply(badCfg); err == nil || !strings.Contains(err.Error(), "frontend zz: binding "+blocker.Addr().String()) {
			t.Fatalf("reload with a bind in use: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d connections answered, %d failed, over 300 failed reloads", ok.Load(), failed.Load())
	if failed.Load() > 0 || ok.Load() == 0 {
		t.Fatalf("%d connections failed (%d answered) while only failed reloads happened", failed.Load(), ok.Load())
	}
}

// A specific address and a wildcard on the same port, in two frontends,
// both bind (SO_REUSEPORT), and the kernel gives each connection to the
// most specific one, as with HAProxy.
func TestSpecificAddressBesideWildcard(t *testing.T) {
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	_, port, _ := net.SplitHostPort(testnet.FreeAddr(t))
	startProxy(t, `
defaults: {timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  any: {bind: "*:`+port+`", default_backend: all}
  one: {bind: "127.0.0.1:`+port+`", default_backend: local}
backends:
  all: {servers: [{name: a, address: "{{a}}"}]}
  local: {servers: [{name: b, address: "{{b}}"}]}
`, a, b)
	for range 5 {
		if name, err := tcpAsk("127.0.0.1:" + port); err != nil || name != "b" {
			t.Fatalf("127.0.0.1: %q, %v; want the specific bind's b", name, err)
		}
		if name, err := tcpAsk("127.0.0.2:" + port); err != nil || name != "a" {
			t.Fatalf("127.0.0.2: %q, %v; want the wildcard's a", name, err)
		}
	}
}
