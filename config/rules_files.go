package config

// This file reads the files rules name: -f pattern files and map files,
// at each load (a reload reads them again).

import (
	"bufio"
	"bytes"
	"os"
	"strings"

	"github.com/halo-lb/halo/config/lang"
)

// readPatternFiles reads an ACL's -f files into its patterns: one pattern
// per line, blank lines and lines starting with '#' skipped, as HAProxy
// reads them. A bad line is reported at the -f word, naming the file's
// own line.
func (p *parser) readPatternFiles(m *lang.Match, lp string) {
	for _, f := range m.Files {
		file := p.relative(f.Path)
		data, err := os.ReadFile(file)
		if err != nil {
			p.atWord(lp, f.Pos, "%v", err)
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || line[0] == '#' {
				continue
			}
			pat, msg := lang.ParseFilePattern(m.Method, line)
			if msg != "" {
				p.atWord(lp, f.Pos, "%s:%d: %s", f.Path, n, msg)
				continue
			}
			pat.Pos = f.Pos
			m.Patterns = append(m.Patterns, pat)
		}
		if err := sc.Err(); err != nil {
			p.atWord(lp, f.Pos, "%s: %v", file, err)
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
		if _, done := cfg.Maps[a.Text]; done {
			continue
		}
		file := p.relative(a.Text)
		data, err := os.ReadFile(file)
		if err != nil {
			p.atWord(lp, max(a.Pos-shift, 0), "%v", err)
			continue
		}
		var entries []MapEntry
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || line[0] == '#' {
				continue
			}
			k, v, _ := strings.Cut(line, " ")
			if i := strings.IndexAny(line, " \t"); i >= 0 {
				k, v = line[:i], strings.TrimSpace(line[i:])
			}
			entries = append(entries, MapEntry{Key: k, Value: v, Line: n})
		}
		if cfg.Maps == nil {
			cfg.Maps = map[string][]MapEntry{}
		}
		cfg.Maps[a.Text] = entries
	}
}
