package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/halo-lb/halo/config/lang"
)

// Capture is one of a frontend's capture slots, or its capture cookie.
// A request or response slot is a "capture request|response header"
// line's (Name is the header), a "declare capture request|response"
// line's, or an "http-request capture ... len N" or "tcp-request content
// capture ... len N" rule's (Name is empty: the rule or an id N rule
// fills it).
type Capture struct {
	// Kind is CaptureRequest, CaptureResponse or CaptureCookie.
	Kind CaptureKind
	Name string
	Len  int
}

// CaptureKind is what a capture line records.
type CaptureKind int

// The capture lines halo has.
const (
	CaptureRequest CaptureKind = iota + 1
	CaptureResponse
	CaptureCookie
)

// captureRule is a capture rule as parseRules saw it, for buildCaptures:
// the section it is in and where its line is.
type captureRule struct {
	section string // the section's path, as sectionPath gives it
	path    string // the rule's line
	rule    *lang.Rule
	rs      lang.RuleSet
}

// noteCapture checks a capture rule against its section and keeps it for
// buildCaptures, which numbers the slots.
func (p *parser) noteCapture(section, lp string, rule *lang.Rule, rs lang.RuleSet, frontend bool) {
	if rule.Action != "capture" {
		return
	}
	switch {
	case !frontend && rs == lang.TCPContent:
		// HAProxy: the proxy "has no frontend capability".
		p.atWord(lp, rule.Pos, "tcp-request content capture makes a capture slot, which only a frontend has")
		return
	case !frontend && rule.Len > 0:
		p.atWord(lp, rule.Pos, "capture ... len N makes a capture slot, which only a frontend has: a backend's capture takes id N, a slot its frontends declare")
		return
	}
	p.captureRules = append(p.captureRules, captureRule{section: section, path: lp, rule: rule, rs: rs})
}

// buildCaptures numbers each frontend's capture slots as HAProxy does:
// request and response slots apart, each in the order of the lines that
// make them in the file (capture request|response header, declare
// capture, and the rules' capture ... len N); HAProxy's ids and the
// order of the httplog line's {...} fields. A rule's id N must name a
// slot of its frontend; in a backend it is checked per request (a slot
// the request's frontend lacks is left alone, as HAProxy does).
func (p *parser) buildCaptures(cfg *Config, fc *fileConfig) {
	type slot struct {
		at   position
		c    Capture
		rule *lang.Rule // a len rule, whose Slot this numbers
	}
	for _, fe := range cfg.Frontends {
		path := sectionPath(fc, "frontends", fe.Name)
		fp := fc.frontendSection(fe.Name)
		if fp == nil {
			continue
		}
		if len(fp.Capture) > 0 && fe.Mode != ModeHTTP {
			p.at(joinPath(path, "capture"), "capture needs mode http (this section is mode %s)", fe.Mode)
		}
		var slots []slot
		for i, line := range fp.Capture {
			lp := fmt.Sprintf("%s[%d]", joinPath(path, "capture"), i)
			if c, ok := p.parseCapture(lp, line); ok {
				slots = append(slots, slot{at: p.positions[lp], c: c})
			}
		}
		for i, line := range fp.Declare {
			lp := fmt.Sprintf("%s[%d]", joinPath(path, "declare"), i)
			if c, ok := p.parseDeclare(lp, line); ok {
				slots = append(slots, slot{at: p.positions[lp], c: c})
			}
		}
		var ids []captureRule
		for _, cr := range p.captureRules {
			switch {
			case cr.section != path:
			case cr.rule.Len > 0:
				slots = append(slots, slot{at: p.positions[cr.path], c: Capture{Kind: CaptureRequest, Len: cr.rule.Len}, rule: cr.rule})
			default:
				ids = append(ids, cr)
			}
		}
		slices.SortStableFunc(slots, func(a, b slot) int {
			return cmp.Or(cmp.Compare(a.at.line, b.at.line), cmp.Compare(a.at.col, b.at.col))
		})
		var n [CaptureCookie + 1]int
		for _, s := range slots {
			if s.rule != nil {
				s.rule.Slot = n[s.c.Kind]
			}
			n[s.c.Kind]++
			fe.Captures = append(fe.Captures, s.c)
		}
		for _, cr := range ids {
			kind, dir, makers := CaptureRequest, "request", "capture request header, declare capture request and capture ... len N"
			if cr.rs == lang.HTTPResponse {
				kind, dir, makers = CaptureResponse, "response", "capture response header and declare capture response"
			}
			if cr.rule.Slot >= n[kind] {
				p.atWord(cr.path, cr.rule.SlotPos, "no %s capture slot %d in this frontend (it has %d: %s lines make them, numbered from 0 in the file's order)", dir, cr.rule.Slot, n[kind], makers)
			}
		}
	}
}

// parseCapture parses "request header NAME len N", "response header NAME
// len N" or "cookie NAME len N".
func (p *parser) parseCapture(lp, line string) (Capture, bool) {
	ws, err := lang.Split(line)
	if err != nil {
		return Capture{}, p.langErrors(lp, 0, err)
	}
	var c Capture
	rest := ws
	switch {
	case len(ws) >= 2 && ws[0].Text == "request" && ws[1].Text == "header":
		c.Kind, rest = CaptureRequest, ws[2:]
	case len(ws) >= 2 && ws[0].Text == "response" && ws[1].Text == "header":
		c.Kind, rest = CaptureResponse, ws[2:]
	case len(ws) >= 1 && ws[0].Text == "cookie":
		c.Kind, rest = CaptureCookie, ws[1:]
	default:
		p.atWord(lp, 0, "capture takes \"request header NAME len N\", \"response header NAME len N\" or \"cookie NAME len N\"")
		return c, false
	}
	if len(rest) != 3 || rest[1].Text != "len" {
		off := 0
		if len(rest) > 0 {
			off = rest[0].Pos()
		}
		p.atWord(lp, off, "capture needs NAME len N")
		return c, false
	}
	c.Name = rest[0].Text
	n, ok := p.captureLen(lp, rest[2])
	c.Len = n
	return c, ok
}

// parseDeclare parses HAProxy's "declare capture request|response len N"
// (the YAML key is declare, its value what follows the keyword).
func (p *parser) parseDeclare(lp, line string) (Capture, bool) {
	ws, err := lang.Split(line)
	if err != nil {
		return Capture{}, p.langErrors(lp, 0, err)
	}
	if len(ws) == 0 || ws[0].Text != "capture" {
		p.atWord(lp, 0, "declare takes \"capture request|response len N\"")
		return Capture{}, false
	}
	var c Capture
	switch {
	case len(ws) > 1 && ws[1].Text == "request":
		c.Kind = CaptureRequest
	case len(ws) > 1 && ws[1].Text == "response":
		c.Kind = CaptureResponse
	default:
		off := ws[0].Pos() + len(ws[0].Text)
		if len(ws) > 1 {
			off = ws[1].Pos()
		}
		p.atWord(lp, off, "declare capture needs a direction: request or response")
		return c, false
	}
	if len(ws) != 4 || ws[2].Text != "len" {
		off := ws[1].Pos() + len(ws[1].Text)
		if len(ws) > 2 {
			off = ws[2].Pos()
		}
		p.atWord(lp, off, "declare capture %s needs len N", ws[1].Text)
		return c, false
	}
	n, ok := p.captureLen(lp, ws[3])
	c.Len = n
	return c, ok
}

func (p *parser) captureLen(lp string, w lang.Word) (int, bool) {
	n, err := strconv.Atoi(w.Text)
	if err != nil || n < 1 || n > 64*1024 {
		p.atWord(lp, w.Pos(), "capture len %q is not a length from 1 to 65536", w.Text)
		return 0, false
	}
	return n, true
}
