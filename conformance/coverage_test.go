package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// requestLanguage is every fetch, matcher, converter and action the
// request language's issue lists, as HAProxy spells it in a haproxy.cfg.
// Each must be run side by side with the real HAProxy somewhere:
// TestRequestLanguageIsComparedWithHAProxy looks for it in the rules
// corpus's haproxy.cfg and in the configurations the differential tests
// of proxy/ and stats/ give HAProxy.
var requestLanguage = []string{
	// Fetches.
	"src", "src_port", "dst", "dst_port", "ssl_fc", "ssl_fc_sni", "method", "path", "base", "url", "query",
	"url_param(", "hdr(", "req.hdr(", "hdr_cnt(", "req.cook(", "res.hdr(", "res.cook(", "status", "nbsrv(",
	"srv_is_up(", "be_conn", "fe_conn", "var(", "env(", "req.ssl_sni", "req.len",
	"path_beg", "_end", "_sub", "_dir", "_dom", "_reg", "_len", "_cnt",
	"sc_http_req_rate(", "sc_conn_cur(", "src_conn_rate", "sc_get_gpc0(", "sc0_http_req_cnt",
	"capture.req.hdr(", "capture.res.hdr(",
	// Matching.
	" -i ", "-m str", "-m beg", "-m end", "-m sub", "-m dir", "-m dom", "-m reg", "-m len", "-m found",
	"-m int", "-m ip", " -f ", " eq ", " ge ", " gt ", " le ", " lt ", " -- ", " unless ", " !", " || ", " or ",
	// Converters.
	",lower", ",upper", ",base64", ",hex", ",field(", ",word(", ",regsub(", ",map(", ",map_str(", ",map_beg(",
	",map_dom(", ",map_ip(", ",ipmask(", ",json", ",length",
	// http-request, http-response and tcp-request actions.
	"set-header", "add-header", "del-header", "replace-header", "replace-value", "set-path", "replace-path",
	"set-query", "set-uri", "replace-uri", "set-method", "redirect location", "redirect prefix",
	"redirect scheme", " code ", "drop-query", "append-slash", "deny", "deny_status", "tarpit", "return",
	"content-type", " string ", " file ", " lf-file ", " hdr ", "allow", "auth", "userlist", "insecure-password",
	" password $6$", "set-var(", "unset-var(", "track-sc0", "track-sc1", "track-sc2", "sc-inc-gpc0",
	"set-log-level", "http-request capture", "http-response capture", "declare capture", "set-status",
	"tcp-request connection", "tcp-request content", "inspect-delay", "accept", "reject",
	"expect-proxy layer4",
	// Section keywords the issue names.
	"errorfile", "http-error", "monitor-uri", "monitor fail", "option forwardfor", " except ", "if-none",
	"option originalto", "capture request header", "capture response header", "capture cookie",
	"SRV insert indirect nocache", "stick-table", "use_backend",
}

func TestRequestLanguageIsComparedWithHAProxy(t *testing.T) {
	sources := []string{"testdata/rules/haproxy.cfg"}
	for _, glob := range []string{"../proxy/*_haproxy_test.go", "../stats/deny_counters_test.go", "../stats/differential_test.go"} {
		files, _ := filepath.Glob(glob)
		sources = append(sources, files...)
	}
	var all strings.Builder
	for _, f := range sources {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
		all.WriteByte('\n')
	}
	text := all.String()
	for _, w := range requestLanguage {
		if !strings.Contains(text, w) {
			t.Errorf("%q is in no configuration a differential test gives HAProxy (%d files read)", w, len(sources))
		}
	}
}
