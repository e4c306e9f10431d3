package rules

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/halo-lb/halo/config/lang"
)

// mapTable is a map file indexed for its converter's match: exact keys in
// a Go map, prefixes and suffixes by length, networks by prefix length.
// Which line wins is HAProxy's (2.6, measured): the longest prefix for
// map_beg and network for map_ip (its trees), the first in file order for
// map_end and the rest (its lists).
type mapTable struct {
	match   lang.Method
	out     lang.Type
	exact   map[string]int // key → index in values
	lengths []int          // beg, end: distinct key lengths, longest first
	nets    map[netip.Prefix]int
	bits4   []int // longest first
	bits6   []int
	keys    [][]byte // sub, dir, dom: in file order
	res     []*regexp.Regexp
	ranges  [][2]int64
	values  []value
}

func newMapTable(mc *lang.MapConv, entries []MapEntry) (*mapTable, error) {
	m := &mapTable{match: mc.Match, out: mc.Out}
	for i, e := range entries {
		var v value
		switch mc.Out {
		case lang.TypeInt:
			n, err := strconv.ParseInt(e.Value, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("map entry %q: value %q is not an integer", e.Key, e.Value)
			}
			v.setInt(n)
		case lang.TypeIP:
			a, err := netip.ParseAddr(e.Value)
			if err != nil {
				return nil, fmt.Errorf("map entry %q: value %q is not an address", e.Key, e.Value)
			}
			v.setIP(a)
		default:
			v.setStr([]byte(e.Value))
		}
		idx := len(m.values)
		m.values = append(m.values, v)
		switch mc.Match {
		case lang.MatchStr, lang.MatchBeg, lang.MatchEnd:
			if m.exact == nil {
				m.exact = map[string]int{}
			}
			if _, dup := m.exact[e.Key]; !dup {
				m.exact[e.Key] = idx // the first line of a key wins
			}
			if !slices.Contains(m.lengths, len(e.Key)) {
				m.lengths = append(m.lengths, len(e.Key))
			}
		case lang.MatchIP:
			p, msg := lang.ParseNet(e.Key)
			if msg != "" {
				return nil, fmt.Errorf("map line %d: %s", i+1, msg)
			}
			if m.nets == nil {
				m.nets = map[netip.Prefix]int{}
			}
			if _, dup := m.nets[p]; !dup {
				m.nets[p] = idx
			}
			bits := &m.bits4
			if p.Addr().Is6() {
				bits = &m.bits6
			}
			if !slices.Contains(*bits, p.Bits()) {
				*bits = append(*bits, p.Bits())
			}
		case lang.MatchReg:
			re, err := regexp.Compile(e.Key)
			if err != nil {
				return nil, fmt.Errorf("map line %d: %v", i+1, err)
			}
			m.res = append(m.res, re)
		case lang.MatchInt:
			p, msg := lang.ParsePattern(lang.MatchInt, e.Key)
			if msg != "" {
				return nil, fmt.Errorf("map line %d: %s", i+1, msg)
			}
			m.ranges = append(m.ranges, [2]int64{p.Lo, p.Hi})
		default:
			m.keys = append(m.keys, []byte(strings.Clone(e.Key)))
		}
	}
	// Longest first: the most specific prefix, suffix or network wins.
	slices.SortFunc(m.lengths, func(a, b int) int { return b - a })
	slices.SortFunc(m.bits4, func(a, b int) int { return b - a })
	slices.SortFunc(m.bits6, func(a, b int) int { return b - a })
	return m, nil
}

// lookup finds the value for v, or -1.
func (m *mapTable) lookup(t *Txn, v *value) int {
	switch m.match {
	case lang.MatchIP:
		if !v.asIP() {
			return -1
		}
		bits := m.bits4
		if v.ip.Is6() {
			bits = m.bits6
		}
		for _, n := range bits {
			if p, err := v.ip.Prefix(n); err == nil {
				if i, ok := m.nets[p]; ok {
					return i
				}
			}
		}
		return -1
	case lang.MatchInt:
		if !v.asInt() {
			return -1
		}
		for i, r := range m.ranges {
			if r[0] <= v.i && v.i <= r[1] {
				return i
			}
		}
		return -1
	}
	v.asStr(t)
	b := v.b
	switch m.match {
	case lang.MatchStr:
		if i, ok := m.exact[bytesString(b)]; ok {
			return i
		}
	case lang.MatchBeg:
		for _, n := range m.lengths {
			if t.charge(n + patternCost) {
				return -1
			}
			if n <= len(b) {
				if i, ok := m.exact[bytesString(b[:n])]; ok {
					return i
				}
			}
		}
	case lang.MatchEnd:
		// HAProxy keeps map_end's keys in a list: the first line that
		// matches wins, not the longest suffix (measured with 2.6). Each
		// suffix length is one lookup; the earliest line found is that one.
		best := -1
		for _, n := range m.lengths {
			if t.charge(n + patternCost) {
				return -1
			}
			if n <= len(b) {
				if i, ok := m.exact[bytesString(b[len(b)-n:])]; ok && (best < 0 || i < best) {
					best = i
				}
			}
		}
		return best
	case lang.MatchReg:
		for i, re := range m.res {
			if t.charge(len(b) + patternCost) {
				return -1
			}
			if re.Match(b) {
				return i
			}
		}
	default:
		for i, k := range m.keys {
			if t.charge(len(b) + patternCost) {
				return -1
			}
			if matchOne(m.match, b, k) {
				return i
			}
		}
	}
	return -1
}

func matchOne(method lang.Method, b, p []byte) bool {
	switch method {
	case lang.MatchSub:
		return strings.Contains(bytesString(b), bytesString(p))
	case lang.MatchDir:
		return delimited(b, p, "/?")
	case lang.MatchDom:
		return delimited(b, p, "/?.:")
	}
	return false
}

// convMap replaces v with its value in the map, or the default; without
// a default, a key not found leaves no value.
func convMap(t *Txn, c *conv, v *value) bool {
	i := c.m.lookup(t, v)
	if i < 0 {
		if !c.global || t.expired {
			return false
		}
		v.setStr(c.s)
		return true
	}
	*v = c.m.values[i]
	return true
}
