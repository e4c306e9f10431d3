package config

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// A language's string under test: its words, the one at fault, and where
// in a configuration the string goes.
type posLang struct {
	name  string
	words []string
	bad   int    // index of the word at fault
	msg   string // what the error says
	// block is the configuration with VALUE where the string goes as a
	// block value; cont is the indentation of the string's own lines.
	block, cont string
	// flow is the configuration with the string inside a flow
	// collection.
	flow string
}

const posBase = `defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  public:
    bind: "127.0.0.1:8080"
    default_backend: keystone
FRONTEND
backends:
  keystone:
    servers: [{name: a, address: "127.0.0.1:5000"}]
BACKEND
`

func posConfig(frontend, backend string) string {
	return strings.NewReplacer("FRONTEND\n", frontend, "BACKEND\n", backend).Replace(posBase)
}

// posFlowBackend is the configuration with the backend written as one
// flow mapping that has keyValue.
func posFlowBackend(keyValue string) string {
	return strings.Replace(posConfig("", ""), "  keystone:\n    servers: [{name: a, address: \"127.0.0.1:5000\"}]\n",
		"  keystone: {servers: [{name: a, address: \"127.0.0.1:5000\"}], mode: http, "+keyValue+"}\n", 1)
}

var posLangs = []posLang{
	{
		name: "acl", words: []string{"path_beg", "-m", "dam", "/x"}, bad: 2, msg: `unknown match method "dam"`,
		block: posConfig("    acl:\n      bad: VALUE\n", ""), cont: "        ",
		flow: posConfig("    acl:\n      bad: [path_beg /ok, VALUE]\n", ""),
	},
	{
		name: "http-request", words: []string{"deny", "deny_status", "403", "if", "blockd"}, bad: 4, msg: `unknown ACL "blockd"`,
		block: posConfig("    http-request:\n      - VALUE\n", ""), cont: "        ",
		flow: posConfig("    http-request: [deny if TRUE, VALUE]\n", ""),
	},
	{
		name: "use_backend", words: []string{"keystone", "if", "TRUE", "||", "nope"}, bad: 4, msg: `unknown ACL "nope"`,
		block: posConfig("    use_backend:\n      - VALUE\n", ""), cont: "        ",
		flow: posConfig("    use_backend: [keystone if FALSE, VALUE]\n", ""),
	},
	{
		name: "balance", words: []string{"uri", "len", "32", "depth", "many"}, bad: 4, msg: `depth "many" must be a positive number`,
		block: posConfig("", "    mode: http\n    balance: VALUE\n"), cont: "      ",
		flow: posFlowBackend("balance: VALUE"),
	},
	{
		name: "cookie", words: []string{"SRV", "insert", "indirect", "bogus"}, bad: 3, msg: `unknown cookie option "bogus"`,
		block: posConfig("", "    cookie: VALUE\n"), cont: "      ",
		flow: posFlowBackend("cookie: VALUE"),
	},
	{
		name: "stick-table", words: []string{"type", "ip", "size", "1k", "expire", "soon"}, bad: 5, msg: `invalid duration "soon"`,
		block: posConfig("", "    stick-table: VALUE\n"), cont: "      ",
		flow: posFlowBackend("stick-table: VALUE"),
	},
}

// A way of writing a string in YAML: render gives the text after "key: "
// (or "- "), with cont the indentation of its further lines, and the text
// the error must point at (the word, or the escape that makes its first
// byte).
type posStyle struct {
	name   string
	render func(ws []string, bad int, cont string) (text, marker string)
	flow   bool // usable inside a flow collection
}

func join(ws []string) string { return strings.Join(ws, " ") }

func hexFirst(w string) string { return fmt.Sprintf(`\x%02x`, w[0]) + w[1:] }

var posStyles = []posStyle{
	{name: "plain", flow: true, render: func(ws []string, bad int, _ string) (string, string) {
		return join(ws), ws[bad]
	}},
	{name: "plain continued", render: func(ws []string, bad int, cont string) (string, string) {
		return join(ws[:bad]) + "\n" + cont + join(ws[bad:]), ws[bad]
	}},
	{name: "plain continued in flow", flow: true, render: func(ws []string, bad int, cont string) (string, string) {
		return join(ws[:bad]) + "\n" + cont + "  " + join(ws[bad:]), ws[bad]
	}},
	{name: "double-quoted with escapes", flow: true, render: func(ws []string, bad int, _ string) (string, string) {
		var b []string
		for _, w := range ws[:bad] {
			b = append(b, hexFirst(w))
		}
		// \u0020 is a space, \" and \\ are not in the words: the
		// offsets after each differ from the file's.
		return `"` + strings.Join(b, `\u0020`) + `\x20` + join(ws[bad:]) + `"`, ws[bad]
	}},
	{name: "double-quoted, the word escaped", flow: true, render: func(ws []string, bad int, _ string) (string, string) {
		m := hexFirst(ws[bad])
		return `"` + join(ws[:bad]) + " " + m + " " + join(ws[bad+1:]) + `"`, m[:4]
	}},
	{name: "double-quoted folded", flow: true, render: func(ws []string, bad int, cont string) (string, string) {
		// An escaped break inside the word before, then a break that
		// folds into a space.
		prev := ws[bad-1]
		return `"` + join(ws[:bad-1]) + " " + prev[:1] + "\\\n" + cont + prev[1:] + "\n" + cont + join(ws[bad:]) + `"`, ws[bad]
	}},
	{name: "single-quoted folded", flow: true, render: func(ws []string, bad int, cont string) (string, string) {
		return "'" + join(ws[:bad]) + "\n" + cont + join(ws[bad:]) + "'", ws[bad]
	}},
	{name: "literal |-", render: func(ws []string, bad int, cont string) (string, string) {
		return "|-\n" + cont + join(ws), ws[bad]
	}},
	{name: "literal |2- (more indented)", render: func(ws []string, bad int, cont string) (string, string) {
		return "|2-\n" + cont + "   " + join(ws), ws[bad]
	}},
	{name: "literal |- with a comment", render: func(ws []string, bad int, cont string) (string, string) {
		return "|- # the rule\n" + cont + join(ws), ws[bad]
	}},
	{name: "folded >", render: func(ws []string, bad int, cont string) (string, string) {
		return ">-\n" + cont + join(ws[:bad]) + "\n" + cont + join(ws[bad:]), ws[bad]
	}},
	{name: "folded >2-", render: func(ws []string, bad int, cont string) (string, string) {
		return ">2-\n" + cont + join(ws[:bad]) + "\n" + cont + join(ws[bad:]), ws[bad]
	}},
}

// TestWordPositionsInEveryStyle: an error about a word of a string in one
// of HAProxy's languages is at the word's own line and column in the
// file, in every way YAML lets the string be written.
func TestWordPositionsInEveryStyle(t *testing.T) {
	for _, l := range posLangs {
		for _, s := range posStyles {
			t.Run(l.name+"/"+s.name, func(t *testing.T) {
				text, marker := s.render(l.words, l.bad, l.cont)
				checkWordPosition(t, strings.Replace(l.block, "VALUE", text, 1), marker, l.msg)
			})
			if s.flow {
				t.Run(l.name+"/flow/"+s.name, func(t *testing.T) {
					text, marker := s.render(l.words, l.bad, l.cont)
					checkWordPosition(t, strings.Replace(l.flow, "VALUE", text, 1), marker, l.msg)
				})
			}
		}
	}
}

// checkWordPosition loads cfg and wants exactly one error, saying msg, at
// the first place marker is written past the string's key.
func checkWordPosition(t *testing.T, cfg, marker, msg string) {
	t.Helper()
	_, err := Parse("halo.yaml", []byte(cfg))
	errs := Errors(err)
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, msg) {
		t.Fatalf("want one error saying %s, got %v\n%s", msg, err, cfg)
	}
	at := strings.Index(cfg, marker)
	for strings.Count(cfg, marker) > 1 {
		t.Fatalf("marker %q is not unique in\n%s", marker, cfg)
	}
	line := 1 + strings.Count(cfg[:at], "\n")
	col := 1 + utf8.RuneCountInString(cfg[strings.LastIndexByte(cfg[:at], '\n')+1:at])
	want := fmt.Sprintf("halo.yaml:%d:%d: ", line, col)
	if got := err.Error(); !strings.HasPrefix(got, want) {
		t.Errorf("got %s\nwant it at %s (%q)\n%s", got, want, marker, cfg)
	}
}

// TestWordPositionsExact spells out a few positions, the odd cases among
// them: columns count characters (é is one column of two bytes; \u00e9
// is six columns of the file for two bytes of the value), two single
// quotes read as one, a word made by an escape is at its backslash, and a
// literal block's trailing break does not move the words.
func TestWordPositionsExact(t *testing.T) {
	rule := func(value string) string { return posConfig("    http-request:\n      - "+value+"\n", "") }
	for _, tc := range []struct{ name, cfg, want string }{
		{"plain after é", rule("set-header X-Name café if blockd"), "halo.yaml:7:35: "},
		{"double-quoted after \\u00e9", rule(`"set-header X-Name caf\u00e9 if blockd"`), "halo.yaml:7:41: "},
		{"double-quoted after \\\" and \\\\", rule(`"set-header X-Name \"a\\\\b\" if blockd"`), "halo.yaml:7:42: "},
		{"single-quoted with ''", rule(`'set-header X-A ''a b'' if blockd'`), "halo.yaml:7:36: "},
		{"word from an escape", rule(`"deny if \x62lockd"`), "halo.yaml:7:18: "},
		{"after a \\t escape", rule(`"deny if\tblockd"`), "halo.yaml:7:19: "},
		// A block's final line break stays in the value, and in the
		// last word: HAProxy's words are split at spaces and tabs.
		{"literal |", rule("|\n        deny if blockd"), "halo.yaml:8:17: "},
		{"literal |+ with trailing lines", rule("|+\n        deny if blockd\n\n"), "halo.yaml:8:17: "},
		{"folded, the word on the third line", rule(">\n        deny\n        if\n        blockd"), "halo.yaml:10:9: "},
		{"anchored and tagged", rule("&r !!str deny if blockd"), "halo.yaml:7:26: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("halo.yaml", []byte(tc.cfg))
			if len(Errors(err)) != 1 || !strings.HasPrefix(err.Error(), tc.want) || !strings.Contains(err.Error(), `"blockd`) {
				t.Errorf("got %v, want one error about blockd at %s\n%s", err, tc.want, tc.cfg)
			}
		})
	}
}

// TestValueOffsetsFallBack: a value that the file's bytes do not read
// back as (here a node claiming another text) has no offsets, so that
// its errors go to the key rather than to a wrong column.
func TestValueOffsetsFallBack(t *testing.T) {
	data := []byte("k: \"a\\tb\"\n")
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	n := root.Content[0].Content[1]
	src := newSource(data)
	if got := valueOffsets(src, n); len(got) != 4 || got[1] != 5 || got[2] != 7 || got[3] != 8 {
		t.Fatalf("offsets of %q: %v, want [4 5 7 8]", n.Value, got)
	}
	n.Value = "a b"
	if got := valueOffsets(src, n); got != nil {
		t.Errorf("offsets of a value the file does not hold: %v", got)
	}
}
