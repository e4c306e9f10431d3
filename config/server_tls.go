package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
)

// ServerTLS is how halo speaks TLS to a server: HAProxy's "ssl" server
// options. The files it names are read when the configuration is built,
// so that a missing or broken certificate is a configuration error, and so
// that a reload sees a changed file as a changed configuration.
type ServerTLS struct {
	// Verify is "verify required": the server's certificate chain must
	// lead to CA (and not be revoked by CRL), and its names must match
	// the SNI sent or, without one, VerifyHost; with neither, only the
	// chain is checked, as in HAProxy.
	Verify bool
	// CAFile is the ca-file as written ("@system-ca" for the system's
	// roots), CA its PEM content (nil for the system's roots).
	CAFile string
	CA     []byte `json:"-"`
	// CRLFile and CRL are crl-file and its PEM or DER content.
	CRLFile string
	CRL     []byte `json:"-"`
	// SNI is the server name sent: "" for none; with SNIFromHost the
	// request's Host header (mode http) is sent instead.
	SNI         string
	SNIFromHost bool
	VerifyHost  string
	// CertFile and Cert are the client certificate ("crt"): a PEM file
	// with the certificate chain and its key.
	CertFile string
	Cert     []byte `json:"-"`
	// MinVersion and MaxVersion are crypto/tls version numbers; 0 is Go's
	// default (TLS 1.2 to TLS 1.3, HAProxy's default range too).
	MinVersion uint16
	MaxVersion uint16
	// CipherSuites are the TLS 1.2 (and older) suites offered, nil for
	// Go's defaults. TLS 1.3's suites are not configurable in Go (see
	// checkCipherSuites13).
	CipherSuites []uint16
	// NoReuse is "no-ssl-reuse": every connection makes a full
	// handshake instead of resuming a cached session.
	NoReuse bool
	// NoTickets is "no-tls-tickets" of ssl-default-server-options.
	NoTickets bool
	// ALPN are the protocols offered by "alpn", in order.
	ALPN []string
}

// ProxyProtocol is which PROXY protocol header a connection starts with.
type ProxyProtocol struct {
	// Version is 0 (none), 1 (send-proxy) or 2 (send-proxy-v2).
	Version int
	// SSL adds the PP2_TYPE_SSL TLV with the client's TLS version
	// (send-proxy-v2-ssl); SSLCN the client certificate's common name
	// too (send-proxy-v2-ssl-cn).
	SSL   bool
	SSLCN bool
}

// SystemCA is the ca-file value that means the system's trusted roots.
const SystemCA = "@system-ca"

// noCAFile is HAProxy's own message for verify required without a CA.
const noCAFile = "verify is enabled by default but no CA file specified. If you're running on a LAN where you're certain to trust the server's certificate, please set an explicit 'verify none' statement on the 'server' line, or use 'ssl-server-verify none' in the global section to disable server-side verifications by default"

// serverSources are the three places a server option may come from, in
// the order they win: the server line, the backend's default-server, the
// defaults section's default-server.
type serverSources struct {
	lines [3]*fileServer
	paths [3]string
}

// value returns the first set field named key (its YAML name) and the key
// path it was set at, or an invalid value.
func (s *serverSources) value(key string) (reflect.Value, string) {
	i := yamlFields(reflect.TypeOf(fileServer{}))[key]
	for j, fs := range s.lines {
		if fs == nil {
			continue
		}
		if f := reflect.ValueOf(fs).Elem().Field(i); !f.IsNil() {
			return f.Elem(), s.paths[j] + "." + key
		}
	}
	return reflect.Value{}, ""
}

func (s *serverSources) str(key string) (string, string) {
	v, path := s.value(key)
	if !v.IsValid() {
		return "", ""
	}
	return v.String(), path
}

func (s *serverSources) flag(key string) bool {
	v, _ := s.value(key)
	return v.IsValid() && v.Bool()
}

// buildServerTransports resolves every server's TLS and PROXY protocol
// options, reading the certificate files they name.
func (p *parser) buildServerTransports(fc *fileConfig, be *Backend, path string) {
	section := backendSection(fc, be.Name)
	var dd *fileServer
	if fc.Defaults != nil {
		dd = fc.Defaults.DefaultServer
	}
	g := fc.Global
	if g == nil {
		g = &fileGlobal{}
	}
	for i := range be.Servers {
		src := &serverSources{
			lines: [3]*fileServer{section.Servers[i], section.DefaultServer, dd},
			paths: [3]string{fmt.Sprintf("%s.servers[%d]", path, i), path + ".default-server", "defaults.default-server"},
		}
		srv := &be.Servers[i]
		p.buildSendProxy(srv, src)
		ssl, checkSSL := src.flag("ssl"), src.flag("check-ssl")
		if !ssl && !checkSSL {
			continue
		}
		t, ok := p.buildServerTLS(be, src, g)
		if !ok {
			continue
		}
		if ssl {
			srv.TLS = t
		}
		// As in HAProxy, "ssl" ciphers the checks too unless they go to
		// another port or address; check-ssl forces it.
		if checkSSL || (ssl && srv.CheckPort == 0 && srv.CheckAddr == "") {
			ct := *t
			ct.SNI, ct.SNIFromHost = "", false
			ct.SNI, _ = src.str("check-sni")
			srv.CheckTLS = &ct
		}
	}
}

func (p *parser) buildSendProxy(srv *Server, src *serverSources) {
	pp := &srv.SendProxy
	switch {
	case src.flag("send-proxy-v2-ssl-cn"):
		*pp = ProxyProtocol{Version: 2, SSL: true, SSLCN: true}
	case src.flag("send-proxy-v2-ssl"):
		*pp = ProxyProtocol{Version: 2, SSL: true}
	case src.flag("send-proxy-v2"):
		pp.Version = 2
	case src.flag("send-proxy"):
		pp.Version = 1
	}
	// HAProxy sends the header with checks when check-send-proxy says so,
	// or when traffic has one and the checks go where traffic goes. A
	// check has no client: its header says so (v1 UNKNOWN, v2 LOCAL).
	if src.flag("check-send-proxy") || (pp.Version > 0 && srv.CheckPort == 0 && srv.CheckAddr == "") {
		srv.CheckSendProxy = ProxyProtocol{Version: max(pp.Version, 1)}
	}
}

// buildServerTLS builds one server's TLS settings from its sources and the
// global ssl-default-server-* and ssl-server-verify defaults.
func (p *parser) buildServerTLS(be *Backend, src *serverSources, g *fileGlobal) (*ServerTLS, bool) {
	ok := true
	fail := func(path, format string, args ...any) {
		p.at(path, format, args...)
		ok = false
	}
	t := &ServerTLS{NoReuse: src.flag("no-ssl-reuse")}
	verify, vpath := src.str("verify")
	if verify == "" {
		verify = or("required", g.SSLServerVerify)
	}
	t.Verify = verify == "required"
	t.VerifyHost, _ = src.str("verifyhost")
	if t.CAFile, t.CA = p.readPEMFile(src, "ca-file", &ok); t.CA != nil {
		if pool := x509.NewCertPool(); !pool.AppendCertsFromPEM(t.CA) {
			_, path := src.str("ca-file")
			fail(path, "ca-file %s holds no PEM certificate", t.CAFile)
		}
	}
	if t.Verify && t.CAFile == "" {
		where := vpath
		if where == "" {
			where = src.paths[0]
		}
		fail(where, "%s", noCAFile)
	}
	if t.CRLFile, t.CRL = p.readPEMFile(src, "crl-file", &ok); t.CRL != nil {
		if _, err := ParseCRLs(t.CRL); err != nil {
			_, path := src.str("crl-file")
			fail(path, "crl-file %s: %v", t.CRLFile, err)
		}
	}
	if t.CertFile, t.Cert = p.readPEMFile(src, "crt", &ok); t.Cert != nil {
		if _, err := tls.X509KeyPair(t.Cert, t.Cert); err != nil {
			_, path := src.str("crt")
			fail(path, "crt %s: want the certificate and its private key in one PEM file: %v", t.CertFile, err)
		}
	}
	if sni, path := src.str("sni"); sni != "" {
		name, fromHost, err := parseSNI(sni, be.Mode)
		if err != nil {
			fail(path, "%v", err)
		}
		t.SNI, t.SNIFromHost = name, fromHost
	}
	p.buildTLSVersions(t, src, g, &ok)
	ciphers, cpath := src.str("ciphers")
	if ciphers == "" && g.SSLDefaultServerCiphers != nil {
		ciphers, cpath = *g.SSLDefaultServerCiphers, "global.ssl-default-server-ciphers"
	}
	if ciphers != "" {
		// OpenSSL's cipher-list syntax, as on binds (tls_ciphers.go).
		bad := false
		t.CipherSuites = parseCiphers(ciphers, func(off int, msg string) { p.atWord(cpath, off, "%s", msg); bad = true })
		if bad {
			ok = false
		}
	}
	suites, spath := src.str("ciphersuites")
	if suites == "" && g.SSLDefaultServerCipherSuites != nil {
		suites, spath = *g.SSLDefaultServerCipherSuites, "global.ssl-default-server-ciphersuites"
	}
	if suites != "" {
		if err := checkCipherSuites13(suites); err != nil {
			fail(spath, "%v", err)
		}
	}
	if alpn, path := src.str("alpn"); alpn != "" {
		t.ALPN = strings.Split(alpn, ",")
		if be.Mode == ModeHTTP && !slices.Equal(t.ALPN, []string{"http/1.1"}) {
			fail(path, "alpn %q: halo speaks HTTP/1.1 to servers in mode http, so alpn can only be http/1.1", alpn)
		}
		if slices.Contains(t.ALPN, "") {
			fail(path, "alpn %q: want protocol names separated by commas", alpn)
		}
	}
	return t, ok
}

// readPEMFile reads the file named by key, relative to the configuration
// file, and returns its name as written and its content. "@system-ca"
// (ca-file only) reads nothing.
func (p *parser) readPEMFile(src *serverSources, key string, ok *bool) (string, []byte) {
	name, path := src.str(key)
	if name == "" || (key == "ca-file" && name == SystemCA) {
		return name, nil
	}
	data, err := os.ReadFile(p.relative(name))
	if err != nil {
		p.at(path, "reading %s: %v", key, err)
		*ok = false
		return name, nil
	}
	return name, data
}

// ParseCRLs parses every revocation list in data: PEM blocks "X509 CRL",
// or a single DER list.
func ParseCRLs(data []byte) ([]*x509.RevocationList, error) {
	var crls []*x509.RevocationList
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "X509 CRL" {
			continue
		}
		crl, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return nil, err
		}
		crls = append(crls, crl)
	}
	if len(crls) > 0 {
		return crls, nil
	}
	crl, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, fmt.Errorf("no X509 CRL in PEM, nor a DER list: %v", err)
	}
	return []*x509.RevocationList{crl}, nil
}

// parseSNI takes the forms of HAProxy's sni sample expression that need no
// rule language: str(NAME), a fixed name, and req.hdr(host), the request's
// Host header (mode http).
func parseSNI(expr string, mode Mode) (name string, fromHost bool, err error) {
	if strings.HasPrefix(expr, "str(") && strings.HasSuffix(expr, ")") {
		name = expr[len("str(") : len(expr)-1]
		if name == "" || strings.ContainsAny(name, " ,()") {
			return "", false, fmt.Errorf("sni %q: want str(NAME) with a host name", expr)
		}
		return name, false, nil
	}
	if strings.EqualFold(expr, "req.hdr(host)") || strings.EqualFold(expr, "hdr(host)") {
		if mode != ModeHTTP {
			return "", false, fmt.Errorf("sni %q reads the request's Host header and needs mode http", expr)
		}
		return "", true, nil
	}
	return "", false, fmt.Errorf("sni %q: halo takes str(NAME) or req.hdr(host) here; the full sample expression language comes with the rules", expr)
}
