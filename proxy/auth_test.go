package proxy

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/halo-lb/halo/internal/testnet"
)

// Known-answer hashes made by OpenSSL (openssl passwd -6/-5/-1 -salt
// saltsalt), so that the test needs nothing installed; TestAuthHashesOfOpenSSL
// checks hashes openssl makes now.
const (
	sha512Hash = `$6$saltsalt$JV6rkFgxoWXPSBkfOn2dQke2iT8fL.OraqmFLrlj3mNwaz7tQuzY6l4KzwCrMKP0kIjIJ80/UJGSOOMLSkbB4/`
	sha256Hash = `$5$saltsalt$t7Kj8mIGBfDkYxgEzoewrJINMU5Jc9W3QvnyXvqEjH4`
	md5Hash    = `$1$saltsalt$/I.FJgwCsi2qv/AoBov0b1`
)

func authConfig(alice, carol string) string {
	return `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
userlists:
  operators:
    groups:
      admins: [alice]
    users:
      alice: {password: '` + alice + `'}
      bob: {insecure-password: hunter2, groups: [admins]}
      carol: {password: '` + carol + `'}
      dave: {password: '` + sha256Hash + `'}
frontends:
  fe:
    bind: "127.0.0.1:0"
    http-request:
      - auth realm OpenStack if !{ http_auth(operators) }
      - deny if { path_beg /admin } !{ http_auth_group(operators) admins }
    default_backend: be
backends:
  be: {servers: [{name: h, address: "{{h}}"}]}
`
}

// http-request auth asks for credentials until a user of the userlist
// gives its password (crypt hashes and insecure-password), and
// http_auth_group lets only the group's users through.
func TestAuthWithUserlist(t *testing.T) {
	h := startHTTPBackend(t, "h", nil)
	p := startProxy(t, authConfig(sha512Hash, md5Hash), h)
	url := "http://" + frontendAddr(t, p, "fe")
	for _, tc := range []struct {
		user, pass, path string
		status           int
	}{
		{"", "", "/", 401},
		{"alice", "wrong", "/", 401},
		{"alice", "s3cret6", "/", 200},
		{"alice", "s3cret6", "/admin/x", 200},
		{"carol", "s3cret1", "/", 200},
		{"carol", "s3cret1", "/admin/x", 403},
		{"dave", "s3cret5", "/", 200},
		{"bob", "hunter2", "/admin/x", 200},
		{"bob", "hunter", "/", 401},
		{"mallory", "s3cret6", "/", 401},
	} {
		req, _ := http.NewRequest("GET", url+tc.path, nil)
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		resp, err := httpClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s:%s %s: %d, want %d", tc.user, tc.pass, tc.path, resp.StatusCode, tc.status)
		}
		if tc.status == 401 && resp.Header.Get("WWW-Authenticate") != `Basic realm="OpenStack"` {
			t.Errorf("%s: WWW-Authenticate %q", tc.user, resp.Header.Get("WWW-Authenticate"))
		}
	}
}

// Hashes openssl writes now are checked as crypt(3) checks them.
func TestAuthHashesOfOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		testnet.SkipOrFail(t, "openssl is not installed")
	}
	hash := func(flag, pw string) string {
		out, err := exec.Command("openssl", "passwd", flag, pw).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out))
	}
	h := startHTTPBackend(t, "h", nil)
	p := startProxy(t, authConfig(hash("-6", "s3cret6"), hash("-1", "s3cret1")), h)
	for user, pw := range map[string]string{"alice": "s3cret6", "carol": "s3cret1"} {
		req, _ := http.NewRequest("GET", "http://"+frontendAddr(t, p, "fe")+"/", nil)
		req.SetBasicAuth(user, pw)
		resp, err := httpClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s with a fresh openssl hash: %d", user, resp.StatusCode)
		}
	}
}
