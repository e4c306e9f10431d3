package sticktable

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
)

func spec(t *testing.T, line string) config.StickTable {
	t.Helper()
	s, err := config.ParseStickTable(line)
	if err != nil {
		t.Fatal(err)
	}
	return *s
}

func ipKey(tb *Table, s string) Key { return tb.AddrKey(netip.MustParseAddr(s)) }

func keysOf(tb *Table) map[string]bool {
	m := map[string]bool{}
	tb.Each(0, func(v *EntryView) bool { m[v.Key] = true; return true })
	return m
}

func TestKeys(t *testing.T) {
	ip := newTable("ip", spec(t, "type ip size 10"))
	v6 := newTable("v6", spec(t, "type ipv6 size 10"))
	str := newTable("s", spec(t, "type string len 4 size 10"))
	num := newTable("n", spec(t, "type integer size 10"))
	for _, c := range []struct {
		tb   *Table
		k    Key
		want string
	}{
		{ip, ipKey(ip, "10.0.0.1"), "10.0.0.1"},
		{ip, ipKey(ip, "::ffff:10.0.0.2"), "10.0.0.2"}, // IPv4-mapped: as its IPv4 address
		{v6, ipKey(v6, "10.0.0.3"), "::ffff:10.0.0.3"},
		{v6, ipKey(v6, "2001:db8::1"), "2001:db8::1"},
		{str, str.BytesKey([]byte("abcdefgh")), "abcd"}, // cut to len
		{str, str.BytesKey(nil), ""},
		{num, num.IntKey(-42), "-42"},
	} {
		if c.tb.Touch(c.k, 0) == nil {
			t.Fatalf("%s: no entry for %q", c.tb.Name(), c.want)
		}
		if !keysOf(c.tb)[c.want] {
			t.Errorf("%s holds %v, want %q", c.tb.Name(), keysOf(c.tb), c.want)
		}
	}
	for name, k := range map[string]Key{
		"IPv6 on ip":  ipKey(ip, "2001:db8::1"),
		"int on ip":   ip.IntKey(1),
		"bytes on v6": v6.BytesKey([]byte("x")),
		"addr on str": ipKey(str, "10.0.0.1"),
	} {
		if k.Valid() || ip.Touch(k, 0) != nil {
			t.Errorf("%s: a key was made", name)
		}
	}
	if k, ok := ip.ParseKey("10.0.0.2"); !ok || ip.Get(k, 0) == nil {
		t.Errorf("ParseKey: %v %v", k, ok)
	}
	for tb, bad := range map[*Table]string{ip: "::ffff:1.2.3.4", v6: "1.2.3.4", num: "-5"} {
		if _, ok := tb.ParseKey(bad); ok {
			t.Errorf("%s took key %q", tb.Name(), bad)
		}
	}
}

func TestCountersAndRates(t *testing.T) {
	tb := newTable("t", spec(t, "type ip size 10 store server_id,gpc0,gpc0_rate(10s),gpc1,conn_cnt,conn_cur,conn_rate(10s),sess_cnt,sess_rate(1s),http_req_cnt,http_req_rate(10s),http_err_cnt,http_err_rate(10s),bytes_in_cnt,bytes_in_rate(10s),bytes_out_cnt,bytes_out_rate(10s)"))
	e := tb.Track(ipKey(tb, "10.0.0.1"), 1000)
	e.ConnStart(1000)
	e.ConnStart(1000)
	e.ConnEnd(2000)
	e.ConnEnd(2000)
	e.ConnEnd(2000) // never below zero
	e.Session(1000)
	for range 3 {
		e.HTTPRequest(1500)
	}
	e.HTTPError(1500)
	e.BytesIn(100, 1500)
	e.BytesOut(2500, 1500)
	e.IncGPC0(1500)
	if got := e.IncGPC0(1500); got != 2 {
		t.Errorf("IncGPC0 returned %d", got)
	}
	e.IncGPC1(1500)
	e.SetServerID(3, 1500)
	want := map[Data]uint64{ServerID: 3, GPC0: 2, GPC0Rate: 2, GPC1: 1, ConnCnt: 2, ConnCur: 0, ConnRate: 2, SessCnt: 1, SessRate: 1,
		HTTPReqCnt: 3, HTTPReqRate: 3, HTTPErrCnt: 1, HTTPErrRate: 1, BytesInCnt: 100, BytesInRate: 100, BytesOutCnt: 2500, BytesOutRate: 2500}
	for d := Data(0); d < numData; d++ {
		if got := e.Value(d, 2000); got != want[d] {
			t.Errorf("%s = %d, want %d", d.Name(), got, want[d])
		}
	}
	if id, ok := e.ServerID(); !ok || id != 3 {
		t.Errorf("ServerID = %d, %v", id, ok)
	}
	if got := e.ClearGPC0(3000); got != 2 || e.Value(GPC0, 3000) != 0 {
		t.Errorf("ClearGPC0 returned %d, left %d", got, e.Value(GPC0, 3000))
	}
	// sess_rate's period is 1s: a second later, one past event reads 1
	// (whole, as HAProxy's), two seconds later nothing.
	if got := e.Value(SessRate, 3001); got != 0 {
		t.Errorf("sess_rate after two periods = %d", got)
	}
	if !e.Set(HTTPReqRate, 9, 5000) || e.Value(HTTPReqRate, 5000) != 9 || e.Value(HTTPReqRate, 14999) != 9 || e.Value(HTTPReqRate, 20000) != 4 {
		t.Errorf("set rate reads %d, %d, %d", e.Value(HTTPReqRate, 5000), e.Value(HTTPReqRate, 14999), e.Value(HTTPReqRate, 20000))
	}
}

// Data a table does not store reads as 0 and ignores updates.
func TestUnstoredData(t *testing.T) {
	tb := newTable("t", spec(t, "type ip size 10 store gpc0"))
	e := tb.Touch(ipKey(tb, "10.0.0.1"), 0)
	e.ConnStart(0)
	e.HTTPRequest(0)
	e.SetServerID(2, 0)
	if e.Value(ConnCnt, 0) != 0 || e.Value(HTTPReqRate, 0) != 0 || e.Stores(ConnCnt) || e.Set(ConnCur, 1, 0) {
		t.Error("an unstored kind has a value")
	}
	if _, ok := e.ServerID(); ok {
		t.Error("server_id read without being stored")
	}
	if got := e.IncGPC0(0); got != 1 {
		t.Errorf("gpc0 = %d", got)
	}
	if got := e.IncGPC1(0); got != 0 {
		t.Errorf("gpc1 = %d", got)
	}
}

func TestEvictionLRU(t *testing.T) {
	tb := newTable("t", spec(t, "type integer size 3 store gpc0"))
	for i := range int64(3) {
		tb.Touch(tb.IntKey(i), 10+i)
	}
	tb.Get(tb.IntKey(0), 20).IncGPC0(20) // 0 is now the most recently updated
	tb.Touch(tb.IntKey(3), 21)           // evicts 1, the least recently used
	if got := keysOf(tb); len(got) != 3 || got["1"] || !got["0"] || !got["3"] {
		t.Errorf("after eviction: %v", got)
	}
	if tb.Used() != 3 {
		t.Errorf("used %d", tb.Used())
	}
	// Referenced entries are never evicted: with all three tracked, a
	// new key has no room.
	var held []*Entry
	for _, k := range []int64{0, 2, 3} {
		held = append(held, tb.Track(tb.IntKey(k), 30))
	}
	if tb.Touch(tb.IntKey(9), 31) != nil {
		t.Error("a referenced entry was evicted")
	}
	held[1].Release(32) // 2 goes free
	if tb.Touch(tb.IntKey(9), 33) == nil || keysOf(tb)["2"] {
		t.Errorf("after releasing 2: %v", keysOf(tb))
	}
}

func TestNoPurge(t *testing.T) {
	tb := newTable("t", spec(t, "type integer size 2 nopurge"))
	tb.Touch(tb.IntKey(1), 0)
	tb.Touch(tb.IntKey(2), 0)
	if tb.Touch(tb.IntKey(3), 0) != nil || tb.Used() != 2 {
		t.Error("nopurge took a new key into a full table")
	}
	if tb.Touch(tb.IntKey(1), 0) == nil {
		t.Error("an existing key was refused")
	}
	if !tb.Delete(tb.IntKey(1), 0) || tb.Touch(tb.IntKey(3), 0) == nil {
		t.Error("no room after a delete")
	}
}

func TestExpiry(t *testing.T) {
	tb := newTable("t", spec(t, "type integer size 10 expire 10s store conn_cnt"))
	tb.Touch(tb.IntKey(1), 0)
	tb.Touch(tb.IntKey(2), 0).ConnStart(5000) // updated later
	held := tb.Track(tb.IntKey(3), 0)
	if tb.Get(tb.IntKey(1), 9999) == nil {
		t.Error("expired too early")
	}
	if tb.Get(tb.IntKey(1), 10000) != nil {
		t.Error("an entry 10s old is still there (lazy expiry)")
	}
	if tb.Get(tb.IntKey(2), 14999) == nil {
		t.Error("expiry does not count from the last update")
	}
	if n := tb.Sweep(20000); n != 2-1 || tb.Used() != 1 { // 1 went lazily above; 2 now; 3 is referenced
		t.Errorf("sweep removed %d, %d left", n, tb.Used())
	}
	held.Release(20000)
	if tb.Get(tb.IntKey(3), 29999) == nil || tb.Sweep(30000) != 1 || tb.Used() != 0 {
		t.Error("a released entry expires from its release")
	}
	var seen []int64
	tb.Touch(tb.IntKey(4), 40000)
	tb.Each(42500, func(v *EntryView) bool { seen = append(seen, v.Exp); return true })
	if len(seen) != 1 || seen[0] != 7500 {
		t.Errorf("exp = %v, want [7500]", seen)
	}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	defer r.Close()
	a := r.Table("be", spec(t, "type ip size 10 store gpc0"))
	a.Touch(ipKey(a, "10.0.0.1"), 0).IncGPC0(0)
	if b := r.Table("be", spec(t, "type ip size 10 store gpc0")); b != a || b.Used() != 1 {
		t.Error("an unchanged spec did not keep the table and its entries")
	}
	r.Table("other", spec(t, "type integer size 1"))
	if c := r.Table("be", spec(t, "type ip size 10 store gpc0,gpc1")); c == a || c.Used() != 0 {
		t.Error("a changed spec kept the old table")
	}
	if ts := r.Tables(); len(ts) != 2 || ts[0].Name() != "be" || ts[1].Name() != "other" || r.Lookup("other") != ts[1] || r.Lookup("x") != nil {
		t.Errorf("tables %v", ts)
	}
	r.Retain(func(name string) bool { return name == "be" })
	if r.Lookup("other") != nil || len(r.Tables()) != 1 {
		t.Error("Retain kept a dropped table")
	}
	// The sweeper runs on its own clock and stops on Close.
	var mu sync.Mutex
	clock := int64(0)
	d := r.Table("exp", spec(t, "type integer size 10 expire 1s"))
	d.Touch(d.IntKey(1), 0)
	r.StartSweep(time.Millisecond, func() int64 { mu.Lock(); defer mu.Unlock(); return clock })
	r.StartSweep(time.Millisecond, nil) // a second start does nothing
	mu.Lock()
	clock = 5000
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for d.Used() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if d.Used() != 0 {
		t.Error("the sweeper did not remove an expired entry")
	}
	r.Close()
	r.Close()
}

// Many goroutines on overlapping keys, with eviction, expiry, sweeps and
// dumps at once: run under -race, and the counts must add up.
func TestConcurrency(t *testing.T) {
	tb := newTable("t", spec(t, "type integer size 4k expire 1m store conn_cur,http_req_cnt,http_req_rate(10s)"))
	const workers, per = 8, 2000
	// The shared keys are held for the whole run, so that none is
	// evicted and their counts must add up exactly.
	for k := range int64(64) {
		defer tb.Track(tb.IntKey(k), 0).Release(per)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				now := int64(i)
				e := tb.Track(tb.IntKey(int64(i%64)), now) // shared keys
				e.ConnStart(now)
				e.HTTPRequest(now)
				_ = e.Value(HTTPReqRate, now)
				e.ConnEnd(now)
				e.Release(now)
				tb.Touch(tb.IntKey(int64(1000+w*per+i)), now) // churn: evictions
				if i%500 == 0 {
					tb.Sweep(now)
					tb.Each(now, func(*EntryView) bool { return true })
				}
			}
		}()
	}
	wg.Wait()
	var reqs, cur uint64
	for k := range int64(64) {
		e := tb.Get(tb.IntKey(k), per)
		if e == nil {
			t.Fatalf("held key %d was evicted", k)
		}
		reqs += e.Value(HTTPReqCnt, per)
		cur += e.Value(ConnCur, per)
	}
	if reqs != workers*per || cur != 0 {
		t.Errorf("requests %d, want %d; conn_cur %d", reqs, workers*per, cur)
	}
	if tb.Used() > 4096 {
		t.Errorf("used %d over size", tb.Used())
	}
	if len(tb.shards) != 4 {
		t.Errorf("a 4k table has %d shards", len(tb.shards))
	}
}

func ExampleTable() {
	r := NewRegistry()
	defer r.Close()
	s, _ := config.ParseStickTable("type ip size 100k expire 30s store conn_cur,http_req_rate(10s)")
	tb := r.Table("api", *s)
	now := int64(1000)
	e := tb.Track(tb.AddrKey(netip.MustParseAddr("192.0.2.7")), now)
	e.ConnStart(now)
	e.HTTPRequest(now)
	e.HTTPRequest(now + 10)
	fmt.Println(e.Value(ConnCur, now), e.Value(HTTPReqRate, now+10))
	e.ConnEnd(now + 20)
	e.Release(now + 20)
	// Output: 1 2
}

func configParse(line string) (config.StickTable, error) {
	s, err := config.ParseStickTable(line)
	if err != nil {
		return config.StickTable{}, err
	}
	return *s, nil
}

// The registry keeps its own copy of a spec: a caller reusing its slice
// changes nothing.
func TestRegistryCopiesSpec(t *testing.T) {
	r := NewRegistry()
	s := spec(t, "type ip size 10 store gpc0")
	a := r.Table("be", s)
	s.Store[0].Kind = config.StickGPC1
	if stored, _ := a.Slot(GPC0); !stored || a.Spec().Store[0].Kind != config.StickGPC0 {
		t.Error("the table's spec changed under it")
	}
	if r.Table("be", spec(t, "type ip size 10 store gpc0")) != a {
		t.Error("an equal spec made a new table")
	}
}
