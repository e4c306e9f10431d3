package proxy

import (
	"net"
	"strconv"
	"testing"
	"time"
)

// TestCheckAddrAndPort: with addr and port, the health check goes to
// another address than the traffic (OpenStack checks Galera on port 9200
// while traffic goes to 3306): closing the check listener takes the server
// DOWN although its traffic address still answers, and traffic moves to the
// other server.
func TestCheckAddrAndPort(t *testing.T) {
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	checkLn, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("127.0.0.2 is not usable here: %v", err)
	}
	go func() {
		for {
			c, err := checkLn.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	checkPort := checkLn.Addr().(*net.TCPAddr).Port
	p := startProxy(t, `
defaults: {timeout: {connect: 1s, client: 5s, server: 5s, check: 500ms}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    servers:
      - {name: a, address: "{{a}}", check: true, addr: 127.0.0.2, port: `+strconv.Itoa(checkPort)+`, inter: 50ms, fastinter: 20ms, fall: 2}
      - {name: b, address: "{{b}}"}
`, a, b)
	addr := frontendAddr(t, p, "fe")
	st := p.Registry().Lookup("be", "a")
	time.Sleep(200 * time.Millisecond)
	if !st.Up() {
		t.Fatal("a is DOWN while its check address answers")
	}
	checkLn.Close()
	waitFor(t, 2*time.Second, "a marked DOWN by its check address", func() bool { return !st.Up() })
	for range 10 {
		if name, err := tcpAsk(addr); err != nil || name != "b" {
			t.Fatalf("a DOWN: got %q, %v; want b", name, err)
		}
	}
	// a's traffic address is still up: only the check address told.
	if c, err := net.Dial("tcp", a.addr); err != nil {
		t.Fatalf("a's traffic address does not answer: %v", err)
	} else {
		c.Close()
	}
}
