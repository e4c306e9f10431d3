package config

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// buildTLSVersions sets t's version range from the server's ssl-min-ver
// and ssl-max-ver, else from ssl-default-server-options.
func (p *parser) buildTLSVersions(t *ServerTLS, src *serverSources, g *fileGlobal, ok *bool) {
	opts := p.serverDefaults(g)
	t.MinVersion, t.MaxVersion, t.NoTickets = opts.min, opts.max, opts.noTickets
	for _, k := range []struct {
		key string
		dst *uint16
	}{{"ssl-min-ver", &t.MinVersion}, {"ssl-max-ver", &t.MaxVersion}} {
		name, path := src.str(k.key)
		if name == "" {
			continue
		}
		v, known := tlsVersions[name]
		if !known {
			p.at(path, "%s %s: Go's TLS does not speak it; the oldest is TLSv1.0", k.key, name)
			*ok = false
			continue
		}
		*k.dst = v
	}
	if t.MinVersion != 0 && t.MaxVersion != 0 && t.MinVersion > t.MaxVersion {
		_, path := src.str("ssl-min-ver")
		if path == "" {
			path = "global.ssl-default-server-options"
		}
		p.at(path, "ssl-min-ver is above ssl-max-ver: no version is left")
		*ok = false
	}
}

type serverOptions struct {
	min, max  uint16
	noTickets bool
}

// serverDefaults parses ssl-default-server-options on first use, so that
// a mistake in it is reported once, not once per server line.
func (p *parser) serverDefaults(g *fileGlobal) serverOptions {
	if p.serverOptions == nil {
		p.serverOptions = &serverOptions{}
		if g.SSLDefaultServerOptions != nil {
			opts, err := parseServerOptions(*g.SSLDefaultServerOptions)
			if err != nil {
				p.at("global.ssl-default-server-options", "%v", err)
			}
			*p.serverOptions = opts
		}
	}
	return *p.serverOptions
}

// parseServerOptions reads HAProxy's ssl-default-server-options words:
// ssl-min-ver V, ssl-max-ver V, no-tls-tickets, no-sslv3, no-tlsv1x and
// force-tlsv1x. The no- and force- forms become a version range, as
// OpenSSL itself treats them; a hole in the middle (no-tlsv12 alone
// between 1.1 and 1.3) cannot be expressed and is refused.
func parseServerOptions(line string) (serverOptions, error) {
	var o serverOptions
	allowed := map[uint16]bool{tls.VersionTLS10: true, tls.VersionTLS11: true, tls.VersionTLS12: true, tls.VersionTLS13: true}
	words := strings.Fields(line)
	byWord := map[string]uint16{"tlsv10": tls.VersionTLS10, "tlsv11": tls.VersionTLS11, "tlsv12": tls.VersionTLS12, "tlsv13": tls.VersionTLS13}
	forced := uint16(0)
	restricted := false
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "ssl-min-ver" || w == "ssl-max-ver":
			if i+1 == len(words) {
				return o, fmt.Errorf("%s needs a version (TLSv1.0 to TLSv1.3)", w)
			}
			i++
			v, ok := tlsVersions[words[i]]
			if !ok {
				return o, fmt.Errorf("%s %q: want TLSv1.0, TLSv1.1, TLSv1.2 or TLSv1.3", w, words[i])
			}
			if w == "ssl-min-ver" {
				o.min = v
			} else {
				o.max = v
			}
		case w == "no-tls-tickets":
			o.noTickets = true
		case w == "no-sslv3":
			// Go never speaks SSLv3: nothing to turn off.
		case strings.HasPrefix(w, "no-") && byWord[w[3:]] != 0:
			allowed[byWord[w[3:]]] = false
			restricted = true
		case strings.HasPrefix(w, "force-") && byWord[w[6:]] != 0:
			forced = byWord[w[6:]]
		default:
			return o, fmt.Errorf("option %q (word %d): halo takes ssl-min-ver, ssl-max-ver, no-tls-tickets, no-sslv3, no-tlsv1x and force-tlsv1x", w, i+1)
		}
	}
	if forced != 0 {
		o.min, o.max = forced, forced
		return o, nil
	}
	if restricted {
		var lo, hi uint16
		for v := uint16(tls.VersionTLS10); v <= tls.VersionTLS13; v++ {
			if allowed[v] {
				if lo == 0 {
					lo = v
				}
				if hi != 0 && hi != v-1 {
					return o, fmt.Errorf("the no-tlsv1x options leave a hole in the version range, which Go cannot express")
				}
				hi = v
			}
		}
		if lo == 0 {
			return o, fmt.Errorf("the no-tlsv1x options leave no TLS version")
		}
		// Only the ends actually cut move: "no-tlsv13" alone leaves Go's
		// default minimum in place.
		if lo != tls.VersionTLS10 {
			o.min = max(o.min, lo)
		}
		if hi != tls.VersionTLS13 && (o.max == 0 || o.max > hi) {
			o.max = hi
		}
	}
	if o.min != 0 && o.max != 0 && o.min > o.max {
		return o, fmt.Errorf("%q leaves no TLS version: the minimum is above the maximum", line)
	}
	return o, nil
}

// checkCipherSuites13 accepts a TLS 1.3 "ciphersuites" list only when it
// names all three suites Go offers: Go does not let TLS 1.3's suites be
// chosen, so a shorter list would be a promise halo could not keep. To
// avoid TLS 1.3 altogether, set ssl-max-ver TLSv1.2.
func checkCipherSuites13(list string) error {
	want := map[string]bool{"TLS_AES_128_GCM_SHA256": false, "TLS_AES_256_GCM_SHA384": false, "TLS_CHACHA20_POLY1305_SHA256": false}
	for _, name := range strings.Split(list, ":") {
		if _, ok := want[name]; !ok {
			return fmt.Errorf("ciphersuites %q: %q is not a TLS 1.3 suite Go implements (TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256)", list, name)
		}
		want[name] = true
	}
	for _, name := range []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"} {
		if !want[name] {
			return fmt.Errorf("ciphersuites %q leaves out %s, but Go always offers all three TLS 1.3 suites; to avoid TLS 1.3 set ssl-max-ver TLSv1.2", list, name)
		}
	}
	return nil
}
