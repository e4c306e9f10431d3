package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// BindTLS is a bind's "ssl" and the options that go with it: the bind
// terminates TLS with these certificates and settings.
type BindTLS struct {
	// Certs are the certificates of every "crt", in the order written:
	// the one a client's SNI names (by its SAN DNS names, wildcards
	// included), else the first one, the default. Loaded and checked
	// when the file is read, so a reload with a broken one fails.
	Certs []*Certificate
	// MinVersion and MaxVersion are "ssl-min-ver"/"ssl-max-ver" (and
	// no-tlsv1x of ssl-default-bind-options) as crypto/tls versions.
	MinVersion, MaxVersion uint16
	// Ciphers are the TLS 1.2 suites of "ciphers", in preference order;
	// nil keeps Go's defaults. CipherSuites is the TLS 1.3 list as
	// written: Go always offers all three TLS 1.3 suites, so a list must
	// name all three (checkCipherSuites13).
	Ciphers      []uint16
	CipherSuites string
	// ALPN is "alpn": the protocols offered, in order.
	ALPN []string
	// Verify is "verify": whether a client certificate is asked for.
	Verify Verify
	// ClientCAs are "ca-file"'s certificates, which a client certificate
	// must chain to; CAFile is its path.
	ClientCAs *x509.CertPool `json:"-"`
	CAFile    string
	// CRLs are "crl-file"'s revocation lists: a client certificate a
	// list revokes is refused. CRLFile is its path.
	CRLs    []*x509.RevocationList `json:"-"`
	CRLFile string
	// NoTickets is "no-tls-tickets": no session tickets (TLS 1.2 session
	// IDs are not kept either, as Go keeps no server session cache).
	NoTickets bool
	// StrictSNI is "strict-sni": a handshake whose SNI matches no
	// certificate fails instead of getting the default one.
	StrictSNI bool
}

// Verify is a bind's "verify": none, optional or required.
type Verify string

// The client certificate policies.
const (
	VerifyNone     Verify = "none"
	VerifyOptional Verify = "optional"
	VerifyRequired Verify = "required"
)

// AcceptProxy is a bind's "accept-proxy": connections start with a PROXY
// protocol header (v1 or v2) whose source address is the client's.
type AcceptProxy struct {
	// From are "accept-proxy-from"'s networks: only these peers may send
	// a header, and they must; others are served as themselves, and a
	// header from one of them is refused. Empty: every peer must send
	// one, as HAProxy's accept-proxy.
	From []netip.Prefix
}

// tlsVersions are HAProxy's names of the protocol versions.
var tlsVersions = map[string]uint16{
	"TLSv1.0": tls.VersionTLS10, "TLSv1.1": tls.VersionTLS11, "TLSv1.2": tls.VersionTLS12, "TLSv1.3": tls.VersionTLS13,
}

// defaultBindTLS is global's ssl-default-bind-* as they apply to a bind
// that sets nothing of its own.
type defaultBindTLS struct {
	min, max  uint16
	ciphers   []uint16
	suites    string
	noTickets bool
}

// buildDefaultBindTLS reads global's ssl-default-bind-ciphers,
// -ciphersuites and -options. The options are HAProxy's words
// ("ssl-min-ver TLSv1.2 no-tls-tickets"), each error at its own column.
func (p *parser) buildDefaultBindTLS(g *fileGlobal) defaultBindTLS {
	d := defaultBindTLS{min: tls.VersionTLS12}
	if g == nil {
		return d
	}
	if g.SSLBindCiphers != nil {
		path := "global.ssl-default-bind-ciphers"
		d.ciphers = parseCiphers(*g.SSLBindCiphers, func(off int, msg string) { p.atWord(path, off, "%s", msg) })
	}
	if g.SSLBindSuites != nil {
		if err := checkCipherSuites13(*g.SSLBindSuites); err != nil {
			p.at("global.ssl-default-bind-ciphersuites", "%v", err)
		}
		d.suites = *g.SSLBindSuites
	}
	if g.SSLBindOptions == nil {
		return d
	}
	path := "global.ssl-default-bind-options"
	ws, offs := words(*g.SSLBindOptions)
	disabled := map[uint16]bool{}
	ranged, noVersion := -1, -1 // offsets of the first ssl-m*-ver and no-tlsv1x
	for i := 0; i < len(ws); i++ {
		switch w := ws[i]; w {
		case "ssl-min-ver", "ssl-max-ver":
			if i+1 == len(ws) {
				p.atWord(path, offs[i], "%s needs a version (TLSv1.0 to TLSv1.3)", w)
				continue
			}
			if ranged < 0 {
				ranged = offs[i]
			}
			i++
			v, ok := p.tlsVersion(path, offs[i], ws[i])
			if ok && w == "ssl-min-ver" {
				d.min = v
			} else if ok {
				d.max = v
			}
		case "no-sslv3":
			// Go's TLS has no SSLv3 at all.
		case "no-tlsv10", "no-tlsv11", "no-tlsv12", "no-tlsv13":
			if noVersion < 0 {
				noVersion = offs[i]
			}
			disabled[map[string]uint16{"no-tlsv10": tls.VersionTLS10, "no-tlsv11": tls.VersionTLS11, "no-tlsv12": tls.VersionTLS12, "no-tlsv13": tls.VersionTLS13}[w]] = true
		case "no-tls-tickets":
			d.noTickets = true
		case "prefer-client-ciphers":
			// What it asks for is what Go's TLS does anyway: it follows
			// the client's preference between AES and ChaCha20 where
			// the hardware has no AES instructions on one side.
		default:
			p.atWord(path, offs[i], "unknown option %q: halo takes ssl-min-ver V, ssl-max-ver V, no-sslv3, no-tlsv10, no-tlsv11, no-tlsv12, no-tlsv13, no-tls-tickets, prefer-client-ciphers", w)
		}
	}
	if ranged >= 0 && noVersion >= 0 {
		// HAProxy ignores no-tlsv1x next to ssl-min-ver/ssl-max-ver
		// (with a warning): one of them would silently not apply.
		p.atWord(path, max(ranged, noVersion), "ssl-min-ver/ssl-max-ver and no-tlsv1x exclude each other: say the range with ssl-min-ver and ssl-max-ver alone")
	}
	// no-tlsv1x as OpenSSL applies it: the versions left must be a
	// contiguous range.
	for v := d.min; v <= tls.VersionTLS13 && disabled[v]; v++ {
		d.min = v + 1
	}
	if d.max == 0 {
		d.max = tls.VersionTLS13
	}
	for v := d.max; v >= d.min && disabled[v]; v-- {
		d.max = v - 1
	}
	if d.min > d.max {
		p.at(path, "no TLS version is left enabled")
	}
	if d.max == tls.VersionTLS13 {
		d.max = 0
	}
	return d
}

func (p *parser) tlsVersion(path string, off int, name string) (uint16, bool) {
	if name == "SSLv3" {
		p.atWord(path, off, "SSLv3 is not supported: Go's TLS implements TLSv1.0 to TLSv1.3")
		return 0, false
	}
	v, ok := tlsVersions[name]
	if !ok {
		p.atWord(path, off, "unknown version %q: want TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3", name)
	}
	return v, ok
}

// tlsBindKeys are the bind keys that only mean something with ssl.
var tlsBindKeys = []string{"crt", "ssl-min-ver", "ssl-max-ver", "ciphers", "ciphersuites", "alpn", "verify", "ca-file", "crl-file", "no-tls-tickets", "strict-sni"}

// buildBindTLS builds a bind's TLS settings from the keys written on it
// and global's defaults; nil without ssl.
func (p *parser) buildBindTLS(r bindRef, mode Mode, def defaultBindTLS) *BindTLS {
	fb := r.bind.src
	if fb == nil {
		return nil
	}
	if fb.SSL == nil || !*fb.SSL {
		for _, key := range tlsBindKeys {
			if _, set := p.positions[r.path+"."+key]; set {
				p.at(r.path+"."+key, "%s applies to a bind with ssl: true", key)
			}
		}
		return nil
	}
	t := &BindTLS{MinVersion: def.min, MaxVersion: def.max, Ciphers: def.ciphers, CipherSuites: def.suites, NoTickets: def.noTickets || or(false, fb.NoTLSTickets), StrictSNI: or(false, fb.StrictSNI), Verify: VerifyNone}
	if len(fb.Crt) == 0 {
		p.at(r.path+".ssl", "ssl needs a certificate: crt FILE or crt DIRECTORY")
	}
	for i, crt := range fb.Crt {
		certs, err := loadCertificates(p.relative(crt))
		if err != nil {
			p.at(fmt.Sprintf("%s.crt[%d]", r.path, i), "%v", err)
			continue
		}
		t.Certs = append(t.Certs, certs...)
	}
	if fb.SSLMinVer != nil {
		if v, ok := p.tlsVersion(r.path+".ssl-min-ver", 0, *fb.SSLMinVer); ok {
			t.MinVersion = v
		}
	}
	if fb.SSLMaxVer != nil {
		if v, ok := p.tlsVersion(r.path+".ssl-max-ver", 0, *fb.SSLMaxVer); ok {
			t.MaxVersion = v
		}
	}
	if t.MaxVersion != 0 && t.MinVersion > t.MaxVersion {
		p.at(r.path+".ssl-max-ver", "ssl-max-ver is below ssl-min-ver")
	}
	if fb.Ciphers != nil {
		path := r.path + ".ciphers"
		t.Ciphers = parseCiphers(*fb.Ciphers, func(off int, msg string) { p.atWord(path, off, "%s", msg) })
	}
	if fb.CipherSuites != nil {
		if err := checkCipherSuites13(*fb.CipherSuites); err != nil {
			p.at(r.path+".ciphersuites", "%v", err)
		}
		t.CipherSuites = *fb.CipherSuites
	}
	if fb.ALPN != nil {
		t.ALPN = p.buildALPN(r.path+".alpn", *fb.ALPN, mode)
	}
	p.buildClientAuth(r.path, fb, t)
	return t
}

// buildALPN reads "alpn" (protocols joined by commas). fasthttp serves
// HTTP/1.1 only, so a bind in mode http may offer http/1.1 (and
// http/1.0) but not h2: a client that got h2 would speak a protocol
// nothing here understands.
func (p *parser) buildALPN(path, s string, mode Mode) []string {
	var protos []string
	off := 0
	for _, proto := range strings.Split(s, ",") {
		switch {
		case proto == "" || len(proto) > 255:
			p.atWord(path, off, "alpn protocol names are 1 to 255 bytes, joined by commas")
		case mode == ModeHTTP && proto != "http/1.1" && proto != "http/1.0":
			p.atWord(path, off, "alpn %q: a bind in mode http serves HTTP/1.1 only (fasthttp has no HTTP/2), so it offers http/1.1", proto)
		default:
			protos = append(protos, proto)
		}
		off += len(proto) + 1
	}
	return protos
}

// buildClientAuth reads verify, ca-file and crl-file.
func (p *parser) buildClientAuth(path string, fb *fileBind, t *BindTLS) {
	if fb.Verify != nil {
		t.Verify = Verify(*fb.Verify)
	}
	var cas []*x509.Certificate
	if fb.CAFile != nil {
		t.CAFile = p.relative(*fb.CAFile)
		pool, certs, err := loadCAFile(t.CAFile)
		if err != nil {
			p.at(path+".ca-file", "%v", err)
		}
		t.ClientCAs, cas = pool, certs
	}
	if fb.CRLFile != nil {
		t.CRLFile = p.relative(*fb.CRLFile)
		crls, err := loadCRLFile(t.CRLFile)
		if err != nil {
			p.at(path+".crl-file", "%v", err)
		}
		for _, crl := range crls {
			if cas == nil {
				break // ca-file's own error, or the verify error below, says why
			}
			if err := checkCRL(t.CRLFile, crl, cas); err != nil {
				p.at(path+".crl-file", "%v", err)
			}
		}
		t.CRLs = crls
	}
	switch {
	case t.Verify != VerifyNone && t.ClientCAs == nil && fb.CAFile == nil:
		p.at(path+".verify", "verify %s needs a ca-file to check client certificates against", t.Verify)
	case t.Verify == VerifyNone && (fb.CAFile != nil || fb.CRLFile != nil):
		key := "ca-file"
		if fb.CAFile == nil {
			key = "crl-file"
		}
		p.at(path+"."+key, "%s checks client certificates, which only verify optional or verify required asks for", key)
	}
}

// buildAcceptProxy reads accept-proxy and accept-proxy-from.
func (p *parser) buildAcceptProxy(r bindRef) *AcceptProxy {
	fb := r.bind.src
	if fb == nil {
		return nil
	}
	if fb.AcceptProxy == nil || !*fb.AcceptProxy {
		if len(fb.AcceptProxyFrom) > 0 {
			p.at(r.path+".accept-proxy-from", "accept-proxy-from applies to a bind with accept-proxy: true")
		}
		return nil
	}
	ap := &AcceptProxy{}
	for i, s := range fb.AcceptProxyFrom {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			addr, aerr := netip.ParseAddr(s)
			if aerr != nil {
				p.at(fmt.Sprintf("%s.accept-proxy-from[%d]", r.path, i), "%q is neither an address nor a network (ADDRESS/BITS)", s)
				continue
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		ap.From = append(ap.From, pfx.Masked())
	}
	slices.SortFunc(ap.From, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return ap
}
