package convert

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/halo-lb/halo/config"

	"gopkg.in/yaml.v3"
)

// The passes here run on the whole document once every section is mapped:
// they carry over HAProxy behaviour that spans sections, where halo's
// check would refuse what HAProxy accepts.

// effectiveMode is a proxy's mode, its own or the YAML defaults'.
func effectiveMode(p, defaults *node) string {
	if m := effective(p, defaults, "mode"); m != nil {
		return m.value
	}
	return "tcp"
}

// fixModes writes mode http on a tcp frontend whose only backend is in
// mode http: HAProxy upgrades such a frontend's connections to HTTP when
// it routes them there, which is what a mode http frontend does.
func (c *converter) fixModes(doc, defaults *node, lines map[*node]int) {
	fes, bes := doc.get("frontends"), doc.get("backends")
	if fes == nil || bes == nil {
		return
	}
	for i, name := range fes.keys {
		fe := fes.vals[i]
		if effectiveMode(fe, defaults) != "tcp" {
			continue
		}
		// Every backend the frontend can route to, by name.
		var targets []string
		if db := fe.get("default_backend"); db != nil {
			targets = append(targets, db.value)
		}
		if ub := fe.get("use_backend"); ub != nil {
			for _, it := range ub.items {
				target, _, _ := strings.Cut(it.value, " ")
				targets = append(targets, target)
			}
		}
		allHTTP := len(targets) > 0
		for _, t := range targets {
			be := bes.get(t)
			allHTTP = allHTTP && be != nil && effectiveMode(be, defaults) == "http"
		}
		if !allHTTP {
			continue
		}
		db := &node{value: strings.Join(targets, ", ")}
		msg := c.diags.note(lines[fe], "mode", fmt.Sprintf("frontend %s is in mode tcp and its backend %s in mode http: HAProxy upgrades its connections to HTTP, so halo writes it as mode http", name, db.value))
		fe.set("mode", str("http").withHead(msg))
	}
}

// fixBinds drops a bind whose address an earlier frontend or listen
// already binds: HAProxy binds both sockets (SO_REUSEPORT) and the kernel
// spreads connections between the two sections at random; halo takes one
// listener per address. A section left without a bind is dropped.
func (c *converter) fixBinds(doc *node, lines map[*node]int) {
	type section struct {
		kind, name string
		p          *node
	}
	var all []section
	for _, kind := range []string{"listen", "frontends"} {
		if group := doc.get(kind); group != nil {
			for i, name := range group.keys {
				all = append(all, section{kind, name, group.vals[i]})
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return lines[all[i].p] < lines[all[j].p] })
	owner := map[string]string{}
	for _, s := range all {
		name, p, kind := s.name, s.p, s.kind
		group := doc.get(kind)
		binds := p.get("bind")
		if binds == nil {
			c.unbound(doc, kind, name, p, lines[p])
			continue
		}
		kept, shared := binds.items[:0], false
		for _, b := range binds.items {
			addr, iface := b.value, ""
			if b.kind != yaml.ScalarNode {
				if a := b.get("address"); a != nil {
					addr = a.value
				}
				if f := b.get("interface"); f != nil {
					iface = f.value
				}
			}
			key := addr + "%" + iface
			if prev, dup := owner[key]; dup {
				p.pendingHead(c.diags.warn(b.src, "bind", fmt.Sprintf("%s is bound by %s too: HAProxy binds both and the kernel spreads connections between them at random (SO_REUSEPORT); halo takes one listener per address, so %s keeps it and %s does not", addr, prev, prev, name)))
				shared = true
				continue
			}
			owner[key] = name
			kept = append(kept, b)
		}
		binds.items = kept
		if len(kept) == 0 && !shared {
			p.del("bind")
			c.unbound(doc, kind, name, p, lines[p])
			continue
		}
		if len(kept) == 0 {
			note := c.diags.warn(lines[p], haproxyKind[kind], fmt.Sprintf("%s has no address of its own left: the section is dropped", name))
			at := group.index(name)
			group.del(name)
			if at < len(group.keys) {
				group.vals[at].head = joinComment(note, group.vals[at].head)
			} else {
				group.pendingHead(note)
			}
		}
	}
}

// effective is a proxy's value at path, its own or the YAML defaults'.
func effective(p, defaults *node, path ...string) *node {
	for _, n := range []*node{p, defaults} {
		v := n
		for _, k := range path {
			if v == nil {
				break
			}
			v = v.get(k)
		}
		if v != nil {
			return v
		}
	}
	return nil
}

// firstSrc is the source line of n or of the first value under it.
func firstSrc(n *node) int {
	if n.src > 0 {
		return n.src
	}
	for _, v := range append(append([]*node(nil), n.vals...), n.items...) {
		if s := firstSrc(v); s > 0 {
			return s
		}
	}
	return 0
}

// fixALPN takes h2 out of the ALPN list of a mode http bind: halo serves
// HTTP/1.1 only, and HAProxy's client that offered h2 and http/1.1 then
// speaks HTTP/1.1.
func (c *converter) fixALPN(doc, defaults *node) {
	eachSection(doc, []string{"frontends", "listen"}, func(name string, p *node) {
		binds := p.get("bind")
		if binds == nil || effectiveMode(p, defaults) != "http" {
			return
		}
		for _, b := range binds.items {
			alpn := b.get("alpn")
			if alpn == nil {
				continue
			}
			var kept []string
			for proto := range strings.SplitSeq(alpn.value, ",") {
				if proto != "h2" {
					kept = append(kept, proto)
				}
			}
			if len(kept) == len(strings.Split(alpn.value, ",")) {
				continue
			}
			what := "the alpn word is dropped"
			if len(kept) > 0 {
				b.set("alpn", str(strings.Join(kept, ",")))
				what = "written as alpn " + strings.Join(kept, ",")
			} else {
				b.del("alpn")
			}
			p.pendingHead(c.diags.warn(b.src, "bind", fmt.Sprintf("alpn h2 in %s: halo serves HTTP/1.1 only (no HTTP/2), so a client offering h2 speaks HTTP/1.1; %s", name, what)))
		}
	})
}

// fixHTTPCheck drops the http-check rules of a backend without option
// httpchk, which HAProxy ignores (with a warning) and halo refuses.
func (c *converter) fixHTTPCheck(doc, defaults *node) {
	eachSection(doc, []string{"backends", "listen"}, func(name string, p *node) {
		hc := p.get("http-check")
		if hc == nil {
			return
		}
		if on := effective(p, defaults, "option", "httpchk"); on != nil && on.value == "true" {
			return
		}
		msg := c.diags.warn(firstSrc(hc), "http-check", fmt.Sprintf("%s has no option httpchk, so HAProxy ignores its http-check rules (it warns); dropped", name))
		p.del("http-check")
		p.pendingHead(msg)
	})
}

// fixBalanceFirst writes "balance first" without any server maxconn as
// halo's backups: HAProxy then sends every connection to the first usable
// server in order, which is what halo does with the first server active
// and the others backups, taken in order. halo refuses "first" without
// maxconn, where it would mean nothing else.
func (c *converter) fixBalanceFirst(doc, defaults *node, lines map[*node]int) {
	eachSection(doc, []string{"backends", "listen"}, func(name string, p *node) {
		b := effective(p, defaults, "balance")
		servers := p.get("servers")
		if b == nil || b.value != "first" || servers == nil || len(servers.items) == 0 {
			return
		}
		if effective(p, defaults, "default-server", "maxconn") != nil || effective(p, defaults, "option", "allbackups") != nil {
			return
		}
		plain := true
		for _, s := range servers.items {
			plain = plain && s.get("maxconn") == nil && s.get("backup") == nil
		}
		if !plain {
			return
		}
		if len(servers.items) == 1 {
			p.set("balance", str("roundrobin"))
			p.get("balance").head = c.diags.note(b.src, "balance first", fmt.Sprintf("%s has one server, which takes every connection whatever the algorithm: written as roundrobin (halo's first needs maxconn)", name))
			return
		}
		for _, s := range servers.items[1:] {
			s.set("backup", boolean(true))
		}
		p.set("balance", str("roundrobin"))
		line := lines[p]
		if b.src > 0 {
			line = b.src
		}
		p.get("balance").head = c.diags.note(line, "balance first", fmt.Sprintf("no server of %s has maxconn, so HAProxy sends every connection to the first usable server in order: written as the first server with the others as backups, which halo takes in order", name))
	})
}

// fixStats gives a stats page HAProxy's realm when the file names none,
// and drops "stats admin" from a page without a login, which halo refuses
// (anyone could change server state through it).
func (c *converter) fixStats(doc *node) {
	eachSection(doc, []string{"frontends", "listen"}, func(name string, p *node) {
		st := p.get("stats")
		if st == nil || st.get("enable") == nil || st.get("enable").value != "true" {
			return
		}
		if st.get("realm") == nil && st.get("auth") != nil {
			st.set("realm", str("HAProxy Statistics"))
		}
		if a := st.get("admin"); a != nil && st.get("auth") == nil {
			st.del("admin")
			st.pendingHead(c.diags.warn(a.src, "stats admin", fmt.Sprintf("the stats page of %s has no stats auth: halo refuses an admin page anyone could use; written without admin (add stats auth to keep it)", name)))
		}
	})
}

// fixHardStop bounds the drain of a reload or stop as HAProxy's is: with
// no hard-stop-after HAProxy waits for every session to end, which a quiet
// one does at its timeout; halo's default is 30 s, so the longest timeout
// of the file is written where it is longer.
func (c *converter) fixHardStop(doc *node) {
	g := doc.get("global")
	if g != nil && g.get("hard-stop-after") != nil {
		return
	}
	var longest time.Duration
	var spelled string
	var line int
	var walk func(n *node, key string)
	walk = func(n *node, key string) {
		if key == "timeout" && n.kind == yaml.MappingNode {
			for i, k := range n.keys {
				if k != "client" && k != "server" && k != "tunnel" {
					continue
				}
				if d, err := config.ParseDuration(n.vals[i].value); err == nil && d > longest {
					longest, spelled, line = d, n.vals[i].value, n.vals[i].src
				}
			}
			return
		}
		for i, k := range n.keys {
			walk(n.vals[i], k)
		}
	}
	walk(doc, "")
	if longest <= config.DefaultHardStopAfter {
		return
	}
	if g == nil {
		g = newMap()
		doc.insertAfter("", "global", g)
	}
	msg := c.diags.note(line, "hard-stop-after", fmt.Sprintf("the file sets none, so HAProxy lets a reload or stop drain until every session ends; halo's default is 30s: written as the longest client, server or tunnel timeout of the file, %s", spelled))
	g.set("hard-stop-after", str(spelled).withHead(msg))
}

// unbound handles a frontend or listen with no bind (none written, or
// none halo can take): HAProxy warns and serves nothing there; a listen's
// servers still serve the frontends that route to it, so a listen becomes
// a backend, a frontend is dropped.
func (c *converter) unbound(doc *node, kind, name string, p *node, line int) {
	group := doc.get(kind)
	at := group.index(name)
	group.del(name)
	if kind == "frontends" {
		note := c.diags.warn(line, "frontend", fmt.Sprintf("%s has no address halo can bind: HAProxy would accept no connection there either; the section is dropped", name))
		if at < len(group.keys) {
			group.vals[at].head = joinComment(note, group.vals[at].head)
		} else {
			group.pendingHead(note)
		}
		return
	}
	be := newMap()
	be.head = joinComment(p.head, c.diags.warn(line, "listen", fmt.Sprintf("%s has no bind: HAProxy warns and keeps it as a backend; written as one", name)))
	for i, k := range p.keys {
		if config.SectionAccepts("backends", k, "") {
			be.set(k, p.vals[i])
		} else if k != "bind" {
			be.pendingHead(c.diags.warn(firstSrc(p.vals[i]), k, fmt.Sprintf("%s is written as a backend, which does not take it; dropped", name)))
		}
	}
	if t := be.get("timeout"); t != nil {
		for _, k := range append([]string(nil), t.keys...) {
			if !config.SectionAccepts("backends", "timeout", k) {
				t.del(k)
			}
		}
	}
	doc.child("backends").set(name, be)
}

// prune removes what the passes emptied: a group of sections left with
// none, an empty timeout or option mapping of a section. Their comments
// move to what follows.
func prune(doc *node) {
	for _, kind := range []string{"frontends", "backends", "listen"} {
		group := doc.get(kind)
		if group == nil {
			continue
		}
		for _, p := range group.vals {
			for i := 0; i < len(p.keys); i++ {
				v := p.vals[i]
				if (v.kind == yaml.MappingNode && len(v.keys) == 0 || v.kind == yaml.SequenceNode && len(v.items) == 0) && v.pending == "" {
					if v.head != "" {
						p.pendingHead(v.head)
					}
					p.del(p.keys[i])
					i--
				}
			}
		}
		if len(group.keys) == 0 {
			doc.pendingHead(joinComment(group.head, group.pending))
			doc.del(kind)
		}
	}
}

// eachSection calls f for every section of the given kinds, group by group
// in the document's order.
func eachSection(doc *node, kinds []string, f func(name string, p *node)) {
	for _, kind := range kinds {
		if group := doc.get(kind); group != nil {
			for i, name := range group.keys {
				f(name, group.vals[i])
			}
		}
	}
}
