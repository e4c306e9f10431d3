package config

// The block scalars (| and >) of valueOffsets' re-reading; the plain and
// quoted styles are in scalarpos.go.

// block reads a literal (|) or folded (>) block scalar from its indicator
// at column col (0-based). Its content's indentation is the parent's
// plus an explicit indicator, or the first content line's, at least one
// more than the parent's: the parent's is context this reading does not
// have, so each indentation it allows is tried until one reads the wanted
// value. Two that both do read the same lines the same way.
func (r *scalarReader) block(i, col int) []int {
	literal := r.data[i] == '|'
	i++
	chomping, increment := 0, 0
	for k := 0; k < 2 && i < len(r.data); k++ {
		switch c := r.data[i]; {
		case (c == '+' || c == '-') && chomping == 0:
			chomping = map[byte]int{'+': 1, '-': -1}[c]
			i++
		case c >= '1' && c <= '9' && increment == 0:
			increment = int(c - '0')
			i++
		}
	}
	for r.blank(i) {
		i++
	}
	if i < len(r.data) && r.data[i] == '#' {
		for i < len(r.data) && breakWidth(r.data, i) == 0 {
			i++
		}
	}
	if i < len(r.data) && breakWidth(r.data, i) == 0 {
		return nil
	}
	i += breakWidth(r.data, i)
	var indents []int
	if increment > 0 {
		// The parent's indentation is below the indicator's column (or
		// -1 at the top, where the indicator alone counts).
		for parent := 0; parent <= col; parent++ {
			indents = append(indents, parent+increment)
		}
	} else {
		detected := r.detectIndent(i)
		for parent := -1; parent <= col; parent++ {
			if ind := max(detected, parent+1, 1); !containsInt(indents, ind) {
				indents = append(indents, ind)
			}
		}
	}
	for _, ind := range indents {
		r.reset()
		if offs := r.blockBody(i, ind, literal, chomping); offs != nil {
			return offs
		}
	}
	return nil
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// detectIndent is the most spaces that open a line from i up to the first
// line with content, as yaml.v3 detects a block's indentation.
func (r *scalarReader) detectIndent(i int) int {
	most := 0
	for {
		n := 0
		for i < len(r.data) && r.data[i] == ' ' {
			i, n = i+1, n+1
		}
		most = max(most, n)
		w := breakWidth(r.data, i)
		if w == 0 {
			return most
		}
		i += w
	}
}

// blockBreaks eats the indentation (up to indent spaces) and the empty
// lines from the start of a line at i; it returns where the next line's
// content starts, how many spaces open it, and the breaks.
func (r *scalarReader) blockBreaks(i, indent int) (next, column int, breaks []brk) {
	for {
		column = 0
		for column < indent && i < len(r.data) && r.data[i] == ' ' {
			i, column = i+1, column+1
		}
		w := breakWidth(r.data, i)
		if w == 0 {
			return i, column, breaks
		}
		breaks = append(breaks, brk{i, i + w, r.readBreak(i)})
		i += w
	}
}

// blockBody reads a block scalar's lines at indentation indent, from the
// start of the line after its header.
func (r *scalarReader) blockBody(i, indent int, literal bool, chomping int) []int {
	var leading *brk
	leadingBlank := false
	i, column, trailing := r.blockBreaks(i, indent)
	for column == indent && i < len(r.data) {
		trailingBlank := r.blank(i)
		if !literal && !leadingBlank && !trailingBlank && leading != nil && leading.text[0] == '\n' {
			if len(trailing) == 0 {
				r.emit([]byte{' '}, leading.at, leading.to)
			}
		} else if leading != nil {
			r.emit(leading.text, leading.at, leading.to)
		}
		leading = nil
		for _, b := range trailing {
			r.emit(b.text, b.at, b.to)
		}
		leadingBlank = r.blank(i)
		for i < len(r.data) && breakWidth(r.data, i) == 0 {
			i = r.copyRune(i)
		}
		if !r.onTrack() {
			return nil
		}
		if w := breakWidth(r.data, i); w > 0 {
			leading = &brk{i, i + w, r.readBreak(i)}
			i += w
		}
		i, column, trailing = r.blockBreaks(i, indent)
	}
	if chomping != -1 && leading != nil {
		r.emit(leading.text, leading.at, leading.to)
	}
	if chomping == 1 {
		for _, b := range trailing {
			r.emit(b.text, b.at, b.to)
		}
	}
	return r.finish(i, true)
}
