package tlsfront

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/halo-lb/halo/config"
)

// certIndex finds a bind's certificate for a client's SNI.
type certIndex struct {
	all []*config.Certificate
	// exact maps a DNS name to the certificates that name it;
	// wildcard maps the parent domain of "*.example.org"
	// ("example.org") to those that carry that wildcard.
	exact, wildcard map[string][]*config.Certificate
	strict          bool
}

func newCertIndex(certs []*config.Certificate, strict bool) *certIndex {
	ix := &certIndex{all: certs, exact: map[string][]*config.Certificate{}, wildcard: map[string][]*config.Certificate{}, strict: strict}
	for _, c := range certs {
		for _, n := range c.Names {
			if parent, ok := strings.CutPrefix(n, "*."); ok {
				ix.wildcard[parent] = append(ix.wildcard[parent], c)
			} else {
				ix.exact[n] = append(ix.exact[n], c)
			}
		}
	}
	return ix
}

// errNoCertificate fails a strict-sni handshake whose name no certificate
// carries.
var errNoCertificate = errors.New("no certificate for the requested server name (strict-sni)")

// choose picks the certificate for a ClientHello as HAProxy does: one that
// names the SNI exactly, else one whose wildcard covers it (one label),
// else the default (the first certificate of the bind). Among several for
// one name (an ECDSA and an RSA one) it takes the first the client
// supports.
func (ix *certIndex) choose(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name != "" {
		if c := supported(hello, ix.exact[name]); c != nil {
			return c, nil
		}
		if _, parent, ok := strings.Cut(name, "."); ok {
			if c := supported(hello, ix.wildcard[parent]); c != nil {
				return c, nil
			}
		}
		if ix.strict {
			return nil, errNoCertificate
		}
	} else if ix.strict {
		return nil, errNoCertificate
	}
	if c := supported(hello, ix.all); c != nil {
		return c, nil
	}
	return &ix.all[0].TLS, nil
}

// supported returns the first of certs the client can use, or the first
// of them if it can use none (the handshake then fails as it would with
// HAProxy), or nil when certs is empty.
func supported(hello *tls.ClientHelloInfo, certs []*config.Certificate) *tls.Certificate {
	for _, c := range certs {
		if hello.SupportsCertificate(&c.TLS) == nil {
			return &c.TLS
		}
	}
	if len(certs) > 0 {
		return &certs[0].TLS
	}
	return nil
}

// ServerConfig builds the tls.Config a bind terminates TLS with. Its
// session tickets are sealed with tickets' keys, so a client resumes across
// reloads; tickets may be nil (then Go's own per-config keys apply).
func ServerConfig(b *config.BindTLS, tickets *Tickets) *tls.Config {
	ix := newCertIndex(b.Certs, b.StrictSNI)
	cfg := &tls.Config{
		GetCertificate:         ix.choose,
		MinVersion:             b.MinVersion,
		MaxVersion:             b.MaxVersion,
		CipherSuites:           b.Ciphers,
		NextProtos:             b.ALPN,
		SessionTicketsDisabled: b.NoTickets,
	}
	switch b.Verify {
	case config.VerifyOptional:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case config.VerifyRequired:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if b.Verify != config.VerifyNone {
		cfg.ClientCAs = b.ClientCAs
		if len(b.CRLs) > 0 {
			cfg.VerifyConnection = revocationCheck(b.CRLs)
		}
	}
	if !b.NoTickets && tickets != nil {
		tickets.attach(cfg)
	}
	return cfg
}

// revocationCheck refuses a client certificate that one of crls, issued by
// the certificate's issuer, lists as revoked. It runs after the chain is
// verified, so the issuer is known.
func revocationCheck(crls []*x509.RevocationList) func(tls.ConnectionState) error {
	revoked := map[string]bool{}
	for _, crl := range crls {
		for _, e := range crl.RevokedCertificateEntries {
			revoked[string(crl.RawIssuer)+"\x00"+e.SerialNumber.String()] = true
		}
	}
	return func(cs tls.ConnectionState) error {
		for _, chain := range cs.VerifiedChains {
			for _, c := range chain {
				if revoked[string(c.RawIssuer)+"\x00"+c.SerialNumber.String()] {
					return fmt.Errorf("certificate %s (serial %s) is revoked by the CRL", c.Subject, c.SerialNumber)
				}
			}
		}
		return nil
	}
}
