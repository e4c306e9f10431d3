package config

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// ErrCertRevoked is a server certificate listed in the crl-file.
var ErrCertRevoked = errors.New("server certificate revoked by the crl-file")

// ServerCertError is a server certificate that verify required refused:
// a check reports it as L6RSP, whoever did the handshake.
type ServerCertError struct{ Err error }

func (e *ServerCertError) Error() string { return e.Err.Error() }
func (e *ServerCertError) Unwrap() error { return e.Err }

// ClientConfig is the crypto/tls configuration that speaks t to a server.
// Each call has its own session cache (unless no-ssl-reuse): callers make
// one per server, as HAProxy keeps one cached session per server.
//
// Verification is done in VerifyConnection rather than by crypto/tls
// itself because HAProxy's name rule differs from Go's: the names are
// checked against the SNI sent, else verifyhost, and with neither only the
// chain is checked (Go would refuse a config without a name).
func (t *ServerTLS) ClientConfig() (*tls.Config, error) {
	c := &tls.Config{
		InsecureSkipVerify:     true, // checked in verify below, when Verify
		ServerName:             t.SNI,
		MinVersion:             t.MinVersion,
		MaxVersion:             t.MaxVersion,
		CipherSuites:           t.CipherSuites,
		SessionTicketsDisabled: t.NoTickets,
		NextProtos:             t.ALPN,
	}
	if !t.NoReuse {
		c.ClientSessionCache = tls.NewLRUClientSessionCache(0)
	}
	if t.Cert != nil {
		cert, err := tls.X509KeyPair(t.Cert, t.Cert)
		if err != nil {
			return nil, fmt.Errorf("crt %s: %w", t.CertFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if !t.Verify {
		return c, nil
	}
	var roots *x509.CertPool
	if t.CAFile == SystemCA {
		var err error
		if roots, err = x509.SystemCertPool(); err != nil {
			return nil, fmt.Errorf("ca-file @system-ca: %w", err)
		}
	} else {
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(t.CA) {
			return nil, fmt.Errorf("ca-file %s holds no PEM certificate", t.CAFile)
		}
	}
	var crls []*x509.RevocationList
	if t.CRL != nil {
		var err error
		if crls, err = ParseCRLs(t.CRL); err != nil {
			return nil, fmt.Errorf("crl-file %s: %w", t.CRLFile, err)
		}
	}
	verifyHost := t.VerifyHost
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := verifyServer(cs, roots, crls, verifyHost); err != nil {
			return &ServerCertError{err}
		}
		return nil
	}
	return c, nil
}

func verifyServer(cs tls.ConnectionState, roots *x509.CertPool, crls []*x509.RevocationList, verifyHost string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the server sent no certificate")
	}
	name := cs.ServerName
	if name == "" {
		name = verifyHost
	}
	opts := x509.VerifyOptions{Roots: roots, DNSName: name, Intermediates: x509.NewCertPool()}
	for _, ic := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(ic)
	}
	chains, err := cs.PeerCertificates[0].Verify(opts)
	if err != nil {
		return err
	}
	if crls == nil {
		return nil
	}
	return checkRevoked(chains[0], crls)
}

// checkRevoked checks every certificate of chain but its root against the
// lists, as HAProxy's crl-file does (OpenSSL's CRL_CHECK_ALL): each needs a
// list signed by its issuer, and must not be on it.
func checkRevoked(chain []*x509.Certificate, crls []*x509.RevocationList) error {
	for i := 0; i+1 < len(chain); i++ {
		cert, issuer := chain[i], chain[i+1]
		found := false
		for _, crl := range crls {
			if !bytes.Equal(crl.RawIssuer, cert.RawIssuer) || crl.CheckSignatureFrom(issuer) != nil {
				continue
			}
			found = true
			for _, rc := range crl.RevokedCertificateEntries {
				if rc.SerialNumber.Cmp(cert.SerialNumber) == 0 {
					return fmt.Errorf("%w: %s (serial %s)", ErrCertRevoked, cert.Subject, cert.SerialNumber)
				}
			}
		}
		if !found {
			return fmt.Errorf("no CRL from %s in the crl-file for %s", issuer.Subject, cert.Subject)
		}
	}
	return nil
}
