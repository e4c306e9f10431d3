package convert

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Word is one word of a statement after HAProxy's quoting, escaping and
// environment expansion.
type Word struct {
	Text string
	// Col is the 1-based column of the word's first byte in its line (its
	// opening quote, if it starts with one).
	Col int
	// Quoted: part of the word was quoted or escaped, so it cannot be a
	// bare keyword.
	Quoted bool
}

// Stmt is one non-empty line of the file.
type Stmt struct {
	Line  int
	Words []Word
	// Raw is the line as written; End is where its statement ends in Raw
	// (before the comment and trailing blanks).
	Raw string
	End int
	// Comment is the text after an unquoted '#', trimmed; Head is the
	// comment block written above the statement.
	Comment, Head string
	// Env lists the environment variables the line expanded.
	Env []string
}

// Error is a fault in the input, at FILE:LINE:COL.
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg) }

// lexer reads lines into statements, as HAProxy's parse_line does.
type lexer struct {
	file   string
	lookup func(string) (string, bool) // the environment
}

// RawFrom is the statement's source text from word i to its end, as
// written: what halo re-reads with HAProxy's own quoting rules for rule
// lines, so that its columns stay the author's.
func (s *Stmt) RawFrom(i int) string {
	if i >= len(s.Words) {
		return ""
	}
	return s.Raw[s.Words[i].Col-1 : s.End]
}

// Texts returns the words' texts.
func (s *Stmt) Texts() []string {
	out := make([]string, len(s.Words))
	for i, w := range s.Words {
		out[i] = w.Text
	}
	return out
}

// isBlank is HAProxy's word separator (C's isspace, less the line ends).
func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\v' || c == '\f' }

// line cuts one line (without its newline) into a statement; a line with
// no word returns nil and no error.
func (l *lexer) line(n int, raw string) (*Stmt, error) {
	st := &Stmt{Line: n, Raw: raw, End: len(raw)}
	var (
		cur     strings.Builder
		in      bool // inside a word
		start   int  // where the current word starts
		quoted  bool
		squote  bool
		dquote  bool
		quoteAt int
	)
	errAt := func(i int, format string, args ...any) error {
		return &Error{File: l.file, Line: n, Col: i + 1, Msg: fmt.Sprintf(format, args...)}
	}
	begin := func(i int) {
		if !in {
			in, start = true, i
		}
	}
	flush := func() {
		if in {
			st.Words = append(st.Words, Word{Text: cur.String(), Col: start + 1, Quoted: quoted})
		}
		cur.Reset()
		in, quoted = false, false
	}
	i := 0
	lastEnd := 0 // just past the last byte that belongs to a word
	for i < len(raw) {
		c := raw[i]
		blank := false
		switch {
		case c == '\r' || c == '\n' || c == 0:
			// HAProxy ends the line at any of these.
			st.End = i
			i = len(raw)
			continue
		case c == '#' && !squote && !dquote:
			st.End = i
			st.Comment = strings.TrimSpace(raw[i+1:])
			i = len(raw)
			continue
		case c == '"' && !squote:
			quoted = true
			if dquote {
				dquote = false
			} else {
				begin(i) // "" alone is an empty word
				dquote, quoteAt = true, i
			}
			i++
		case c == '\'' && !dquote:
			quoted = true
			if squote {
				squote = false
			} else {
				begin(i)
				squote, quoteAt = true, i
			}
			i++
		case c == '\\' && !squote:
			begin(i)
			quoted = true
			next := byte(0)
			if i+1 < len(raw) {
				next = raw[i+1]
			}
			switch next {
			case ' ', '\\', '#', '\'', '"':
				cur.WriteByte(next)
				i += 2
			case 't':
				cur.WriteByte('\t')
				i += 2
			case 'n':
				cur.WriteByte('\n')
				i += 2
			case 'r':
				cur.WriteByte('\r')
				i += 2
			case '$':
				if dquote {
					cur.WriteByte('$')
					i += 2
				} else {
					cur.WriteByte('\\')
					i++
				}
			case 'x':
				b, err := hex.DecodeString(raw[i+2 : min(i+4, len(raw))])
				if err != nil || len(b) != 1 {
					return nil, errAt(i, `invalid escape "\x": two hexadecimal digits must follow`)
				}
				cur.WriteByte(b[0])
				i += 4
			default:
				// Not an escape: the backslash stays (regex \d, \1).
				cur.WriteByte('\\')
				i++
			}
		case isBlank(c) && !squote && !dquote:
			blank = true
			flush()
			for i < len(raw) && isBlank(raw[i]) {
				i++
			}
		case c == '$' && dquote:
			next, err := l.expand(st, raw, i, &cur, &in, &start, flush)
			if err != nil {
				return nil, err
			}
			i = next
		default:
			begin(i)
			cur.WriteByte(c)
			i++
		}
		if !blank && i <= len(raw) && i > lastEnd && st.End == len(raw) {
			lastEnd = i
		}
	}
	if squote || dquote {
		q := byte('\'')
		if dquote {
			q = '"'
		}
		return nil, errAt(quoteAt, "the quote %c opened here is not closed", q)
	}
	flush()
	// The statement ends with its last word: an escaped blank at the end
	// ("ok\ ") is part of it.
	st.End = lastEnd
	if len(st.Words) == 0 {
		return nil, nil
	}
	return st, nil
}

// expand reads the environment variable at raw[i] ('$', inside double
// quotes): $NAME, ${NAME}, ${NAME-default} or ${NAME[*]}, whose value's
// blanks separate words. It returns the offset after it.
func (l *lexer) expand(st *Stmt, raw string, i int, cur *strings.Builder, in *bool, start *int, flush func()) (int, error) {
	n := st.Line
	errAt := func(at int, format string, args ...any) error {
		return &Error{File: l.file, Line: n, Col: at + 1, Msg: fmt.Sprintf(format, args...)}
	}
	j := i + 1
	brace := -1
	if j < len(raw) && raw[j] == '{' {
		brace = j
		j++
	}
	nameAt := j
	if j >= len(raw) || !(isAlpha(raw[j]) || raw[j] == '_' || raw[j] == '.') {
		return 0, errAt(j, "invalid environment variable name: it must start with a letter or '_'")
	}
	if raw[j] == '.' {
		j++
	}
	for j < len(raw) && (isAlpha(raw[j]) || raw[j] >= '0' && raw[j] <= '9' || raw[j] == '_') {
		j++
	}
	name := raw[nameAt:j]
	var value string
	var ok bool
	switch name {
	case ".LINE":
		value, ok = fmt.Sprint(n), true
	case ".FILE":
		value, ok = l.file, true
	case ".SECTION":
		return 0, errAt(nameAt, "the pseudo-variable .SECTION is not supported by halo convert: write the section's name")
	default:
		if strings.HasPrefix(name, ".") {
			return 0, errAt(nameAt, "unknown pseudo-variable %q", name)
		}
		value, ok = l.lookup(name)
	}
	words := false
	if brace >= 0 {
		if j < len(raw) && raw[j] == '[' {
			if j+2 >= len(raw) || raw[j+1] != '*' || raw[j+2] != ']' {
				return 0, errAt(j, "invalid word expansion: only [*] may follow a variable's name")
			}
			words = true
			j += 3
		}
		if j < len(raw) && raw[j] == '-' {
			end := strings.IndexByte(raw[j:], '}')
			if end < 0 {
				return 0, errAt(brace, "the brace opened here is not closed")
			}
			if !ok {
				value, ok = raw[j+1:j+end], true
			}
			j += end
		}
		if j >= len(raw) || raw[j] != '}' {
			return 0, errAt(brace, "the brace opened here is not closed")
		}
		j++
	}
	st.Env = append(st.Env, name)
	if !words {
		if !*in {
			*in, *start = true, i
		}
		cur.WriteString(value)
		return j, nil
	}
	// ${NAME[*]}: the value's blanks separate words, as unquoted blanks
	// do: text before and after it joins the first and last part, and a
	// value with no part adds no word.
	for k := 0; k < len(value); k++ {
		if isBlank(value[k]) {
			if cur.Len() > 0 {
				flush()
			}
			*in = false
			continue
		}
		if !*in {
			*in, *start = true, i
		}
		cur.WriteByte(value[k])
	}
	if cur.Len() == 0 {
		*in = false
	}
	return j, nil
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
