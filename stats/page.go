package stats

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"io"
	"net/url"
	"strings"

	"github.com/halo-lb/halo/config"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// The HTTP stats page, served by a frontend's own HTTP server ("stats
// enable"): HAProxy's page, recognisably, with its URI switches (;csv,
// ;json, ;norefresh, ;up), basic auth checked in constant time, and with
// "admin" the actions on servers. Unlike HAProxy's, an action form carries
// a token bound to the logged-in user, the browser session (a SameSite
// cookie) and this process, so a page on
// another site cannot make a logged-in browser post one (a cross-site
// request forgery): such a post is refused with 403.

// pageState is what the page keeps for the process: the key its action
// tokens are made with.
type pageState struct {
	key [32]byte
}

func (p *pageState) init() {
	if _, err := rand.Read(p.key[:]); err != nil {
		panic("stats: no randomness for the page's token key: " + err.Error())
	}
}

// token is the action token of a logged-in user in one browser session:
// an HMAC of the user name and the session's cookie under the process's
// key. Only a page served to that user in that session carries it, and a
// page of another origin can read neither the page nor the cookie.
func (p *pageState) token(user, session string) string {
	m := hmac.New(sha256.New, p.key[:])
	m.Write([]byte("halo stats admin\x00" + user + "\x00" + session))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// sessionCookie names the browser session an action token belongs to.
// SameSite=Strict keeps a browser from sending it with a request another
// site makes, so even a stolen token is useless from there.
const sessionCookie = "halo_stats_session"

// pageSession returns the request's browser session, starting one (and
// setting its cookie on the response) when it has none.
func pageSession(ctx *fasthttp.RequestCtx) string {
	if sid := string(ctx.Request.Header.Cookie(sessionCookie)); validSession(sid) {
		return sid
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("stats: no randomness for a page session: " + err.Error())
	}
	sid := base64.RawURLEncoding.EncodeToString(b[:])
	var c fasthttp.Cookie
	c.SetKey(sessionCookie)
	c.SetValue(sid)
	// Path "/": the page's own URIs (/stats;norefresh, /stats;st=DONE)
	// do not path-match a cookie of Path=/stats.
	c.SetPath("/")
	c.SetHTTPOnly(true)
	c.SetSameSite(fasthttp.CookieSameSiteStrictMode)
	ctx.Response.Header.SetCookie(&c)
	return sid
}

// validSession reports whether sid has the shape pageSession gives one.
func validSession(sid string) bool {
	b, err := base64.RawURLEncoding.DecodeString(sid)
	return err == nil && len(b) == 16
}

// pageOptions are the switches after the page's URI.
type pageOptions struct {
	format    string // "html", "csv", "json"
	noRefresh bool
	upOnly    bool
	status    string // the result of the last action (st=DONE ...)
}

// switches are the display switches to keep in the page's own links and
// forms (";norefresh", ";up"), so that an action or a reload does not lose
// them.
func (o pageOptions) switches() string {
	s := ""
	if o.noRefresh {
		s += ";norefresh"
	}
	if o.upOnly {
		s += ";up"
	}
	return s
}

func parsePageOptions(rest string) pageOptions {
	o := pageOptions{format: "html"}
	for _, part := range strings.Split(rest, ";") {
		switch {
		case part == "csv":
			o.format = "csv"
		case part == "json":
			o.format = "json"
		case part == "norefresh":
			o.noRefresh = true
		case part == "up":
			o.upOnly = true
		case strings.HasPrefix(part, "st="):
			// Only the results halo itself sends back: the page shows no
			// text a link could make up.
			if st := strings.TrimPrefix(part, "st="); actionStatusText(st) != st {
				o.status = st
			}
		}
	}
	return o
}

// ServeStats answers a request for a frontend's stats page or metrics
// endpoint (proxy.StatsPage).
func (s *Stats) ServeStats(ctx *fasthttp.RequestCtx, frontend string, page *config.StatsPage) {
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	// No other site may frame the page (clickjacking its admin actions).
	ctx.Response.Header.Set("X-Frame-Options", "DENY")
	ctx.Response.Header.Set("Content-Security-Policy", "frame-ancestors 'none'")
	user, ok := s.authorize(ctx, page)
	if !ok {
		ctx.Response.Header.Set("WWW-Authenticate", `Basic realm="`+strings.ReplaceAll(page.Realm, `"`, `'`)+`"`)
		ctx.Response.Header.SetContentType("text/html; charset=utf-8")
		ctx.SetStatusCode(fasthttp.StatusUnauthorized)
		ctx.SetBodyString("<html><body><h1>401 Unauthorized</h1>You need a valid user and password to access this content.</body></html>\n")
		return
	}
	uri := string(ctx.Request.Header.RequestURI())
	path, _, _ := strings.Cut(uri, "?")
	if page.Prometheus != "" && path == page.Prometheus {
		s.serveMetrics(ctx)
		return
	}
	opts := parsePageOptions(strings.TrimPrefix(uri, page.URI))
	switch {
	case ctx.IsPost():
		s.servePageAction(ctx, page, user, opts)
		return
	case !ctx.IsGet() && !ctx.IsHead():
		ctx.Response.Header.Set("Allow", "GET, HEAD, POST")
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		return
	}
	t := s.Table(AllRows)
	switch opts.format {
	case "csv":
		ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
		ctx.SetBody(t.CSV())
	case "json":
		ctx.Response.Header.SetContentType("application/json")
		ctx.SetBody(t.JSON())
	default:
		ctx.Response.Header.SetContentType("text/html; charset=utf-8")
		token := ""
		if page.Admin && user != "" {
			token = s.page.token(user, pageSession(ctx))
		}
		info := s.Info()
		ctx.SetBody(s.renderPage(&t, &info, page, opts, frontend, uri, token))
	}
}

// authorize checks basic auth against the page's users. Every user's
// name and password are compared, in constant time, whatever matches, so
// the answer's timing says nothing about which part was wrong. It
// returns the user's name ("" when the page has no users).
func (s *Stats) authorize(ctx *fasthttp.RequestCtx, page *config.StatsPage) (string, bool) {
	if len(page.Users) == 0 {
		return "", true
	}
	user, pass, ok := basicAuth(string(ctx.Request.Header.Peek("Authorization")))
	if !ok {
		return "", false
	}
	return matchUser(page.Users, user, pass)
}

// matchUser compares user and pass with every entry in constant time
// (for equal lengths of what is compared: the hashes below).
func matchUser(users []config.StatsUser, user, pass string) (string, bool) {
	hu, hp := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	found := 0
	for _, u := range users {
		eu, ep := sha256.Sum256([]byte(u.Name)), sha256.Sum256([]byte(u.Password.Reveal()))
		found |= subtle.ConstantTimeCompare(hu[:], eu[:]) & subtle.ConstantTimeCompare(hp[:], ep[:])
	}
	return user, found == 1
}

func basicAuth(h string) (user, pass string, ok bool) {
	const prefix = "Basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(dec), ":")
	return user, pass, ok
}

// pageActions are the actions of the page's menu, with HAProxy's names.
var pageActions = map[string]string{
	"ready": "set server %s state ready", "drain": "set server %s state drain", "maint": "set server %s state maint",
	"hrunn": "set server %s health up", "hnolb": "set server %s health stopping", "hdown": "set server %s health down",
	"arunn": "set server %s agent up", "adown": "set server %s agent down",
	"dhlth": "disable health %s", "ehlth": "enable health %s", "dagent": "disable agent %s", "eagent": "enable agent %s",
	"shutdown": "shutdown sessions server %s",
}

// servePageAction applies a posted action to the servers ticked in one
// backend's table, then sends the browser back to the page with the
// result (st=DONE, st=NONE, st=PART, st=ERRP), as HAProxy does.
func (s *Stats) servePageAction(ctx *fasthttp.RequestCtx, page *config.StatsPage, user string, opts pageOptions) {
	if !page.Admin || user == "" {
		ctx.SetStatusCode(fasthttp.StatusForbidden)
		ctx.SetBodyString("The stats page does not allow actions (stats admin is off).\n")
		return
	}
	// The proxy's servers stream request bodies, but fasthttp gives a
	// request without Content-Length or Transfer-Encoding no stream at
	// all: such a post has an empty form (reading a nil stream would
	// crash the process).
	var body []byte
	var err error
	if r := ctx.RequestBodyStream(); r != nil {
		body, err = io.ReadAll(io.LimitReader(r, 64<<10))
	} else {
		body = ctx.PostBody()
	}
	if err != nil {
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetBodyString("The form could not be read: " + err.Error() + "\n")
		return
	}
	sid := string(ctx.Request.Header.Cookie(sessionCookie))
	want := s.page.token(user, sid)
	if got := form.Get("token"); !validSession(sid) || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		ctx.SetStatusCode(fasthttp.StatusForbidden)
		ctx.SetBodyString("The form's token or session cookie is missing or wrong: actions must come from this stats page, in the browser session that loaded it.\n")
		s.log.Warn("stats page action refused: bad token", zap.String("user", user), zap.String("client", ctx.RemoteAddr().String()))
		return
	}
	status := "NONE"
	tmpl, known := pageActions[form.Get("action")]
	backend := form.Get("b")
	servers := form["s"]
	if !known {
		status = "ERRP"
	} else if len(servers) > 0 {
		done := 0
		for _, name := range servers {
			out := s.Exec(strings.Fields(strings.ReplaceAll(tmpl, "%s", backend+"/"+name)), config.LevelAdmin, nil)
			if len(out) == 0 {
				done++
			}
		}
		status = "DONE"
		if done < len(servers) {
			status = "PART"
		}
		s.log.Info("stats page action", zap.String("user", user), zap.String("action", form.Get("action")),
			zap.String("backend", backend), zap.Strings("servers", servers), zap.String("result", status))
	}
	ctx.Response.Header.Set("Location", page.URI+opts.switches()+";st="+status)
	ctx.SetStatusCode(fasthttp.StatusSeeOther)
}

// serverClass is the row's CSS class: its state, as the page colours it.
func serverClass(r *Row) string {
	st := r.Str(FStatus)
	backup := r.Num(FBck) == 1
	class := "up"
	switch {
	case strings.HasPrefix(st, "MAINT"):
		class = "maint"
	case st == "DRAIN":
		class = "drain"
	case strings.HasPrefix(st, "NOLB"):
		class = "nolb"
	case st == "no check":
		class = "nocheck"
	case strings.HasPrefix(st, "UP "):
		class = "goingdown"
	case strings.HasPrefix(st, "DOWN ") && st[len("DOWN ")] >= '0' && st[len("DOWN ")] <= '9':
		class = "goingup" // "DOWN 1/2", not "DOWN (agent)"
	case strings.HasPrefix(st, "DOWN"):
		class = "down"
	}
	if backup {
		class += " backup"
	}
	return class
}
