package convert

import "fmt"

// Diag is what the conversion says about one line: a warning (something
// halo does not carry over, or carries over differently) or a note (a
// keyword of HAProxy's process model, or a better native feature, that
// needs nothing from the operator).
type Diag struct {
	File    string
	Line    int
	Keyword string
	Msg     string
	Note    bool
}

func (d Diag) String() string {
	if d.Note {
		return fmt.Sprintf("%s:%d: note: %q: %s", d.File, d.Line, d.Keyword, d.Msg)
	}
	return fmt.Sprintf("%s:%d: keyword %q is not supported by halo: %s", d.File, d.Line, d.Keyword, d.Msg)
}

// comment is the diag as the YAML comment written where its line stood.
func (d Diag) comment() string {
	if d.Note {
		return fmt.Sprintf("line %d, %s: %s", d.Line, d.Keyword, d.Msg)
	}
	return fmt.Sprintf("WARNING line %d: %q is not supported by halo: %s", d.Line, d.Keyword, d.Msg)
}

type diags struct {
	file string
	list []Diag
}

// add records a diag and returns its YAML comment, or "" when it was
// said already (a defaults line carried into several proxies).
func (d *diags) add(line int, kw, msg string, note bool) string {
	x := Diag{File: d.file, Line: line, Keyword: kw, Msg: msg, Note: note}
	for _, y := range d.list {
		if y == x {
			return ""
		}
	}
	d.list = append(d.list, x)
	return x.comment()
}

func (d *diags) warn(line int, kw, msg string) string { return d.add(line, kw, msg, false) }
func (d *diags) note(line int, kw, msg string) string { return d.add(line, kw, msg, true) }
