package lang

import (
	"strings"
	"testing"
)

// TestFormatFlags checks which flags each part keeps: HAProxy accepts
// every flag on every variable and honours it where the variable's
// table says (TestFormatFlagsAsHAProxy in proxy/rules has the values).
func TestFormatFlags(t *testing.T) {
	f, err := ParseFormatText("%{+Q,+X}o%ci%cp%[src]%{-Q}HM%{+E}[path]%Ts", AtRequest)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		v     string
		flags LogFlags
	}{{"ci", FlagQuote | FlagHex}, {"cp", FlagHex}, {"", 0}, {"HM", 0}, {"", FlagEscape}, {"Ts", FlagHex}}
	if len(f.Parts) != len(want) {
		t.Fatalf("%d parts: %+v", len(f.Parts), f.Parts)
	}
	for i, w := range want {
		if p := f.Parts[i]; p.Var != w.v || p.Flags != w.flags {
			t.Errorf("part %d: %q %b, want %q %b", i, p.Var, p.Flags, w.v, w.flags)
		}
	}
	// unique-id-format's spaces: one separator, none at the start.
	w := Word{Text: "%{+X}o   %ci  x", at: make([]int, 16)}
	for i := range w.at {
		w.at[i] = i
	}
	f, err = ParseLogFormat(w, AtRequest)
	if err != nil || len(f.Parts) != 2 || f.Parts[0].Var != "ci" || f.Parts[1].Lit != " x" {
		t.Errorf("merged spaces: %+v %v", f, err)
	}
}

func TestFormatAndFetchErrors(t *testing.T) {
	for _, tc := range []struct {
		text string
		off  int
		msg  string
	}{
		{"a%{+Q", 2, "not closed"},
		{"%{+Z}ci", 2, `unknown format flag "+Z"`},
		{"x%{+Q,Q}ci", 6, `unknown format flag "Q"`},
		{"%{+Q} x", 0, "need a variable"},
		{"%{+Q}zz", 0, `unknown format variable "%zz"`},
		{"%[date(1,h)]", 9, `unit "h" is not s, ms or us`},
		{"%[uuid(3)]", 7, `version "3" is not supported`},
		{"%[date(x)]", 7, "not an integer"},
	} {
		_, err := ParseFormatText(tc.text, AtRequest)
		es, ok := err.(Errors)
		if !ok || len(es) == 0 {
			t.Errorf("%q: error %v, want one at %d containing %q", tc.text, err, tc.off, tc.msg)
			continue
		}
		if es[0].Off != tc.off || !strings.Contains(es[0].Msg, tc.msg) {
			t.Errorf("%q: %d %q, want %d containing %q", tc.text, es[0].Off, es[0].Msg, tc.off, tc.msg)
		}
	}
	if _, err := ParseFormatText("%[unique-id]", AtConn); err == nil {
		t.Error("unique-id in tcp-request connection: no error")
	}
}
