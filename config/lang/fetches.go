package lang

import (
	"strconv"
	"strings"
)

// FetchDef is a sample fetch halo knows: HAProxy's name, its arguments,
// the type it gives and where it can be used.
type FetchDef struct {
	Name  string
	Out   Type
	Args  []argSpec
	Where Where
	// Multi: in an ACL the fetch gives every occurrence (each value of a
	// repeated or comma-separated header, each cookie of that name) and
	// the ACL matches if one does; as a sample it gives one (the last,
	// or the one its occ argument names), as in HAProxy.
	Multi bool
	// Stick is set for the stick-table fetches (sc_*, src_*).
	Stick *StickFetch
}

// StickFetch is a fetch of a stick-table entry's data: sc_http_req_rate(0),
// sc1_conn_cur, src_conn_rate(table).
type StickFetch struct {
	// Data is the entry's data (http_req_rate, conn_cur, gpc0, ...) or
	// what the fetch does with it (get_gpc0, inc_gpc0, clr_gpc0,
	// tracked, trackers).
	Data string
	// Counter is the tracking counter 0-2, CounterArg when it is the
	// first argument (sc_*), CounterSrc for a lookup of the client's
	// address (src_*).
	Counter int
}

// The special StickFetch.Counter values.
const (
	CounterArg = -1
	CounterSrc = -2
)

var fetches = map[string]*FetchDef{}

// aliases are HAProxy's other names of fetches: hdr is req.hdr in a
// request, shdr is res.hdr.
var aliases = map[string]string{
	"hdr": "req.hdr", "fhdr": "req.fhdr", "hdr_cnt": "req.hdr_cnt", "hdr_ip": "req.hdr_ip", "hdr_val": "req.hdr_val",
	"cook": "req.cook", "cook_cnt": "req.cook_cnt", "cook_val": "req.cook_val",
	"shdr": "res.hdr", "shdr_cnt": "res.hdr_cnt", "shdr_ip": "res.hdr_ip", "shdr_val": "res.hdr_val",
	"scook": "res.cook", "scook_cnt": "res.cook_cnt", "scook_val": "res.cook_val",
	"urlp": "url_param", "urlp_val": "url_param_val",
	"req_ssl_sni": "req.ssl_sni", "req_len": "req.len", "req_ssl_hello_type": "req.ssl_hello_type",
	"req_ver": "req.ver", "resp_ver": "res.ver",
	"payload": "req.payload", "rdp_cookie": "req.rdp_cookie", "rdp_cookie_cnt": "req.rdp_cookie_cnt",
	"req_proto_http": "req.proto_http",
}

func def(name string, out Type, where Where, args ...argSpec) *FetchDef {
	d := &FetchDef{Name: name, Out: out, Args: args, Where: where}
	fetches[name] = d
	return d
}

func init() {
	def("always_true", TypeBool, Everywhere)
	def("always_false", TypeBool, Everywhere)
	def("str", TypeStr, Everywhere, req(ArgStr))
	def("int", TypeInt, Everywhere, req(ArgInt))
	def("env", TypeStr, Everywhere, req(ArgStr))
	def("var", TypeAny, Everywhere, req(ArgVar), opt(ArgStr))
	// The connection.
	def("src", TypeIP, Everywhere)
	def("src_port", TypeInt, Everywhere)
	def("dst", TypeIP, Everywhere)
	def("dst_port", TypeInt, Everywhere)
	def("fe_conn", TypeInt, Everywhere, opt(ArgFrontend))
	def("be_conn", TypeInt, Everywhere, opt(ArgBackend))
	def("nbsrv", TypeInt, Everywhere, opt(ArgBackend))
	def("srv_is_up", TypeBool, Everywhere, req(ArgServer))
	def("srv_conn", TypeInt, Everywhere, req(ArgServer))
	// TLS, once the handshake is done (not in tcp-request connection,
	// which runs before it).
	afterTLS := Everywhere &^ AtConn
	def("ssl_fc", TypeBool, afterTLS)
	def("ssl_fc_sni", TypeStr, afterTLS)
	def("ssl_fc_protocol", TypeStr, afterTLS)
	def("ssl_fc_cipher", TypeStr, afterTLS)
	def("ssl_fc_alpn", TypeStr, afterTLS)
	def("ssl_fc_has_crt", TypeBool, afterTLS)
	def("ssl_c_used", TypeBool, afterTLS)
	def("ssl_c_verify", TypeInt, afterTLS)
	def("ssl_c_s_dn", TypeStr, afterTLS)
	def("ssl_c_i_dn", TypeStr, afterTLS)
	// The buffered start of a TCP stream (tcp-request content, after
	// inspect-delay).
	def("req.len", TypeInt, AtContent)
	def("req.ssl_sni", TypeStr, AtContent)
	def("req.ssl_hello_type", TypeInt, AtContent)
	def("req.payload", TypeBin, AtContent, req(ArgInt), req(ArgInt))
	def("req.rdp_cookie", TypeStr, AtContent, opt(ArgStr))
	def("req.rdp_cookie_cnt", TypeInt, AtContent, opt(ArgStr))
	def("req.proto_http", TypeBool, inRequest)
	def("wait_end", TypeBool, AtContent)
	// The HTTP request.
	def("method", TypeMeth, inRequest&^AtContent)
	def("path", TypeStr, HTTP)
	def("pathq", TypeStr, HTTP)
	def("base", TypeStr, HTTP)
	def("url", TypeStr, HTTP)
	def("query", TypeStr, HTTP)
	def("req.ver", TypeStr, HTTP)
	def("url_param", TypeStr, HTTP, opt(ArgStr), opt(ArgStr)).Multi = true
	def("url_param_val", TypeInt, HTTP, opt(ArgStr), opt(ArgStr))
	def("req.hdr", TypeStr, HTTP, opt(ArgStr), opt(ArgInt)).Multi = true
	def("req.fhdr", TypeStr, HTTP, req(ArgStr), opt(ArgInt)).Multi = true
	def("req.hdr_cnt", TypeInt, HTTP, opt(ArgStr))
	def("req.fhdr_cnt", TypeInt, HTTP, opt(ArgStr))
	def("req.hdr_ip", TypeIP, HTTP, req(ArgStr), opt(ArgInt)).Multi = true
	def("req.hdr_val", TypeInt, HTTP, req(ArgStr), opt(ArgInt)).Multi = true
	def("req.cook", TypeStr, HTTP, opt(ArgStr)).Multi = true
	def("req.cook_cnt", TypeInt, HTTP, opt(ArgStr))
	def("req.cook_val", TypeInt, HTTP, opt(ArgStr)).Multi = true
	// The request's capture slots (capture request header, declare
	// capture request, http-request capture) and the response's.
	def("capture.req.hdr", TypeStr, inRequest, req(ArgInt))
	def("capture.res.hdr", TypeStr, AtResponse, req(ArgInt))
	def("http_auth", TypeBool, AtRequest, req(ArgUserlist))
	def("http_auth_group", TypeStr, AtRequest, req(ArgUserlist)).Multi = true
	// The HTTP response.
	def("status", TypeInt, AtResponse)
	def("res.ver", TypeStr, AtResponse)
	def("res.hdr", TypeStr, AtResponse, opt(ArgStr), opt(ArgInt)).Multi = true
	def("res.fhdr", TypeStr, AtResponse, req(ArgStr), opt(ArgInt)).Multi = true
	def("res.hdr_cnt", TypeInt, AtResponse, opt(ArgStr))
	def("res.fhdr_cnt", TypeInt, AtResponse, opt(ArgStr))
	def("res.hdr_ip", TypeIP, AtResponse, req(ArgStr), opt(ArgInt)).Multi = true
	def("res.hdr_val", TypeInt, AtResponse, req(ArgStr), opt(ArgInt)).Multi = true
	def("res.cook", TypeStr, AtResponse, opt(ArgStr)).Multi = true
	def("res.cook_cnt", TypeInt, AtResponse, opt(ArgStr))
	def("res.cook_val", TypeInt, AtResponse, opt(ArgStr)).Multi = true
	stickFetches()
}

// StickData are the stick-table data the sc_*/src_* fetches read, with
// the type they give.
var StickData = []string{
	"conn_cur", "conn_cnt", "conn_rate", "sess_cnt", "sess_rate",
	"http_req_cnt", "http_req_rate", "http_err_cnt", "http_err_rate",
	"bytes_in_cnt", "bytes_in_rate", "bytes_out_cnt", "bytes_out_rate",
	"kbytes_in", "kbytes_out", "get_gpc0", "gpc0_rate", "inc_gpc0", "clr_gpc0",
	"get_gpc1", "inc_gpc1", "clr_gpc1", "trackers", "tracked", "server_id",
}

func stickFetches() {
	for _, d := range StickData {
		out := TypeInt
		if d == "tracked" {
			out = TypeBool
		}
		where := Everywhere
		sc := def("sc_"+d, out, where, req(ArgInt), opt(ArgTable))
		sc.Stick = &StickFetch{Data: d, Counter: CounterArg}
		for n := range 3 {
			f := def("sc"+string(rune('0'+n))+"_"+d, out, where, opt(ArgTable))
			f.Stick = &StickFetch{Data: d, Counter: n}
		}
		if d != "tracked" {
			f := def("src_"+d, out, where, opt(ArgTable))
			f.Stick = &StickFetch{Data: d, Counter: CounterSrc}
		}
	}
	delete(fetches, "sc_server_id") // HAProxy has none; stick match reads it
	delete(fetches, "sc0_server_id")
	delete(fetches, "sc1_server_id")
	delete(fetches, "sc2_server_id")
	delete(fetches, "src_server_id")
}

// Fetch returns the fetch named name (an alias resolved), or nil.
func Fetch(name string) *FetchDef {
	if a, ok := aliases[name]; ok {
		name = a
	}
	return fetches[name]
}

// suffixes are the ACL-only spellings fetch_SUFFIX: path_beg is path with
// -m beg, hdr_dom(host) is hdr(host) with -m dom.
var suffixes = map[string]Method{
	"beg": MatchBeg, "end": MatchEnd, "sub": MatchSub, "dir": MatchDir, "dom": MatchDom,
	"reg": MatchReg, "len": MatchLen, "found": MatchFound,
}

// aclFetch resolves an ACL's criterion: a fetch, or a fetch with a
// suffix that implies the match method. src_port_... is not a suffix
// spelling (src_port is a fetch), hence the exact lookup first.
func aclFetch(name string) (*FetchDef, Method) {
	if f := Fetch(name); f != nil {
		return f, 0
	}
	i := strings.LastIndexByte(name, '_')
	if i < 0 {
		return nil, 0
	}
	m, ok := suffixes[name[i+1:]]
	if !ok {
		return nil, 0
	}
	f := Fetch(name[:i])
	if f == nil || !f.Out.stringy() || f.Out == TypeInt {
		return nil, 0
	}
	return f, m
}

// FetchNames is every fetch name and alias, for docs and tests.
func FetchNames() []string {
	var names []string
	for n := range fetches {
		names = append(names, n)
	}
	for a := range aliases {
		names = append(names, a)
	}
	return names
}

// MarshalJSON writes a fetch as its name, for configuration dumps.
func (d *FetchDef) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(d.Name)), nil }

// ACLSuffixes are the endings of the ACL-only spellings (path_beg,
// hdr_dom), for docs and tests.
func ACLSuffixes() []string {
	var names []string
	for n := range suffixes {
		names = append(names, n)
	}
	return names
}
