package lang

import "strings"

// Word is one word of a rule line after HAProxy's quoting rules: words are
// separated by spaces and tabs; "..." groups spaces and takes backslash
// escapes, '...' groups them literally, a backslash outside quotes escapes
// the next byte, and quoted and unquoted parts next to each other make one
// word, as in haproxy.cfg.
type Word struct {
	Text string
	// at[i] is the offset in the line of Text's byte i; at[len(Text)] is
	// the offset just past the word.
	at []int
	// Quoted: some part of the word was quoted or escaped, so it cannot
	// be a keyword such as "{" or "if" (HAProxy takes "if" quoted as a
	// pattern too, but a quoted brace as text).
	Quoted bool
	// start is where the word starts in the line: its first byte, or
	// the quote that opens it.
	start int
}

// Off is the offset in the line of byte i of the word.
func (w Word) Off(i int) int {
	if i < 0 {
		i = 0
	}
	if i >= len(w.at) {
		return w.at[len(w.at)-1]
	}
	return w.at[i]
}

// Pos is the offset where the word starts (at an opening quote, if it
// starts with one).
func (w Word) Pos() int {
	if w.start >= 0 && w.Quoted && w.start < w.Off(0) {
		return w.start
	}
	return w.Off(0)
}

// sub returns bytes [i, j) of the word as a word of their own, keeping
// their offsets.
func (w Word) sub(i, j int) Word {
	return Word{Text: w.Text[i:j], at: w.at[i : j+1], Quoted: w.Quoted, start: -1}
}

// is reports whether the word is the bare keyword k.
func (w Word) is(k string) bool { return !w.Quoted && w.Text == k }

// Split splits a rule line into words. A '#' outside quotes ends the line,
// as it does in haproxy.cfg.
func Split(line string) ([]Word, error) {
	var (
		e     errs
		words []Word
		cur   strings.Builder
		at    []int
		in    bool // inside a word
		start int  // where the word being read starts
		quote byte
		open  int // where the open quote is
		q     bool
	)
	flush := func(end int) {
		if in {
			words = append(words, Word{Text: cur.String(), at: append(at, end), Quoted: q, start: start})
		}
		cur.Reset()
		at, in, q = nil, false, false
	}
	add := func(b byte, off int) {
		if !in {
			start = off
		}
		cur.WriteByte(b)
		at = append(at, off)
		in = true
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				add(c, i)
			}
		case quote == '"':
			switch {
			case c == '"':
				quote = 0
			case c == '\\' && i+1 < len(line):
				i = escape(line, i, add)
			default:
				add(c, i)
			}
		case c == ' ' || c == '\t':
			flush(i)
		case c == '#':
			flush(i)
			return words, e.err()
		case c == '"' || c == '\'':
			if !in {
				start = i
			}
			quote, open, q, in = c, i, true, true
			if len(at) == 0 {
				at = []int{} // an empty quoted string is a word
			}
		case c == '\\':
			if i+1 == len(line) {
				e.at(i, "a backslash ends the line: nothing to escape")
				continue
			}
			q = true
			i = escape(line, i, add)
		default:
			add(c, i)
		}
	}
	if quote != 0 {
		e.at(open, "the quote %c opened here is not closed", quote)
	}
	flush(len(line))
	return words, e.err()
}

// escape adds what the backslash at line[i] and the bytes after it mean,
// as haproxy.cfg's line parser reads them: \\ \  \# \' \" stand for the
// byte, \r \n \t and \xHH for control bytes; before anything else the
// backslash is kept, for the argument parser of a sample expression to
// read (regsub(a\,b,c)). It returns the offset of the last byte used.
func escape(line string, i int, add func(byte, int)) int {
	c := line[i+1]
	switch c {
	case '\\', ' ', '#', '\'', '"':
		add(c, i)
	case 'r':
		add('\r', i)
	case 'n':
		add('\n', i)
	case 't':
		add('\t', i)
	case 'x':
		if i+3 < len(line) && ishex(line[i+2]) && ishex(line[i+3]) {
			add(unhex(line[i+2])<<4|unhex(line[i+3]), i)
			return i + 3
		}
		add('\\', i)
		return i
	default:
		add('\\', i)
		return i
	}
	return i + 1
}

func ishex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
