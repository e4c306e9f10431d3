package proxy

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A condition that runs past the request's deadline outside the
// http-request rules ends the request as the rules' own do (500, PR--,
// eint) rather than letting it through as if the condition were false:
// the persistence a stick rule, force-persist or ignore-persist asks for
// would be skipped. A monitor fail condition past it fails the check.
func TestPersistenceConditionPastDeadlineAnswers500(t *testing.T) {
	dir := t.TempDir()
	var lst strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&lst, "^(a|aa)+x%d$\n", i)
	}
	if err := os.WriteFile(filepath.Join(dir, "hostile.lst"), []byte(lst.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	const head = `
global: {tune: {bufsize: 1048576}}
defaults: {mode: http, timeout: {connect: 1s, client: 10s, server: 10s, http-request: 500ms}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    default_backend: be
`
	const hostile = `{ hdr(x-h) -m reg -f {{dir}}/hostile.lst }`
	for _, c := range []struct {
		name, cfg string
		want      int
		internal  uint64
	}{
		{"stick on", head + `backends:
  be:
    stick-table: type ip size 1000 expire 30m
    stick: ['on src if ` + hostile + `']
    servers: [{name: a, address: "{{a}}"}]
`, http.StatusInternalServerError, 1},
		{"force-persist", head + `backends:
  be:
    cookie: SRV insert indirect nocache
    force-persist: ['if ` + hostile + `']
    servers: [{name: a, address: "{{a}}", cookie: a}]
`, http.StatusInternalServerError, 1},
		{"ignore-persist", head + `backends:
  be:
    cookie: SRV insert indirect nocache
    ignore-persist: ['if ` + hostile + `']
    servers: [{name: a, address: "{{a}}", cookie: a}]
`, http.StatusInternalServerError, 1},
		{"monitor fail", strings.Replace(head, "    default_backend: be\n", "    default_backend: be\n    monitor-uri: /x\n    monitor: ['fail if "+hostile+"']\n", 1) + `backends:
  be:
    servers: [{name: a, address: "{{a}}"}]
`, http.StatusServiceUnavailable, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := startHTTPBackend(t, "a", nil)
			p := startProxy(t, strings.ReplaceAll(c.cfg, "{{dir}}", dir), a)
			fe := p.Snapshot().frontendsByName["fe"]
			status, took := hostileRequest(t, frontendAddr(t, p, "fe"), "X-H", strings.Repeat("a", 1000<<10))
			t.Logf("status %d after %v, internal errors %d", status, took.Round(time.Millisecond), fe.state.InternalErrors.Load())
			if status != c.want {
				t.Errorf("a condition past its deadline: %d, want %d", status, c.want)
			}
			if n := fe.state.InternalErrors.Load(); n != c.internal {
				t.Errorf("internal errors %d, want %d", n, c.internal)
			}
		})
	}
}
