package rules

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/config/lang"
)

// The files that rules name are read by config.Load and compiled here:
// the fuzzers below take a file's bytes through the same path (the
// configuration is parsed, the file read from disk beside it, and the
// rules compiled as proxy.compileRules compiles them), so that what the
// config package accepts the compiler must take.

// fuzzNames are the names of cfg, as proxy.compileRules numbers them.
func fuzzNames(cfg *config.Config) Names {
	n := Names{Frontends: map[string]int{}, Backends: map[string]int{}, Servers: map[string]map[string]int{},
		Maps: map[string][]MapEntry{}, Userlists: cfg.Userlists}
	for i, fe := range cfg.Frontends {
		n.Frontends[fe.Name] = i
	}
	for i, be := range cfg.Backends {
		n.Backends[be.Name] = i
		srvs := map[string]int{}
		for j, s := range be.Servers {
			srvs[s.Name] = j
		}
		n.Servers[be.Name] = srvs
	}
	for path, entries := range cfg.Maps {
		// An empty map file is a map that finds nothing, as in HAProxy,
		// not a file that was not read.
		m := make([]MapEntry, 0, len(entries))
		for _, e := range entries {
			m = append(m, MapEntry{Key: e.Key, Value: e.Value})
		}
		n.Maps[path] = m
	}
	return n
}

// fuzzYAML is a configuration whose frontend has the ACLs and
// http-request rules given; ACLs and rules are YAML double-quoted, and
// hold no '"' or '\'.
const fuzzYAML = `defaults: {mode: http}
frontends:
  fe:
    bind: "127.0.0.1:8080"
    acl:
%s    http-request:
%s    default_backend: be
backends:
  be:
    servers: [{name: s1, address: "127.0.0.1:8081"}]
`

// loadFuzzConfig parses fuzzYAML with the ACLs and rules given, as file
// halo.yaml in dir; lines is the configuration's text by line, for
// checking where errors point.
func loadFuzzConfig(dir string, acls map[string]string, rules []string) (*config.Config, []string, error) {
	var a, r strings.Builder
	for _, name := range []string{"hit", "other"} {
		if def, ok := acls[name]; ok {
			fmt.Fprintf(&a, "      %s: %q\n", name, def)
		}
	}
	for _, l := range rules {
		fmt.Fprintf(&r, "      - %q\n", l)
	}
	text := fmt.Sprintf(fuzzYAML, a.String(), r.String())
	cfg, err := config.Parse(filepath.Join(dir, "halo.yaml"), []byte(text))
	return cfg, strings.Split(text, "\n"), err
}

// checkFileErrors checks that every error of a load refused for its file
// names the file's line and points at the word that names it
// (FILE:LINE:COL at the offending word).
func checkFileErrors(t *testing.T, err error, lines []string, file string) {
	t.Helper()
	list := config.Errors(err)
	if len(list) == 0 {
		t.Fatalf("an error without a position: %v", err)
	}
	for _, e := range list {
		if !strings.Contains(e.Msg, file+":") {
			t.Fatalf("%v: the error does not name %s and its line", e, file)
		}
		if e.Line < 1 || e.Line > len(lines) || e.Col < 1 || !strings.HasPrefix(lines[e.Line-1][e.Col-1:], file) {
			t.Fatalf("%v: does not point at the word %s", e, file)
		}
	}
}

// patternACLs are the ACLs FuzzPatternFile reads a -f file for: every
// match method (the string ones on a header, which a request can carry
// any pattern in), and some fetches with a method of their own.
var patternACLs = []string{
	"req.fhdr(x-p) -m str", "req.fhdr(x-p) -m beg", "req.fhdr(x-p) -m end", "req.fhdr(x-p) -m sub",
	"req.fhdr(x-p) -m dir", "req.fhdr(x-p) -m dom", "req.fhdr(x-p) -m reg", "req.fhdr(x-p) -m len",
	"req.fhdr(x-p) -m int", "req.fhdr(x-p) -m ip", "req.fhdr(x-p) -m found", "req.fhdr(x-p) -m bin",
	"src", "src -m ip", "src_port", "ssl_fc -m bool", "path_beg", "path_reg", "hdr_dom(host)",
	"url_param(n) -m int", "path -m len", "req.hdr_ip(x-forwarded-for)",
}

// FuzzPatternFile loads a configuration whose ACL reads a -f file, for
// every match method (method picks the ACL, and bit 7 adds -i): the file
// is refused with its line and the -f word's position, or its patterns
// are one per line (fileLines) and compile, and the program runs. A
// string pattern must then match a header that carries it, and a
// network an address in it.
func FuzzPatternFile(f *testing.F) {
	for i := range patternACLs {
		f.Add(uint8(i), []byte("/v3\n# a comment\n  10.0.0.0/8\r\n\n^/v[0-9]+/x\n1:5\n"))
	}
	dir := f.TempDir()
	file := filepath.Join(dir, "pats.lst")
	f.Fuzz(func(t *testing.T, method uint8, data []byte) {
		acl := patternACLs[int(method&0x7f)%len(patternACLs)]
		noCase := method&0x80 != 0
		if noCase {
			acl += " -i"
		}
		acl += " -f pats.lst"
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, lines, err := loadFuzzConfig(dir, map[string]string{"hit": acl}, []string{"set-header X-Hit 1 if hit"})
		if err != nil {
			checkFileErrors(t, err, lines, "pats.lst")
			return
		}
		fe := cfg.Frontends[0]
		m := fe.Rules.ACLs["hit"][0]
		if want := countPatternLines(data); len(m.Patterns) != want {
			t.Fatalf("%s: %d patterns from a file of %d", acl, len(m.Patterns), want)
		}
		c := NewCompiler(fuzzNames(cfg))
		p, err := c.CompileRules(fe.Rules.HTTPRequest, ACLs(fe.Rules.ACLs), fe.Rules.Files)
		if err != nil {
			t.Fatalf("%s: the load took the file, the compiler refuses it: %v", acl, err)
		}
		run := func(hdr string, src netip.Addr) bool {
			tx := newTxn(t, openstackRequest, "10.1.2.3:40000")
			tx.Reset(c.Vars())
			if hdr != "" {
				tx.Ctx.Request.Header.Set("X-P", hdr)
			}
			if src.IsValid() {
				tx.Src = netip.AddrPortFrom(src, 40000)
			}
			tx.SetDeadline(time.Now().Add(time.Second))
			start := time.Now()
			p.Run(tx)
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("%s: ran %v, past its 1s deadline", acl, d)
			}
			return string(tx.Ctx.Request.Header.Peek("X-Hit")) == "1"
		}
		run("", netip.Addr{})
		for i, pat := range m.Patterns {
			if i == 8 {
				break
			}
			hdr, src := selfMatch(m, pat, noCase)
			if (hdr != "" || src.IsValid()) && !run(hdr, src) {
				t.Fatalf("%s: pattern %q does not match header %q / source %s", acl, pat.Text, hdr, src)
			}
		}
	})
}

// countPatternLines counts a pattern file's lines as HAProxy reads them,
// written apart from fileLines: every line but an empty one, one that
// starts with '#', and one that is blanks (and a CR) alone.
func countPatternLines(data []byte) int {
	n := 0
	for _, l := range bytes.Split(data, []byte("\n")) {
		l, _, _ = bytes.Cut(l, []byte("\r"))
		if len(l) > 0 && l[0] != '#' && len(bytes.TrimLeft(l, " \t")) > 0 {
			n++
		}
	}
	return n
}

// selfMatch is a value that pattern pat of m must match: the header
// value that carries it (written in upper case for -i), or an address in
// its network; none where the method does not match a pattern with its
// own text (reg, len, int), or where a header cannot carry it.
func selfMatch(m *lang.Match, pat lang.Pattern, noCase bool) (string, netip.Addr) {
	if m.Sample.Fetch.Name == "src" {
		return "", pat.Net.Addr()
	}
	if m.Sample.Fetch.Name != "req.fhdr" {
		return "", netip.Addr{}
	}
	text := pat.Text
	switch m.Method {
	case lang.MatchStr, lang.MatchBeg, lang.MatchEnd, lang.MatchSub, lang.MatchBin:
	case lang.MatchDir, lang.MatchDom:
		// Delimiters around a pattern are not part of it; one of
		// delimiters alone matches nothing.
		if strings.Trim(text, "/?.:") == "" {
			return "", netip.Addr{}
		}
	default:
		return "", netip.Addr{}
	}
	if !headerValue(text) {
		return "", netip.Addr{}
	}
	if noCase {
		text = asciiUpper(text)
	}
	return text, netip.Addr{}
}

// headerValue reports whether a request header can carry s as its
// value: field bytes only (no control byte but a tab, RFC 9110), and no
// blank at either end, which a header's value loses.
func headerValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return s != "" && string(trimOWS([]byte(s))) == s
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// mapConverters are the map converters, by name, that FuzzMapFile picks
// from.
var mapConverters = func() []string {
	var names []string
	for _, n := range lang.ConverterNames() {
		if lang.Converter(n).Map != nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}()

// mapNoMatch is the default FuzzMapFile's converters give.
const mapNoMatch = "-no-match-"

// FuzzMapFile loads a configuration whose rules look a request's header
// up in a map file, with a converter that conv picks: the map is refused
// with its line at the file's word, or it compiles, and the converter
// looks up key and each entry's own key without a panic. An entry's key
// finds a value (for map_str, the first line's of that key).
func FuzzMapFile(f *testing.F) {
	for i := range mapConverters {
		f.Add(uint8(i), []byte("identity.example.org keystone\n# c\n\n10.0.0.0/8\t 7 \r\n/v3 1.2.3.4\n1:5 x\n"), "identity.example.org")
	}
	dir := f.TempDir()
	file := filepath.Join(dir, "m.map")
	f.Fuzz(func(t *testing.T, conv uint8, data []byte, key string) {
		name := mapConverters[int(conv)%len(mapConverters)]
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, lines, err := loadFuzzConfig(dir, map[string]string{"hit": "req.fhdr(x-k)," + name + "(m.map) -m found"}, []string{
			"set-header X-Out %[req.fhdr(x-k)," + name + "(m.map," + mapNoMatch + ")]",
			"set-header X-Bare %[req.fhdr(x-k)," + name + "(m.map)] if hit",
		})
		if err != nil {
			checkFileErrors(t, err, lines, "m.map")
			return
		}
		fe := cfg.Frontends[0]
		c := NewCompiler(fuzzNames(cfg))
		p, err := c.CompileRules(fe.Rules.HTTPRequest, ACLs(fe.Rules.ACLs), fe.Rules.Files)
		if err != nil {
			t.Fatalf("%s: the load took the map, the compiler refuses it: %v", name, err)
		}
		lookup := func(k string) string {
			tx := newTxn(t, openstackRequest, "10.1.2.3:40000")
			tx.Reset(c.Vars())
			tx.Ctx.Request.Header.Set("X-K", k)
			tx.SetDeadline(time.Now().Add(time.Second))
			start := time.Now()
			p.Run(tx)
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("%s: ran %v, past its 1s deadline", name, d)
			}
			return string(tx.Ctx.Request.Header.Peek("X-Out"))
		}
		lookup(key)
		mc := lang.Converter(name).Map
		var entries []config.MapEntry
		for _, es := range cfg.Maps {
			entries = es
		}
		for i, e := range entries {
			if i == 8 {
				break
			}
			got := lookup(e.Key)
			if mc.Out != lang.TypeStr || !headerValue(e.Key) || e.Key == mapNoMatch {
				continue
			}
			switch mc.Match {
			case lang.MatchStr:
				want := e.Value
				for _, f := range entries[:i] {
					if f.Key == e.Key {
						want = f.Value
						break
					}
				}
				if got != want {
					t.Fatalf("%s: key %q gives %q, want %q", name, e.Key, got, want)
				}
			case lang.MatchBeg, lang.MatchEnd, lang.MatchSub:
				if got == mapNoMatch {
					t.Fatalf("%s: key %q finds no entry", name, e.Key)
				}
			}
		}
	})
}
