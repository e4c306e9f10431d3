package config

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testcert"
)

// tlsFixture writes certificates for the TLS config tests.
type tlsFixture struct {
	dir                                   string
	api, wild, rsa, expired, future, ca   string
	broken, mismatched, keyApart, certDir string
}

func newTLSFixture(t *testing.T) *tlsFixture {
	t.Helper()
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	f := &tlsFixture{dir: dir}
	f.api = ca.Issue(t, testcert.Options{}, "api.example.org", "api2.example.org").Write(t, dir, "api.pem")
	f.wild = ca.Issue(t, testcert.Options{}, "*.Example.Org").Write(t, dir, "wild.pem")
	f.rsa = ca.Issue(t, testcert.Options{RSA: true}, "rsa.example.org").Write(t, dir, "rsa.pem")
	f.expired = ca.Issue(t, testcert.Options{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}, "old.example.org").Write(t, dir, "expired.pem")
	f.future = ca.Issue(t, testcert.Options{NotBefore: time.Now().Add(time.Hour)}, "new.example.org").Write(t, dir, "future.pem")
	f.ca = ca.WriteCA(t, dir, "ca.pem")
	f.broken = filepath.Join(dir, "broken.pem")
	must(t, os.WriteFile(f.broken, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"), 0o600))
	a, b := ca.Issue(t, testcert.Options{}, "a.example.org"), ca.Issue(t, testcert.Options{}, "b.example.org")
	f.mismatched = filepath.Join(dir, "mismatched.pem")
	must(t, os.WriteFile(f.mismatched, append(append([]byte(nil), a.CertPEM...), b.KeyPEM...), 0o600))
	apart := ca.Issue(t, testcert.Options{}, "apart.example.org")
	f.keyApart = filepath.Join(dir, "apart.pem")
	must(t, os.WriteFile(f.keyApart, apart.CertPEM, 0o600))
	must(t, os.WriteFile(f.keyApart+".key", apart.KeyPEM, 0o600))
	f.certDir = filepath.Join(dir, "certs")
	must(t, os.Mkdir(f.certDir, 0o755))
	ca.Issue(t, testcert.Options{}, "one.example.org").Write(t, f.certDir, "1-one.pem")
	ca.Issue(t, testcert.Options{}, "two.example.org").Write(t, f.certDir, "2-two.pem")
	must(t, os.WriteFile(filepath.Join(f.certDir, "2-two.pem.issuer"), ca.PEM, 0o644)) // skipped, as HAProxy does
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tlsConfig is a config with one frontend whose first bind carries bind
// (YAML mapping lines indented for it) and global lines.
func tlsConfig(global, bind string) string {
	s := ""
	if global != "" {
		s = "global:\n" + global
	}
	return s + `frontends:
  fe:
    mode: http
    bind:
      - address: 127.0.0.1:8443
` + bind + `    default_backend: be
backends:
  be:
    mode: http
    servers: [{name: s, address: 127.0.0.1:1}]
`
}

func TestBindTLS(t *testing.T) {
	f := newTLSFixture(t)
	cfg, err := Parse("halo.yaml", []byte(tlsConfig(
		"  ssl-default-bind-ciphers: ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES128-GCM-SHA256:!aNULL\n"+
			"  ssl-default-bind-ciphersuites: TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256\n"+
			"  ssl-default-bind-options: \"no-sslv3 no-tlsv10 no-tlsv11 no-tls-tickets\"\n",
		fmt.Sprintf("        ssl: true\n        crt: [%s, %s, %s, %s]\n        alpn: http/1.1\n        verify: optional\n        ca-file: %s\n", f.api, f.wild, f.certDir, f.keyApart, f.ca))))
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Frontends[0].Binds[0].TLS
	if b == nil {
		t.Fatal("no TLS on an ssl bind")
	}
	var names []string
	for _, c := range b.Certs {
		names = append(names, strings.Join(c.Names, "+"))
	}
	if got := strings.Join(names, " "); got != "api.example.org+api2.example.org *.example.org one.example.org two.example.org apart.example.org" {
		t.Errorf("certificates in order: %s", got)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"min version", b.MinVersion, uint16(tls.VersionTLS12)},
		{"max version (Go's)", b.MaxVersion, uint16(0)},
		{"ciphers: OpenSSL's list, DHE skipped", fmt.Sprint(b.Ciphers), fmt.Sprint([]uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256})},
		{"no-tls-tickets from the defaults", b.NoTickets, true},
		{"alpn", fmt.Sprint(b.ALPN), "[http/1.1]"},
		{"verify", b.Verify, VerifyOptional},
		{"client CAs", b.ClientCAs != nil, true},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
		}
	}
	// A bind's own settings win over the defaults.
	cfg, err = Parse("halo.yaml", []byte(tlsConfig("  ssl-default-bind-options: ssl-min-ver TLSv1.3\n",
		fmt.Sprintf("        ssl: true\n        crt: %s\n        ssl-min-ver: TLSv1.1\n        ssl-max-ver: TLSv1.2\n        ciphers: HIGH:!kRSA:!SHA1\n", f.rsa))))
	if err != nil {
		t.Fatal(err)
	}
	b = cfg.Frontends[0].Binds[0].TLS
	if b.MinVersion != tls.VersionTLS11 || b.MaxVersion != tls.VersionTLS12 {
		t.Errorf("versions %x-%x, want the bind's TLSv1.1-TLSv1.2", b.MinVersion, b.MaxVersion)
	}
	for _, id := range b.Ciphers {
		name := tls.CipherSuiteName(id)
		if !strings.HasPrefix(name, "TLS_ECDHE_") || strings.HasSuffix(name, "_SHA") {
			t.Errorf("HIGH:!kRSA:!SHA1 selected %s", name)
		}
	}
	if len(b.Ciphers) != 8 {
		t.Errorf("HIGH:!kRSA:!SHA1 selected %d suites, want Go's 8 ECDHE AEAD and SHA-2 ones", len(b.Ciphers))
	}
}

// TestBindTLSErrors checks that each mistake is reported where it is
// written: the key's line and column, or the column of the word inside a
// string, with the certificate's path and the reason.
func TestBindTLSErrors(t *testing.T) {
	f := newTLSFixture(t)
	crt := "        ssl: true\n        crt: " + f.api + "\n"
	for _, tc := range []struct {
		name, global, bind string
		want               string // "LINE:COL: ...substring"
	}{
		{"expired", "", "        ssl: true\n        crt: " + f.expired + "\n", "7:14: frontends.fe.bind[0].crt[0]: certificate " + f.expired + " (CN=old.example.org) expired on "},
		{"not yet valid", "", "        ssl: true\n        crt: " + f.future + "\n", "7:14: frontends.fe.bind[0].crt[0]: certificate " + f.future + " (CN=new.example.org) is not valid before"},
		{"broken PEM", "", "        ssl: true\n        crt: " + f.broken + "\n", "certificate " + f.broken + ": "},
		{"key of another certificate", "", "        ssl: true\n        crt: " + f.mismatched + "\n", "certificate " + f.mismatched + ": private key does not match public key"},
		{"missing file", "", "        ssl: true\n        crt: " + f.dir + "/nope.pem\n", "7:14: frontends.fe.bind[0].crt[0]: certificate " + f.dir + "/nope.pem: no such file or directory"},
		{"second crt", "", "        ssl: true\n        crt:\n          - " + f.api + "\n          - " + f.expired + "\n", "9:13: frontends.fe.bind[0].crt[1]: certificate " + f.expired},
		{"ssl without crt", "", "        ssl: true\n", "6:9: frontends.fe.bind[0].ssl: ssl needs a certificate"},
		{"crt without ssl", "", "        crt: " + f.api + "\n", "6:9: frontends.fe.bind[0].crt: crt applies to a bind with ssl: true"},
		{"unknown version", "", crt + "        ssl-min-ver: TLSv1.4\n", "8:22: frontends.fe.bind[0].ssl-min-ver: unknown version \"TLSv1.4\""},
		{"SSLv3", "", crt + "        ssl-min-ver: SSLv3\n", "8:22: frontends.fe.bind[0].ssl-min-ver: SSLv3 is not supported"},
		{"max below min", "", crt + "        ssl-min-ver: TLSv1.3\n        ssl-max-ver: TLSv1.2\n", "9:9: frontends.fe.bind[0].ssl-max-ver: ssl-max-ver is below ssl-min-ver"},
		{"unknown cipher at its column", "", crt + "        ciphers: ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES129-GCM-SHA256\n", "8:46: frontends.fe.bind[0].ciphers: unknown cipher or cipher class \"ECDHE-RSA-AES129-GCM-SHA256\""},
		{"quoted cipher column", "", crt + "        ciphers: \"HIGH:!aNULL:BOGUS\"\n", "8:31: frontends.fe.bind[0].ciphers: unknown cipher or cipher class \"BOGUS\""},
		{"no Go cipher", "", crt + "        ciphers: DHE-RSA-AES128-GCM-SHA256\n", "selects no cipher suite that Go's TLS implements"},
		{"TLS 1.3 suite", "", crt + "        ciphersuites: TLS_AES_128_GCM_SHA256:TLS_AES_512\n", "8:9: frontends.fe.bind[0].ciphersuites: ciphersuites \"TLS_AES_128_GCM_SHA256:TLS_AES_512\": \"TLS_AES_512\" is not a TLS 1.3 suite Go implements"},
		{"TLS 1.3 suites narrowed", "", crt + "        ciphersuites: TLS_AES_256_GCM_SHA384\n", "leaves out TLS_AES_128_GCM_SHA256, but Go always offers all three"},
		{"h2 in mode http", "", crt + "        alpn: h2,http/1.1\n", "8:15: frontends.fe.bind[0].alpn: alpn \"h2\": a bind in mode http serves HTTP/1.1 only"},
		{"verify without ca-file", "", crt + "        verify: required\n", "8:9: frontends.fe.bind[0].verify: verify required needs a ca-file"},
		{"bad verify", "", crt + "        verify: sometimes\n", "frontends.fe.bind[0].verify"},
		{"ca-file without verify", "", crt + "        ca-file: " + f.ca + "\n", "8:9: frontends.fe.bind[0].ca-file: ca-file checks client certificates"},
		{"ca-file not PEM", "", crt + "        verify: optional\n        ca-file: " + f.broken + "\n", "9:9: frontends.fe.bind[0].ca-file: CA file " + f.broken + ": no PEM CERTIFICATE"},
		{"crl-file missing", "", crt + "        verify: optional\n        ca-file: " + f.ca + "\n        crl-file: " + f.dir + "/none.crl\n", "10:9: frontends.fe.bind[0].crl-file: CRL file " + f.dir + "/none.crl: no such file"},
		{"default options word", "  ssl-default-bind-options: no-sslv3 no-tlsv12 force-tlsv12\n", crt, "2:48: global.ssl-default-bind-options: unknown option \"force-tlsv12\""},
		{"default options version", "  ssl-default-bind-options: ssl-min-ver TLSv2\n", crt, "2:41: global.ssl-default-bind-options: unknown version \"TLSv2\""},
		{"default ciphers", "  ssl-default-bind-ciphers: 'ECDHE+AESGCM:EDH+AESGCM:ECDHE+AES999'\n", crt, "2:54: global.ssl-default-bind-ciphers: unknown cipher or cipher class \"ECDHE+AES999\""},
		{"nothing left enabled", "  ssl-default-bind-options: no-tlsv12 no-tlsv13\n", crt, "global.ssl-default-bind-options: no TLS version is left enabled"},
		{"accept-proxy-from without accept-proxy", "", "        accept-proxy-from: [10.0.0.0/8]\n", "6:9: frontends.fe.bind[0].accept-proxy-from: accept-proxy-from applies to a bind with accept-proxy: true"},
		{"accept-proxy-from not a network", "", "        accept-proxy: true\n        accept-proxy-from: [10.0.0.0/8, lb1]\n", "frontends.fe.bind[0].accept-proxy-from[1]: \"lb1\" is neither an address nor a network"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("halo.yaml", []byte(tlsConfig(tc.global, tc.bind)))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestAcceptProxy(t *testing.T) {
	cfg, err := Parse("halo.yaml", []byte(tlsConfig("", "        accept-proxy: true\n        accept-proxy-from: [192.0.2.7, 10.1.2.3/8, \"2001:db8::/32\"]\n")))
	if err != nil {
		t.Fatal(err)
	}
	ap := cfg.Frontends[0].Binds[0].AcceptProxy
	if ap == nil || fmt.Sprint(ap.From) != "[10.0.0.0/8 192.0.2.7/32 2001:db8::/32]" {
		t.Errorf("accept-proxy %+v", ap)
	}
}

// FuzzCiphers feeds arbitrary OpenSSL cipher strings to the parser: a
// result, when there is one, is never empty and has no duplicate.
func FuzzCiphers(f *testing.F) {
	for _, s := range []string{"HIGH:!aNULL:!MD5", "ECDHE+AESGCM:@STRENGTH", "ECDHE-RSA-AES128-GCM-SHA256,AES256-SHA", "-ALL:+RC4", "kEECDH+aRSA+AES:!3DES"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var bad bool
		ids := parseCiphers(s, func(off int, _ string) {
			if off < 0 || off > len(s) {
				t.Fatalf("offset %d outside %q", off, s)
			}
			bad = true
		})
		if !bad && len(ids) == 0 {
			t.Fatalf("%q: no suites and no error", s)
		}
		seen := map[uint16]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("%q: suite %x twice", s, id)
			}
			seen[id] = true
		}
	})
}

// TestWordColumnsInEveryStyle: a word's line and column inside a string
// are those of the file, however the value is written: escaped, folded or
// continued over lines (scalarpos_test.go has the full table).
func TestWordColumnsInEveryStyle(t *testing.T) {
	f := newTLSFixture(t)
	crt := "        ssl: true\n        crt: " + f.api + "\n"
	for _, tc := range []struct{ name, bind, want string }{
		{"plain", crt + "        ciphers: HIGH:BOGUS\n", "halo.yaml:8:23: "},
		{"escaped newline", crt + "        ciphers: \"HIGH:\\\n          BOGUS\"\n", "halo.yaml:9:11: "},
		{"folded block", crt + "        ciphers: >-\n          HIGH:\n          BOGUS\n", "halo.yaml:10:11: "},
		// The word begins with the tab the escape makes: at the escape.
		{"tab escape", crt + "        ciphers: \"HIGH:\\tBOGUS\"\n", "halo.yaml:8:24: "},
		{"continued plain", crt + "        ciphers: HIGH\n          BOGUS\n", "halo.yaml:9:11: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("halo.yaml", []byte(tlsConfig("", tc.bind)))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !strings.Contains(err.Error(), "BOGUS") {
				t.Errorf("got %v, want it at %s", err, tc.want)
			}
		})
	}
}

// TestCipherListsAsOpenSSLReadsThem reads real-world cipher strings as
// OpenSSL 3 would, within what Go implements: no class brings RC4 or 3DES
// back, SHA256/SHA384 name MACs (not AEAD suites), words for suites Go
// lacks select nothing.
func TestCipherListsAsOpenSSLReadsThem(t *testing.T) {
	name := func(ids []uint16) string {
		var n []string
		for _, id := range ids {
			n = append(n, tls.CipherSuiteName(id))
		}
		return strings.Join(n, " ")
	}
	for _, tc := range []struct{ list, want string }{
		{"HIGH:!aNULL:!MD5:!SHA1:!SHA256:!SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 TLS_RSA_WITH_AES_256_GCM_SHA384 TLS_RSA_WITH_AES_128_GCM_SHA256"},
		// puppet-tripleo's default.
		{"!SSLv2:kEECDH:kRSA:kEDH:kPSK:+3DES:!aNULL:!eNULL:!MD5:!EXP:!RC4:!SEED:!IDEA:!DES", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256 TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA TLS_RSA_WITH_AES_256_GCM_SHA384 TLS_RSA_WITH_AES_128_GCM_SHA256 TLS_RSA_WITH_AES_128_CBC_SHA256 TLS_RSA_WITH_AES_256_CBC_SHA TLS_RSA_WITH_AES_128_CBC_SHA"},
		{"ECDHE-RSA-AES128-GCM-SHA256:DES-CBC3-SHA", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 TLS_RSA_WITH_3DES_EDE_CBC_SHA"}, // only its own name brings 3DES
	} {
		got := name(parseCiphers(tc.list, func(off int, msg string) { t.Errorf("%q: at %d: %s", tc.list, off, msg) }))
		if got != tc.want {
			t.Errorf("%q:\ngot  %s\nwant %s", tc.list, got, tc.want)
		}
	}
	for _, list := range []string{"DEFAULT", "ALL:!aNULL", "HIGH:MEDIUM:LOW:!aNULL", "ALL:@STRENGTH"} {
		got := name(parseCiphers(list, func(off int, msg string) { t.Errorf("%q: %s", list, msg) }))
		if strings.Contains(got, "RC4") || strings.Contains(got, "3DES") {
			t.Errorf("%q selects RC4 or 3DES: %s", list, got)
		}
	}
	// prefer-client-ciphers is what Go does anyway; mixing a version
	// range with no-tlsv1x is refused, as one would not apply.
	if _, err := Parse("halo.yaml", []byte(tlsConfig("  ssl-default-bind-options: prefer-client-ciphers no-sslv3\n", "        ssl: true\n        crt: "+newTLSFixture(t).api+"\n"))); err != nil {
		t.Errorf("prefer-client-ciphers: %v", err)
	}
	_, err := Parse("halo.yaml", []byte(tlsConfig("  ssl-default-bind-options: ssl-min-ver TLSv1.0 no-tlsv11\n", "        ssl: true\n        crt: "+newTLSFixture(t).api+"\n")))
	if err == nil || !strings.Contains(err.Error(), "2:49: global.ssl-default-bind-options: ssl-min-ver/ssl-max-ver and no-tlsv1x exclude each other") {
		t.Errorf("ssl-min-ver with no-tlsv11: %v", err)
	}
}
