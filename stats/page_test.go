package stats

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
)

// Basic auth guards the page, its CSV and the metrics alike.
func TestPageBasicAuth(t *testing.T) {
	h := startLiveHalo(t, 3)
	cases := []struct {
		name, user, pass string
		want             int
	}{
		{"no credentials", "", "", http.StatusUnauthorized},
		{"wrong password", adminUser, "s3cre", http.StatusUnauthorized},
		{"wrong user, right password", "admim", adminPass, http.StatusUnauthorized},
		{"one user's name, the other's password", adminUser, opsPass, http.StatusUnauthorized},
		{"password with its last colon part only", opsUser, "colons", http.StatusUnauthorized},
		{"empty password", adminUser, "", http.StatusUnauthorized},
		{"first user", adminUser, adminPass, http.StatusOK},
		{"second user (every user is compared)", opsUser, opsPass, http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, url := range []string{h.page, h.page + ";csv", h.metrics} {
				resp, body := do(t, http.MethodGet, url, tc.user, tc.pass, "")
				if resp.StatusCode != tc.want {
					t.Fatalf("GET %s as %q:%q: %s, want %d", url, tc.user, tc.pass, resp.Status, tc.want)
				}
				if tc.want == http.StatusUnauthorized {
					if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="halo"` {
						t.Errorf("WWW-Authenticate %q, want the page's realm", got)
					}
					if strings.Contains(body, "be") && strings.Contains(body, "s1") {
						t.Errorf("a refused request got the statistics: %q", body)
					}
				}
			}
		})
	}
	// A header that is not basic auth, or not base64, is refused too.
	for _, auth := range []string{"Bearer " + adminPass, "Basic " + adminUser + ":" + adminPass, "Basic !!!"} {
		req, _ := http.NewRequest(http.MethodGet, h.page, nil)
		req.Header.Set("Authorization", auth)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %s, want 401", auth, resp.Status)
		}
	}
}

// matchUser decides on every entry, whichever matches: the last entry
// logs in, a name that is listed twice logs in with either password, and
// a name or password right on its own (or another user's) does not.
func TestMatchUser(t *testing.T) {
	users := []config.StatsUser{
		{Name: "alice", Password: "a-pass"},
		{Name: "bob", Password: "b-pass"},
		{Name: "carol", Password: "first"},
		{Name: "carol", Password: "second"},
		{Name: "dave", Password: ""},
	}
	cases := []struct {
		user, pass string
		ok         bool
	}{
		{"alice", "a-pass", true},
		{"bob", "b-pass", true},
		{"carol", "first", true},
		{"carol", "second", true},
		{"dave", "", true},
		{"alice", "b-pass", false},
		{"bob", "a-pass", false},
		{"alice", "a-pas", false},
		{"alice", "a-pass ", false},
		{"alic", "a-pass", false},
		{"Alice", "a-pass", false},
		{"", "", false},
		{"carol", "third", false},
		{"eve", "a-pass", false},
		{"dave", "x", false},
	}
	for _, tc := range cases {
		name, ok := matchUser(users, tc.user, tc.pass)
		if ok != tc.ok {
			t.Errorf("matchUser(%q, %q) = %v, want %v", tc.user, tc.pass, ok, tc.ok)
		}
		if ok && name != tc.user {
			t.Errorf("matchUser(%q, %q) logged in %q", tc.user, tc.pass, name)
		}
	}
	if _, ok := matchUser(nil, "alice", "a-pass"); ok {
		t.Error("matchUser with no users let someone in")
	}
}

func TestPageCSRF(t *testing.T) {
	h := startLiveHalo(t, 3)
	token := scrapeToken(t, h, adminUser, adminPass)
	opsToken := scrapeToken(t, h, opsUser, opsPass)
	if token == opsToken {
		t.Fatal("two users got the same action token")
	}
	form := func(token string) string {
		v := url.Values{"b": {"be"}, "s": {"s2"}, "action": {"maint"}}
		if token != "" {
			v.Set("token", token)
		}
		return v.Encode()
	}
	wrong := []byte(token)
	wrong[len(wrong)/2] ^= 1
	refused := []struct{ name, body string }{
		{"no token", form("")},
		{"empty token", form("") + "&token="},
		{"wrong token", form(string(wrong))},
		{"token cut short", form(token[:len(token)-1])},
		{"another user's token", form(opsToken)},
		{"no body at all", ""},
	}
	for _, tc := range refused {
		resp, body := do(t, http.MethodPost, h.page, adminUser, adminPass, tc.body)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: POST answered %s, want 403: %s", tc.name, resp.Status, body)
		}
		if st := h.showStat(t).get(t, "be", "s2", "status"); st != "UP" {
			t.Fatalf("%s: after a refused POST, be/s2 is %q, want UP", tc.name, st)
		}
	}
	// A multipart form is no way around the token either: the page
	// reads url-encoded forms only, and cannot read this one.
	var mp bytes.Buffer
	mp.WriteString("--x\r\nContent-Disposition: form-data; name=\"action\"\r\n\r\nmaint\r\n--x--\r\n")
	req, _ := http.NewRequest(http.MethodPost, h.page, &mp)
	req.SetBasicAuth(adminUser, adminPass)
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("multipart POST: %v (halo crashed?)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("multipart POST: %s, want 403 or 400", resp.Status)
	}
	// A POST without Content-Length (or chunked, with an empty body)
	// has no token; it once crashed halo, reading a body stream that
	// fasthttp does not make for it.
	auth := "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(adminUser+":"+adminPass)) + "\r\n"
	for _, raw := range []string{
		"POST /stats HTTP/1.1\r\nHost: x\r\n" + auth + "Connection: close\r\n\r\n",
		"POST /stats HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
		"POST /stats HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
			"16\r\nb=be&s=s2&action=maint\r\n0\r\n\r\n",
	} {
		if got := rawStatus(t, h.addr, raw); got != http.StatusForbidden {
			t.Fatalf("raw POST %q: status %d, want 403", raw, got)
		}
		select {
		case <-h.exited:
			t.Fatalf("halo exited after the raw POST %q", raw)
		default:
		}
	}
	// The right token and credentials, but not the browser session the
	// token was given to: without the session cookie, or with another.
	post := "b=be&s=s2&action=maint&token=" + url.QueryEscape(token)
	for _, cookie := range []string{"", "Cookie: halo_stats_session=AAAAAAAAAAAAAAAAAAAAAA\r\n"} {
		raw := "POST /stats HTTP/1.1\r\nHost: x\r\n" + auth + cookie + "Content-Type: application/x-www-form-urlencoded\r\n" +
			"Content-Length: " + strconv.Itoa(len(post)) + "\r\nConnection: close\r\n\r\n" + post
		if got := rawStatus(t, h.addr, raw); got != http.StatusForbidden {
			t.Fatalf("POST with the token but cookie %q: status %d, want 403", cookie, got)
		}
	}
	// The right token without credentials is still no login.
	if resp, _ := do(t, http.MethodPost, h.page, "", "", form(token)); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("POST with the token but no credentials: %s, want 401", resp.Status)
	}
	if st := h.showStat(t).get(t, "be", "s2", "status"); st != "UP" {
		t.Fatalf("after refused POSTs, be/s2 is %q, want UP", st)
	}

	resp, body := do(t, http.MethodPost, h.page, adminUser, adminPass, form(token))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST with the page's token: %s, want 303: %s", resp.Status, body)
	}
	if loc := resp.Header.Get("Location"); loc != "/stats;st=DONE" {
		t.Fatalf("POST with the page's token sent the browser to %q, want /stats;st=DONE", loc)
	}
	_, csvOut := do(t, http.MethodGet, h.page+";csv", adminUser, adminPass, "")
	page := parseStat(t, []byte(csvOut))
	if st := page.get(t, "be", "s2", "status"); st != "MAINT" {
		t.Fatalf("after the action, ;csv says be/s2 is %q, want MAINT", st)
	}
	for _, s := range []string{"s1", "s3"} {
		if st := page.get(t, "be", s, "status"); st != "UP" {
			t.Errorf("the action on s2 changed be/%s to %q", s, st)
		}
	}
	if st := h.showStat(t).get(t, "be", "s2", "status"); st != "MAINT" {
		t.Fatalf("after the action, show stat says be/s2 is %q, want MAINT", st)
	}
	// The result page says so.
	if resp, body := do(t, http.MethodGet, h.page+";st=DONE", adminUser, adminPass, ""); resp.StatusCode != 200 ||
		!strings.Contains(body, `id="action-status">Action applied.<`) {
		t.Errorf("the result page (%s) does not say the action was applied", resp.Status)
	}
	// The other user's own token works for them.
	resp, _ = do(t, http.MethodPost, h.page, opsUser, opsPass,
		url.Values{"b": {"be"}, "s": {"s2"}, "action": {"ready"}, "token": {opsToken}}.Encode())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("ops's POST with ops's token: %s, want 303", resp.Status)
	}
	if st := h.showStat(t).get(t, "be", "s2", "status"); st != "UP" {
		t.Fatalf("after ready, be/s2 is %q, want UP", st)
	}
}

// ;csv is show stat, ;json parses, ;norefresh drops the reload and ;up
// the servers that are down.
func TestPageFormats(t *testing.T) {
	h := startLiveHalo(t, 3)
	resp, csvOut := do(t, http.MethodGet, h.page+";csv", adminUser, adminPass, "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf(";csv: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	page, sock := parseStat(t, []byte(csvOut)), h.showStat(t)
	if strings.Join(page.header, ",") != strings.Join(sock.header, ",") {
		t.Fatalf(";csv header\n%v\ndiffers from show stat's\n%v", page.header, sock.header)
	}
	if len(page.rows) != len(sock.rows) {
		t.Fatalf(";csv has %d rows, show stat %d", len(page.rows), len(sock.rows))
	}
	for i := range page.rows {
		p, s := page.rows[i], sock.rows[i]
		if len(p) != len(page.header) {
			t.Errorf(";csv row %d has %d fields, the header %d", i, len(p), len(page.header))
		}
		if p[0] != s[0] || p[1] != s[1] {
			t.Errorf("row %d: ;csv has %s/%s, show stat %s/%s", i, p[0], p[1], s[0], s[1])
		}
	}
	for _, s := range []string{"s1", "s2", "s3", "BACKEND"} {
		if page.get(t, "be", s, "status") != sock.get(t, "be", s, "status") {
			t.Errorf("be/%s: ;csv and show stat disagree on the status", s)
		}
	}

	resp, jsonOut := do(t, http.MethodGet, h.page+";json", adminUser, adminPass, "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf(";json: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	var rows [][]struct {
		ObjType string `json:"objType"`
		Field   struct {
			Name string `json:"name"`
		} `json:"field"`
		Value struct {
			Value any `json:"value"`
		} `json:"value"`
	}
	if err := json.Unmarshal([]byte(jsonOut), &rows); err != nil {
		t.Fatalf(";json does not parse: %v\n%.300s", err, jsonOut)
	}
	if len(rows) != len(sock.rows) {
		t.Fatalf(";json has %d rows, show stat %d", len(rows), len(sock.rows))
	}
	servers := 0
	for _, r := range rows {
		for _, f := range r {
			if f.Field.Name == "svname" && f.ObjType == "Server" {
				servers++
			}
		}
	}
	if servers != 3 {
		t.Errorf(";json has %d server rows, want 3", servers)
	}

	_, html := do(t, http.MethodGet, h.page, adminUser, adminPass, "")
	_, noRefresh := do(t, http.MethodGet, h.page+";norefresh", adminUser, adminPass, "")
	if !strings.Contains(html, `<meta http-equiv="refresh" content="10;url=/stats">`) {
		t.Error("the page does not reload itself (without an action's result) every 10s")
	}
	if strings.Contains(noRefresh, `http-equiv="refresh"`) {
		t.Error(";norefresh still reloads")
	}

	h.backends["s1"].Close()
	waitForHalo(t, 10*time.Second, "be/s1 to go DOWN", func() bool {
		return h.showStat(t).get(t, "be", "s1", "status") == "DOWN"
	}, h)
	_, all := do(t, http.MethodGet, h.page, adminUser, adminPass, "")
	_, up := do(t, http.MethodGet, h.page+";up", adminUser, adminPass, "")
	if !strings.Contains(all, `id="row-be-s1"`) || !strings.Contains(all, `<tr class="down" id="row-be-s1" data-status="DOWN">`) {
		t.Error("the page does not show be/s1 as down")
	}
	if strings.Contains(up, `id="row-be-s1"`) {
		t.Error(";up still shows be/s1, which is down")
	}
	if !strings.Contains(up, `id="row-be-s2"`) {
		t.Error(";up hides be/s2, which is up")
	}
}

func TestServerClass(t *testing.T) {
	cases := []struct {
		status string
		backup bool
		want   string
	}{
		{"UP", false, "up"},
		{"UP", true, "up backup"},
		{"UP 1/3", false, "goingdown"},
		{"DOWN 1/2", false, "goingup"},
		{"DOWN", false, "down"},
		{"DOWN", true, "down backup"},
		{"DOWN (agent)", false, "down"},
		{"MAINT", false, "maint"},
		{"MAINT", true, "maint backup"},
		{"DRAIN", false, "drain"},
		{"NOLB", false, "nolb"},
		{"NOLB 1/3", false, "nolb"},
		{"no check", false, "nocheck"},
	}
	for _, tc := range cases {
		var r Row
		r.Type = ObjServer
		r.setS(FStatus, tc.status)
		if tc.backup {
			r.setN(FBck, 1)
		} else {
			r.setN(FBck, 0)
		}
		if got := serverClass(&r); got != tc.want {
			t.Errorf("serverClass(%q, backup %v) = %q, want %q", tc.status, tc.backup, got, tc.want)
		}
	}
}
