package main

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// startNameServers starts mode tcp servers on 127.0.0.1:0 that answer
// each connection's first line with their name; they are closed, and
// their connections' goroutines waited for, when the test ends.
func startNameServers(t *testing.T, names ...string) map[string]string {
	t.Helper()
	addrs := map[string]string{}
	for _, name := range names {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					c.SetDeadline(time.Now().Add(5 * time.Second))
					if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
						fmt.Fprintf(c, "%s\n", name)
					}
				}()
			}
		}()
		t.Cleanup(func() { ln.Close(); wg.Wait() })
		addrs[name] = ln.Addr().String()
	}
	return addrs
}

// Galera behind a VIP, as the OpenStack guides configure HAProxy, run as
// an operator runs it: "stick on dst" sends clients from many addresses
// to one node over round-robin, and a SIGHUP that rereads a changed file
// (its stick-table line unchanged) keeps the table, so that they all stay
// on that node. The runtime API's show table proves it is the same entry.
func TestStickOnDstSurvivesSIGHUP(t *testing.T) {
	be := startNameServers(t, "a", "b", "c")
	port := testnet.FreePort(t)
	dir := shortTempDir(t)
	sock := filepath.Join(dir, "admin.sock")
	cfgFile := filepath.Join(dir, "halo.yaml")
	config := func(client string) string {
		return fmt.Sprintf(`global:
  stats: {socket: [{path: %q, level: admin}]}
defaults: {mode: tcp, timeout: {connect: 1s, client: %s, server: 10s}}
listen:
  galera:
    bind: "127.0.0.1:%d"
    balance: roundrobin
    stick-table: type ip size 1000
    stick: [on dst]
    servers:
      - {name: a, address: %q}
      - {name: b, address: %q}
      - {name: c, address: %q}
`, sock, client, port, be["a"], be["b"], be["c"])
	}
	writeFile(t, cfgFile, config("10s"))
	h := startHalo(t, "run", "-c", cfgFile)
	vip := fmt.Sprintf("127.0.0.1:%d", port)
	served := func(src string) (string, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp", vip)
		if err != nil {
			return "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write([]byte("who\n")); err != nil {
			return "", err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(line), err
	}
	// The probe is a whole exchange: a session that has its answer has
	// stored its server, while one still dialing would race the clients
	// below for the entry (the last to connect stores, in HAProxy too).
	waitUntil(t, 10*time.Second, "halo to serve", func() bool {
		_, err := socketCommand(sock, "show info")
		_, serr := served("127.0.0.1")
		return err == nil && serr == nil
	})
	sources := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"}
	landAll := func(when string) string {
		t.Helper()
		first := ""
		for _, src := range sources {
			got, err := served(src)
			if err != nil {
				t.Fatalf("%s: client %s: %v", when, src, err)
			}
			if first == "" {
				first = got
			} else if got != first {
				t.Fatalf("%s: client %s went to %s, the first client to %s: stick on dst keeps them together", when, src, got, first)
			}
		}
		return first
	}
	// The entry of the VIP, as show table lists it: its address, key and
	// stored server (no expire: exp=0).
	entry := func() string {
		t.Helper()
		out, err := socketCommand(sock, "show table galera")
		if err != nil {
			t.Fatal(err)
		}
		var rows []string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "0x") {
				rows = append(rows, l)
			}
		}
		if len(rows) != 1 || !strings.Contains(rows[0], " key=127.0.0.1 ") || !strings.Contains(rows[0], " server_id=") {
			t.Fatalf("show table galera: %q, want the VIP's one entry with its server", out)
		}
		return rows[0]
	}
	node := landAll("before the reload")
	before := entry()

	writeFile(t, cfgFile, config("11s")) // a reload that changes something else
	h.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, 10*time.Second, "the reload", func() bool { return strings.Contains(h.stderr.String(), "reloaded") })
	if after := entry(); after != before {
		t.Fatalf("the SIGHUP changed the table's entry from %q to %q", before, after)
	}
	if got := landAll("after the reload"); got != node {
		t.Fatalf("after the SIGHUP the clients went to %s, before it to %s", got, node)
	}
	if after := entry(); after != before {
		t.Fatalf("the clients after the SIGHUP changed the entry from %q to %q", before, after)
	}
	h.stop(t, syscall.SIGTERM)
}
