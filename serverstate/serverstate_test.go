package serverstate

import (
	"strings"
	"testing"

	"github.com/halo-lb/halo/health"
)

// A file HAProxy 2.6 wrote with "show servers state" (one server in
// maintenance, one DOWN by its check, one drained with a runtime weight),
// a blank line and a comment: every line reads back, and writes back the
// same.
func TestReadBackHAProxysLines(t *testing.T) {
	lines := []string{
		"2 be 1 s1 127.0.0.1 2 1 1 1 12 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0",
		"2 be 2 s2 127.0.0.1 0 0 1 1 3 8 2 0 6 0 0 0 - 9002 - 0 0 - - 0",
		"2 be 3 s3 127.0.0.1 2 8 7 1 40 15 3 4 6 0 0 0 - 9003 - 0 0 - - 0",
	}
	in := Header + lines[0] + "\n\n   # a comment\n" + lines[1] + "\n" + lines[2] + "\n"
	f, errs := Parse(strings.NewReader(in), "state")
	if errs != nil {
		t.Fatal(errs)
	}
	if len(f.Lines) != 3 {
		t.Fatalf("%d lines, want 3", len(f.Lines))
	}
	for i, l := range f.Lines {
		if got := string(l.Append(nil)); got != lines[i]+"\n" {
			t.Errorf("line %d writes back as %q, want %q", i, got, lines[i])
		}
	}
	if w := f.Lines[1].Where; w != "state:6" {
		t.Errorf("the second server's line is at %s, want state:6", w)
	}
	s1, s2, s3 := f.Lines[0], f.Lines[1], f.Lines[2]
	if !s1.Maint() || s1.ConfiguredMaint() || s1.Drain() || !s1.Up() {
		t.Errorf("s1: maint %v configured %v drain %v up %v, want forced maintenance of an UP server", s1.Maint(), s1.ConfiguredMaint(), s1.Drain(), s1.Up())
	}
	if s2.Up() || s2.Maint() {
		t.Errorf("s2: up %v maint %v, want DOWN and ready", s2.Up(), s2.Maint())
	}
	if st, ok := StatusOf(s2.CheckStatus); !ok || st != health.L4CON {
		t.Errorf("s2's check status %d reads as %q, want L4CON", s2.CheckStatus, st)
	}
	if !s3.Drain() || s3.UWeight != 7 || s3.IWeight != 1 {
		t.Errorf("s3: drain %v uweight %d iweight %d, want drained with weight 7 of 1", s3.Drain(), s3.UWeight, s3.IWeight)
	}
	if st, _ := StatusOf(s3.CheckStatus); st != health.L7OK || StatusCode(health.L7OK) != 15 || StatusCode(health.L7STS) != 17 {
		t.Errorf("HAProxy's L7OKD is 15 and L7STS 17; read %q for 15", st)
	}
}

// A bad line is reported at FILE:LINE with what is wrong, and the lines
// after it still load.
func TestBadLinesAreReportedAndSkipped(t *testing.T) {
	in := Header +
		"2 be 1 s1 127.0.0.1 2 0 1 1 0 6 3 4 6 0 0 0 - 9001 - 0 0 - - 0\n" +
		"2 be 2 s2 127.0.0.1 2 0 1\n" +
		"2 be 3 s3 127.0.0.1 9 0 300 1 0 6 3 4 6 0 0 0 - 9003 - 0 0 - - 0\n" +
		"2 be 4 s4 127.0.0.1 2 0x 1 1 0 6 3 4 6 0 0 0 - 9004 - 0 0 - - 0\n" +
		"2 be 5 s5 127.0.0.1 0 0 1 1 0 8 2 0 6 0 0 0 - 9005 - 0 0 - - 0\n"
	f, errs := Parse(strings.NewReader(in), "/var/lib/halo/state")
	want := []string{
		"/var/lib/halo/state:4: 8 fields: a version 1 line has 20 to 25",
		`/var/lib/halo/state:5: invalid srv_op_state "9", srv_uweight "300"`,
		`/var/lib/halo/state:6: invalid srv_admin_state "0x"`,
	}
	if len(errs) != len(want) {
		t.Fatalf("errors %v, want %d", errs, len(want))
	}
	for i, e := range errs {
		if e.Error() != want[i] {
			t.Errorf("error %d: %q, want %q", i, e, want[i])
		}
	}
	if len(f.Lines) != 2 || f.Lines[0].Server != "s1" || f.Lines[1].Server != "s5" {
		t.Fatalf("loaded %+v, want s1 and s5", f.Lines)
	}
}

func TestVersionLine(t *testing.T) {
	for in, want := range map[string]string{
		"":             "f:1: empty: no version line",
		"2\n":          `f:1: version "2": only version 1 is known`,
		"1 be 1 s1\n":  `f:1: version "1 be 1 s1": only version 1 is known`,
		"# comment\n1": `f:1: version "# comment": only version 1 is known`,
	} {
		f, errs := Parse(strings.NewReader(in), "f")
		if f != nil || len(errs) != 1 || errs[0].Error() != want {
			t.Errorf("%q: %v, %v; want %s", in, f, errs, want)
		}
	}
}

// Health is HAProxy's restore of the check counter from the operational
// state.
func TestHealthFromOpState(t *testing.T) {
	cases := []struct {
		op                 OpState
		health, rise, fall int
		counter            int
		up, nolb           bool
	}{
		{Running, 0, 2, 3, 4, true, false},
		{Starting, 1, 2, 3, 4, true, false},
		{Stopped, 4, 2, 3, 0, false, false},
		{Stopping, 3, 2, 3, 3, true, true},
		{Stopping, 4, 2, 3, 2, true, true}, // full UP is not stopping: back to rise
		{Stopping, 1, 2, 3, 2, true, true},
		{Stopping, 3, 2, 1, 0, false, false}, // fall 1 has no stopping
	}
	for _, c := range cases {
		l := Line{OpState: c.op, CheckHealth: c.health}
		counter, up, nolb := l.Health(c.rise, c.fall)
		if counter != c.counter || up != c.up || nolb != c.nolb {
			t.Errorf("%+v: counter %d up %v nolb %v, want %d %v %v", c, counter, up, nolb, c.counter, c.up, c.nolb)
		}
	}
}

// A local file's lines apply to the backend of their name, or to the one
// of their id when that id was forced; a global file is looked up by
// names, the first line of a name winning.
func TestWhichLinesApply(t *testing.T) {
	in := Header +
		"2 be 1 s1 - 2 0 1 1 0 6 3 4 6 0 0 0 - 1 - 0 0 - - 0\n" +
		"3 old 1 s2 - 2 0 1 1 0 6 3 4 6 0 1 0 - 1 - 0 0 - - 0\n" +
		"2 other 1 s3 - 2 0 1 1 0 6 3 4 6 0 0 0 - 1 - 0 0 - - 0\n" +
		"2 be 1 s1 - 0 0 1 1 0 6 3 4 6 0 0 0 - 1 - 0 0 - - 0\n"
	f, errs := Parse(strings.NewReader(in), "f")
	if errs != nil {
		t.Fatal(errs)
	}
	got, notes := f.Local("be", 3)
	if len(got) != 2 || got["s1"].OpState != Running || got["s2"].Backend != "old" {
		t.Errorf("local lines %+v, want s1 (the first) and s2 (forced id 3)", got)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], `f:5: backend "other" is not be`) {
		t.Errorf("notes %q", notes)
	}
	g := f.Global()
	if len(g) != 3 || g[[2]string{"be", "s1"}].OpState != Running || g[[2]string{"other", "s3"}].Server != "s3" {
		t.Errorf("global lines %+v", g)
	}
}
