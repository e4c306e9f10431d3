package stats

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/tlsfront"
)

// certificates returns every certificate the live configuration's binds
// serve, by path (a file several binds load is listed once).
func certificates(cfg *config.Config) (paths []string, byPath map[string]*config.Certificate) {
	byPath = map[string]*config.Certificate{}
	if cfg == nil {
		return nil, byPath
	}
	for _, fe := range cfg.Frontends {
		for _, b := range fe.Binds {
			if b.TLS == nil {
				continue
			}
			for _, c := range b.TLS.Certs {
				if byPath[c.Path] == nil {
					paths = append(paths, c.Path)
					byPath[c.Path] = c
				}
			}
		}
	}
	slices.Sort(paths)
	return paths, byPath
}

// cmdShowSSLCert is "show ssl cert [<filename>]": the list of certificate
// files in use, or one's details, in HAProxy's layout. halo has no
// "set ssl cert" transactions (a SIGHUP re-reads the files), so every
// certificate listed is in use.
func cmdShowSSLCert(s *Stats, _ *session, args []string) string {
	paths, byPath := certificates(s.src.Config())
	if len(args) == 0 {
		return "# filename\n" + strings.Join(append(paths, ""), "\n")
	}
	name := strings.TrimPrefix(args[0], "*")
	c := byPath[name]
	if c == nil {
		return "certificate '" + name + "' doesn't exist!\n"
	}
	var b strings.Builder
	leaf := c.Leaf()
	fmt.Fprintf(&b, "Filename: %s\n", c.Path)
	b.WriteString("Status: Used\n")
	fmt.Fprintf(&b, "Serial: %X\n", leaf.SerialNumber.Bytes()) // whole bytes, as OpenSSL prints it
	fmt.Fprintf(&b, "notBefore: %s\n", opensslTime(leaf.NotBefore))
	fmt.Fprintf(&b, "notAfter: %s\n", opensslTime(leaf.NotAfter))
	if san := altNames(leaf); san != "" {
		fmt.Fprintf(&b, "Subject Alternative Name: %s\n", san)
	}
	fmt.Fprintf(&b, "Algorithm: %s\n", keyAlgorithm(leaf))
	fmt.Fprintf(&b, "SHA1 FingerPrint: %X\n", sha1.Sum(leaf.Raw))
	fmt.Fprintf(&b, "Subject: %s\n", tlsfront.OneLine(leaf.RawSubject))
	fmt.Fprintf(&b, "Issuer: %s\n", tlsfront.OneLine(leaf.RawIssuer))
	for _, der := range c.TLS.Certificate[1:] {
		if ch, err := x509.ParseCertificate(der); err == nil {
			fmt.Fprintf(&b, "Chain Subject: %s\n", tlsfront.OneLine(ch.RawSubject))
			fmt.Fprintf(&b, "Chain Issuer: %s\n", tlsfront.OneLine(ch.RawIssuer))
		}
	}
	if c.OCSPFile != "" {
		fmt.Fprintf(&b, "OCSP Response: %s (stapled)\n", c.OCSPFile)
	}
	return b.String()
}

// opensslTime is OpenSSL's ASN1_TIME_print layout, which HAProxy shows.
func opensslTime(t time.Time) string { return t.UTC().Format("Jan _2 15:04:05 2006 GMT") }

// altNames is the certificate's SANs as HAProxy 2.6 lists them: its DNS
// names as "DNS:name", every other kind of SAN as an empty entry, joined
// by ", " (so "DNS:a, DNS:b, " for two names and an IP address).
func altNames(c *x509.Certificate) string {
	var parts []string
	for _, n := range c.DNSNames {
		parts = append(parts, "DNS:"+n)
	}
	for range len(c.IPAddresses) + len(c.EmailAddresses) + len(c.URIs) {
		parts = append(parts, "")
	}
	return strings.Join(parts, ", ")
}

// keyAlgorithm is HAProxy's "RSA2048" / "EC256" naming of the key.
func keyAlgorithm(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return fmt.Sprintf("EC%d", k.Curve.Params().BitSize)
	case ed25519.PublicKey:
		return "ED25519"
	}
	return c.PublicKeyAlgorithm.String()
}
