package tlsfront

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
)

// The facts below are HAProxy's ssl_fc_* and ssl_c_* sample fetches, read
// off a connection's handshake, for headers (and, with the rule language,
// for ACLs and log formats).

// VersionName is ssl_fc_protocol: "TLSv1.2", "TLSv1.3".
func VersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

// ClientCert is what a connection's client certificate says, as
// HAProxy's ssl_c_* fetches give it.
type ClientCert struct {
	// Used is ssl_c_used: the client sent a certificate (which the
	// handshake verified: one that failed never gets this far).
	Used bool
	// SubjectDN and IssuerDN are ssl_c_s_dn and ssl_c_i_dn, in
	// OpenSSL's one-line form (/C=FR/O=Org/CN=name); CN is
	// ssl_c_s_dn(cn).
	SubjectDN, IssuerDN, CN string
	// Serial is ssl_c_serial, in hex; NotAfter ssl_c_notafter, as
	// YYMMDDhhmmssZ.
	Serial, NotAfter string
}

// ClientCertOf reads the client certificate of a completed handshake.
func ClientCertOf(cs *tls.ConnectionState) ClientCert {
	if len(cs.PeerCertificates) == 0 {
		return ClientCert{}
	}
	c := cs.PeerCertificates[0]
	return ClientCert{
		Used:      true,
		SubjectDN: OneLine(c.RawSubject),
		IssuerDN:  OneLine(c.RawIssuer),
		CN:        c.Subject.CommonName,
		Serial:    fmt.Sprintf("%X", c.SerialNumber.Bytes()),
		NotAfter:  c.NotAfter.UTC().Format("060102150405Z"),
	}
}

// OneLine is OpenSSL's X509_NAME_oneline layout of a certificate's raw
// subject or issuer, which HAProxy's ssl_c_s_dn and "show ssl cert" print:
// /C=FR/O=Org/CN=name, every attribute in the order the certificate
// encodes them (pkix.Name would drop the types it does not know, such as
// DC and UID, and re-sort the rest, so that two different names could
// print alike). Control bytes are written \xHH, as OpenSSL does.
func OneLine(raw []byte) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(raw, &rdns); err != nil || len(rest) > 0 {
		return ""
	}
	var b strings.Builder
	for _, rdn := range rdns {
		for _, atv := range rdn {
			key := atv.Type.String()
			if short, ok := shortNames[key]; ok {
				key = short
			}
			b.WriteString("/" + key + "=")
			for _, c := range []byte(fmt.Sprint(atv.Value)) {
				if c < 0x20 || c == 0x7f {
					fmt.Fprintf(&b, "\\x%02X", c)
				} else {
					b.WriteByte(c)
				}
			}
		}
	}
	return b.String()
}

// shortNames are OpenSSL's short names of the usual attribute types.
var shortNames = map[string]string{
	"2.5.4.6": "C", "2.5.4.8": "ST", "2.5.4.7": "L", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.3": "CN",
	"2.5.4.5": "serialNumber", "1.2.840.113549.1.9.1": "emailAddress", "0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1": "UID", "2.5.4.9": "street", "2.5.4.17": "postalCode", "2.5.4.4": "SN", "2.5.4.42": "GN",
	"2.5.4.12": "title", "2.5.4.46": "dnQualifier", "2.5.4.65": "pseudonym",
}
