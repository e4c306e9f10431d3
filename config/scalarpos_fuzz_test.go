package config

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// checkValueOffsets fails unless every scalar in the document data reads
// back (valueOffsets finds its value) and each byte of each value is placed
// at text that reads as it: the same byte, an escape's backslash, the
// first of two single quotes, or a line break a fold or a kept break is.
// The offsets never go backwards, and the end is past the last byte.
func checkValueOffsets(t *testing.T, data []byte) {
	t.Helper()
	var root yaml.Node
	if !utf8.Valid(data) || yaml.Unmarshal(data, &root) != nil {
		// yaml.v3 reads UTF-16 too, but as other bytes than the file's:
		// such a file's words are placed at their keys.
		return
	}
	src := newSource(data)
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		for _, c := range n.Content {
			walk(c)
		}
		if n.Kind != yaml.ScalarNode {
			return
		}
		offs := valueOffsets(src, n)
		if offs == nil && n.Value == "" {
			return // yaml.v3 places some empty values past the file's end
		}
		if offs == nil {
			t.Fatalf("%d:%d: value %q not read back from\n%s", n.Line, n.Column, n.Value, data)
		}
		if len(offs) != len(n.Value)+1 {
			t.Fatalf("value %q: %d offsets", n.Value, len(offs))
		}
		for i := range len(n.Value) {
			o := offs[i]
			if o < 0 || o >= len(data) || (i > 0 && o < offs[i-1]) {
				t.Fatalf("value %q: byte %d at offset %d, after %v, in\n%s", n.Value, i, o, offs[:i], data)
			}
			c := n.Value[i]
			ok := data[o] == c || data[o] == '\\' || data[o] == '\'' && c == '\'' ||
				breakWidth(data, o) > 0 && (c == ' ' || c == '\n' || bytes.HasPrefix(data[o:], []byte("\u2028")) || bytes.HasPrefix(data[o:], []byte("\u2029")))
			if !ok {
				t.Fatalf("value %q: byte %d (%q) placed at %q in\n%s", n.Value, i, c, data[o:min(o+8, len(data))], data)
			}
		}
		if end := offs[len(n.Value)]; end > len(data) || len(n.Value) > 0 && end <= offs[len(n.Value)-1] {
			t.Fatalf("value %q: end %d after %d", n.Value, end, offs[len(n.Value)-1])
		}
		if p := src.position(offs[0]); p.line < n.Line || p.line == n.Line && p.col < n.Column {
			t.Fatalf("value %q at %d:%d placed before its node (%d:%d)", n.Value, p.line, p.col, n.Line, n.Column)
		}
	}
	walk(&root)
}

var fuzzStyles = []yaml.Style{0, yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle, yaml.LiteralStyle, yaml.FoldedStyle}

// FuzzValueOffsets renders random content in every scalar style (and in
// the contexts a value of halo's sits in: a mapping's value, nested, a
// block list's item, a flow list's) with yaml.v3's encoder, which folds
// long lines and picks indentation indicators, then checks the offsets of
// every scalar read back.
func FuzzValueOffsets(f *testing.F) {
	for _, s := range []string{
		"deny if { path_beg /admin }", `set-header X-A "a b"`, "a\tb", "é ü 日本",
		"line one\nline two\n\n  indented\n", " leading space", "trailing space ", "\n\nbreaks first",
		"it's \"quoted\" \\ back", "\x01\x7f control", "a\u2028b\u0085c", "",
		"a long line of http-request words that the encoder folds at eighty columns: " +
			"set-header X-Forwarded-Proto https if { ssl_fc } !{ path_beg /health }",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, style := range fuzzStyles {
			scalar := func() *yaml.Node {
				return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: style}
			}
			key := func(k string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: k} }
			mapping := func(k string, v *yaml.Node) *yaml.Node {
				return &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{key(k), v}}
			}
			docs := []*yaml.Node{
				mapping("k", scalar()),
				mapping("frontends", mapping("public", mapping("http-request", &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{scalar(), scalar()}}))),
				mapping("acl", mapping("a", &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle, Content: []*yaml.Node{scalar(), scalar()}})),
			}
			for _, doc := range docs {
				out, err := marshal(doc)
				if err != nil {
					continue
				}
				checkValueOffsets(t, out)
			}
		}
	})
}

// marshal is yaml.Marshal, with the encoder's panics (on some invalid
// UTF-8) as errors.
func marshal(n *yaml.Node) (out []byte, err error) {
	defer func() {
		if recover() != nil {
			out, err = nil, errPanicked
		}
	}()
	return yaml.Marshal(n)
}

var errPanicked = &Error{Msg: "the encoder panicked"}

// FuzzValueOffsetsRaw checks the offsets of every scalar in a document
// written by hand, where folds, escaped breaks, comments, anchors and tags
// go where the encoder never puts them.
func FuzzValueOffsetsRaw(f *testing.F) {
	for _, s := range []string{
		"k: plain\n  continued\n\n  after a blank line\n",
		"k: \"dq \\x41\\u00e9\\t\\\"x\\\" \\\\\n   folded\\\n   joined\n\n   kept\"\n",
		"k: 'sq ''x''\n  folded\n\n  kept'\n",
		"k: |\n  literal\n   more\n\n  end\n",
		"a:\n  k: |2-\n     two more\n    base\n",
		"k: >+\n  folded\n  lines\n\n   indented\n  back\n\n",
		"k: [a b, \"c d\", 'e', {x: y z}]\n",
		"k: &anchor !!str tagged\nj: *anchor\n",
		"k: \"crlf\r\n  fold\"\r\nj: |\r\n  a\r\n  b\r\n",
		"\ufeffk: bom\n",
		"- >-\n\n  leading break\n- |\n  # not a comment\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkValueOffsets(t, []byte(s))
	})
}
