package config

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/halo-lb/halo/config/lang"
)

// Rules are a section's request language, parsed (config/lang) with the
// files it names read: -f pattern files into the ACLs' patterns, the
// bodies of return and deny into Files.
type Rules struct {
	// ACLs are the named ACLs: each name's definitions, ORed.
	ACLs         map[string][]*lang.Match
	HTTPRequest  []*lang.Rule
	HTTPResponse []*lang.Rule
	// Redirects are the "redirect" lines, which run after http-request.
	Redirects []*lang.Rule
	// The tcp-request rule sets and inspect-delay.
	TCPConnection []*lang.Rule
	TCPSession    []*lang.Rule
	TCPContent    []*lang.Rule
	InspectDelay  time.Duration
	// UseBackends are the frontend's use_backend lines, in order.
	UseBackends []*lang.Target
	// Sticks are a backend's stick lines (on, match, store-request,
	// store-response), in order.
	Sticks []*lang.Stick
	// Files are the bodies that return, deny and tarpit send, by path.
	Files map[string][]byte
}

// Empty reports whether the section has no rule at all.
func (r *Rules) Empty() bool {
	return len(r.HTTPRequest)+len(r.HTTPResponse)+len(r.Redirects)+len(r.TCPConnection)+
		len(r.TCPSession)+len(r.TCPContent)+len(r.UseBackends)+len(r.Sticks) == 0
}

// MapEntry is one line of a map file: a key and its value.
type MapEntry struct {
	Key, Value string
	Line       int
}

// buildRules parses the rule keys of every proxy section.
func (p *parser) buildRules(cfg *Config, fc *fileConfig) {
	backends := map[string]*Backend{}
	for _, be := range cfg.Backends {
		backends[be.Name] = be
	}
	for _, fe := range cfg.Frontends {
		path := sectionPath(fc, "frontends", fe.Name)
		fp := fc.frontendSection(fe.Name)
		if fp != nil {
			fe.Rules = p.parseRules(cfg, fp, path, fe.Mode, true, backends)
		}
	}
	for _, be := range cfg.Backends {
		if _, listen := fc.Listen[be.Name]; listen {
			// A listen section's rules run as its frontend's, but its
			// stick lines choose its servers: they are the backend's.
			for _, fe := range cfg.Frontends {
				if fe.Name == be.Name {
					be.Rules.Sticks, be.Rules.ACLs = fe.Rules.Sticks, fe.Rules.ACLs
					fe.Rules.Sticks = nil
				}
			}
			continue
		}
		if bp := fc.Backends[be.Name]; bp != nil {
			be.Rules = p.parseRules(cfg, bp, joinPath("backends", be.Name), be.Mode, false, backends)
		}
	}
}

// langErrors reports a lang parse error at the words' columns.
func (p *parser) langErrors(path string, shift int, err error) bool {
	if err == nil {
		return true
	}
	if es, ok := err.(lang.Errors); ok {
		for _, e := range es {
			p.atWord(path, max(e.Off-shift, 0), "%s", e.Msg)
		}
		return false
	}
	p.at(path, "%v", err)
	return false
}

// ruleScope is what the checks of one section's rules need to know.
type ruleScope struct {
	cfg     *Config
	section string // the section's name: whose stick-table a rule uses by default
}

func (p *parser) parseRules(cfg *Config, fp *fileProxy, path string, mode Mode, frontend bool, backends map[string]*Backend) Rules {
	p.ruleScope = ruleScope{cfg: cfg, section: path[strings.IndexByte(path, '.')+1:]}
	r := Rules{ACLs: map[string][]*lang.Match{}, Files: map[string][]byte{}}
	http := mode == ModeHTTP
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range fp.ACL {
			if !yield(n) {
				return
			}
		}
	})
	for _, name := range names {
		apath := joinPath(joinPath(path, "acl"), name)
		if !lang.ValidACLName(name) {
			p.at(apath, "%q is not an ACL name (letters, digits, '-', '_', '.' and ':')", name)
			continue
		}
		for i, line := range fp.ACL[name] {
			lp := fmt.Sprintf("%s[%d]", apath, i)
			m, err := lang.ParseACL(line, 0)
			if !p.langErrors(lp, 0, err) || m == nil {
				continue
			}
			p.readPatternFiles(m, lp)
			p.checkSampleNames(m.Sample, lp, backends)
			p.readSampleMaps(cfg, m.Sample, lp, 0)
			r.ACLs[name] = append(r.ACLs[name], m)
		}
	}
	ruleList := func(key string, lines []string, rs lang.RuleSet, prefix string) []*lang.Rule {
		var out []*lang.Rule
		for i, line := range lines {
			lp := fmt.Sprintf("%s[%d]", joinPath(path, key), i)
			if (rs == lang.HTTPRequest || rs == lang.HTTPResponse) && !http {
				p.at(lp, "%s rules need mode http (this section is mode %s)", key, mode)
				return nil
			}
			rule, err := lang.ParseRule(prefix+line, rs)
			if !p.langErrors(lp, len(prefix), err) || rule == nil {
				continue
			}
			p.checkRule(cfg, &r, rule, lp, len(prefix), backends)
			p.noteCapture(path, lp, rule, rs, frontend)
			out = append(out, rule)
		}
		return out
	}
	r.HTTPRequest = ruleList("http-request", fp.HTTPRequest, lang.HTTPRequest, "")
	r.HTTPResponse = ruleList("http-response", fp.HTTPResponse, lang.HTTPResponse, "")
	r.Redirects = ruleList("redirect", fp.Redirect, lang.HTTPRequest, "redirect ")
	for i, line := range fp.TCPRequest {
		lp := fmt.Sprintf("%s[%d]", joinPath(path, "tcp-request"), i)
		rule, rs, delay, err := lang.ParseTCPRequest(line, http, ParseDuration)
		if !p.langErrors(lp, 0, err) {
			continue
		}
		if rule == nil {
			// In mode http the request is whole before content rules run:
			// the delay has nothing to wait for, as in HAProxy.
			r.InspectDelay = delay
			continue
		}
		if !frontend && rs != lang.TCPContent {
			p.at(lp, "a backend takes tcp-request content rules only")
			continue
		}
		p.checkRule(cfg, &r, rule, lp, 0, backends)
		p.noteCapture(path, lp, rule, rs, frontend)
		switch rs {
		case lang.TCPConnection:
			r.TCPConnection = append(r.TCPConnection, rule)
		case lang.TCPSession:
			r.TCPSession = append(r.TCPSession, rule)
		default:
			r.TCPContent = append(r.TCPContent, rule)
		}
	}
	where := lang.AtRequest
	if !http {
		where = lang.AtContent
	}
	for i, line := range fp.UseBackend {
		lp := fmt.Sprintf("%s[%d]", joinPath(path, "use_backend"), i)
		t, err := lang.ParseTarget(line, where, false)
		if !p.langErrors(lp, 0, err) {
			continue
		}
		if name, ok := t.Name.Const(); ok {
			be := backends[name]
			switch {
			case be == nil:
				p.atWord(lp, t.Pos, "use_backend names %q, which is not a backend", name)
				continue
			case be.Mode != mode:
				p.atWord(lp, t.Pos, "use_backend %q: the backend is mode %s, the frontend mode %s", name, be.Mode, mode)
				continue
			}
		}
		// A computed name's samples are checked, and the maps its
		// converters name read, as any format's.
		p.checkFormatNames(cfg, t.Name, lp, 0, backends)
		p.checkCondNames(cfg, t.Cond, lp, 0, backends)
		r.UseBackends = append(r.UseBackends, t)
	}
	for i, line := range fp.Stick {
		lp := fmt.Sprintf("%s[%d]", joinPath(path, "stick"), i)
		if frontend && !strings.HasPrefix(path, "listen.") {
			p.at(lp, "stick lines belong to backends (and listen sections)")
			break
		}
		st, err := lang.ParseStick(line)
		if !p.langErrors(lp, 0, err) || st == nil || st.Expr == nil {
			continue
		}
		p.checkSampleNames(st.Expr, lp, backends)
		p.readSampleMaps(cfg, st.Expr, lp, 0)
		p.checkCondNames(cfg, st.Cond, lp, 0, backends)
		p.checkTable(cfg, st.Table, lp, st.TablePos, st.Pos)
		storeServerID(cfg, cmp.Or(st.Table, p.ruleScope.section))
		r.Sticks = append(r.Sticks, st)
	}
	// Conditions name ACLs: every name must exist by now.
	p.checkAllConds(&r, path, fp)
	if len(r.ACLs) == 0 {
		r.ACLs = nil
	}
	if len(r.Files) == 0 {
		r.Files = nil
	}
	return r
}

// checkRule checks what a rule names and reads the files it sends.
func (p *parser) checkRule(cfg *Config, r *Rules, rule *lang.Rule, lp string, shift int, backends map[string]*Backend) {
	if rule.Expr != nil {
		p.checkSampleNames(rule.Expr, lp, backends)
	}
	if strings.HasPrefix(rule.Action, "track-sc") {
		p.checkTable(cfg, rule.Table, lp, max(rule.TablePos-shift, 0), max(rule.Pos-shift, 0))
	}
	for _, f := range []*lang.Format{rule.Value} {
		p.checkFormatNames(cfg, f, lp, shift, backends)
	}
	if rule.Redirect != nil {
		p.checkFormatNames(cfg, rule.Redirect.Target, lp, shift, backends)
	}
	if rep := rule.Reply; rep != nil {
		p.checkFormatNames(cfg, rep.Body, lp, shift, backends)
		if rep.File != nil {
			file := p.relative(rep.File.Path)
			data, err := os.ReadFile(file)
			if err != nil {
				p.atWord(lp, max(rep.File.Pos-shift, 0), "%v", err)
			} else {
				r.Files[rep.File.Path] = data
			}
			if rep.LFFile && err == nil {
				p.lfFile(cfg, rule, lp, max(rep.File.Pos-shift, 0), data, backends)
			}
		}
	}
	p.checkCondNames(cfg, rule.Cond, lp, shift, backends)
	if rule.Expr != nil {
		p.readSampleMaps(cfg, rule.Expr, lp, shift)
	}
}

// lfFile parses the content of an lf-file reply as the format of its body,
// as HAProxy does when it loads the file. A syntax error is placed in the
// file (FILE:LINE:COL in the message), and whatever the checks of its
// samples find at the rule's lf-file word.
func (p *parser) lfFile(cfg *Config, rule *lang.Rule, lp string, at int, data []byte, backends map[string]*Backend) {
	rs := lang.HTTPRequest
	if rule.Response {
		rs = lang.HTTPResponse
	}
	f, err := lang.ParseFormatText(string(data), rs.Where())
	if es, ok := err.(lang.Errors); ok {
		for _, e := range es {
			line := 1 + bytes.Count(data[:e.Off], []byte("\n"))
			col := e.Off - bytes.LastIndexByte(data[:e.Off], '\n')
			p.atWord(lp, at, "%s:%d:%d: %s", rule.Reply.File.Path, line, col, e.Msg)
		}
		return
	}
	p.pinned = &at
	p.checkFormatNames(cfg, f, lp, 0, backends)
	p.pinned = nil
	rule.Reply.Body = f
}

func (p *parser) checkFormatNames(cfg *Config, f *lang.Format, lp string, shift int, backends map[string]*Backend) {
	if f == nil {
		return
	}
	for _, part := range f.Parts {
		if part.Sample != nil {
			p.checkSampleNames(part.Sample, lp, backends)
			p.readSampleMaps(cfg, part.Sample, lp, shift)
		}
	}
}

// checkSampleNames checks the backends, servers and tables a sample
// names.
func (p *parser) checkSampleNames(s *lang.Sample, lp string, backends map[string]*Backend) {
	if st := s.Fetch.Stick; st != nil {
		i := 0
		if st.Counter == lang.CounterArg {
			i = 1
		}
		if a := s.Args[i]; a.Set {
			p.checkTable(p.ruleScope.cfg, a.Text, lp, a.Pos, s.Pos)
		} else if st.Counter == lang.CounterSrc {
			p.checkTable(p.ruleScope.cfg, "", lp, s.Pos, s.Pos)
		}
		return
	}
	for i, a := range s.Args {
		if !a.Set || i >= len(s.Fetch.Args) {
			continue
		}
		switch s.Fetch.Args[i].Kind() {
		case lang.ArgBackend:
			if backends[a.Text] == nil {
				p.atWord(lp, a.Pos, "no backend %q", a.Text)
			}
		case lang.ArgServer:
			b, srv, _ := strings.Cut(a.Text, "/")
			be := backends[b]
			if be == nil || !slices.ContainsFunc(be.Servers, func(s Server) bool { return s.Name == srv }) {
				p.atWord(lp, a.Pos, "no server %q", a.Text)
			}
		case lang.ArgUserlist:
			if p.ruleScope.cfg.Userlists[a.Text] == nil {
				p.atWord(lp, a.Pos, "no userlist %q", a.Text)
			}
		}
	}
}

// storeServerID makes the stick table of section name store server_id,
// which stick rules write and read: HAProxy adds it to a table that stick
// rules use, whatever its store list says.
func storeServerID(cfg *Config, name string) {
	add := func(t *StickTable) {
		if t != nil && !slices.ContainsFunc(t.Store, func(d StickData) bool { return d.Kind == StickServerID }) {
			t.Store = append([]StickData{{Kind: StickServerID}}, t.Store...)
		}
	}
	for _, fe := range cfg.Frontends {
		if fe.Name == name {
			add(fe.StickTable)
		}
	}
	for _, be := range cfg.Backends {
		if be.Name == name {
			add(be.StickTable)
		}
	}
}

// checkTable checks that a stick table a rule or fetch names exists: the
// section named (table NAME), or the rule's own section without one.
func (p *parser) checkTable(cfg *Config, name, lp string, namePos, rulePos int) {
	own := name == ""
	if own {
		name = p.ruleScope.section
	}
	for _, fe := range cfg.Frontends {
		if fe.Name == name && fe.StickTable != nil {
			return
		}
	}
	for _, be := range cfg.Backends {
		if be.Name == name && be.StickTable != nil {
			return
		}
	}
	if own {
		p.atWord(lp, rulePos, "section %q has no stick-table: declare one, or name another section's with table NAME", name)
	} else {
		p.atWord(lp, namePos, "table %q: no section of that name has a stick-table", name)
	}
}

// checkCondNames checks what the anonymous ACLs of a condition name, and
// reads their files.
func (p *parser) checkCondNames(cfg *Config, c *lang.Cond, lp string, shift int, backends map[string]*Backend) {
	if c == nil {
		return
	}
	for _, and := range c.Or {
		for _, t := range and {
			if t.Anon != nil {
				p.readPatternFiles(t.Anon, lp)
				p.checkSampleNames(t.Anon.Sample, lp, backends)
				p.readSampleMaps(cfg, t.Anon.Sample, lp, shift)
			}
		}
	}
}

// checkAllConds checks that every ACL a condition names is defined in
// the section or predefined. It runs once the section's ACLs are known.
func (p *parser) checkAllConds(r *Rules, path string, fp *fileProxy) {
	check := func(c *lang.Cond, lp string, shift int) {
		if c == nil {
			return
		}
		for _, and := range c.Or {
			for _, t := range and {
				if t.Name == "" {
					continue
				}
				if _, ok := r.ACLs[t.Name]; ok {
					continue
				}
				if _, ok := lang.Predefined[t.Name]; ok {
					continue
				}
				if _, declared := fp.ACL[t.Name]; declared {
					continue // its definition had an error, reported there
				}
				p.atWord(lp, max(t.Pos-shift, 0), "unknown ACL %q", t.Name)
			}
		}
	}
	for key, rules := range map[string][]*lang.Rule{"http-request": r.HTTPRequest, "http-response": r.HTTPResponse} {
		for i, rule := range rules {
			check(rule.Cond, fmt.Sprintf("%s[%d]", joinPath(path, key), i), 0)
		}
	}
	for i, rule := range r.Redirects {
		check(rule.Cond, fmt.Sprintf("%s[%d]", joinPath(path, "redirect"), i), len("redirect "))
	}
	for _, rules := range [][]*lang.Rule{r.TCPConnection, r.TCPSession, r.TCPContent} {
		for _, rule := range rules {
			check(rule.Cond, joinPath(path, "tcp-request"), 0)
		}
	}
	for i, t := range r.UseBackends {
		check(t.Cond, fmt.Sprintf("%s[%d]", joinPath(path, "use_backend"), i), 0)
	}
	for i, st := range r.Sticks {
		check(st.Cond, fmt.Sprintf("%s[%d]", joinPath(path, "stick"), i), 0)
	}
}
