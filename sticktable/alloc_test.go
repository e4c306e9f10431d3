package sticktable

import (
	"net/netip"
	"testing"
)

const allStored = "store server_id,gpc0,gpc0_rate(10s),gpc1,conn_cnt,conn_cur,conn_rate(10s),sess_cnt,sess_rate(10s),http_req_cnt,http_req_rate(10s),http_err_cnt,http_err_rate(10s),bytes_in_cnt,bytes_in_rate(10s),bytes_out_cnt,bytes_out_rate(10s)"

// The data path's steps allocate nothing: building a key, looking an
// existing one up, tracking it, counting, reading a rate, releasing.
func TestHotPathAllocatesNothing(t *testing.T) {
	tb := newTable("t", spec(t, "type ip size 1k expire 30s "+allStored))
	addr := netip.MustParseAddr("10.0.0.1")
	tb.Touch(tb.AddrKey(addr), 0)
	now := int64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		now++
		k := tb.AddrKey(addr)
		e := tb.Track(k, now)
		e.ConnStart(now)
		e.Session(now)
		e.HTTPRequest(now)
		e.HTTPError(now)
		e.BytesIn(100, now)
		e.BytesOut(1000, now)
		e.IncGPC0(now)
		e.SetServerID(1, now)
		_ = e.Value(HTTPReqRate, now) + e.Value(ConnCur, now)
		_ = tb.Get(k, now)
		e.ConnEnd(now)
		e.Release(now)
	})
	if allocs != 0 {
		t.Errorf("the hot path allocates %v times", allocs)
	}
}

// Creating entries while the table has room allocates nothing per entry
// once a shard's chunk is there (chunks double, so a table of N entries
// allocates about 3·log2(N/16) times in its life), and neither does
// evicting in a full table, which reuses the evicted entry.
func TestCreateAndEvictAllocatesNothing(t *testing.T) {
	for _, line := range []string{"type integer size 64 " + allStored, "type string len 32 size 64 store gpc0"} {
		tb := newTable("t", spec(t, line))
		// Grow the shard's chunks and the map once, then empty it.
		var buf [8]byte
		key := func(i int) Key {
			if tb.spec.Type == "integer" {
				return tb.IntKey(int64(i))
			}
			for j := range buf {
				buf[j] = byte('a' + (i>>(3*j))&7)
			}
			return tb.BytesKey(buf[:])
		}
		for i := range 64 {
			tb.Touch(key(i), 0)
		}
		tb.Clear(0, nil, false)
		i := 0
		allocs := testing.AllocsPerRun(63, func() { // under size: new entries
			i++
			if tb.Touch(key(1000+i), 1) == nil {
				t.Fatal("no entry")
			}
		})
		if allocs != 0 {
			t.Errorf("%s: creating an entry allocates %v times", line, allocs)
		}
		allocs = testing.AllocsPerRun(1000, func() { // full: each one evicts
			i++
			tb.Touch(key(5000+i), int64(i))
		})
		if allocs != 0 || tb.Used() != 64 {
			t.Errorf("%s: evicting allocates %v times (%d used)", line, allocs, tb.Used())
		}
	}
}

func BenchmarkTrackCount(b *testing.B) {
	s, _ := configParse("type ip size 100k expire 30s store conn_cur,conn_rate(10s),http_req_rate(10s)")
	tb := newTable("t", s)
	addr := netip.MustParseAddr("10.0.0.1")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		now := int64(0)
		for pb.Next() {
			now++
			e := tb.Track(tb.AddrKey(addr), now)
			e.ConnStart(now)
			e.HTTPRequest(now)
			_ = e.Value(HTTPReqRate, now)
			e.ConnEnd(now)
			e.Release(now)
		}
	})
}

func BenchmarkTrackManyKeys(b *testing.B) {
	s, _ := configParse("type integer size 100k expire 30s store conn_cur,http_req_rate(10s)")
	tb := newTable("t", s)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int64(0)
		for pb.Next() {
			i++
			e := tb.Track(tb.IntKey(i%200000), i) // half the keys over size: evictions
			e.HTTPRequest(i)
			e.Release(i)
		}
	})
}
