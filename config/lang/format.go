package lang

import "strings"

// Format is a log-format string as rules take it: text with %[sample]
// expressions, "%[req.hdr(host),lower]:%[dst_port]".
type Format struct {
	Pos   int
	Parts []FormatPart
}

// FormatPart is literal text or a sample expression.
type FormatPart struct {
	Lit    string
	Sample *Sample
	// Var is the log-format variable the part was written as ("ci",
	// "Ts"), "" for %[sample].
	Var string
	// Flags are the %{+Q,+X,+E} flags that have an effect on this part:
	// HAProxy accepts each flag on every variable, and honours it only
	// where the table below says, which the parser applies.
	Flags LogFlags
}

// LogFlags are the log-format flags of a variable: %{+Q}ci.
type LogFlags uint8

// The flags, HAProxy's Q, X and E.
const (
	FlagQuote  LogFlags = 1 << iota // between double quotes
	FlagHex                         // addresses and numbers in upper-case hexadecimal
	FlagEscape                      // '"', '\' and ']' preceded by a '\'
)

// Const reports whether the format is literal text only, and the text.
func (f *Format) Const() (string, bool) {
	var b strings.Builder
	for _, p := range f.Parts {
		if p.Sample != nil {
			return "", false
		}
		b.WriteString(p.Lit)
	}
	return b.String(), true
}

// logVar is a log-format variable halo takes in formats: the sample it
// is, and the flags HAProxy 2.6 honours on it (measured with 2.6.12:
// %{+Q}ci is quoted, %{+Q}cp and %{+Q}[src] are not; %{+X}ci is hex,
// %{+X}[src] is not).
type logVar struct {
	fetch string
	flags LogFlags
}

var logVars = map[string]logVar{
	"ci": {"src", FlagQuote | FlagHex | FlagEscape}, "fi": {"dst", FlagQuote | FlagHex | FlagEscape},
	"cp": {"src_port", FlagHex}, "fp": {"dst_port", FlagHex},
	"HM": {"method", FlagQuote | FlagEscape}, "HP": {"path", FlagQuote | FlagEscape},
	"HU": {"url", FlagQuote | FlagEscape}, "HQ": {"query", FlagQuote | FlagEscape},
	"Ts":  {"%Ts", FlagHex},
	"rt":  {"%rt", FlagHex},
	"pid": {"%pid", FlagHex},
	"ID":  {"%ID", FlagQuote | FlagEscape},
}

// sampleFlags are the flags a %[sample] honours in the formats rules and
// unique-id-format take (HAProxy's HTTP formats): escaping only.
const sampleFlags = FlagEscape

// varFetches are the fetches of the log variables that are not sample
// fetches of their own: the request's accept date in seconds (%Ts), its
// number in the process (%rt), the process's ID (%pid) and the unique ID
// if one was made (%ID, which unlike %[unique-id] makes none). They are
// not in fetches: %[pid] is not a fetch in HAProxy.
var varFetches = map[string]*FetchDef{
	"%Ts":  {Name: "%Ts", Out: TypeInt, Where: Everywhere},
	"%rt":  {Name: "%rt", Out: TypeInt, Where: Everywhere},
	"%pid": {Name: "%pid", Out: TypeInt, Where: Everywhere},
	"%ID":  {Name: "%ID", Out: TypeStr, Where: HTTP},
}

// VarFetchNames are the fetches of log variables, for the coverage test
// of proxy/rules.
func VarFetchNames() []string {
	var names []string
	for n := range varFetches {
		names = append(names, n)
	}
	return names
}

// ParseFormatText parses text as a format string, as lf-file takes a
// file's content: the errors' offsets are the text's.
func ParseFormatText(text string, where Where) (*Format, error) {
	at := make([]int, len(text)+1)
	for i := range at {
		at[i] = i
	}
	return ParseFormat(Word{Text: text, at: at}, where)
}

// ParseFormat parses the whole word w as a format string.
func ParseFormat(w Word, where Where) (*Format, error) {
	var e errs
	f := parseFormat(&e, w, where, false)
	return f, e.err()
}

// ParseLogFormat parses a format as HAProxy reads unique-id-format (and
// log-format): a run of spaces is one separator, written as one space
// unless nothing was written before it.
func ParseLogFormat(w Word, where Where) (*Format, error) {
	var e errs
	f := parseFormat(&e, w, where, true)
	return f, e.err()
}

func parseFormat(e *errs, w Word, where Where, mergeSpaces bool) *Format {
	f := &Format{Pos: w.Pos()}
	s := w.Text
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			f.Parts = append(f.Parts, FormatPart{Lit: lit.String()})
			lit.Reset()
		}
	}
	// defaults are the flags %{...}o gave every variable after it.
	var defaults LogFlags
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' && mergeSpaces {
			for i+1 < len(s) && s[i+1] == ' ' {
				i++
			}
			if len(f.Parts) > 0 || lit.Len() > 0 {
				lit.WriteByte(' ')
			}
			continue
		}
		if c != '%' {
			lit.WriteByte(c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '%' {
			lit.WriteByte('%')
			i++
			continue
		}
		start := i
		flags := defaults
		if i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				e.at(w.Off(i+1), "the %%{ opened here is not closed by a '}'")
				return f
			}
			flags = parseLogFlags(e, w, i+2, i+2+end, defaults)
			i = i + 2 + end // at the '}'
			if i+1 >= len(s) || s[i+1] != '[' && !isAlnum(s[i+1]) {
				e.at(w.Off(start), "flags %s need a variable after them (%%{+Q}ci, %%{+E}[sample], %%{+X}o)", s[start+1:i+1])
				continue
			}
		}
		if i+1 < len(s) && s[i+1] == '[' {
			end := closeBracket(s, i+2)
			if end < 0 {
				e.at(w.Off(i), "the %%[ opened here is not closed by a ']'")
				return f
			}
			flush()
			if sm := parseSample(e, w.sub(i+2, end), where); sm != nil {
				f.Parts = append(f.Parts, FormatPart{Sample: sm, Flags: flags & sampleFlags})
			}
			i = end
			continue
		}
		j := i + 1
		for j < len(s) && isAlnum(s[j]) {
			j++
		}
		name := s[i+1 : j]
		if name == "o" {
			// %o writes nothing: its flags are every later variable's.
			defaults = flags
			i = j - 1
			continue
		}
		lv, ok := logVars[name]
		if !ok {
			e.at(w.Off(start), "unknown format variable %q: formats take %%[sample] and %%ci %%cp %%fi %%fp %%HM %%HP %%HU %%HQ %%Ts %%rt %%pid %%ID, with flags %%{+Q,+X,+E} and %%o (write %%%% for a %%)", "%"+name)
			i = j - 1
			continue
		}
		flush()
		var sm *Sample
		if d := varFetches[lv.fetch]; d != nil {
			sm = &Sample{Pos: w.Off(start), Fetch: d, Out: d.Out}
			if where != 0 && d.Where&where == 0 {
				e.at(w.Off(start), "format variable %%%s is not available in %s rules", name, where)
			}
		} else {
			sm = parseSample(e, Word{Text: lv.fetch, at: repeat(w.Off(start), len(lv.fetch)+1)}, where)
		}
		if sm != nil {
			f.Parts = append(f.Parts, FormatPart{Sample: sm, Var: name, Flags: flags & lv.flags})
		}
		i = j - 1
	}
	flush()
	return f
}

// parseLogFlags reads the flags between %{ and } (s[from:to]): +F adds
// flag F to base, -F removes it; several are separated by commas.
// HAProxy ignores a flag it does not know; halo reports it, as any other
// word it cannot read.
func parseLogFlags(e *errs, w Word, from, to int, base LogFlags) LogFlags {
	flags := base
	s := w.Text
	for i := from; i <= to; {
		j := i
		for j < to && s[j] != ',' {
			j++
		}
		item := s[i:j]
		var f LogFlags
		if len(item) == 2 && (item[0] == '+' || item[0] == '-') {
			f = map[byte]LogFlags{'Q': FlagQuote, 'X': FlagHex, 'E': FlagEscape}[item[1]]
		}
		switch {
		case f == 0:
			e.at(w.Off(i), "unknown format flag %q: flags are +Q or -Q (quote), +X or -X (hexadecimal), +E or -E (escape)", item)
		case item[0] == '+':
			flags |= f
		default:
			flags &^= f
		}
		i = j + 1
	}
	return flags
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// closeBracket finds the ']' that ends a %[ expression starting at i:
// the first outside parentheses, so that a regular expression's class
// inside regsub(...) does not end it.
func closeBracket(s string, i int) int {
	depth := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '\\':
			j++
		case '(':
			depth++
		case ')':
			depth--
		case ']':
			if depth <= 0 {
				return j
			}
		}
	}
	return -1
}
