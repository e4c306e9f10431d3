package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// benchCert writes a self-signed certificate with its key, as both
// proxies' crt takes it, for the TLS scenarios: ECDSA P-256 or RSA 2048.
func benchCert(dir string, useRSA bool) (string, error) {
	var key crypto.Signer
	var err error
	name := "ecdsa-p256.pem"
	if useRSA {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
		name = "rsa-2048.pem"
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "bench.example.org"},
		DNSNames:     []string{"bench.example.org"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return "", err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	pemData := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})...)
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, pemData, 0o600)
}

// tlsScenario is one of scenario 6's four: keep-alive or a full handshake
// per request, with an ECDSA or an RSA certificate.
func tlsScenario(name, title string, useRSA, handshakes bool) *scenario {
	return &scenario{name: name, title: title, config: "tls", metrics: requestMetrics, server: httpServer,
		prepare: func(s *suite, p *configParams) {
			cert, err := benchCert(s.work, useRSA)
			if err != nil {
				fatalf("writing the TLS scenario's certificate: %v", err)
			}
			p.Cert, p.NoTickets = cert, handshakes
		},
		measure: measureWrkScheme("https", handshakes)}
}
