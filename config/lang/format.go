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
}

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

// logVars are the log-format variables halo takes in rules, as the
// samples they are.
var logVars = map[string]string{
	"ci": "src", "cp": "src_port", "fi": "dst", "fp": "dst_port",
	"HM": "method", "HP": "path", "HU": "url", "HQ": "query",
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
	f := parseFormat(&e, w, where)
	return f, e.err()
}

func parseFormat(e *errs, w Word, where Where) *Format {
	f := &Format{Pos: w.Pos()}
	s := w.Text
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			f.Parts = append(f.Parts, FormatPart{Lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			lit.WriteByte(c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '%' {
			lit.WriteByte('%')
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '[' {
			end := closeBracket(s, i+2)
			if end < 0 {
				e.at(w.Off(i), "the %%[ opened here is not closed by a ']'")
				return f
			}
			flush()
			if sm := parseSample(e, w.sub(i+2, end), where); sm != nil {
				f.Parts = append(f.Parts, FormatPart{Sample: sm})
			}
			i = end
			continue
		}
		j := i + 1
		for j < len(s) && ('a' <= s[j] && s[j] <= 'z' || 'A' <= s[j] && s[j] <= 'Z') {
			j++
		}
		name := s[i+1 : j]
		fetch, ok := logVars[name]
		if !ok {
			e.at(w.Off(i), "unknown format variable %q: rules take %%[sample] and %%ci %%cp %%fi %%fp %%HM %%HP %%HU %%HQ (write %%%% for a %%)", "%"+name)
			continue
		}
		flush()
		sm := parseSample(e, Word{Text: fetch, at: repeat(w.Off(i), len(fetch)+1)}, where)
		if sm != nil {
			f.Parts = append(f.Parts, FormatPart{Sample: sm})
		}
		i = j - 1
	}
	flush()
	return f
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
