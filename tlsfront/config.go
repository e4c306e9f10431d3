package tlsfront

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

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

// knows reports whether a certificate names sni, exactly or by wildcard.
func (ix *certIndex) knows(sni string) bool {
	name := strings.ToLower(strings.TrimSuffix(sni, "."))
	if len(ix.exact[name]) > 0 {
		return true
	}
	_, parent, ok := strings.Cut(name, ".")
	return ok && len(ix.wildcard[parent]) > 0
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
// session tickets are sealed with tickets' keys for bind (a name that
// identifies the bind across reloads), so a client resumes across reloads
// but on that bind only; tickets may be nil (then Go's own per-config keys
// apply).
func ServerConfig(b *config.BindTLS, tickets *Tickets, bind string) *tls.Config {
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
	if b.StrictSNI {
		// A TLS 1.3 resumption skips GetCertificate: without this, a
		// ticket would let a client in under a name strict-sni refuses.
		cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
			if !ix.knows(cs.ServerName) {
				return nil, nil // no resumption: a full handshake, which refuses it
			}
			return cfg.DecryptTicket(identity, cs)
		}
	}
	if !b.NoTickets && tickets != nil {
		tickets.attach(cfg, bind)
	}
	return cfg
}

// revocationCheck checks a client certificate's chain against crls as
// OpenSSL's CRL_CHECK_ALL does for HAProxy: every certificate of the
// chain but its root must have a current CRL from its issuer (config
// checked each CRL's signature against ca-file), and none may be listed
// in it. A chain without a current CRL for a level is refused, as HAProxy
// refuses it ("unknown ca", "certificate expired"): a stale or missing
// list must not let a revoked certificate in. It runs on resumed sessions
// too.
func revocationCheck(crls []*x509.RevocationList) func(tls.ConnectionState) error {
	byIssuer := map[string][]*x509.RevocationList{}
	for _, crl := range crls {
		byIssuer[string(crl.RawIssuer)] = append(byIssuer[string(crl.RawIssuer)], crl)
	}
	return func(cs tls.ConnectionState) error {
		var err error
		for _, chain := range cs.VerifiedChains {
			if err = chainNotRevoked(chain, byIssuer, time.Now()); err == nil {
				return nil
			}
		}
		return err
	}
}

// chainNotRevoked checks one verified chain, leaf first.
func chainNotRevoked(chain []*x509.Certificate, byIssuer map[string][]*x509.RevocationList, now time.Time) error {
	for _, c := range chain[:max(len(chain)-1, 0)] {
		var current *x509.RevocationList
		for _, crl := range byIssuer[string(c.RawIssuer)] {
			if now.Before(crl.NextUpdate) && (current == nil || crl.Number.Cmp(current.Number) > 0) {
				current = crl
			}
		}
		if current == nil {
			return fmt.Errorf("no current CRL from %s, the issuer of %s (crl-file)", c.Issuer, c.Subject)
		}
		for _, e := range current.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(c.SerialNumber) == 0 {
				return fmt.Errorf("certificate %s (serial %X) is revoked by the CRL", c.Subject, c.SerialNumber.Bytes())
			}
		}
	}
	return nil
}
