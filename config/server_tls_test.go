package config

import (
	"crypto/tls"
	"testing"
)

func TestParseServerOptions(t *testing.T) {
	for _, c := range []struct {
		line     string
		min, max uint16
		tickets  bool
		bad      bool
	}{
		{line: "ssl-min-ver TLSv1.2", min: tls.VersionTLS12},
		{line: "ssl-min-ver TLSv1.1 ssl-max-ver TLSv1.2 no-tls-tickets", min: tls.VersionTLS11, max: tls.VersionTLS12, tickets: true},
		{line: "no-sslv3 no-tlsv10 no-tlsv11", min: tls.VersionTLS12},
		{line: "no-tlsv13", max: tls.VersionTLS12},
		{line: "force-tlsv12", min: tls.VersionTLS12, max: tls.VersionTLS12},
		{line: "no-tlsv12", bad: true},
		{line: "no-tlsv10 no-tlsv11 no-tlsv12 no-tlsv13", bad: true},
		{line: "ssl-min-ver", bad: true},
		{line: "ssl-min-ver SSLv3", bad: true},
		{line: "prefer-client-ciphers", bad: true},
		{line: "ssl-min-ver TLSv1.3 no-tlsv13", bad: true},
		{line: "ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.2", bad: true},
	} {
		o, err := parseServerOptions(c.line)
		if (err != nil) != c.bad {
			t.Errorf("%q: error %v, want error %v", c.line, err, c.bad)
			continue
		}
		if !c.bad && (o.min != c.min || o.max != c.max || o.noTickets != c.tickets) {
			t.Errorf("%q: %+v; want min %x max %x tickets-off %v", c.line, o, c.min, c.max, c.tickets)
		}
	}
}

func TestParseSNI(t *testing.T) {
	if n, h, err := parseSNI("str(db.example)", ModeTCP); err != nil || n != "db.example" || h {
		t.Errorf("str(): %q %v %v", n, h, err)
	}
	if _, h, err := parseSNI("req.hdr(host)", ModeHTTP); err != nil || !h {
		t.Errorf("req.hdr(host): %v %v", h, err)
	}
	for _, bad := range []string{"req.hdr(host)|tcp", "str()", "ssl_fc_sni", "str(a b)"} {
		mode := ModeHTTP
		if bad == "req.hdr(host)|tcp" {
			bad, mode = "req.hdr(host)", ModeTCP
		}
		if _, _, err := parseSNI(bad, mode); err == nil {
			t.Errorf("%q in mode %s: no error", bad, mode)
		}
	}
}

// FuzzServerTLSWords: the small languages of the server TLS keys never
// panic, and an accepted version range is never empty.
func FuzzServerTLSWords(f *testing.F) {
	for _, s := range []string{"ssl-min-ver TLSv1.2 no-tls-tickets", "no-tlsv13", "force-tlsv11", "ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA", "str(x)", "req.hdr(host)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if o, err := parseServerOptions(s); err == nil && o.min != 0 && o.max != 0 && o.min > o.max {
			t.Fatalf("%q: min %x above max %x", s, o.min, o.max)
		}
		_ = parseCiphers(s, func(int, string) {})
		_ = checkCipherSuites13(s)
		_, _, _ = parseSNI(s, ModeHTTP)
	})
}
