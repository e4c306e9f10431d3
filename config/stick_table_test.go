package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseStickTable(t *testing.T) {
	for _, c := range []struct {
		line string
		want StickTable
	}{
		{"type ip size 1k", StickTable{Type: StickIP, KeyLen: 4, Size: 1024}},
		{"type ipv6 size 2m expire 30s nopurge", StickTable{Type: StickIPv6, KeyLen: 16, Size: 2 << 20, Expire: 30 * time.Second, NoPurge: true}},
		{"type integer size 10 expire 500", StickTable{Type: StickInteger, KeyLen: 8, Size: 10, Expire: 500 * time.Millisecond}},
		{"type string len 8 size 1g", StickTable{Type: StickString, KeyLen: 8, Size: 1 << 30}},
		{"type string size 5", StickTable{Type: StickString, KeyLen: 32, Size: 5}},
		{"  type binary   len 4\tsize 5 ", StickTable{Type: StickBinary, KeyLen: 4, Size: 5}},
		{"size 100k type ip store gpc0,conn_rate(10s) store http_req_rate(1m),server_id", StickTable{Type: StickIP, KeyLen: 4, Size: 100 << 10,
			Store: []StickData{{StickGPC0, 0}, {StickConnRate, 10 * time.Second}, {StickHTTPReqRate, time.Minute}, {StickServerID, 0}}}},
		{"type ip size 1 store server_id,gpc0,gpc0_rate(1s),gpc1,conn_cnt,conn_cur,conn_rate(1s),sess_cnt,sess_rate(1s),http_req_cnt,http_req_rate(1s),http_err_cnt,http_err_rate(1s),bytes_in_cnt,bytes_in_rate(1s),bytes_out_cnt,bytes_out_rate(1s)",
			StickTable{Type: StickIP, KeyLen: 4, Size: 1, Store: []StickData{{StickServerID, 0}, {StickGPC0, 0}, {StickGPC0Rate, time.Second}, {StickGPC1, 0},
				{StickConnCnt, 0}, {StickConnCur, 0}, {StickConnRate, time.Second}, {StickSessCnt, 0}, {StickSessRate, time.Second}, {StickHTTPReqCnt, 0},
				{StickHTTPReqRate, time.Second}, {StickHTTPErrCnt, 0}, {StickHTTPErrRate, time.Second}, {StickBytesInCnt, 0}, {StickBytesInRate, time.Second},
				{StickBytesOutCnt, 0}, {StickBytesOutRate, time.Second}}}},
	} {
		got, err := ParseStickTable(c.line)
		if err != nil {
			t.Errorf("%q: %v", c.line, err)
			continue
		}
		if !got.Equal(&c.want) {
			t.Errorf("%q = %+v, want %+v", c.line, *got, c.want)
		}
		again, err := ParseStickTable(got.String())
		if err != nil || !again.Equal(got) {
			t.Errorf("%q written back as %q: %+v, %v", c.line, got.String(), again, err)
		}
	}
}

// Each bad line is refused with an error at the column of the word it is
// about (off is the byte offset inside the line).
func TestParseStickTableErrors(t *testing.T) {
	for _, c := range []struct {
		line string
		off  int
		msg  string
	}{
		{"", 0, "needs a type"},
		{"type ip", 7, "needs a size"},
		{"size 10", 7, "needs a type"},
		{"type", 4, "type needs a value"},
		{"type ip size", 12, "size needs a value"},
		{"type mac size 1", 5, `unknown type "mac"`},
		{"type ip size 0", 13, `size "0"`},
		{"type ip size 10x", 13, `size "10x"`},
		{"type ip size 4g", 13, `size "4g"`},
		{"type ip size 1 expire 5y", 22, `invalid duration "5y"`},
		{"type ip size 1 expire 30d", 22, "too large"},
		{"type ip len 4 size 1", 8, "len applies only to type string"},
		{"type string len 0 size 1", 16, `len "0"`},
		{"type string len 99999 size 1", 16, `len "99999"`},
		{"type ip size 1 size 2", 15, `"size" is given twice`},
		{"type ip size 1 nopurge nopurge", 23, `"nopurge" is given twice`},
		{"type ip size 1 peers mypeers", 15, "peers is not supported"},
		{"type ip size 1 bogus", 15, `unknown word "bogus"`},
		{"type ip size 1 store", 20, "store needs a value"},
		{"type ip size 1 store gpc0,gpc9", 26, `unknown data type "gpc9"`},
		{"type ip size 1 store gpc0,,gpc1", 26, "empty data type"},
		{"type ip size 1 store gpc0,", 26, "empty data type"},
		{"type ip size 1 store conn_rate", 21, "conn_rate needs a period"},
		{"type ip size 1 store gpc0(10s)", 21, "gpc0 takes no period"},
		{"type ip size 1 store gpc0,conn_rate(10s", 35, "not closed"},
		{"type ip size 1 store conn_rate(1x)", 31, `invalid duration "1x"`},
		{"type ip size 1 store conn_rate(0)", 31, "from 1ms to 24d"},
		{"type ip size 1 store gpc0 store conn_cnt,gpc0", 41, "gpc0 is stored twice"},
	} {
		_, err := ParseStickTable(c.line)
		var we *StickTableError
		if !errors.As(err, &we) {
			t.Errorf("%q: error %v, want a StickTableError", c.line, err)
			continue
		}
		if we.Off != c.off || !strings.Contains(we.Msg, c.msg) {
			t.Errorf("%q: error at %d %q, want at %d saying %q", c.line, we.Off, we.Msg, c.off, c.msg)
		}
	}
}

// In a file, the table lands in the section's Frontend or Backend, and an
// error points at the word's own line and column.
func TestStickTableInConfig(t *testing.T) {
	cfg, err := Parse("t.yaml", []byte(`frontends:
  fe:
    bind: ["127.0.0.1:8080"]
    default_backend: be
    stick-table: type ip size 1k store http_req_rate(10s)
backends:
  be:
    stick-table: "type string len 16 size 10 expire 1m"
    servers: [{name: s1, address: "127.0.0.1:9000"}]
listen:
  li:
    bind: ["127.0.0.1:8081"]
    stick-table: type ipv6 size 5
    servers: [{name: s1, address: "127.0.0.1:9000"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	frontend := func(name string) *Frontend {
		for _, fe := range cfg.Frontends {
			if fe.Name == name {
				return fe
			}
		}
		t.Fatalf("no frontend %s", name)
		return nil
	}
	if st := frontend("fe").StickTable; st == nil || st.Type != StickIP || st.Store[0] != (StickData{StickHTTPReqRate, 10 * time.Second}) {
		t.Errorf("fe's table = %+v", st)
	}
	if st := cfg.Backend("be").StickTable; st == nil || st.KeyLen != 16 || st.Expire != time.Minute {
		t.Errorf("be's table = %+v", st)
	}
	if frontend("li").StickTable != nil || cfg.Backend("li").StickTable == nil {
		t.Errorf("a listen section's table belongs to its backend side only")
	}
	for _, c := range []struct{ file, want string }{
		{"backends:\n  be:\n    stick-table: type ip size 1k store gpc0,bogus\n    servers: [{name: s1, address: \"127.0.0.1:9000\"}]\n",
			`t.yaml:3:45: backends.be.stick-table: unknown data type "bogus"`},
		{"backends:\n  be:\n    stick-table: \"type ip  size 1x\"\n    servers: [{name: s1, address: \"127.0.0.1:9000\"}]\n",
			`t.yaml:3:33: backends.be.stick-table: size "1x"`},
		{"frontends:\n  fe:\n    bind: [\"127.0.0.1:1\"]\n    default_backend: be\n    stick-table: type ip\nbackends:\n  be:\n    servers: [{name: s1, address: \"127.0.0.1:9000\"}]\n",
			`t.yaml:5:25: frontends.fe.stick-table: a stick-table needs a size`},
		{"defaults:\n  stick-table: type ip size 1\n", `t.yaml:2:3: defaults.stick-table`},
	} {
		_, err := Parse("t.yaml", []byte(c.file))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %s", err, c.want)
		}
	}
}

// FuzzParseStickTable: any line either parses into a table whose line
// parses back to the same table, or is refused with an offset inside it.
func FuzzParseStickTable(f *testing.F) {
	for _, s := range []string{"type ip size 1k", "type string len 8 size 10 expire 30s nopurge store gpc0,conn_rate(10s)",
		"type ipv6 size 1m store http_req_rate(", "type binary len 4 size 1 store bytes_out_rate(1d),server_id", "type ip size 1 store ,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		st, err := ParseStickTable(line)
		if err != nil {
			var we *StickTableError
			if !errors.As(err, &we) || we.Off < 0 || we.Off > len(line) {
				t.Fatalf("%q: error %v is not positioned inside the line", line, err)
			}
			return
		}
		again, err := ParseStickTable(st.String())
		if err != nil || !again.Equal(st) {
			t.Fatalf("%q parsed to %+v, written back as %q, which parses to %+v, %v", line, *st, st.String(), again, err)
		}
	})
}
