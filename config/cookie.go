package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/halo-lb/halo/config/lang"
)

// CookieMode is how a persistence cookie reaches the client: halo inserts
// it, rewrites the server's own, or prefixes the server's own; passive
// (""): the server sets it with a server's cookie value itself.
type CookieMode string

// The cookie modes.
const (
	CookiePassive CookieMode = ""
	CookieInsert  CookieMode = "insert"
	CookieRewrite CookieMode = "rewrite"
	CookiePrefix  CookieMode = "prefix"
)

// Cookie is a backend's "cookie" line: cookie-based persistence.
type Cookie struct {
	Name string
	Mode CookieMode
	// Indirect: the client's persistence cookie is not passed on to the
	// server (insert), nor the prefix (prefix), and a cookie already
	// right is not set again.
	Indirect bool
	// NoCache adds "Cache-control: private" to a response that gets a
	// cookie inserted; PostOnly inserts only in responses to POST;
	// Preserve leaves a server's own Set-Cookie of the name alone.
	NoCache, PostOnly, Preserve bool
	HTTPOnly, Secure            bool
	Domains                     []string
	// MaxIdle and MaxLife bound how long an inserted cookie is honoured
	// after its last and first use; the dates ride in the value (0: not
	// bounded). Whole seconds.
	MaxIdle, MaxLife time.Duration
	// Attrs are "attr" values appended to an inserted cookie as written.
	Attrs []string
}

// Persist holds a backend's force-persist and ignore-persist conditions
// and the ACLs they may name (the section's own).
type Persist struct {
	Force  []*lang.Cond
	Ignore []*lang.Cond
	ACLs   map[string][]*lang.Match `json:"-"`
}

// buildCookie parses the backend's cookie line (its own, or that of
// defaults) and its persistence conditions.
func (p *parser) buildCookie(cfg *Config, fc *fileConfig, be *Backend, path string) {
	section := backendSection(fc, be.Name)
	if section == nil {
		return
	}
	line, where := "", ""
	switch {
	case section.Cookie != nil:
		line, where = *section.Cookie, path+".cookie"
	case fc.Defaults != nil && fc.Defaults.Cookie != nil && be.Mode == ModeHTTP:
		// As HAProxy, a tcp backend ignores the cookie of defaults.
		line, where = *fc.Defaults.Cookie, "defaults.cookie"
	}
	if where != "" {
		if be.Mode != ModeHTTP {
			p.at(where, "cookie persistence needs mode http; this backend is in mode %s", be.Mode)
		} else {
			be.Cookie = p.parseCookie(where, line)
		}
	}
	for i, s := range be.Servers {
		if s.Cookie == "" {
			continue
		}
		if msg := cookieTokenError(s.Cookie); msg != "" {
			p.at(fmt.Sprintf("%s.servers[%d].cookie", path, i), "server cookie %s", msg)
		}
	}
	acls := be.Rules.ACLs
	if _, listen := fc.Listen[be.Name]; listen {
		for _, fe := range cfg.Frontends {
			if fe.Name == be.Name {
				acls = fe.Rules.ACLs
			}
		}
	}
	conds := func(key string, lines []string) []*lang.Cond {
		var out []*lang.Cond
		for i, l := range lines {
			lp := fmt.Sprintf("%s[%d]", joinPath(path, key), i)
			t, err := lang.ParseTarget(l, lang.AtRequest, true)
			if !p.langErrors(lp, 0, err) {
				continue
			}
			p.checkPersistACLs(cfg, t.Cond, acls, section, lp)
			out = append(out, t.Cond)
		}
		return out
	}
	force, ignore := conds("force-persist", section.ForcePersist), conds("ignore-persist", section.IgnorePersist)
	if len(force)+len(ignore) > 0 {
		be.Persist = &Persist{Force: force, Ignore: ignore, ACLs: acls}
	}
}

// checkPersistACLs checks that every ACL a condition names is the
// section's or predefined, and what an anonymous ACL's sample names.
func (p *parser) checkPersistACLs(cfg *Config, c *lang.Cond, acls map[string][]*lang.Match, fp *fileProxy, lp string) {
	for _, and := range c.Or {
		for _, t := range and {
			if t.Anon != nil {
				p.readPatternFiles(t.Anon, lp)
				backends := map[string]*Backend{}
				for _, be := range cfg.Backends {
					backends[be.Name] = be
				}
				p.checkSampleNames(t.Anon.Sample, lp, backends)
				continue
			}
			if _, ok := acls[t.Name]; ok {
				continue
			}
			if _, ok := lang.Predefined[t.Name]; ok {
				continue
			}
			if _, declared := fp.ACL[t.Name]; declared {
				continue // its definition had an error, reported there
			}
			p.atWord(lp, t.Pos, "unknown ACL %q", t.Name)
		}
	}
}

// parseCookie reads HAProxy's words of a cookie line, each error at its
// word's column.
func (p *parser) parseCookie(path, line string) *Cookie {
	ws, offs := words(line)
	if len(ws) == 0 {
		p.at(path, "cookie needs a name")
		return nil
	}
	c := &Cookie{Name: ws[0]}
	if msg := cookieTokenError(ws[0]); msg != "" {
		p.atWord(path, offs[0], "cookie name %s", msg)
	}
	var modeAt int
	setMode := func(i int, m CookieMode) {
		if c.Mode != "" && c.Mode != m {
			p.atWord(path, offs[i], "cookie modes %s and %s are incompatible", c.Mode, m)
			return
		}
		c.Mode, modeAt = m, offs[i]
	}
	// arg returns the word after i, or reports that it is missing.
	arg := func(i int, what string) (string, bool) {
		if i+1 >= len(ws) {
			p.atWord(path, offs[i], "%s needs %s", ws[i], what)
			return "", false
		}
		return ws[i+1], true
	}
	for i := 1; i < len(ws); i++ {
		switch w := ws[i]; w {
		case "insert":
			setMode(i, CookieInsert)
		case "rewrite":
			setMode(i, CookieRewrite)
		case "prefix":
			setMode(i, CookiePrefix)
		case "indirect":
			c.Indirect = true
		case "nocache":
			c.NoCache = true
		case "postonly":
			c.PostOnly = true
		case "preserve":
			c.Preserve = true
		case "httponly":
			c.HTTPOnly = true
		case "secure":
			c.Secure = true
		case "domain":
			v, ok := arg(i, "a domain")
			if !ok {
				continue
			}
			i++
			if strings.ContainsAny(v, ";,=\"\\") || !printable(v) {
				p.atWord(path, offs[i], "domain %q has a character a cookie domain cannot hold", v)
			}
			c.Domains = append(c.Domains, v)
		case "maxidle", "maxlife":
			v, ok := arg(i, "a time (seconds unless a unit is given)")
			if !ok {
				continue
			}
			i++
			d, err := cookieSeconds(v)
			if err != nil {
				p.atWord(path, offs[i], "%s: %v", w, err)
				continue
			}
			if w == "maxidle" {
				c.MaxIdle = d
			} else {
				c.MaxLife = d
			}
		case "attr":
			v, ok := arg(i, "a value")
			if !ok {
				continue
			}
			i++
			if strings.ContainsRune(v, ';') || !printable(v) {
				p.atWord(path, offs[i], "attr %q may not hold ';' or control characters", v)
			}
			c.Attrs = append(c.Attrs, v)
		case "dynamic":
			p.atWord(path, offs[i], "dynamic cookies are not available in halo: give each server a cookie value")
		default:
			p.atWord(path, offs[i], "unknown cookie option %q (insert, rewrite, prefix, indirect, nocache, postonly, preserve, httponly, secure, domain, maxidle, maxlife, attr)", w)
		}
	}
	switch {
	case c.Mode == CookieRewrite && c.Indirect:
		p.atWord(path, modeAt, "cookie rewrite and indirect are incompatible")
	case c.Preserve && c.Mode != CookieInsert && !c.Indirect:
		p.at(path, "cookie preserve needs insert or indirect")
	case (c.MaxIdle > 0 || c.MaxLife > 0) && c.Mode != CookieInsert:
		p.at(path, "cookie maxidle and maxlife need insert mode: only an inserted cookie carries its dates")
	}
	return c
}

// cookieSeconds is a maxidle or maxlife: seconds, or a duration with a
// unit, at least 1s, in whole seconds.
func cookieSeconds(s string) (time.Duration, error) {
	if strings.Trim(s, "0123456789") == "" {
		s += "s"
	}
	d, err := ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < time.Second {
		return 0, fmt.Errorf("at least 1s")
	}
	if d > (1<<31-1)*time.Second {
		return 0, fmt.Errorf("at most 2147483647s")
	}
	return d.Truncate(time.Second), nil
}

// cookieTokenError says what keeps s from being a cookie name or value,
// or "".
func cookieTokenError(s string) string {
	switch {
	case s == "":
		return "is empty"
	case strings.ContainsAny(s, ";,= \t\"\\|") || !printable(s):
		return fmt.Sprintf("%q may not hold spaces, control characters or any of ;,=\"\\|", s)
	}
	return ""
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] == 0x7f {
			return false
		}
	}
	return true
}
