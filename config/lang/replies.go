package lang

import "slices"

// This file reads what the answering actions send: the replies of deny,
// tarpit and return, and redirect's target and options.

// Reply is what deny, tarpit and return send.
type Reply struct {
	ContentType string
	Body        *Format // string or lf-string
	File        *FileRef
	LFFile      bool
	Hdrs        []Header
}

// Header is a header a reply adds.
type Header struct {
	Name  string
	Value *Format
}

// Redirect is a redirect rule.
type Redirect struct {
	Type        string // location, prefix or scheme
	Target      *Format
	DropQuery   bool
	AppendSlash bool
	// IgnoreEmpty: a target that evaluates to nothing skips the rule.
	IgnoreEmpty bool
	SetCookie   string
	ClearCookie string
}

// reply reads deny's, tarpit's and return's options.
func (a *argReader) reply(r *Rule, where Where, name string) *Reply {
	r.StatusPos = r.Pos
	var rep *Reply
	get := func() *Reply {
		if rep == nil {
			rep = &Reply{}
		}
		return rep
	}
	for a.more() {
		w := a.word()
		switch {
		case w.is("deny_status") && name != "return", w.is("status"):
			sw := a.word()
			r.Status, r.StatusPos = status(a.e, sw, 200, 599), sw.Pos()
		case w.is("content-type"):
			get().ContentType = a.word().Text
		case w.is("string"):
			get().Body = &Format{Pos: w.Pos(), Parts: []FormatPart{{Lit: a.word().Text}}}
		case w.is("lf-string"):
			get().Body = a.format(where)
		case w.is("file"), w.is("lf-file"):
			f := a.word()
			get().File = &FileRef{Pos: f.Pos(), Path: f.Text}
			rep.LFFile = w.Text == "lf-file"
		case w.is("hdr"):
			n, _ := a.header()
			get().Hdrs = append(rep.Hdrs, Header{Name: n, Value: a.format(where)})
		case w.is("default-errorfiles"):
		default:
			a.e.at(w.Pos(), "unknown %s option %q (status, content-type, string, lf-string, file, lf-file, hdr)", name, w.Text)
		}
	}
	if rep != nil && (rep.Body != nil || rep.File != nil) && rep.ContentType == "" && name != "return" {
		// HAProxy requires a content-type with a body; return defaults
		// to none as well, but says so only when there is a body.
		a.e.at(r.Pos, "%s with a body needs a content-type", name)
	}
	if rep != nil && (rep.Body != nil || rep.File != nil) && rep.ContentType == "" && name == "return" {
		a.e.at(r.Pos, "return with a body needs a content-type")
	}
	if rep != nil && rep.Body != nil && rep.File != nil {
		a.e.at(r.Pos, "%s takes one of string, lf-string, file and lf-file", name)
	}
	if name != "return" && (rep == nil || rep.Body == nil && rep.File == nil) && !slices.Contains(DefaultPageStatuses, r.Status) {
		// HAProxy refuses it too: it has no page to send.
		a.e.at(r.StatusPos, "%s status %d has no default page: give it a body (string, lf-string, file, lf-file) or use one of %v", name, r.Status, DefaultPageStatuses)
	}
	return rep
}

// DefaultPageStatuses are the statuses HAProxy 2.6 has a default page for,
// the ones a deny or tarpit without a body may answer with (halo has its
// own page for each).
var DefaultPageStatuses = []int{200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 421, 422, 425, 429, 500, 501, 502, 503, 504}

// redirect reads redirect's words as HAProxy 2.6's parser does: in any
// order, one of location, prefix or scheme with its target among them
// ("redirect code 301 scheme https" is "redirect scheme https code 301"),
// and the options code N, drop-query, append-slash, ignore-empty,
// set-cookie NAME[=VALUE] and clear-cookie NAME. As in HAProxy, the last
// of set-cookie and clear-cookie is the one kept (they fill one slot).
// halo refuses a second target where HAProxy silently keeps the last: two
// are a mistake in any configuration, not a way of saying one.
func (a *argReader) redirect(where Where, rs RuleSet) (*Redirect, int) {
	rd := &Redirect{}
	code := 302
	var typ Word
	for a.more() {
		w := a.word()
		switch {
		case w.is("location"), w.is("prefix"), w.is("scheme"):
			if rd.Type != "" {
				a.e.at(w.Pos(), "redirect has a target already (%s at column %d): give one of location, prefix or scheme", rd.Type, typ.Pos()+1)
			}
			rd.Type, typ = w.Text, w
			rd.Target = a.format(where)
		case w.is("code"):
			c := a.word()
			code = status(a.e, c, 301, 308)
			if code > 303 && code < 307 {
				a.e.at(c.Pos(), "redirect code %d is not one of 301, 302, 303, 307, 308", code)
			}
		case w.is("drop-query"):
			rd.DropQuery = true
		case w.is("append-slash"):
			rd.AppendSlash = true
		case w.is("ignore-empty"):
			rd.IgnoreEmpty = true
		case w.is("set-cookie"):
			rd.SetCookie, rd.ClearCookie = a.word().Text, ""
		case w.is("clear-cookie"):
			rd.ClearCookie, rd.SetCookie = a.word().Text, ""
		default:
			a.e.at(w.Pos(), "unknown redirect option %q (location, prefix, scheme, code, drop-query, append-slash, ignore-empty, set-cookie, clear-cookie)", w.Text)
		}
	}
	switch {
	case rd.Type == "":
		a.e.at(a.next(), "redirect needs location, prefix or scheme and its target")
	case rs == HTTPResponse && rd.Type != "location":
		// HAProxy too: a response has no request path to prefix or
		// scheme to change.
		a.e.at(typ.Pos(), "http-response redirect takes location only, not %s", rd.Type)
	}
	return rd, code
}
