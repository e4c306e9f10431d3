package stats

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/sticktable"
)

// StickTables is an optional ability of a Source: its stick tables, for
// "show table", "clear table" and "set table". A Source without it has
// no tables.
type StickTables interface {
	// StickTables returns the live tables, sorted by name; it never
	// waits on a reload.
	StickTables() []*sticktable.Table
}

// The table commands are registered at level user, as HAProxy 2.6 does,
// and check the level themselves the way it does: a user sees the
// tables' header lines only, and touching entries (dumping, clearing,
// setting) needs operator. HAProxy answers nothing when the level is too
// low, and so does halo.
func init() {
	commands = append(commands,
		command{words: []string{"show", "table"}, level: config.LevelUser, usage: "show table [<table> [data.<type> <op> <v>]... | [key <key>]]", help: "list the stick tables, or dump one's entries", run: cmdTable(actShow)},
		command{words: []string{"clear", "table"}, level: config.LevelUser, usage: "clear table <table> [data.<type> <op> <v>]... | [key <key>]", help: "remove entries from a stick table", run: cmdTable(actClear)},
		command{words: []string{"set", "table"}, level: config.LevelUser, usage: "set table <table> key <key> [data.<type> <v>]*", help: "create or update a stick table entry", run: cmdTable(actSet)},
	)
}

type tableAction int

const (
	actShow tableAction = iota
	actClear
	actSet
)

// maxTableFilters is HAProxy's STKTABLE_FILTER_LEN.
const maxTableFilters = 4

func (s *Stats) stickTables() []*sticktable.Table {
	if st, ok := s.src.(StickTables); ok {
		return st.StickTables()
	}
	return nil
}

func tableHead(t *sticktable.Table) string {
	spec := t.Spec()
	return fmt.Sprintf("# table: %s, type: %s, size:%d, used:%d\n", t.Name(), spec.Type, spec.Size, t.Used())
}

// tableEntry writes one entry as HAProxy 2.6 does: its address, key,
// references, milliseconds to expiry, then every stored data in
// HAProxy's order, rates with their period in milliseconds.
func tableEntry(b *strings.Builder, t *sticktable.Table, v *sticktable.EntryView, now int64) {
	fmt.Fprintf(b, "0x%x: key=%s use=%d exp=%d", v.Addr(), v.Key, v.Refs(), v.Exp)
	for d := sticktable.Data(0); int(d) < len(config.StickDataKinds); d++ {
		stored, period := t.Slot(d)
		if !stored {
			continue
		}
		b.WriteString(" " + d.Name())
		if d.IsRate() {
			fmt.Fprintf(b, "(%d)", period.Milliseconds())
		}
		b.WriteByte('=')
		if d == sticktable.ServerID {
			id, _ := v.ServerID()
			b.WriteString(strconv.Itoa(id))
		} else {
			b.WriteString(strconv.FormatUint(v.Value(d, now), 10))
		}
	}
	b.WriteByte('\n')
}

// tableFilter is one "data.<type> <op> <value>".
type tableFilter struct {
	d  sticktable.Data
	op string
	v  uint64
}

func (f tableFilter) match(v *sticktable.EntryView, now int64) bool {
	x := v.Value(f.d, now)
	switch f.op {
	case "eq":
		return x == f.v
	case "ne":
		return x != f.v
	case "le":
		return x <= f.v
	case "ge":
		return x >= f.v
	case "lt":
		return x < f.v
	default: // gt
		return x > f.v
	}
}

// parseFilters reads up to four filters from args, HAProxy's messages on
// error.
func parseFilters(t *sticktable.Table, args []string) ([]tableFilter, string) {
	var fs []tableFilter
	i := 0
	for ; i < maxTableFilters && i*3 < len(args); i++ {
		w := args[i*3:]
		name, isData := strings.CutPrefix(w[0], "data.")
		d, ok := sticktable.DataOf(config.StickDataKind(name))
		if !isData || !ok {
			return nil, fmt.Sprintf("Filter entry #%d: Unknown data type\n", i+1)
		}
		if stored, _ := t.Slot(d); !stored {
			return nil, fmt.Sprintf("Filter entry #%d: Data type not stored in this table\n", i+1)
		}
		if len(w) < 2 || !strings.Contains(" eq ne le ge lt gt ", " "+w[1]+" ") {
			return nil, fmt.Sprintf("Filter entry #%d: Require and operator among \"eq\", \"ne\", \"le\", \"ge\", \"lt\", \"gt\"\n", i+1)
		}
		n, err := strconv.ParseInt(orEmpty(w, 2), 10, 64)
		if err != nil {
			return nil, fmt.Sprintf("Filter entry #%d: Require a valid integer value to compare against\n", i+1)
		}
		fs = append(fs, tableFilter{d: d, op: w[1], v: uint64(n)})
	}
	if i*3 < len(args) {
		return nil, fmt.Sprintf("Detected extra data in filter, %dth word of input, after '%s'\n", 3+3*i+1, args[3*i-1])
	}
	return fs, ""
}

func orEmpty(ws []string, i int) string {
	if i < len(ws) {
		return ws[i]
	}
	return ""
}

func cmdTable(act tableAction) func(*Stats, *session, []string) string {
	return func(s *Stats, sess *session, args []string) string {
		level := config.LevelAdmin
		if sess != nil {
			level = sess.level
		}
		tables := s.stickTables()
		if len(args) == 0 {
			if act != actShow {
				return tableUsage(act)
			}
			var b strings.Builder
			for _, t := range tables {
				b.WriteString(tableHead(t))
			}
			return b.String()
		}
		var t *sticktable.Table
		for _, c := range tables {
			if c.Name() == args[0] {
				t = c
			}
		}
		if t == nil {
			return "No such table\n"
		}
		rest := args[1:]
		switch {
		case len(rest) > 0 && rest[0] == "key":
			return tableByKey(t, act, level, rest[1:])
		case len(rest) > 0 && strings.HasPrefix(rest[0], "data."):
			if act == actSet {
				return "content-based lookup is only supported with the \"show\" and \"clear\" actions\n"
			}
			fs, msg := parseFilters(t, rest)
			if msg != "" {
				return msg
			}
			return tableDump(t, act, level, fs)
		case len(rest) > 0:
			return tableUsage(act)
		case act == actSet:
			return "" // HAProxy does nothing either
		}
		return tableDump(t, act, level, nil)
	}
}

func tableUsage(act tableAction) string {
	switch act {
	case actShow:
		return "Optional argument only supports \"data.<store_data_type>\" <operator> <value> and key <key>\n"
	case actClear:
		return "Required arguments: <table> \"data.<store_data_type>\" <operator> <value> or <table> key <key>\n"
	}
	return "Required arguments: <table> key <key> [data.<store_data_type> <value>]*\n"
}

// tableDump shows or clears the entries every filter accepts.
func tableDump(t *sticktable.Table, act tableAction, level config.Level, fs []tableFilter) string {
	now := sticktable.Now()
	match := func(v *sticktable.EntryView) bool {
		for _, f := range fs {
			if !f.match(v, now) {
				return false
			}
		}
		return true
	}
	if act == actClear {
		if level >= config.LevelOperator {
			t.Clear(now, match, false)
		}
		return ""
	}
	var b strings.Builder
	b.WriteString(tableHead(t))
	if level < config.LevelOperator {
		return b.String()
	}
	// Entries print in key order, as HAProxy's tree gives them. Each
	// line is written while its shard is locked, so that an entry cannot
	// be taken for another key halfway through.
	type line struct {
		key  []byte
		text string
	}
	var lines []line
	t.Each(now, func(v *sticktable.EntryView) bool {
		if match(v) {
			var l strings.Builder
			tableEntry(&l, t, v, now)
			lines = append(lines, line{v.KeyBytes, l.String()})
		}
		return true
	})
	slices.SortFunc(lines, func(a, b line) int { return bytes.Compare(a.key, b.key) })
	for _, l := range lines {
		b.WriteString(l.text)
	}
	return b.String()
}

// tableByKey is the "key <key>" form of the three commands.
func tableByKey(t *sticktable.Table, act tableAction, level config.Level, args []string) string {
	if len(args) == 0 || args[0] == "" {
		return "Key value expected\n"
	}
	if t.Spec().Type == config.StickBinary {
		return [...]string{
			"Showing keys from tables of type other than ip, ipv6, string and integer is not supported\n",
			"Removing keys from tables of type other than ip, ipv6, string and integer is not supported\n",
			"Inserting keys into tables of type other than ip, ipv6, string and integer is not supported\n",
		}[act]
	}
	k, ok := t.ParseKey(args[0])
	if !ok {
		return "Invalid key\n"
	}
	if level < config.LevelOperator {
		return ""
	}
	now := sticktable.Now()
	switch act {
	case actShow:
		v, ok := t.View(k, now)
		if !ok {
			return ""
		}
		var b strings.Builder
		b.WriteString(tableHead(t))
		tableEntry(&b, t, &v, now)
		return b.String()
	case actClear:
		if t.Get(k, now) != nil && !t.Delete(k, now) {
			return "Entry currently in use, cannot remove\n"
		}
		return ""
	}
	// Held while it is set, so that it cannot be evicted meanwhile.
	e := t.Track(k, now)
	if e == nil {
		return "Unable to allocate a new entry\n"
	}
	defer e.Release(now)
	for i := 1; i < len(args); i += 2 {
		name, isData := strings.CutPrefix(args[i], "data.")
		d, known := sticktable.DataOf(config.StickDataKind(name))
		switch {
		case !isData:
			return "\"data.<type>\" followed by a value expected\n"
		case !known:
			return "Unknown data type\n"
		case !e.Stores(d):
			return "Data type not stored in this table\n"
		}
		n, err := strconv.ParseInt(orEmpty(args, i+1), 10, 64)
		if err != nil {
			return "Require a valid integer value to store\n"
		}
		if d == sticktable.ServerID {
			e.SetServerID(int(n), now)
		} else {
			e.Set(d, uint64(n), now)
		}
	}
	return ""
}
