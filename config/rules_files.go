package config

// This file reads the files rules name: -f pattern files and map files,
// at each load (a reload reads them again).

import (
	"bytes"
	"fmt"
	"iter"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/halo-lb/halo/config/lang"
)

// readPatternFiles reads an ACL's -f files into its patterns: one pattern
// per line, as HAProxy reads them (fileLines). A bad line is reported at the -f word, naming the file's
// own line.
func (p *parser) readPatternFiles(m *lang.Match, lp string) {
	for _, f := range m.Files {
		file := p.relative(f.Path)
		data, err := os.ReadFile(file)
		if err != nil {
			p.atWord(lp, f.Pos, "%v", err)
			continue
		}
		for n, line := range fileLines(data) {
			pat, msg := lang.ParseFilePattern(m.Method, line)
			if msg != "" {
				p.atWord(lp, f.Pos, "%s:%d: %s", f.Path, n, msg)
				continue
			}
			pat.Pos = f.Pos
			m.Patterns = append(m.Patterns, pat)
		}
	}
}

// fileLines are the lines of a pattern or map file as HAProxy 2.6 reads
// them, with their numbers: a line starting with '#' is a comment (one
// that starts with blanks first is not), leading spaces and tabs are
// dropped, a line ends at its first CR or LF, and an empty one is
// skipped. Trailing blanks stay: they are part of a pattern, as in
// HAProxy (a map's value drops them, see readSampleMaps). HAProxy reads
// a line of at most tune.bufsize bytes at a time, and a NUL ends it; halo
// takes a line whole, whatever its length, and keeps a NUL in it.
func fileLines(data []byte) iter.Seq2[int, string] {
	return func(yield func(int, string) bool) {
		for n := 1; len(data) > 0; n++ {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			if len(line) == 0 || line[0] == '#' {
				continue
			}
			line = bytes.TrimLeft(line, " \t")
			if i := bytes.IndexByte(line, '\r'); i >= 0 {
				line = line[:i]
			}
			if len(line) > 0 && !yield(n, string(line)) {
				return
			}
		}
	}
}

// readSampleMaps reads the map files that a sample's converters name.
func (p *parser) readSampleMaps(cfg *Config, s *lang.Sample, lp string, shift int) {
	for _, c := range s.Convs {
		if c.Def.Map == nil {
			continue
		}
		a := c.Args[0]
		if entries, done := cfg.Maps[a.Text]; done {
			p.checkMapEntries(c.Def.Map, entries, a.Text, lp, max(a.Pos-shift, 0))
			continue
		}
		file := p.relative(a.Text)
		data, err := os.ReadFile(file)
		if err != nil {
			p.atWord(lp, max(a.Pos-shift, 0), "%v", err)
			continue
		}
		// A key ends at the first blank; the value is the rest of the
		// line without the blanks around it, as HAProxy reads a map.
		var entries []MapEntry
		for n, line := range fileLines(data) {
			k, v := line, ""
			if i := strings.IndexAny(line, " \t"); i >= 0 {
				k, v = line[:i], strings.Trim(line[i:], " \t")
			}
			entries = append(entries, MapEntry{Key: k, Value: v, Line: n})
		}
		if cfg.Maps == nil {
			cfg.Maps = map[string][]MapEntry{}
		}
		cfg.Maps[a.Text] = entries
		p.checkMapEntries(c.Def.Map, entries, a.Text, lp, max(a.Pos-shift, 0))
	}
}

// checkMapEntries checks a map file's keys and values against the
// converter that reads it (map_ip's keys are networks, map_int's integer
// ranges, map_reg's expressions; a _int or _ip map's values integers or
// addresses), and reports a bad line as FILE:LINE at the file's word.
func (p *parser) checkMapEntries(mc *lang.MapConv, entries []MapEntry, path, lp string, at int) {
	for _, e := range entries {
		msg := ""
		switch mc.Match {
		case lang.MatchIP:
			_, msg = lang.ParseNet(e.Key)
		case lang.MatchInt:
			_, msg = lang.ParsePattern(lang.MatchInt, e.Key)
		case lang.MatchReg:
			if _, err := regexp.Compile(e.Key); err != nil {
				msg = fmt.Sprintf("key %q is not a regular expression (Go's RE2): %v", e.Key, err)
			}
		}
		if msg == "" {
			switch mc.Out {
			case lang.TypeInt:
				if _, err := strconv.ParseInt(e.Value, 10, 64); err != nil {
					msg = fmt.Sprintf("value %q is not an integer", e.Value)
				}
			case lang.TypeIP:
				if _, err := netip.ParseAddr(e.Value); err != nil {
					msg = fmt.Sprintf("value %q is not an address", e.Value)
				}
			}
		}
		if msg != "" {
			p.atWord(lp, at, "%s:%d: %s", path, e.Line, msg)
		}
	}
}
