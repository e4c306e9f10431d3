package rules

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/sticktable"
)

// What a stick-table fetch gives where there is nothing to read, as
// HAProxy 2.6's stick_table.c answers: a counter that tracks nothing
// gives no value; a src_* fetch with no entry for the client, and a
// tracked key missing from another table, read 0; data the table does
// not store gives no value on an entry that exists, but 0 where there is
// no entry (the missing entry is looked at first); and src_inc_gpc0/1 and
// src_clr_gpc0/1 create the client's entry, as they must count in it.
func TestStickFetchOnMissing(t *testing.T) {
	reg := sticktable.NewRegistry()
	table := func(name, line string) *sticktable.Table {
		s, err := config.ParseStickTable(line)
		if err != nil {
			t.Fatal(err)
		}
		return reg.Table(name, *s)
	}
	fe := table("fe", "type ip size 10 store gpc0,gpc1,http_req_rate(10s)")
	other := table("other", "type ip size 10 store gpc0")
	bare := table("bare", "type ip size 10")
	names := testNames()
	names.Tables = map[string]*sticktable.Table{"fe": fe, "other": other, "bare": bare}
	client := netip.MustParseAddr("10.1.2.3")
	// value compiles "set-var(txn.v) FETCH" and returns what it set:
	// "none" when the fetch gave no value.
	value := func(fetch string, track bool) string {
		t.Helper()
		c := NewCompiler(names)
		c.Section = "fe"
		lines := []string{"set-var(txn.v) " + fetch, `set-header X-V %[var(txn.v)]`, `set-header X-Set %[var(txn.v),length]`}
		if track {
			lines = append([]string{"track-sc0 src"}, lines...)
		}
		p := compileRules(t, c, nil, lines...)
		tx := newTxn(t, openstackRequest, "10.1.2.3:40000")
		tx.Reset(c.Vars())
		p.Run(tx)
		defer tx.Untrack(0, 0)
		if len(tx.Ctx.Request.Header.Peek("X-Set")) == 0 {
			return "none"
		}
		return string(tx.Ctx.Request.Header.Peek("X-V"))
	}
	for _, tc := range []struct {
		fetch string
		track bool
		want  string
	}{
		{"sc_get_gpc0(0)", false, "none"}, // nothing tracked
		{"sc0_http_req_rate", false, "none"},
		{"sc_tracked(0)", false, "0"},
		{"sc_get_gpc0(0)", true, "0"},
		{"sc_get_gpc0(0,other)", true, "0"}, // the key is not in other
		{"sc_conn_cur(0)", true, "none"},    // not stored
		{"src_get_gpc0", false, "0"},        // no entry for the client
		{"src_conn_cur", false, "0"},        // no entry: 0 before "not stored"
		{"src_get_gpc0(bare)", false, "0"},
	} {
		fe.Clear(sticktable.Now(), nil, false)
		other.Clear(sticktable.Now(), nil, false)
		if got := value(tc.fetch, tc.track); got != tc.want {
			t.Errorf("%s (tracked: %v): %s, want %s", tc.fetch, tc.track, got, tc.want)
		}
	}
	// An entry that exists, without the data: no value.
	bare.Touch(bare.AddrKey(client), sticktable.Now())
	if got := value("src_get_gpc0(bare)", false); got != "none" {
		t.Errorf("src_get_gpc0 on an entry without gpc0: %s, want none", got)
	}
	for _, tc := range []struct {
		fetch, want string
		used        int
	}{
		{"src_inc_gpc0", "1", 1},
		{"src_inc_gpc1", "1", 1},
		{"src_clr_gpc0", "0", 1},
		{"src_clr_gpc1", "0", 1},
		{"src_get_gpc0", "0", 0}, // a read creates nothing
		{"src_http_req_rate", "0", 0},
	} {
		fe.Clear(sticktable.Now(), nil, false)
		if got := value(tc.fetch, false); got != tc.want || fe.Used() != tc.used {
			t.Errorf("%s with no entry: %s and %d entries, want %s and %d", tc.fetch, got, fe.Used(), tc.want, tc.used)
		}
	}
	fe.Clear(sticktable.Now(), nil, false)
	for i := range 3 {
		if got := value("src_inc_gpc0", false); got != fmt.Sprint(i+1) {
			t.Errorf("src_inc_gpc0, call %d: %s", i+1, got)
		}
	}
	// Created in a table without the data: the entry is there, the
	// value is not.
	bare.Clear(sticktable.Now(), nil, false)
	if got := value("src_inc_gpc0(bare)", false); got != "none" || bare.Used() != 1 {
		t.Errorf("src_inc_gpc0(bare): %s and %d entries, want none and 1", got, bare.Used())
	}
}
