package config

import (
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// valueOffsets re-reads scalar node n in the file's bytes, as yaml.v3's
// scanner reads its style, and returns for each byte of n.Value (and one
// past its end) the offset in the file of the text that byte came from:
// the byte itself when it was copied, the backslash of an escape sequence,
// the first of two single quotes that read as one, the line break a fold
// or a kept break stands for. An error about a word inside a string is
// then placed at the word's own line and column, whatever the string's
// YAML style.
//
// It returns nil when its reading does not give n.Value back (a node
// yaml.v3 built, or a file read otherwise than here): the caller then
// reports at the key, which is less precise but never wrong.
func valueOffsets(src *source, n *yaml.Node) []int {
	start, ok := src.offset(n.Line, n.Column)
	if !ok {
		return nil
	}
	r := &scalarReader{data: src.data, lineStart: src.starts, want: n.Value}
	if n.Value == "" {
		// Nothing to place but the end: inside the quotes of "", else
		// where the node is.
		if at := r.skipProperties(start); at < len(src.data) && (src.data[at] == '"' || src.data[at] == '\'') {
			return []int{at + 1}
		}
		return []int{start}
	}
	start = r.skipProperties(start)
	if start >= len(src.data) {
		return nil
	}
	switch src.data[start] {
	case '"', '\'':
		return r.quoted(start)
	case '|', '>':
		return r.block(start, n.Column-1)
	default:
		return r.plain(start)
	}
}

// scalarReader decodes one scalar, recording where each byte came from.
type scalarReader struct {
	data      []byte
	lineStart []int // source.starts, to know when an offset begins a line
	want      string
	out       []byte
	offs      []int
	end       int // offset past the text of the last byte out
}

func (r *scalarReader) reset() {
	r.out, r.offs, r.end = r.out[:0], r.offs[:0], 0
}

// emit appends produced bytes (an escape's character, a folded break), all
// placed at the start of the text they come from, at..to.
func (r *scalarReader) emit(b []byte, at, to int) {
	for _, c := range b {
		r.out = append(r.out, c)
		r.offs = append(r.offs, at)
	}
	r.end = to
}

// copyRune copies the character at i, each byte at its own offset, and
// returns the offset past it.
func (r *scalarReader) copyRune(i int) int {
	_, w := utf8.DecodeRune(r.data[i:])
	for k := range w {
		r.out = append(r.out, r.data[i+k])
		r.offs = append(r.offs, i+k)
	}
	r.end = i + w
	return i + w
}

// onTrack reports whether what was read so far begins the wanted value:
// a reading that strays stops at once.
func (r *scalarReader) onTrack() bool {
	return len(r.out) <= len(r.want) && string(r.out) == r.want[:len(r.out)]
}

func (r *scalarReader) finish(end int, ok bool) []int {
	if !ok || string(r.out) != r.want {
		return nil
	}
	if len(r.out) == 0 {
		r.end = end
	}
	return append(r.offs, r.end)
}

func (r *scalarReader) blank(i int) bool {
	return i < len(r.data) && (r.data[i] == ' ' || r.data[i] == '\t')
}

// blankz: a blank, a line break or the end of the file.
func (r *scalarReader) blankz(i int) bool {
	return i >= len(r.data) || r.blank(i) || breakWidth(r.data, i) > 0
}

// lineBegins reports whether offset i starts a line.
func (r *scalarReader) lineBegins(i int) bool {
	lo, hi := 0, len(r.lineStart)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case r.lineStart[m] == i:
			return true
		case r.lineStart[m] < i:
			lo = m + 1
		default:
			hi = m
		}
	}
	return false
}

// documentMarker: "---" or "..." opening a line, which ends a plain scalar.
func (r *scalarReader) documentMarker(i int) bool {
	if !r.lineBegins(i) || i+3 > len(r.data) {
		return false
	}
	s := string(r.data[i : i+3])
	return (s == "---" || s == "...") && r.blankz(i+3)
}

// readBreak is what the line break at i reads as: \n for \r\n, \r, \n and
// NEL; LS and PS stay themselves.
func (r *scalarReader) readBreak(i int) []byte {
	w := breakWidth(r.data, i)
	if w == 3 {
		return r.data[i : i+3]
	}
	return []byte{'\n'}
}

// skipProperties steps over an anchor (&a) and a tag (!!str) before the
// scalar, where yaml.v3's node position is, and what separates them from
// it.
func (r *scalarReader) skipProperties(i int) int {
	for i < len(r.data) && (r.data[i] == '&' || r.data[i] == '!') {
		if r.data[i] == '&' {
			// An anchor's name is letters, digits, '-' and '_'.
			for i++; i < len(r.data) && anchorChar(r.data[i]); i++ {
			}
		} else {
			for i < len(r.data) && !r.blankz(i) {
				i++
			}
		}
	separation:
		for i < len(r.data) {
			switch {
			case r.blank(i):
				i++
			case breakWidth(r.data, i) > 0:
				i += breakWidth(r.data, i)
			case r.data[i] == '#':
				for i < len(r.data) && breakWidth(r.data, i) == 0 {
					i++
				}
			default:
				break separation
			}
		}
	}
	return i
}

func anchorChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-'
}

// brk is one line break of a fold: where it is and what it reads as.
type brk struct {
	at, to int
	text   []byte
}

// fold emits what the breaks between two lines of a plain or quoted scalar
// read as: a lone \n break is a space, the breaks after the first are
// themselves, and a first break that is LS or PS is kept.
func (r *scalarReader) fold(leading brk, trailing []brk) {
	if leading.text[0] == '\n' {
		if len(trailing) == 0 {
			r.emit([]byte{' '}, leading.at, leading.to)
		}
	} else {
		r.emit(leading.text, leading.at, leading.to)
	}
	for _, b := range trailing {
		r.emit(b.text, b.at, b.to)
	}
}

// gap reads the blanks and line breaks at i in a plain or quoted scalar.
// Blanks before the first break are content unless a break follows; the
// blanks after one are indentation.
func (r *scalarReader) gap(i int, escapedBreak bool) (next int, spaces []int, leading *brk, trailing []brk) {
	for {
		switch {
		case r.blank(i):
			if leading == nil && !escapedBreak {
				spaces = append(spaces, i)
			}
			i++
		case breakWidth(r.data, i) > 0:
			w := breakWidth(r.data, i)
			b := brk{i, i + w, r.readBreak(i)}
			if leading == nil && !escapedBreak {
				spaces = nil
				leading = &b
			} else {
				trailing = append(trailing, b)
			}
			i += w
		default:
			return i, spaces, leading, trailing
		}
	}
}

// plain reads a plain scalar. Where it ends (a ": ", a " #", a flow
// indicator, a line indented less than its parent) depends on context
// this reading does not have, so it reads until it has the wanted value:
// what follows the value is not part of it.
func (r *scalarReader) plain(i int) []int {
	for len(r.out) < len(r.want) {
		if i >= len(r.data) || r.documentMarker(i) || r.data[i] == '#' {
			return nil
		}
		for i < len(r.data) && !r.blankz(i) && len(r.out) < len(r.want) {
			i = r.copyRune(i)
		}
		if !r.onTrack() {
			return nil
		}
		if len(r.out) == len(r.want) {
			break
		}
		next, spaces, leading, trailing := r.gap(i, false)
		if next >= len(r.data) || r.documentMarker(next) || r.data[next] == '#' || next == i {
			return nil
		}
		if leading != nil {
			r.fold(*leading, trailing)
		} else {
			for _, s := range spaces {
				r.copyRune(s)
			}
		}
		i = next
		if !r.onTrack() {
			return nil
		}
	}
	return r.finish(i, true)
}

// escapes are the double-quoted escapes of one character after the
// backslash, and what they read as.
var escapes = map[byte]string{
	'0': "\x00", 'a': "\a", 'b': "\b", 't': "\t", '\t': "\t", 'n': "\n", 'v': "\v",
	'f': "\f", 'r': "\r", 'e': "\x1b", ' ': " ", '"': "\"", '\'': "'", '\\': "\\",
	'N': "\u0085", '_': "\u00a0", 'L': "\u2028", 'P': "\u2029",
}

// quoted reads a single- or double-quoted scalar from its opening quote.
func (r *scalarReader) quoted(i int) []int {
	q := r.data[i]
	i++
	for {
		if i >= len(r.data) || r.documentMarker(i) {
			return nil
		}
		escapedBreak := false
	content:
		for i < len(r.data) && !r.blankz(i) {
			c := r.data[i]
			switch {
			case q == '\'' && c == '\'' && i+1 < len(r.data) && r.data[i+1] == '\'':
				r.emit([]byte{'\''}, i, i+2)
				i += 2
			case c == q:
				break content
			case q == '"' && c == '\\' && breakWidth(r.data, i+1) > 0:
				i += 1 + breakWidth(r.data, i+1)
				escapedBreak = true
				break content
			case q == '"' && c == '\\':
				n, ok := r.escape(i)
				if !ok {
					return nil
				}
				i = n
			default:
				i = r.copyRune(i)
			}
		}
		if !r.onTrack() {
			return nil
		}
		if i < len(r.data) && r.data[i] == q {
			return r.finish(i, true)
		}
		next, spaces, leading, trailing := r.gap(i, escapedBreak)
		switch {
		case leading != nil:
			r.fold(*leading, trailing)
		case escapedBreak:
			// An escaped break joins the lines with nothing, and the
			// breaks after it are kept.
			for _, b := range trailing {
				r.emit(b.text, b.at, b.to)
			}
		default:
			for _, s := range spaces {
				r.copyRune(s)
			}
		}
		i = next
		if !r.onTrack() {
			return nil
		}
	}
}

// escape reads the escape sequence at data[i] (a backslash) and returns
// the offset past it.
func (r *scalarReader) escape(i int) (int, bool) {
	if i+1 >= len(r.data) {
		return 0, false
	}
	c := r.data[i+1]
	if s, ok := escapes[c]; ok {
		r.emit([]byte(s), i, i+2)
		return i + 2, true
	}
	digits := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
	if digits == 0 || i+2+digits > len(r.data) {
		return 0, false
	}
	v := 0
	for _, h := range r.data[i+2 : i+2+digits] {
		switch {
		case h >= '0' && h <= '9':
			v = v<<4 + int(h-'0')
		case h >= 'a' && h <= 'f':
			v = v<<4 + int(h-'a'+10)
		case h >= 'A' && h <= 'F':
			v = v<<4 + int(h-'A'+10)
		default:
			return 0, false
		}
	}
	if (v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF {
		return 0, false
	}
	r.emit(utf8.AppendRune(nil, rune(v)), i, i+2+digits)
	return i + 2 + digits, true
}
