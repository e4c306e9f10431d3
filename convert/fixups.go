package convert

import (
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"
)

// The passes here run on the whole document once every section is mapped:
// they carry over HAProxy behaviour that spans sections, where halo's
// check would refuse what HAProxy accepts.

// effectiveMode is a proxy's mode, its own or the YAML defaults'.
func effectiveMode(p, defaults *node) string {
	if m := p.get("mode"); m != nil {
		return m.value
	}
	if defaults != nil {
		if m := defaults.get("mode"); m != nil {
			return m.value
		}
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
		if effectiveMode(fe, defaults) != "tcp" || fe.get("use_backend") != nil {
			continue
		}
		db := fe.get("default_backend")
		if db == nil {
			continue
		}
		be := bes.get(db.value)
		if be == nil || effectiveMode(be, defaults) != "http" {
			continue
		}
		c.diags.note(lines[fe], "mode", fmt.Sprintf("frontend %s is in mode tcp and its backend %s in mode http: HAProxy upgrades its connections to HTTP, so halo writes it as mode http", name, db.value))
		fe.set("mode", str("http").withHead(c.diags.list[len(c.diags.list)-1].comment()))
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
			continue
		}
		kept := binds.items[:0]
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
				c.diags.warn(b.src, "bind", fmt.Sprintf("%s is bound by %s too: HAProxy binds both and the kernel spreads connections between them at random (SO_REUSEPORT); halo takes one listener per address, so %s keeps it and %s does not", addr, prev, prev, name))
				p.pendingHead(c.diags.list[len(c.diags.list)-1].comment())
				continue
			}
			owner[key] = name
			kept = append(kept, b)
		}
		binds.items = kept
		if len(kept) == 0 {
			c.diags.warn(lines[p], haproxyKind[kind], fmt.Sprintf("%s has no address of its own left: the section is dropped", name))
			note := c.diags.list[len(c.diags.list)-1].comment()
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
