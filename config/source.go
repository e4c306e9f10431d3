package config

import (
	"sort"
	"unicode/utf8"
)

// source is a configuration file's bytes with where each of its lines
// starts, counted as yaml.v3 counts them, so that a byte offset found by
// re-reading a scalar (scalarpos.go) turns into the LINE:COL yaml.v3 would
// give a node there.
//
// Columns count characters (UTF-8 code points; a tab is one), as yaml.v3's
// node columns do: an error inside a string and an error at a key are
// counted alike on the same line.
type source struct {
	data []byte
	// starts[k] is the offset of line k+1's first byte. yaml.v3 ends a
	// line at \n, \r\n, a lone \r, NEL (U+0085), LS (U+2028) and PS
	// (U+2029); the first line starts past a byte order mark, which
	// yaml.v3 does not count as a column.
	starts []int
}

func newSource(data []byte) *source {
	s := &source{data: data, starts: []int{0}}
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		s.starts[0] = 3
	}
	for i := s.starts[0]; i < len(data); {
		if w := breakWidth(data, i); w > 0 {
			i += w
			s.starts = append(s.starts, i)
			continue
		}
		i++
	}
	return s
}

// breakWidth is the length of the line break at data[i], 0 if there is none.
func breakWidth(data []byte, i int) int {
	if i >= len(data) {
		return 0
	}
	switch c := data[i]; {
	case c == '\r' && i+1 < len(data) && data[i+1] == '\n':
		return 2
	case c == '\r' || c == '\n':
		return 1
	case c == 0xC2 && i+1 < len(data) && data[i+1] == 0x85:
		return 2
	case c == 0xE2 && i+2 < len(data) && data[i+1] == 0x80 && (data[i+2] == 0xA8 || data[i+2] == 0xA9):
		return 3
	}
	return 0
}

// offset is the byte offset of yaml.v3's (line, col), both 1-based.
func (s *source) offset(line, col int) (int, bool) {
	if line < 1 || line > len(s.starts) || col < 1 {
		return 0, false
	}
	i := s.starts[line-1]
	for ; col > 1; col-- {
		if i >= len(s.data) || breakWidth(s.data, i) > 0 {
			return 0, false
		}
		_, w := utf8.DecodeRune(s.data[i:])
		i += w
	}
	return i, true
}

// position is the line and column of byte offset off. An offset inside a
// character is that character's column.
func (s *source) position(off int) position {
	k := sort.Search(len(s.starts), func(k int) bool { return s.starts[k] > off }) - 1
	k = max(k, 0)
	col := 1
	for i := s.starts[k]; i < off && i < len(s.data); col++ {
		_, w := utf8.DecodeRune(s.data[i:])
		if i+w > off {
			break
		}
		i += w
	}
	return position{k + 1, col}
}
