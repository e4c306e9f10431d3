package config

import (
	"fmt"
	"net/netip"

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
		fp := fc.frontendSection(fe.Name)
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

// buildMonitor parses each frontend's monitor fail lines; the
// conditions' ACLs are the frontend's.
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
		fp := fc.frontendSection(fe.Name)
		if fp == nil {
			continue
		}
		fe.MonitorURI = or("", fp.MonitorURI, defURI)
		if fe.Mode != ModeHTTP && fp.MonitorURI != nil {
			p.at(joinPath(path, "monitor-uri"), "monitor-uri needs mode http (this section is mode %s)", fe.Mode)
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
