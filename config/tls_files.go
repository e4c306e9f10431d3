package config

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ocsp"
)

// Certificate is one certificate a TLS bind serves: its chain and key, as
// read from a PEM file, and the names it answers for.
type Certificate struct {
	// Path is the PEM file it was read from.
	Path string
	// TLS is the chain, key, parsed leaf and OCSP staple, ready for
	// crypto/tls.
	TLS tls.Certificate
	// Names are the names it is chosen by (its SAN DNS names and its
	// subject's common name), wildcards as "*.example.org".
	Names []string
	// OCSPFile is the ".ocsp" file its staple was read from, "" without.
	OCSPFile string
}

// MarshalJSON writes what identifies the certificate, never its key.
func (c *Certificate) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Path     string
		Names    []string
		NotAfter time.Time
		OCSPFile string `json:",omitempty"`
	}{c.Path, c.Names, c.TLS.Leaf.NotAfter, c.OCSPFile})
}

// Leaf is the certificate itself.
func (c *Certificate) Leaf() *x509.Certificate { return c.TLS.Leaf }

// auxiliarySuffixes are the files HAProxy reads beside a certificate, which
// a crt directory's listing skips.
var auxiliarySuffixes = []string{".key", ".ocsp", ".issuer", ".sctl", ".crl"}

// loadCertificates reads crt: one PEM file, or every certificate file of a
// directory in name order, as HAProxy loads a crt directory.
func loadCertificates(path string) ([]*Certificate, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", path, errors.Unwrap(err))
	}
	if !fi.IsDir() {
		c, err := loadCertificate(path)
		if err != nil {
			return nil, err
		}
		return []*Certificate{c}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, fmt.Errorf("certificate directory %s: %w", path, errors.Unwrap(err))
	}
	var certs []*Certificate
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") || slices.ContainsFunc(auxiliarySuffixes, func(s string) bool { return strings.HasSuffix(name, s) }) {
			continue
		}
		c, err := loadCertificate(filepath.Join(path, name))
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("certificate directory %s holds no certificate", path)
	}
	return certs, nil
}

// loadCertificate reads one PEM file holding a certificate, its chain and
// its key (or with the key in FILE.key, as HAProxy allows), and its OCSP
// response from FILE.ocsp if there is one. A certificate that is expired
// or not yet valid is refused: serving it would fail every handshake.
func loadCertificate(path string) (*Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", path, errors.Unwrap(err))
	}
	certPEM, keyPEM := splitPEM(data)
	if len(certPEM) == 0 {
		return nil, fmt.Errorf("certificate %s: no PEM CERTIFICATE block in it", path)
	}
	if len(keyPEM) == 0 {
		kd, kerr := os.ReadFile(path + ".key")
		if kerr != nil {
			return nil, fmt.Errorf("certificate %s: no PEM PRIVATE KEY block in it, and no %s.key beside it", path, filepath.Base(path))
		}
		_, keyPEM = splitPEM(kd)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %s", path, strings.TrimPrefix(err.Error(), "tls: "))
	}
	leaf := pair.Leaf
	now := time.Now()
	switch {
	case now.After(leaf.NotAfter):
		return nil, fmt.Errorf("certificate %s (%s) expired on %s", path, leaf.Subject, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return nil, fmt.Errorf("certificate %s (%s) is not valid before %s", path, leaf.Subject, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	c := &Certificate{Path: path, TLS: pair, Names: certNames(leaf)}
	if len(c.Names) == 0 {
		return nil, fmt.Errorf("certificate %s (%s) names no host: it has no DNS SAN and no common name", path, leaf.Subject)
	}
	if err := c.loadOCSP(path + ".ocsp"); err != nil {
		return nil, err
	}
	return c, nil
}

// splitPEM separates a PEM file's certificates from its private key.
func splitPEM(data []byte) (certs, key []byte) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return certs, key
		}
		switch {
		case b.Type == "CERTIFICATE":
			certs = append(certs, pem.EncodeToMemory(b)...)
		case strings.HasSuffix(b.Type, "PRIVATE KEY") && key == nil:
			key = pem.EncodeToMemory(b)
		}
	}
}

// certNames are the names a certificate is chosen by, lowercased: its SAN
// DNS names and its subject's common name, as HAProxy indexes both (a
// client that checks the name still needs it in a SAN).
func certNames(leaf *x509.Certificate) []string {
	names := make([]string, 0, len(leaf.DNSNames)+1)
	for _, n := range leaf.DNSNames {
		names = append(names, strings.ToLower(n))
	}
	if cn := strings.ToLower(leaf.Subject.CommonName); cn != "" && !slices.Contains(names, cn) {
		names = append(names, cn)
	}
	return names
}

// loadOCSP reads the certificate's OCSP response, if the file exists, to
// staple it. One that does not parse, is for another certificate, says
// other than "good" or is out of date fails the load: stapling it would
// make clients that check it refuse the connection. Refresh or remove the
// file and reload.
func (c *Certificate) loadOCSP(path string) error {
	der, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("OCSP response %s: %w", path, errors.Unwrap(err))
	}
	var issuer *x509.Certificate
	if len(c.TLS.Certificate) > 1 {
		issuer, _ = x509.ParseCertificate(c.TLS.Certificate[1])
	}
	resp, err := ocsp.ParseResponseForCert(der, c.TLS.Leaf, issuer)
	if err != nil {
		return fmt.Errorf("OCSP response %s: %v", path, err)
	}
	switch {
	case resp.Status != ocsp.Good:
		return fmt.Errorf("OCSP response %s: the certificate's status is %s, not good", path, ocspStatus(resp.Status))
	case !resp.NextUpdate.IsZero() && time.Now().After(resp.NextUpdate):
		return fmt.Errorf("OCSP response %s is out of date: its next update was due %s", path, resp.NextUpdate.UTC().Format(time.RFC3339))
	}
	c.TLS.OCSPStaple = der
	c.OCSPFile = path
	return nil
}

func ocspStatus(s int) string {
	switch s {
	case ocsp.Revoked:
		return "revoked"
	case ocsp.Unknown:
		return "unknown"
	}
	return fmt.Sprint(s)
}

// loadCAFile reads a PEM bundle of CA certificates, as a pool and as the
// certificates themselves (which CRLs are checked against).
func loadCAFile(path string) (*x509.CertPool, []*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("CA file %s: %w", path, errors.Unwrap(err))
	}
	pool := x509.NewCertPool()
	var cas []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("CA file %s: %v", path, err)
		}
		pool.AddCert(c)
		cas = append(cas, c)
	}
	if len(cas) == 0 {
		return nil, nil, fmt.Errorf("CA file %s: no PEM CERTIFICATE block in it", path)
	}
	return pool, cas, nil
}

// checkCRL refuses a revocation list that no CA of ca-file signed, or
// that is past its next update: one would let anyone revoke or, worse,
// stand for a list an attacker chose; the other would refuse every client
// of its issuer (see tlsfront's revocation check).
func checkCRL(path string, crl *x509.RevocationList, cas []*x509.Certificate) error {
	signed := false
	for _, ca := range cas {
		if bytes.Equal(ca.RawSubject, crl.RawIssuer) && crl.CheckSignatureFrom(ca) == nil {
			signed = true
			break
		}
	}
	switch {
	case !signed:
		return fmt.Errorf("CRL file %s: the list of %s is signed by no CA of ca-file", path, crl.Issuer)
	case !crl.NextUpdate.IsZero() && time.Now().After(crl.NextUpdate):
		return fmt.Errorf("CRL file %s: the list of %s is out of date: its next update was due %s", path, crl.Issuer, crl.NextUpdate.UTC().Format(time.RFC3339))
	}
	return nil
}

// loadCRLFile reads one or more certificate revocation lists, PEM ("X509
// CRL") or a single DER one.
func loadCRLFile(path string) ([]*x509.RevocationList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CRL file %s: %w", path, errors.Unwrap(err))
	}
	var crls []*x509.RevocationList
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "X509 CRL" {
			continue
		}
		crl, err := x509.ParseRevocationList(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CRL file %s: %v", path, err)
		}
		crls = append(crls, crl)
	}
	if len(crls) == 0 {
		crl, err := x509.ParseRevocationList(data)
		if err != nil {
			return nil, fmt.Errorf("CRL file %s: neither a PEM X509 CRL nor a DER CRL: %v", path, err)
		}
		crls = append(crls, crl)
	}
	return crls, nil
}
