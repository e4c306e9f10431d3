package config

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
)

// cipherSuite is one TLS 1.2 cipher suite Go implements, with the
// attributes OpenSSL's cipher-list words select it by.
type cipherSuite struct {
	openssl string // OpenSSL's name, e.g. ECDHE-RSA-AES128-GCM-SHA256
	id      uint16
	attrs   []string // the words that select it: key exchange, authentication, cipher, MAC, strength
}

// cipherSuites are the suites Go's crypto/tls implements, in OpenSSL's
// default preference order. Go implements no DHE, CCM, CAMELLIA, ARIA or
// PSK suites: words that select only those select nothing here.
var cipherSuites = []cipherSuite{
	{"ECDHE-ECDSA-AES256-GCM-SHA384", tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, []string{"kECDHE", "aECDSA", "AES256", "AESGCM", "AEAD", "HIGH"}},
	{"ECDHE-RSA-AES256-GCM-SHA384", tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, []string{"kECDHE", "aRSA", "AES256", "AESGCM", "AEAD", "HIGH"}},
	{"ECDHE-ECDSA-CHACHA20-POLY1305", tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, []string{"kECDHE", "aECDSA", "CHACHA20", "AEAD", "HIGH"}},
	{"ECDHE-RSA-CHACHA20-POLY1305", tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, []string{"kECDHE", "aRSA", "CHACHA20", "AEAD", "HIGH"}},
	{"ECDHE-ECDSA-AES128-GCM-SHA256", tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, []string{"kECDHE", "aECDSA", "AES128", "AESGCM", "AEAD", "HIGH"}},
	{"ECDHE-RSA-AES128-GCM-SHA256", tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, []string{"kECDHE", "aRSA", "AES128", "AESGCM", "AEAD", "HIGH"}},
	{"ECDHE-ECDSA-AES128-SHA256", tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, []string{"kECDHE", "aECDSA", "AES128", "SHA256", "HIGH"}},
	{"ECDHE-RSA-AES128-SHA256", tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, []string{"kECDHE", "aRSA", "AES128", "SHA256", "HIGH"}},
	{"ECDHE-ECDSA-AES256-SHA", tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, []string{"kECDHE", "aECDSA", "AES256", "SHA1", "HIGH"}},
	{"ECDHE-RSA-AES256-SHA", tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, []string{"kECDHE", "aRSA", "AES256", "SHA1", "HIGH"}},
	{"ECDHE-ECDSA-AES128-SHA", tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, []string{"kECDHE", "aECDSA", "AES128", "SHA1", "HIGH"}},
	{"ECDHE-RSA-AES128-SHA", tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, []string{"kECDHE", "aRSA", "AES128", "SHA1", "HIGH"}},
	{"AES256-GCM-SHA384", tls.TLS_RSA_WITH_AES_256_GCM_SHA384, []string{"kRSA", "aRSA", "AES256", "AESGCM", "AEAD", "HIGH"}},
	{"AES128-GCM-SHA256", tls.TLS_RSA_WITH_AES_128_GCM_SHA256, []string{"kRSA", "aRSA", "AES128", "AESGCM", "AEAD", "HIGH"}},
	{"AES128-SHA256", tls.TLS_RSA_WITH_AES_128_CBC_SHA256, []string{"kRSA", "aRSA", "AES128", "SHA256", "HIGH"}},
	{"AES256-SHA", tls.TLS_RSA_WITH_AES_256_CBC_SHA, []string{"kRSA", "aRSA", "AES256", "SHA1", "HIGH"}},
	{"AES128-SHA", tls.TLS_RSA_WITH_AES_128_CBC_SHA, []string{"kRSA", "aRSA", "AES128", "SHA1", "HIGH"}},
	{"ECDHE-RSA-DES-CBC3-SHA", tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, []string{"kECDHE", "aRSA", "3DES", "SHA1", "MEDIUM", "INSECURE"}},
	{"DES-CBC3-SHA", tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, []string{"kRSA", "aRSA", "3DES", "SHA1", "MEDIUM", "INSECURE"}},
	{"ECDHE-ECDSA-RC4-SHA", tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA, []string{"kECDHE", "aECDSA", "RC4", "SHA1", "LOW", "INSECURE"}},
	{"ECDHE-RSA-RC4-SHA", tls.TLS_ECDHE_RSA_WITH_RC4_128_SHA, []string{"kECDHE", "aRSA", "RC4", "SHA1", "LOW", "INSECURE"}},
	{"RC4-SHA", tls.TLS_RSA_WITH_RC4_128_SHA, []string{"kRSA", "aRSA", "RC4", "SHA1", "LOW", "INSECURE"}},
}

// cipherAliases are OpenSSL's other spellings of the attribute words.
var cipherAliases = map[string]string{
	"kEECDH": "kECDHE", "ECDHE": "kECDHE", "EECDH": "kECDHE", "ECDH": "kECDHE", "kECDH": "kECDHE",
	"RSA": "kRSA", "ECDSA": "aECDSA", "SHA": "SHA1",
}

// emptyCipherWords select suites Go does not implement (or none at all):
// accepted, so that a list written for OpenSSL still reads, selecting
// nothing.
var emptyCipherWords = set("SHA384", "SSLv2", "EXPORT40", "EXPORT56", "DES", "aNULL", "eNULL", "NULL", "ADH", "AECDH", "EXP", "EXPORT", "LOW-EXPORT", "MD5", "DSS", "aDSS",
	"DH", "kDH", "kDHE", "EDH", "DHE", "kEDH", "PSK", "kPSK", "aPSK", "SRP", "kSRP", "CAMELLIA", "CAMELLIA128", "CAMELLIA256",
	"ARIA", "ARIA128", "ARIA256", "CCM", "CCM8", "AESCCM", "AESCCM8", "SEED", "IDEA", "RC2", "aGOST", "kGOST", "GOST89MAC",
	"SHA1-DSS", "aECDH", "kECDHEPSK", "ECDHEPSK", "DHEPSK", "RSAPSK", "kRSAPSK", "kDHEPSK", "ECCDHE", "eNULL:!aNULL")

// opensslOnlySuite reports whether name is an OpenSSL suite Go does not
// implement (DHE, static ECDH, PSK, SRP, CCM, CAMELLIA, ARIA, CBC with
// SHA-384 and the like): OpenSSL's own list skips names it lacks, and a
// list written for OpenSSL keeps its meaning without them.
func opensslOnlySuite(name string) bool {
	for _, prefix := range []string{"DHE-", "EDH-", "ADH-", "AECDH-", "ECDH-", "PSK-", "SRP-", "RSA-PSK-", "ECDHE-PSK-", "DHE-PSK-", "GOST"} {
		if strings.HasPrefix(name, prefix) {
			return true
		}
	}
	for _, part := range []string{"CAMELLIA", "ARIA", "CCM", "SEED", "IDEA", "NULL", "-DSS-", "RC2"} {
		if strings.Contains(name, part) {
			return true
		}
	}
	switch name {
	case "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA384", "AES256-SHA256", "ECDHE-ECDSA-AES256-CCM":
		return true
	}
	return false
}

// parseCiphers reads an OpenSSL cipher list ("ciphers",
// "ssl-default-bind-ciphers") as OpenSSL does: items separated by ':' (or
// ',' or spaces); an item is a suite name or words joined by '+' that all
// must match; a '!' prefix removes the suites for good, '-' removes them
// (a later item may add them back), '+' moves them to the end; @STRENGTH
// sorts by strength and @SECLEVEL is accepted. onErr gets each bad item's
// byte offset. The result is never empty without an error.
func parseCiphers(s string, onErr func(off int, msg string)) []uint16 {
	var list []int // indexes into cipherSuites
	killed := make([]bool, len(cipherSuites))
	bad := false
	for off := 0; off < len(s); {
		end := off + strings.IndexAny(s[off:], ": ,")
		if end < off {
			end = len(s)
		}
		item := s[off:end]
		itemOff := off
		off = end + 1
		if item == "" {
			continue
		}
		op := byte(0)
		if strings.ContainsRune("!-+", rune(item[0])) {
			op, item = item[0], item[1:]
		}
		if item == "@STRENGTH" || strings.HasPrefix(item, "@SECLEVEL=") {
			if item == "@STRENGTH" {
				slices.SortStableFunc(list, func(a, b int) int { return strength(a) - strength(b) })
			}
			continue
		}
		sel, ok := selectCiphers(item)
		if !ok {
			onErr(itemOff, fmt.Sprintf("unknown cipher or cipher class %q (OpenSSL's names, as \"openssl ciphers -v\" lists them)", item))
			bad = true
			continue
		}
		for _, i := range sel {
			switch op {
			case '!':
				killed[i] = true
				list = slices.DeleteFunc(list, func(j int) bool { return j == i })
			case '-':
				list = slices.DeleteFunc(list, func(j int) bool { return j == i })
			case '+':
				if k := slices.Index(list, i); k >= 0 {
					list = append(slices.Delete(list, k, k+1), i)
				}
			default:
				if !killed[i] && !slices.Contains(list, i) {
					list = append(list, i)
				}
			}
		}
	}
	if bad {
		return nil
	}
	if len(list) == 0 {
		onErr(0, fmt.Sprintf("%q selects no cipher suite that Go's TLS implements (it has no DHE, CCM, CAMELLIA or ARIA suites)", s))
		return nil
	}
	ids := make([]uint16, len(list))
	for k, i := range list {
		ids[k] = cipherSuites[i].id
	}
	return ids
}

// strength orders suites for @STRENGTH: 256-bit ciphers first.
func strength(i int) int {
	attrs := cipherSuites[i].attrs
	switch {
	case slices.Contains(attrs, "AES256"), slices.Contains(attrs, "CHACHA20"):
		return 0
	case slices.Contains(attrs, "AES128"):
		return 1
	case slices.Contains(attrs, "3DES"):
		return 2
	}
	return 3
}

// selectCiphers returns the suites one item (without its prefix)
// selects, and false when a word of it is unknown.
func selectCiphers(item string) ([]int, bool) {
	for i, cs := range cipherSuites {
		// OpenSSL's name, or the IANA one Go uses.
		if cs.openssl == item || tls.CipherSuiteName(cs.id) == item {
			return []int{i}, true
		}
	}
	if opensslOnlySuite(item) && !strings.Contains(item, "+") {
		return nil, true
	}
	var sel []int
	ws := strings.Split(item, "+")
	for i, cs := range cipherSuites {
		if slices.Contains(cs.attrs, "INSECURE") {
			// RC4 and 3DES: OpenSSL 3 has neither, so no class of its
			// selects them here either; only their own names do.
			continue
		}
		all := true
		for _, w := range ws {
			if !cipherWordMatches(w, cs) {
				all = false
				break
			}
		}
		if all {
			sel = append(sel, i)
		}
	}
	for _, w := range ws {
		if !knownCipherWord(w) {
			return nil, false
		}
	}
	return sel, true
}

func cipherWordMatches(w string, cs cipherSuite) bool {
	switch w {
	case "ALL", "DEFAULT":
		return true
	case "AES":
		return slices.Contains(cs.attrs, "AES128") || slices.Contains(cs.attrs, "AES256")
	case "TLSv1.2":
		// Suites that need TLS 1.2: the AEAD and SHA-2 MAC ones.
		return slices.Contains(cs.attrs, "AEAD") || slices.Contains(cs.attrs, "SHA256") || slices.Contains(cs.attrs, "SHA384")
	case "TLSv1", "TLSv1.0", "SSLv3":
		return !cipherWordMatches("TLSv1.2", cs)
	}
	if a, ok := cipherAliases[w]; ok {
		w = a
	}
	return slices.Contains(cs.attrs, w)
}

func knownCipherWord(w string) bool {
	switch w {
	case "ALL", "DEFAULT", "COMPLEMENTOFALL", "COMPLEMENTOFDEFAULT", "AES", "TLSv1.2", "TLSv1", "TLSv1.0", "SSLv3":
		return true
	}
	if emptyCipherWords[w] {
		return true
	}
	if _, ok := cipherAliases[w]; ok {
		return true
	}
	for _, cs := range cipherSuites {
		if w != "INSECURE" && slices.Contains(cs.attrs, w) {
			return true
		}
	}
	return false
}
