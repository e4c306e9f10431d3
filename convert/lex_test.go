package convert

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func words(t *testing.T, line string, vars map[string]string) []string {
	t.Helper()
	l := lexer{file: "t.cfg", lookup: env(vars)}
	st, err := l.line(1, line)
	if err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	if st == nil {
		return nil
	}
	return st.Texts()
}

// The quoting and escaping cases of HAProxy's configuration manual
// (section 2.2), and its environment variables (2.3).
func TestLexerReadsWordsAsHAProxy(t *testing.T) {
	vars := map[string]string{"FD_APP1": "3", "LIST": "a  b c", "EMPTY": "", "PADDED": " 1 2 "}
	for _, c := range []struct {
		line string
		want []string
	}{
		{`log-format %{+Q}o\ %t\ %s\ %{-Q}r`, []string{"log-format", "%{+Q}o %t %s %{-Q}r"}},
		{`log-format "%{+Q}o %t %s %{-Q}r"`, []string{"log-format", "%{+Q}o %t %s %{-Q}r"}},
		{`log-format '%{+Q}o %t %s %{-Q}r'`, []string{"log-format", "%{+Q}o %t %s %{-Q}r"}},
		{`log-format "%{+Q}o %t"' %s %{-Q}r'`, []string{"log-format", "%{+Q}o %t %s %{-Q}r"}},
		{`log-format "%{+Q}o %t"' %s'\ %{-Q}r`, []string{"log-format", "%{+Q}o %t %s %{-Q}r"}},
		{"  bind :80   # the public port", []string{"bind", ":80"}},
		{`acl a hdr(x) \#tag`, []string{"acl", "a", "hdr(x)", "#tag"}},
		{`x "a#b" 'c"d' "e'f" \"`, []string{"x", "a#b", `c"d`, "e'f", `"`}},
		{`x \x41\x62 "\t" \n`, []string{"x", "Ab", "\t", "\n"}},
		{`x \1 "\d" '\\'`, []string{"x", `\1`, `\d`, `\\`}},
		{`x "\$HOME" $HOME \$`, []string{"x", "$HOME", "$HOME", `\$`}},
		{`bind "fd@${FD_APP1}"`, []string{"bind", "fd@3"}},
		{`bind "fd@$FD_APP1"`, []string{"bind", "fd@3"}},
		{`log "${LOCAL_SYSLOG-127.0.0.1}:514" local0`, []string{"log", "127.0.0.1:514", "local0"}},
		{`x "${EMPTY-default}"`, []string{"x", ""}},
		{`x "${LIST[*]}" end`, []string{"x", "a", "b", "c", "end"}},
		{`x foo"${PADDED[*]}"bar`, []string{"x", "foo", "1", "2", "bar"}},
		{`x pre"${LIST[*]}"post`, []string{"x", "prea", "b", "cpost"}},
		{`x "${EMPTY[*]}" "${UNSET[*]}" y`, []string{"x", "y"}},
		{`x "$UNSET" y`, []string{"x", "", "y"}},
		{`x ""`, []string{"x", ""}},
		{"x\r", []string{"x"}},
		{"   # only a comment", nil},
	} {
		if got := words(t, c.line, vars); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: got %q, want %q", c.line, got, c.want)
		}
	}
}

func TestLexerErrorsNameTheColumn(t *testing.T) {
	for _, c := range []struct {
		line string
		col  int
		msg  string
	}{
		{`acl a path "/x`, 12, "quote"},
		{`acl a path '/x`, 12, "quote"},
		{`x ab\x4`, 5, "hexadecimal"},
		{`x "${1BAD}"`, 6, "variable name"},
		{`x "${VAR"`, 5, "brace"},
		{`x "${VAR[x]}"`, 9, "[*]"},
		{`x "$.NOPE"`, 5, "pseudo-variable"},
	} {
		l := lexer{file: "t.cfg", lookup: env(nil)}
		_, err := l.line(7, c.line)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%q: err %v, want an *Error", c.line, err)
			continue
		}
		if e.Line != 7 || e.Col != c.col || !strings.Contains(e.Msg, c.msg) {
			t.Errorf("%q: %v, want line 7 col %d and %q", c.line, e, c.col, c.msg)
		}
	}
}

func TestWordColumnsAndRawText(t *testing.T) {
	l := lexer{file: "t.cfg", lookup: env(nil)}
	st, err := l.line(1, `    http-request set-header X-A "a b" if { ssl_fc }  # why`)
	if err != nil {
		t.Fatal(err)
	}
	if st.Words[0].Col != 5 || st.Words[3].Col != 33 {
		t.Errorf("columns %d %d, want 5 33", st.Words[0].Col, st.Words[3].Col)
	}
	if got := st.RawFrom(1); got != `set-header X-A "a b" if { ssl_fc }` {
		t.Errorf("raw %q", got)
	}
	if st.Comment != "why" {
		t.Errorf("comment %q", st.Comment)
	}
	// An escaped blank at the end belongs to the last word.
	st, err = l.line(2, `http-request set-header X-Pad ok\  `)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.RawFrom(1); got != `set-header X-Pad ok\ ` || st.Words[3].Text != "ok " {
		t.Errorf("raw %q, last word %q", got, st.Words[3].Text)
	}
}

func TestConditionalBlocks(t *testing.T) {
	src := `global
.if defined(WITH_SSL)
  .if streq("$WITH_SSL",yes)
    maxconn 1
  .elif streq("$WITH_SSL",no)
    maxconn 2
  .else
    maxconn 3
  .endif
.elif version_atleast(2.4-dev19) && !feature(LUA)
    maxconn 4
.else
    maxconn 5
.endif
.if 0
    this line is not mapped
.endif
`
	for _, c := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"WITH_SSL": "yes"}, "maxconn: 1"},
		{map[string]string{"WITH_SSL": "no"}, "maxconn: 2"},
		{map[string]string{"WITH_SSL": "maybe"}, "maxconn: 3"},
		{nil, "maxconn: 4"},
	} {
		res, err := Convert([]byte(src), Options{File: "c.cfg", Lookup: env(c.vars)})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(res.YAML), c.want) || strings.Count(string(res.YAML), "maxconn") != 1 {
			t.Errorf("%v: got\n%s\nwant %q", c.vars, res.YAML, c.want)
		}
	}
}

func TestConditionalErrorsArePositioned(t *testing.T) {
	for _, c := range []struct {
		src       string
		line, col int
		msg       string
	}{
		{"global\n.endif\n", 2, 1, ".endif without .if"},
		{"global\n.if 1\n", 2, 1, ".if without .endif"},
		{"global\n.if bogus(1)\n.endif\n", 2, 5, "unknown predicate"},
		{"global\n.if streq(a)\n.endif\n", 2, 5, "2 argument"},
		{"global\n.else\n", 2, 1, ".else without .if"},
		{"global\n  .frob\n", 2, 3, "unknown directive"},
		{"global\n.alert \"no TLS\"\n", 2, 1, "refuse to start"},
		{"  maxconn 1\n", 1, 3, "outside of any section"},
		{"frontend\n", 1, 1, "needs a name"},
		{"frontend a from nowhere\n", 1, 17, "not defined"},
		// HAProxy cuts the lines of a skipped block into words too.
		{"global\n.if 0\n  x \"unclosed\n.endif\n", 3, 5, "not closed"},
	} {
		_, err := Convert([]byte(c.src), Options{File: "c.cfg"})
		var e *Error
		if !errors.As(err, &e) || e.Line != c.line || e.Col != c.col || !strings.Contains(e.Msg, c.msg) {
			t.Errorf("%q: %v, want c.cfg:%d:%d: ...%s", c.src, err, c.line, c.col, c.msg)
		}
	}
}
