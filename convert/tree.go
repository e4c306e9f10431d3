package convert

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// node is the YAML being built: a mapping that keeps its keys in the order
// they were first set, a sequence, or a scalar, each with the comments that
// go with it. Scalars carry their YAML tag so that a string that looks like
// a number or a boolean stays a string.
type node struct {
	kind  yaml.Kind
	tag   string // scalars: !!str, !!int or !!bool
	value string
	keys  []string
	vals  []*node
	items []*node
	// head is written on the lines above, line after the value.
	head, line string
	// foot is written after a mapping's last key; pending goes above the
	// next key set (a dropped line's warning, where the line stood).
	foot, pending string
	flow          bool
	// src is the source line that set the value (0: none).
	src int
}

func newMap() *node      { return &node{kind: yaml.MappingNode} }
func newSeq() *node      { return &node{kind: yaml.SequenceNode} }
func str(s string) *node { return &node{kind: yaml.ScalarNode, tag: "!!str", value: s} }
func boolean(b bool) *node {
	return &node{kind: yaml.ScalarNode, tag: "!!bool", value: strconv.FormatBool(b)}
}
func integer(n int64) *node {
	return &node{kind: yaml.ScalarNode, tag: "!!int", value: strconv.FormatInt(n, 10)}
}
func (n *node) isEmpty() bool           { return n.kind == yaml.MappingNode && len(n.keys) == 0 }
func (n *node) withHead(c string) *node { n.head = joinComment(n.head, c); return n }

// get returns the value of key, or nil.
func (n *node) get(key string) *node {
	for i, k := range n.keys {
		if k == key {
			return n.vals[i]
		}
	}
	return nil
}

// set sets key to v, in the place of an earlier value (the later line
// wins, as in HAProxy), keeping the earlier one's comments.
func (n *node) set(key string, v *node) {
	for i, k := range n.keys {
		if k == key {
			v.head = joinComment(n.vals[i].head, v.head)
			n.vals[i] = v
			return
		}
	}
	if n.pending != "" {
		v.head = joinComment(n.pending, v.head)
		n.pending = ""
	}
	n.keys = append(n.keys, key)
	n.vals = append(n.vals, v)
}

// pendingHead keeps a comment for the next key set, or for the end.
func (n *node) pendingHead(c string) { n.pending = joinComment(n.pending, c) }

// insertAfter sets key to v just after key after (or first).
func (n *node) insertAfter(after, key string, v *node) {
	at := 0
	for i, k := range n.keys {
		if k == after {
			at = i + 1
		}
	}
	n.keys = append(n.keys[:at], append([]string{key}, n.keys[at:]...)...)
	n.vals = append(n.vals[:at], append([]*node{v}, n.vals[at:]...)...)
}

// index is key's place, or -1.
func (n *node) index(key string) int {
	for i, k := range n.keys {
		if k == key {
			return i
		}
	}
	return -1
}

// del removes key.
func (n *node) del(key string) {
	for i, k := range n.keys {
		if k == key {
			n.keys = append(n.keys[:i], n.keys[i+1:]...)
			n.vals = append(n.vals[:i], n.vals[i+1:]...)
			return
		}
	}
}

// child returns the mapping at key, creating it.
func (n *node) child(key string) *node {
	if c := n.get(key); c != nil && c.kind == yaml.MappingNode {
		return c
	}
	c := newMap()
	n.set(key, c)
	return c
}

// list returns the sequence at key, creating it.
func (n *node) list(key string) *node {
	if c := n.get(key); c != nil && c.kind == yaml.SequenceNode {
		return c
	}
	c := newSeq()
	n.set(key, c)
	return c
}

func (n *node) clone() *node {
	c := *n
	c.keys = append([]string(nil), n.keys...)
	c.vals = make([]*node, len(n.vals))
	for i, v := range n.vals {
		c.vals[i] = v.clone()
	}
	c.items = make([]*node, len(n.items))
	for i, v := range n.items {
		c.items[i] = v.clone()
	}
	return &c
}

func joinComment(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "\n" + b
}

// yamlNode turns the tree into yaml.v3's nodes.
func (n *node) yamlNode() *yaml.Node {
	y := &yaml.Node{Kind: n.kind, HeadComment: comment(n.head), LineComment: comment(n.line), FootComment: comment(n.foot)}
	if n.flow || n.compact() {
		y.Style = yaml.FlowStyle
	}
	switch n.kind {
	case yaml.ScalarNode:
		y.Tag, y.Value = n.tag, n.value
	case yaml.MappingNode:
		for i, k := range n.keys {
			v := n.vals[i]
			key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k, HeadComment: comment(v.head)}
			vn := v.yamlNode()
			vn.HeadComment = ""
			if v.kind == yaml.ScalarNode {
				key.LineComment, vn.LineComment = comment(v.line), ""
			}
			y.Content = append(y.Content, key, vn)
		}
	case yaml.SequenceNode:
		for _, it := range n.items {
			y.Content = append(y.Content, it.yamlNode())
		}
	}
	return y
}

// compact reports whether a mapping or sequence reads best on one line:
// a few scalars without comments (timeout: {client: 1m, server: 1m}).
func (n *node) compact() bool {
	vals := n.vals
	if n.kind == yaml.SequenceNode {
		vals = n.items
	}
	if len(vals) == 0 || len(vals) > 6 || n.pending != "" || n.foot != "" {
		return false
	}
	for _, v := range vals {
		if v.kind != yaml.ScalarNode || v.head != "" || v.line != "" || len(v.value) > 40 {
			return false
		}
	}
	return true
}

// comment prefixes each line of c with "# ".
func comment(c string) string {
	if c == "" {
		return ""
	}
	lines := strings.Split(printable(c), "\n")
	for i, l := range lines {
		if l == "" {
			lines[i] = "#"
		} else {
			lines[i] = "# " + l
		}
	}
	return strings.Join(lines, "\n")
}

// printable escapes what a YAML comment cannot hold: control characters
// and Unicode's line separators, written as \xHH or \uHHHH.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", r)
		case r == 0x85 || r == 0x2028 || r == 0x2029 || r == 0xfeff || r >= 0x80 && r < 0xa0:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// hoistFeet moves the comments left at the end of each mapping or
// sequence (a dropped line's warning after the last key) onto a key of
// their own mapping: above the next key, or above the last one when
// nothing follows. yaml.v3 writes a nested foot comment after the next
// key of the parent, where it reads as that key's or breaks the
// document. An empty mapping hands its comments to its parent; the
// document keeps what is left as its foot.
func hoistFeet(n *node) string {
	vals := n.vals
	if n.kind == yaml.SequenceNode {
		vals = n.items
	}
	for i, v := range vals {
		left := hoistFeet(v)
		if left == "" {
			continue
		}
		if i+1 < len(vals) {
			vals[i+1].head = joinComment(left, vals[i+1].head)
		} else {
			v.head = joinComment(v.head, left)
		}
	}
	left := joinComment(n.pending, n.foot)
	n.pending, n.foot = "", ""
	if left != "" && len(vals) > 0 {
		last := vals[len(vals)-1]
		last.head = joinComment(last.head, left)
		return ""
	}
	return left
}

// render writes the document with two-space indentation.
func render(doc *node, header string) ([]byte, error) {
	doc.foot = hoistFeet(doc)
	var b bytes.Buffer
	b.WriteString(comment(header))
	b.WriteString("\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc.yamlNode()); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
