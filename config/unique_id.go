package config

import (
	"strings"

	"github.com/halo-lb/halo/config/lang"
)

// buildUniqueID reads each frontend's unique-id-format and
// unique-id-header, its own or the defaults'. The format is one word of
// a haproxy.cfg line, as HAProxy takes it: spaces inside it are escaped
// ("%{+X}o\ %ci:%cp_..."), and a run of them is one separator.
func (p *parser) buildUniqueID(cfg *Config, fc *fileConfig) {
	var defFormat, defHeader *string
	if fc.Defaults != nil {
		defFormat, defHeader = fc.Defaults.UniqueIDFormat, fc.Defaults.UniqueIDHeader
		if defFormat != nil {
			// Checked once here, where an error is the operator's line.
			p.uniqueIDFormat(cfg, "defaults.unique-id-format", *defFormat)
		}
		if defHeader != nil {
			p.uniqueIDHeader("defaults.unique-id-header", *defHeader)
		}
	}
	for _, fe := range cfg.Frontends {
		path := sectionPath(fc, "frontends", fe.Name)
		fp := fc.frontendSection(fe.Name)
		if fp == nil {
			continue
		}
		if fe.Mode != ModeHTTP {
			// HAProxy logs a TCP session's ID; halo has no log-format to
			// write one, so a section's own line would do nothing.
			if fp.UniqueIDFormat != nil {
				p.at(joinPath(path, "unique-id-format"), "unique-id-format needs mode http in halo (this section is mode %s)", fe.Mode)
			}
			continue
		}
		lp, line := joinPath(path, "unique-id-format"), fp.UniqueIDFormat
		if line == nil {
			lp, line = "defaults.unique-id-format", defFormat
		}
		if line != nil {
			if line != defFormat {
				fe.UniqueIDFormat = p.uniqueIDFormat(cfg, lp, *line)
			} else {
				fe.UniqueIDFormat, _ = lang.ParseLogFormat(oneWord(*line), lang.AtRequest)
			}
		}
		hp, header := joinPath(path, "unique-id-header"), fp.UniqueIDHeader
		if header == nil {
			header = defHeader
		} else {
			p.uniqueIDHeader(hp, *header)
		}
		if header != nil {
			fe.UniqueIDHeader = *header
			if fe.UniqueIDFormat == nil && fp.UniqueIDHeader != nil {
				// HAProxy sends no header without an ID to put in it.
				p.at(hp, "unique-id-header needs a unique-id-format (in the section or in defaults)")
			}
		}
	}
}

// uniqueIDFormat parses a unique-id-format line, reporting its errors at
// their columns.
func (p *parser) uniqueIDFormat(cfg *Config, lp, line string) *lang.Format {
	ws, err := lang.Split(line)
	if !p.langErrors(lp, 0, err) {
		return nil
	}
	switch {
	case len(ws) == 0:
		p.at(lp, "unique-id-format needs a format")
		return nil
	case len(ws) > 1:
		p.atWord(lp, ws[1].Pos(), "unique-id-format takes one word: escape its spaces (\"%%{+X}o\\ %%ci:%%cp\"), as in haproxy.cfg")
		return nil
	}
	f, err := lang.ParseLogFormat(ws[0], lang.AtRequest)
	if !p.langErrors(lp, 0, err) {
		return nil
	}
	p.checkFormatNames(cfg, f, lp, 0, nil)
	return f
}

// oneWord is the word of a line uniqueIDFormat has checked.
func oneWord(line string) lang.Word {
	ws, _ := lang.Split(line)
	return ws[0]
}

func (p *parser) uniqueIDHeader(hp, name string) {
	if name == "" || strings.ContainsAny(name, " \t\r\n:\"(),/;<=>?@[\\]{}") {
		p.at(hp, "unique-id-header %q is not a header name", name)
	}
}
