package config

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/halo-lb/halo/config/lang"
)

// ForwardHeader is the arguments of option forwardfor or originalto.
type ForwardHeader struct {
	// Header is the header's name: X-Forwarded-For or X-Original-To
	// unless "header" renames it.
	Header string
	// Except is "except NET": a client (forwardfor) or destination
	// (originalto) address inside it gets no header; invalid: none.
	Except netip.Prefix
	// IfNone is forwardfor's "if-none": the header is added only when
	// the request has none.
	IfNone bool
}

// fileForwardFor is option forwardfor or originalto: true, or a mapping
// of HAProxy's arguments (see shorthandKey).
type fileForwardFor struct {
	Enabled *bool   `yaml:"enabled"`
	Except  *string `yaml:"except"`
	Header  *string `yaml:"header" validate:"omitempty,min=1"`
	IfNone  *bool   `yaml:"if-none"`
}

// shorthandKey lets "forwardfor: true" stay what it always was.
func (*fileForwardFor) shorthandKey() string { return "enabled" }

// on reports whether the option is set: true, or a mapping without
// "enabled: false".
func (f *fileForwardFor) on() bool { return f != nil && (f.Enabled == nil || *f.Enabled) }

// Capture is one "capture" line.
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

// buildForwarded resolves option forwardfor and originalto of every
// section, the section's own over defaults' as a whole (HAProxy's later
// option line replaces the earlier one).
func (p *parser) buildForwarded(cfg *Config, fc *fileConfig) {
	var dopt *fileOptions
	if fc.Defaults != nil {
		dopt = fc.Defaults.Option
	}
	resolve := func(fp *fileProxy, path string, o *Options) {
		var sopt *fileOptions
		if fp != nil {
			sopt = fp.Option
		}
		pickOpt := func(get func(*fileOptions) *fileForwardFor) (*fileForwardFor, string) {
			if sopt != nil && get(sopt) != nil {
				return get(sopt), path + ".option"
			}
			if dopt != nil && get(dopt) != nil {
				return get(dopt), "defaults.option"
			}
			return nil, ""
		}
		ff, fpath := pickOpt(func(o *fileOptions) *fileForwardFor { return o.ForwardFor })
		o.ForwardFor, o.XFF = ff.on(), p.forwardHeader(ff, fpath+".forwardfor", "X-Forwarded-For")
		ot, opath := pickOpt(func(o *fileOptions) *fileForwardFor { return o.OriginalTo })
		o.OriginalTo, o.XOT = ot.on(), p.forwardHeader(ot, opath+".originalto", "X-Original-To")
		if ot != nil && ot.IfNone != nil {
			p.at(opath+".originalto.if-none", "option originalto has no if-none (forwardfor has)")
		}
	}
	for _, fe := range cfg.Frontends {
		fp := fc.Frontends[fe.Name]
		if fp == nil {
			fp = fc.Listen[fe.Name]
		}
		resolve(fp, sectionPath(fc, "frontends", fe.Name), &fe.Options)
	}
	for _, be := range cfg.Backends {
		fp := fc.Backends[be.Name]
		if fp == nil {
			fp = fc.Listen[be.Name]
		}
		resolve(fp, sectionPath(fc, "backends", be.Name), &be.Options)
	}
}

func (p *parser) forwardHeader(f *fileForwardFor, path, name string) ForwardHeader {
	h := ForwardHeader{Header: name}
	if f == nil {
		return h
	}
	h.Header = or(name, f.Header)
	h.IfNone = or(false, f.IfNone)
	if f.Except != nil {
		pfx, msg := lang.ParseNet(*f.Except)
		if msg != "" {
			p.at(path+".except", "%s", msg)
		}
		h.Except = pfx
	}
	return h
}

// buildMonitor parses each frontend's monitor fail lines and capture
// lines; the conditions' ACLs are the frontend's.
func (p *parser) buildMonitor(cfg *Config, fc *fileConfig) {
	var defURI *string
	if fc.Defaults != nil {
		defURI = fc.Defaults.MonitorURI
	}
	backends := map[string]*Backend{}
	for _, be := range cfg.Backends {
		backends[be.Name] = be
	}
	for _, fe := range cfg.Frontends {
		path := sectionPath(fc, "frontends", fe.Name)
		fp := fc.Frontends[fe.Name]
		if fp == nil {
			fp = fc.Listen[fe.Name]
		}
		if fp == nil {
			continue
		}
		fe.MonitorURI = or("", fp.MonitorURI, defURI)
		if fe.Mode != ModeHTTP && (fe.MonitorURI != "" || len(fp.Capture) > 0) {
			key := "monitor-uri"
			if fp.MonitorURI == nil {
				key = "capture"
			}
			if fp.MonitorURI != nil || len(fp.Capture) > 0 {
				p.at(joinPath(path, key), "%s needs mode http (this section is mode %s)", key, fe.Mode)
			}
		}
		for i, line := range fp.Monitor {
			lp := fmt.Sprintf("%s[%d]", joinPath(path, "monitor"), i)
			t, err := lang.ParseTarget(line, lang.AtRequest, false)
			if !p.langErrors(lp, 0, err) {
				continue
			}
			if name, _ := t.Name.Const(); name != "fail" || t.Cond == nil {
				p.atWord(lp, t.Pos, "monitor takes \"fail if|unless CONDITION\"")
				continue
			}
			if fe.MonitorURI == "" {
				p.at(lp, "monitor fail needs a monitor-uri")
			}
			p.checkCondNames(cfg, t.Cond, lp, 0, backends)
			p.checkMonitorACLs(fe, fp, t.Cond, lp)
			fe.MonitorFail = append(fe.MonitorFail, t.Cond)
		}
		for i, line := range fp.Capture {
			lp := fmt.Sprintf("%s[%d]", joinPath(path, "capture"), i)
			if c, ok := p.parseCapture(lp, line); ok {
				fe.Captures = append(fe.Captures, c)
			}
		}
	}
}

func (p *parser) checkMonitorACLs(fe *Frontend, fp *fileProxy, c *lang.Cond, lp string) {
	for _, and := range c.Or {
		for _, t := range and {
			if t.Name == "" {
				continue
			}
			_, defined := fe.Rules.ACLs[t.Name]
			_, pre := lang.Predefined[t.Name]
			_, declared := fp.ACL[t.Name]
			if !defined && !pre && !declared {
				p.atWord(lp, t.Pos, "unknown ACL %q", t.Name)
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
	n, err := strconv.Atoi(rest[2].Text)
	if err != nil || n < 1 || n > 64*1024 {
		p.atWord(lp, rest[2].Pos(), "capture len %q is not a length from 1 to 65536", rest[2].Text)
		return c, false
	}
	c.Len = n
	return c, true
}
