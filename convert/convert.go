package convert

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/halo-lb/halo/config"
	"gopkg.in/yaml.v3"
)

// Options are the inputs of a conversion besides the file's bytes.
type Options struct {
	// File names the source in messages and in the output's header.
	File string
	// Lookup is the environment that "${VAR}" and defined() read.
	Lookup func(string) (string, bool)
}

// Result is the YAML and what the conversion said about the file.
type Result struct {
	YAML  []byte
	Diags []Diag
}

// Warnings counts the diags that are warnings.
func (r *Result) Warnings() int {
	n := 0
	for _, d := range r.Diags {
		if !d.Note {
			n++
		}
	}
	return n
}

// Convert translates an haproxy.cfg into halo's YAML. A fault in the file
// (an unclosed quote, an unknown directive, a malformed value) is an
// *Error at its line and column; what halo cannot carry over is a
// warning in the result, written as a comment where its line stood.
func Convert(src []byte, opt Options) (*Result, error) {
	if opt.Lookup == nil {
		opt.Lookup = func(string) (string, bool) { return "", false }
	}
	c := &converter{file: opt.File, diags: &diags{file: opt.File}, env: map[string]*string{}, droppedACLs: map[*Section]map[string]bool{}}
	c.lookup = func(name string) (string, bool) {
		if v, ok := c.env[name]; ok {
			if v == nil {
				return "", false
			}
			return *v, true
		}
		return opt.Lookup(name)
	}
	r := &reader{lex: lexer{file: opt.File, lookup: c.lookup}, diags: c.diags, onStmt: c.setenv}
	stmts, err := r.statements(src)
	if err != nil {
		return nil, err
	}
	secs, trailing, err := r.sections(stmts)
	if err != nil {
		return nil, err
	}
	doc, err := c.document(secs)
	if err != nil {
		return nil, err
	}
	if trailing != "" {
		doc.foot = trailing
	}
	header := fmt.Sprintf("Converted by halo convert from %s.\nEvery line of the source that halo does not carry over as it is has a\ncomment here, and was reported when converting.", filepath.Base(opt.File))
	out, err := render(doc, header)
	if err != nil {
		return nil, err
	}
	// In the order of the file, whichever pass found them.
	sort.SliceStable(c.diags.list, func(i, j int) bool { return c.diags.list[i].Line < c.diags.list[j].Line })
	return &Result{YAML: out, Diags: c.diags.list}, nil
}

// converter holds the state of one conversion.
type converter struct {
	file   string
	diags  *diags
	lookup func(string) (string, bool)
	// env is what the file's setenv, presetenv and unsetenv lines did to
	// the environment (nil: unset).
	env map[string]*string
	// crtBase and caBase are the global section's crt-base and ca-base.
	crtBase, caBase string
	// defaults is the YAML defaults being built, for lines that depend on
	// what is in force (no option http-server-close).
	defaults *node
	// droppedACLs are each section's ACLs that halo's language refused:
	// the lines that use them go too.
	droppedACLs map[*Section]map[string]bool
}

// setenv applies the global section's environment lines as they are read,
// so that the lines after them expand with it, as in HAProxy.
func (c *converter) setenv(st *Stmt) {
	w := st.Texts()
	switch {
	case w[0] == "setenv" && len(w) == 3:
		v := w[2]
		c.env[w[1]] = &v
	case w[0] == "presetenv" && len(w) == 3:
		if _, ok := c.lookup(w[1]); !ok {
			v := w[2]
			c.env[w[1]] = &v
		}
	case w[0] == "unsetenv":
		for _, name := range w[1:] {
			c.env[name] = nil
		}
	}
}

// yamlKinds are the YAML keys of HAProxy's proxy sections.
var yamlKinds = map[string]string{"defaults": "defaults", "frontend": "frontends", "backend": "backends", "listen": "listen"}

// document maps every section into the YAML document.
func (c *converter) document(secs []*Section) (*node, error) {
	doc := newMap()
	// The defaults the proxies take: one section for all of them becomes
	// the YAML defaults; otherwise each proxy carries its own defaults'
	// lines (halo has one defaults section).
	used := map[*Section]bool{}
	without := false // a proxy before any defaults section takes none
	for _, s := range secs {
		if yamlKinds[s.Kind] != "" && s.Kind != "defaults" {
			if s.Defaults != nil {
				used[s.Defaults] = true
			} else {
				without = true
			}
		}
	}
	var shared *Section
	if len(used) == 1 && !without {
		for d := range used {
			shared = d
		}
	}
	inlined := len(used) > 1 || len(used) == 1 && without
	defaults := newMap()
	c.defaults = defaults
	lines := map[*node]int{} // each proxy's header line, for the passes
	for _, s := range secs {
		switch s.Kind {
		case "global":
			g := doc.child("global")
			if s.Head != "" {
				g.head = joinComment(g.head, s.Head)
			}
			c.mapGlobal(s, g)
		case "defaults":
			if s != shared {
				if !used[s] && !c.isFromOf(s, secs) {
					c.diags.note(s.Header.Line, "defaults", describeDefaults(s)+" is used by no proxy: left out")
					continue
				}
				// Its lines are carried into each proxy that takes it;
				// what they say is said once, here.
				scratch := newMap()
				c.mapProxy(s, "defaults", scratch, false)
				if scratch.pending != "" {
					doc.pendingHead(scratch.pending)
				}
				continue
			}
			if s.Head != "" {
				defaults.head = joinComment(defaults.head, s.Head)
			}
			if inlined {
				continue
			}
			c.mapChain(s, "defaults", defaults, false)
		case "frontend", "backend", "listen":
			group := doc.child(yamlKinds[s.Kind])
			if group.get(s.Name) != nil {
				return nil, &Error{File: c.file, Line: s.Header.Line, Col: s.Header.Words[1].Col, Msg: fmt.Sprintf("a second %s called %q", s.Kind, s.Name)}
			}
			p := newMap()
			p.head = s.Head
			lines[p] = s.Header.Line
			group.set(s.Name, p)
			if inlined && s.Defaults != nil {
				c.mapChain(s.Defaults, yamlKinds[s.Kind], p, true)
			}
			c.mapProxy(s, yamlKinds[s.Kind], p, false)
			if p.isEmpty() {
				p.flow = true
			}
		case "userlist":
			c.mapUserlist(s, doc.child("userlists"))
		default:
			doc.pendingHead(c.diags.warn(s.Header.Line, s.Kind, fmt.Sprintf("the section %s is dropped with its %d line(s)", strings.TrimSpace(s.Kind+" "+s.Name), len(s.Body))))
		}
	}
	if g := doc.get("global"); g != nil && g.isEmpty() {
		// Nothing of global carried over but its comments: they go
		// above what follows.
		doc.del("global")
		defaults.head = joinComment(joinComment(g.head, g.pending), defaults.head)
	}
	c.fixDefaults(doc, defaults, shared, inlined)
	c.fixModes(doc, defaults, lines)
	c.fixBinds(doc, lines)
	c.fixALPN(doc, defaults)
	c.fixHTTPCheck(doc, defaults)
	c.fixBalanceFirst(doc, defaults, lines)
	c.fixStats(doc)
	c.fixHardStop(doc)
	prune(doc)
	if !defaults.isEmpty() {
		doc.insertAfter("global", "defaults", defaults)
	}
	return doc, nil
}

// isFromOf reports whether a used defaults section takes d "from".
func (c *converter) isFromOf(d *Section, secs []*Section) bool {
	for _, s := range secs {
		if s != d && s.Kind == "defaults" && s.Defaults == d {
			return true
		}
	}
	return false
}

// mergeDefault writes a defaults value into a proxy as HAProxy applies
// it: a key the proxy does not set takes it; the defaults' rules come
// before the proxy's own, and an ACL of both is matched by either.
func mergeDefault(p *node, key string, v *node) {
	own := p.get(key)
	switch {
	case own == nil:
		p.set(key, v.clone())
		p.flow = false
	case v.kind == yaml.SequenceNode && own.kind == yaml.SequenceNode:
		own.items = append(v.clone().items, own.items...)
	case v.kind == yaml.MappingNode && own.kind == yaml.MappingNode && key == "acl":
		for i, name := range v.keys {
			mine := own.get(name)
			if mine == nil {
				own.set(name, v.vals[i].clone())
				continue
			}
			l := newSeq()
			for _, n := range []*node{v.vals[i].clone(), mine} {
				if n.kind == yaml.SequenceNode {
					l.items = append(l.items, n.items...)
				} else {
					l.items = append(l.items, n)
				}
			}
			own.set(name, l)
		}
	}
}

// describeDefaults names a defaults section in messages.
func describeDefaults(s *Section) string {
	if s.Name != "" {
		return fmt.Sprintf("defaults section %q (line %d)", s.Name, s.Header.Line)
	}
	return fmt.Sprintf("the defaults section of line %d", s.Header.Line)
}

// mapChain maps a defaults section with the ones it takes "from" first.
func (c *converter) mapChain(d *Section, kind string, out *node, inherited bool) {
	if d.Defaults != nil && d.Defaults != d {
		c.mapChain(d.Defaults, kind, out, inherited)
	}
	c.mapProxy(d, kind, out, inherited)
}

// fixDefaults writes HAProxy's defaults where halo's differ, and moves
// the keys halo's defaults section does not take into the proxies.
func (c *converter) fixDefaults(doc, defaults *node, shared *Section, inlined bool) {
	// halo redispatches by default; HAProxy does not.
	opt := defaults.get("option")
	if opt == nil || opt.get("redispatch") == nil {
		o := defaults.child("option")
		o.set("redispatch", boolean(false).withHead("HAProxy does not redispatch without \"option redispatch\"; halo does by default."))
	}
	if inlined || shared == nil {
		return
	}
	for i := 0; i < len(defaults.keys); i++ {
		key := defaults.keys[i]
		if config.SectionAccepts("defaults", key, "") {
			continue
		}
		v := defaults.vals[i]
		for _, kind := range []string{"frontends", "backends", "listen"} {
			group := doc.get(kind)
			if group == nil || !haproxyApplies(kind, key, "") {
				continue
			}
			if !config.SectionAccepts(kind, key, "") {
				if len(group.keys) > 0 {
					group.vals[0].pendingHead(c.diags.warn(firstSrc(v), key, fmt.Sprintf("HAProxy applies this defaults line to each %s; halo does not take it there; dropped", haproxyKind[kind])))
				}
				continue
			}
			for _, p := range group.vals {
				mergeDefault(p, key, v)
			}
		}
		defaults.del(key)
		i--
	}
}
