package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// StickTable is a section's "stick-table" line: a table of per-key
// counters (a client address, a cookie) that outlives reloads while the
// line is unchanged (Equal tells).
type StickTable struct {
	Type StickType
	// KeyLen is the key's length in bytes: 4 for ip, 16 for ipv6, 8 for
	// integer, "len N" (default 32) for string and binary.
	KeyLen int
	// Size is the most entries the table holds.
	Size int
	// Expire is how long an entry lives after its last update; 0: until
	// it is evicted.
	Expire time.Duration
	// NoPurge refuses new keys when the table is full instead of
	// evicting the least recently used entry.
	NoPurge bool
	// Store is the data kept per entry, in the order written, each kind
	// at most once.
	Store []StickData
}

// Equal reports whether two specs describe the same table, so that a
// reload keeps its entries.
func (t *StickTable) Equal(o *StickTable) bool {
	if t == nil || o == nil {
		return t == o
	}
	if t.Type != o.Type || t.KeyLen != o.KeyLen || t.Size != o.Size || t.Expire != o.Expire || t.NoPurge != o.NoPurge || len(t.Store) != len(o.Store) {
		return false
	}
	for i := range t.Store {
		if t.Store[i] != o.Store[i] {
			return false
		}
	}
	return true
}

// StickType is a stick table's key type, HAProxy's word.
type StickType string

// The key types.
const (
	StickIP      StickType = "ip"
	StickIPv6    StickType = "ipv6"
	StickInteger StickType = "integer"
	StickString  StickType = "string"
	StickBinary  StickType = "binary"
)

// DefaultStickKeyLen is HAProxy's default "len" of string and binary keys.
const DefaultStickKeyLen = 32

// MaxStickKeyLen bounds "len": keys live inline in every entry.
const MaxStickKeyLen = 4096

// StickDataKind is one kind of data a table stores, HAProxy's name.
type StickDataKind string

// The data kinds halo stores. A *_rate kind has a Period.
const (
	StickServerID     StickDataKind = "server_id"
	StickGPC0         StickDataKind = "gpc0"
	StickGPC0Rate     StickDataKind = "gpc0_rate"
	StickGPC1         StickDataKind = "gpc1"
	StickConnCnt      StickDataKind = "conn_cnt"
	StickConnCur      StickDataKind = "conn_cur"
	StickConnRate     StickDataKind = "conn_rate"
	StickSessCnt      StickDataKind = "sess_cnt"
	StickSessRate     StickDataKind = "sess_rate"
	StickHTTPReqCnt   StickDataKind = "http_req_cnt"
	StickHTTPReqRate  StickDataKind = "http_req_rate"
	StickHTTPErrCnt   StickDataKind = "http_err_cnt"
	StickHTTPErrRate  StickDataKind = "http_err_rate"
	StickBytesInCnt   StickDataKind = "bytes_in_cnt"
	StickBytesInRate  StickDataKind = "bytes_in_rate"
	StickBytesOutCnt  StickDataKind = "bytes_out_cnt"
	StickBytesOutRate StickDataKind = "bytes_out_rate"
)

// StickDataKinds lists every kind in HAProxy's own order (its data type
// numbers), the order "show table" prints them in.
var StickDataKinds = []StickDataKind{
	StickServerID, StickGPC0, StickGPC0Rate, StickConnCnt, StickConnRate, StickConnCur,
	StickSessCnt, StickSessRate, StickHTTPReqCnt, StickHTTPReqRate, StickHTTPErrCnt, StickHTTPErrRate,
	StickBytesInCnt, StickBytesInRate, StickBytesOutCnt, StickBytesOutRate, StickGPC1,
}

// IsRate reports whether the kind is a rate over a period.
func (k StickDataKind) IsRate() bool { return strings.HasSuffix(string(k), "_rate") }

// StickData is one stored kind; Period is the window of a rate, 0 for
// the others.
type StickData struct {
	Kind   StickDataKind
	Period time.Duration
}

// StickTableError is an error about one word of a stick-table line, Off
// bytes into it.
type StickTableError struct {
	Off int
	Msg string
}

func (e *StickTableError) Error() string { return e.Msg }

// The longest "expire" and rate period: HAProxy keeps them as 32-bit
// milliseconds.
const maxStickPeriod = time.Duration(math.MaxInt32) * time.Millisecond

// ParseStickTable parses a stick-table line in HAProxy's words:
//
//	type ip|ipv6|integer|string [len N]|binary [len N] size N[k|m|g]
//	  [expire T] [nopurge] [store DATA[,DATA...]]...
//
// An error names the word it is about by its byte offset.
func ParseStickTable(s string) (*StickTable, error) {
	ws, offs := words(s)
	t := &StickTable{}
	fail := func(i int, format string, args ...any) (*StickTable, error) {
		off := len(s)
		if i < len(offs) {
			off = offs[i]
		}
		return nil, &StickTableError{Off: off, Msg: fmt.Sprintf(format, args...)}
	}
	seen := map[string]int{}
	lenAt := -1
	for i := 0; i < len(ws); i++ {
		w := ws[i]
		if w != "store" {
			if _, dup := seen[w]; dup {
				return fail(i, "%q is given twice", w)
			}
		}
		seen[w] = i
		takesArg := w == "type" || w == "len" || w == "size" || w == "expire" || w == "store"
		if takesArg && i+1 == len(ws) {
			return fail(i+1, "%s needs a value", w)
		}
		switch w {
		case "type":
			i++
			switch ty := StickType(ws[i]); ty {
			case StickIP:
				t.Type, t.KeyLen = ty, 4
			case StickIPv6:
				t.Type, t.KeyLen = ty, 16
			case StickInteger:
				t.Type, t.KeyLen = ty, 8
			case StickString, StickBinary:
				t.Type, t.KeyLen = ty, DefaultStickKeyLen
			default:
				return fail(i, "unknown type %q: halo takes ip, ipv6, integer, string or binary", ws[i])
			}
		case "len":
			i++
			n, err := strconv.Atoi(ws[i])
			if err != nil || n < 1 || n > MaxStickKeyLen {
				return fail(i, "len %q: want a whole number from 1 to %d", ws[i], MaxStickKeyLen)
			}
			lenAt = i - 1
			t.KeyLen = n
		case "size":
			i++
			n, ok := parseStickSize(ws[i])
			if !ok {
				return fail(i, "size %q: want a whole number of entries from 1, with an optional k, m or g (times 1024)", ws[i])
			}
			t.Size = n
		case "expire":
			i++
			d, err := ParseDuration(ws[i])
			if err == nil && d > maxStickPeriod {
				err = fmt.Errorf("expire %q is too large: at most 24d", ws[i])
			}
			if err != nil {
				return fail(i, "%v", err)
			}
			t.Expire = d
		case "nopurge":
			t.NoPurge = true
		case "store":
			i++
			if err := t.parseStore(ws[i], offs[i]); err != nil {
				return nil, err
			}
		case "peers", "srvkey", "write-to":
			return fail(i, "%s is not supported by halo (tables are local to one process)", w)
		default:
			return fail(i, "unknown word %q: halo takes type, len, size, expire, nopurge and store", w)
		}
	}
	switch {
	case t.Type == "":
		return fail(len(ws), "a stick-table needs a type (ip, ipv6, integer, string or binary)")
	case t.Size == 0:
		return fail(len(ws), "a stick-table needs a size")
	case lenAt >= 0 && t.Type != StickString && t.Type != StickBinary:
		return fail(lenAt, "len applies only to type string and binary, not %s", t.Type)
	}
	return t, nil
}

// parseStickSize reads HAProxy's size: a count with an optional k, m or g
// suffix that multiplies it by 1024, 1024² or 1024³.
func parseStickSize(s string) (int, bool) {
	mult := 1
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "m"), strings.HasSuffix(s, "M"):
		mult, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "g"), strings.HasSuffix(s, "G"):
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil || n == 0 || n*uint64(mult) > math.MaxInt32 {
		return 0, false
	}
	return int(n) * mult, true
}

// parseStore reads one "store" argument: kinds separated by commas, a
// rate with its period in parentheses. off is the argument's offset.
func (t *StickTable) parseStore(arg string, off int) error {
	fail := func(at int, format string, args ...any) error {
		return &StickTableError{Off: off + at, Msg: fmt.Sprintf(format, args...)}
	}
	for at := 0; at <= len(arg); {
		end := strings.IndexByte(arg[at:], ',')
		if end < 0 {
			end = len(arg)
		} else {
			end += at
		}
		item := arg[at:end]
		name, period, hasPeriod := strings.Cut(item, "(")
		kind := StickDataKind(name)
		known := false
		for _, k := range StickDataKinds {
			known = known || k == kind
		}
		switch {
		case item == "":
			return fail(at, "empty data type in store")
		case !known:
			return fail(at, "unknown data type %q: halo stores %s", name, stickKindList())
		case kind.IsRate() && !hasPeriod:
			return fail(at, "%s needs a period, as %s(10s)", name, name)
		case !kind.IsRate() && hasPeriod:
			return fail(at, "%s takes no period", name)
		}
		d := StickData{Kind: kind}
		if hasPeriod {
			if !strings.HasSuffix(period, ")") {
				return fail(at+len(name), "%s: the period is not closed with ')'", name)
			}
			p, err := ParseDuration(strings.TrimSuffix(period, ")"))
			if err == nil && (p < time.Millisecond || p > maxStickPeriod) {
				err = fmt.Errorf("period of %s must be from 1ms to 24d", name)
			}
			if err != nil {
				return fail(at+len(name)+1, "%v", err)
			}
			d.Period = p
		}
		for _, prev := range t.Store {
			if prev.Kind == kind {
				return fail(at, "%s is stored twice", name)
			}
		}
		t.Store = append(t.Store, d)
		at = end + 1
	}
	return nil
}

// stickDuration writes d in HAProxy's units, exactly.
func stickDuration(d time.Duration) string {
	if d%time.Millisecond != 0 {
		return strconv.FormatInt(d.Microseconds(), 10) + "us"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

func stickKindList() string {
	names := make([]string, len(StickDataKinds))
	for i, k := range StickDataKinds {
		names[i] = string(k)
		if k.IsRate() {
			names[i] += "(T)"
		}
	}
	return strings.Join(names, ", ")
}

// String writes the table back as a stick-table line that parses to it.
func (t *StickTable) String() string {
	var b strings.Builder
	b.WriteString("type " + string(t.Type))
	if t.Type == StickString || t.Type == StickBinary {
		fmt.Fprintf(&b, " len %d", t.KeyLen)
	}
	fmt.Fprintf(&b, " size %d", t.Size)
	if t.Expire > 0 {
		b.WriteString(" expire " + stickDuration(t.Expire))
	}
	if t.NoPurge {
		b.WriteString(" nopurge")
	}
	for i, d := range t.Store {
		if i == 0 {
			b.WriteString(" store ")
		} else {
			b.WriteString(",")
		}
		b.WriteString(string(d.Kind))
		if d.Kind.IsRate() {
			b.WriteString("(" + stickDuration(d.Period) + ")")
		}
	}
	return b.String()
}

// buildStickTables parses every section's stick-table line. A listen
// section's table belongs to its backend side, so that one name means one
// table.
func (p *parser) buildStickTables(cfg *Config, fc *fileConfig) {
	parse := func(s *fileProxy, path string) *StickTable {
		if s == nil || s.StickTable == nil {
			return nil
		}
		path += ".stick-table"
		t, err := ParseStickTable(*s.StickTable)
		if err != nil {
			off := 0
			if we, ok := err.(*StickTableError); ok {
				off = we.Off
			}
			p.atWord(path, off, "%v", err)
			return nil
		}
		return t
	}
	for _, fe := range cfg.Frontends {
		if _, isListen := fc.Listen[fe.Name]; !isListen {
			fe.StickTable = parse(fc.Frontends[fe.Name], joinPath("frontends", fe.Name))
		}
	}
	for _, be := range cfg.Backends {
		if s, isListen := fc.Listen[be.Name]; isListen {
			be.StickTable = parse(s, joinPath("listen", be.Name))
		} else {
			be.StickTable = parse(fc.Backends[be.Name], joinPath("backends", be.Name))
		}
	}
}
