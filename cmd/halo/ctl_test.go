package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// statsConfig is a frontend with two servers and an admin socket.
func statsConfig(t *testing.T, dir string, port int, servers map[string]string, extra string) string {
	return fmt.Sprintf(`global:
  stats:
    socket:
      - {path: %s/admin.sock, level: admin}
defaults:
  mode: http
  timeout: {connect: 1s, client: 5s, server: 5s}
frontends:
  fe:
    bind: ["127.0.0.1:%d"]
    default_backend: be
backends:
  be:
    servers:
      - {name: s1, address: "%s"}
      - {name: s2, address: "%s"}%s
`, dir, port, servers["s1"], servers["s2"], extra)
}

// ctl runs "halo ctl" with args and returns what it printed.
func ctl(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(haloBin, append([]string{"ctl"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("halo ctl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func statField(t *testing.T, csv, row, col string) string {
	t.Helper()
	lines := strings.Split(csv, "\n")
	header := strings.Split(strings.TrimPrefix(lines[0], "# "), ",")
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) > 1 && f[0]+"/"+f[1] == row {
			for i, h := range header {
				if h == col {
					return f[i]
				}
			}
		}
	}
	t.Fatalf("no %s %s in:\n%s", row, col, csv)
	return ""
}

// TestCtlAndCountersAcrossSIGHUP drives the runtime API with halo ctl (the
// default socket from -c, one-shot and interactive) and checks that a
// SIGHUP reload keeps the counters HAProxy would reset.
func TestCtlAndCountersAcrossSIGHUP(t *testing.T) {
	dir, err := os.MkdirTemp("", "haloctl")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	port := testnet.FreePort(t)
	servers := startBackends(t, "s1", "s2")
	file := filepath.Join(dir, "halo.yaml")
	writeFile(t, file, statsConfig(t, dir, port, servers, ""))
	h := startHalo(t, "run", "-c", file)
	waitUntil(t, 5*time.Second, "the admin socket", func() bool {
		_, err := os.Stat(filepath.Join(dir, "admin.sock"))
		return err == nil
	})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < 8; i++ {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	before := ctl(t, "", "-c", file, "show", "stat")
	if got := statField(t, before, "be/BACKEND", "stot"); got != "8" {
		t.Fatalf("be stot %s after 8 requests", got)
	}
	// The reload adds a server; the counters stay.
	writeFile(t, file, statsConfig(t, dir, port, servers, "\n      - {name: s3, address: \""+servers["s1"]+"\"}"))
	h.cmd.Process.Signal(syscall.SIGHUP)
	waitUntil(t, 5*time.Second, "the reload", func() bool { return strings.Contains(h.stderr.String(), "reloaded") })
	after := ctl(t, "", "-s", filepath.Join(dir, "admin.sock"), "show stat")
	for _, row := range []string{"fe/FRONTEND", "be/BACKEND", "be/s1", "be/s2"} {
		for _, col := range []string{"stot", "bout", "hrsp_2xx", "lbtot"} {
			if b, a := statField(t, before, row, col), statField(t, after, row, col); a != b {
				t.Errorf("%s %s: %s before SIGHUP, %s after", row, col, b, a)
			}
		}
	}
	if got := statField(t, after, "be/s3", "stot"); got != "0" {
		t.Errorf("new server s3 stot %s", got)
	}
	// Interactive: a prompt per command, until the end of input.
	out := ctl(t, "disable server be/s2\nshow servers state be\n", "-c", file)
	if !strings.HasPrefix(out, "> ") || strings.Count(out, "> ") < 3 || !strings.Contains(out, "be 2 s2 127.0.0.1") {
		t.Fatalf("interactive session:\n%s", out)
	}
	if got := statField(t, ctl(t, "", "-c", file, "show stat"), "be/s2", "status"); got != "MAINT" {
		t.Errorf("s2 is %s after disable server, want MAINT", got)
	}
	h.stop(t, syscall.SIGTERM)
	if _, err := os.Stat(filepath.Join(dir, "admin.sock")); !os.IsNotExist(err) {
		t.Errorf("the socket file is still there after halo stopped: %v", err)
	}
}
