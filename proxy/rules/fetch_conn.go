package rules

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"

	"github.com/halo-lb/halo/config"

	"github.com/halo-lb/halo/tlsfront"
)

// fetchFns are the implementations of the fetches, by lang's names. A
// test checks that every fetch lang knows has one.
var fetchFns = map[string]fetchFn{}

func init() {
	for name, fn := range map[string]fetchFn{
		"always_true":  func(_ *Txn, _ *fetch, _ int, out *value) bool { out.setBool(true); return true },
		"always_false": func(_ *Txn, _ *fetch, _ int, out *value) bool { out.setBool(false); return true },
		"str":          func(_ *Txn, f *fetch, _ int, out *value) bool { out.setStr(strBytes(f)); return true },
		"int":          func(_ *Txn, f *fetch, _ int, out *value) bool { out.setInt(f.n); return true },
		"env": func(_ *Txn, f *fetch, _ int, out *value) bool {
			out.setStr(strBytes(f))
			return f.str != ""
		},
		"var": fetchVar,
		"src": func(t *Txn, _ *fetch, _ int, out *value) bool { out.setIP(t.Src.Addr()); return t.Src.IsValid() },
		"src_port": func(t *Txn, _ *fetch, _ int, out *value) bool {
			out.setInt(int64(t.Src.Port()))
			return t.Src.IsValid()
		},
		"dst": func(t *Txn, _ *fetch, _ int, out *value) bool { out.setIP(t.Dst.Addr()); return t.Dst.IsValid() },
		"dst_port": func(t *Txn, _ *fetch, _ int, out *value) bool {
			out.setInt(int64(t.Dst.Port()))
			return t.Dst.IsValid()
		},
		"fe_conn":   fetchFeConn,
		"be_conn":   fetchBeConn,
		"nbsrv":     fetchNbSrv,
		"srv_is_up": func(t *Txn, f *fetch, _ int, out *value) bool { out.setBool(t.Env.SrvIsUp(f.idx, f.srv)); return true },
		"srv_conn": func(t *Txn, f *fetch, _ int, out *value) bool {
			out.setInt(int64(t.Env.SrvConn(f.idx, f.srv)))
			return true
		},

		"ssl_fc":          func(t *Txn, _ *fetch, _ int, out *value) bool { out.setBool(t.TLS != nil); return true },
		"ssl_fc_sni":      tlsStr(func(cs *tls.ConnectionState) string { return cs.ServerName }),
		"ssl_fc_protocol": tlsStr(func(cs *tls.ConnectionState) string { return tlsfront.VersionName(cs.Version) }),
		"ssl_fc_cipher":   tlsStr(func(cs *tls.ConnectionState) string { return tls.CipherSuiteName(cs.CipherSuite) }),
		"ssl_fc_alpn":     tlsStr(func(cs *tls.ConnectionState) string { return cs.NegotiatedProtocol }),
		"ssl_fc_has_crt":  tlsBool(func(cs *tls.ConnectionState) bool { return len(cs.PeerCertificates) > 0 }),
		"ssl_c_used":      tlsBool(func(cs *tls.ConnectionState) bool { return len(cs.PeerCertificates) > 0 }),
		"ssl_c_verify": func(t *Txn, _ *fetch, _ int, out *value) bool {
			// Verification failures end the handshake in halo: a
			// connection that got here verified, or sent no certificate.
			out.setInt(0)
			return t.TLS != nil
		},
		"ssl_c_s_dn": tlsStr(func(cs *tls.ConnectionState) string {
			if len(cs.PeerCertificates) == 0 {
				return ""
			}
			return tlsfront.OneLine(cs.PeerCertificates[0].RawSubject)
		}),
		"ssl_c_i_dn": tlsStr(func(cs *tls.ConnectionState) string {
			if len(cs.PeerCertificates) == 0 {
				return ""
			}
			return tlsfront.OneLine(cs.PeerCertificates[0].RawIssuer)
		}),

		"capture.req.hdr": fetchCapture(false),
		"capture.res.hdr": fetchCapture(true),
		"http_auth":       fetchHTTPAuth,
		"http_auth_group": fetchHTTPAuthGroup,

		"method":        fetchMethod,
		"path":          fetchPath,
		"pathq":         fetchPathQ,
		"base":          fetchBase,
		"url":           fetchURL,
		"query":         fetchQuery,
		"req.ver":       fetchReqVer,
		"url_param":     fetchURLParam,
		"url_param_val": fetchURLParamVal,
		"req.hdr":       headerFetch(false, true),
		"req.fhdr":      headerFetch(false, false),
		"req.hdr_cnt":   headerCount(false, true),
		"req.fhdr_cnt":  headerCount(false, false),
		"req.hdr_ip":    headerIP(false),
		"req.hdr_val":   headerVal(false),
		"req.cook":      cookieFetch(false),
		"req.cook_cnt":  cookieCount(false),
		"req.cook_val":  cookieVal(false),
		"status":        fetchStatus,
		"res.ver":       fetchResVer,
		"res.hdr":       headerFetch(true, true),
		"res.fhdr":      headerFetch(true, false),
		"res.hdr_cnt":   headerCount(true, true),
		"res.fhdr_cnt":  headerCount(true, false),
		"res.hdr_ip":    headerIP(true),
		"res.hdr_val":   headerVal(true),
		"res.cook":      cookieFetch(true),
		"res.cook_cnt":  cookieCount(true),
		"res.cook_val":  cookieVal(true),
	} {
		fetchFns[name] = fn
	}
}

// strBytes is a fetch's constant string as bytes, made when the fetch is
// compiled (programs are shared by every request: never written after).
func strBytes(f *fetch) []byte { return f.name }

func fetchVar(t *Txn, f *fetch, _ int, out *value) bool {
	if f.proc != nil {
		return f.proc.get(out)
	}
	s := t.varAt(f.idx)
	if s == nil || !s.set {
		return false
	}
	*out = s.v
	return true
}

func fetchFeConn(t *Txn, f *fetch, _ int, out *value) bool {
	i := f.idx
	if i < 0 {
		i = t.Frontend
	}
	if i < 0 || t.Env == nil {
		return false
	}
	out.setInt(int64(t.Env.FeConn(i)))
	return true
}

func fetchBeConn(t *Txn, f *fetch, _ int, out *value) bool {
	i := f.idx
	if i < 0 {
		i = t.Backend
	}
	if i < 0 || t.Env == nil {
		return false
	}
	out.setInt(int64(t.Env.BeConn(i)))
	return true
}

func fetchNbSrv(t *Txn, f *fetch, _ int, out *value) bool {
	i := f.idx
	if i < 0 {
		i = t.Backend
	}
	if i < 0 || t.Env == nil {
		return false
	}
	out.setInt(int64(t.Env.NbSrv(i)))
	return true
}

func tlsStr(get func(*tls.ConnectionState) string) fetchFn {
	return func(t *Txn, _ *fetch, _ int, out *value) bool {
		if t.TLS == nil {
			return false
		}
		cs := t.TLS.ConnectionState()
		s := get(&cs)
		if s == "" {
			return false
		}
		start := len(t.buf)
		t.buf = append(t.buf, s...)
		out.setStr(t.buf[start:len(t.buf):len(t.buf)])
		return true
	}
}

func tlsBool(get func(*tls.ConnectionState) bool) fetchFn {
	return func(t *Txn, _ *fetch, _ int, out *value) bool {
		if t.TLS == nil {
			out.setBool(false)
			return true
		}
		cs := t.TLS.ConnectionState()
		out.setBool(get(&cs))
		return true
	}
}

// basicAuth reads the request's "Authorization: Basic" credentials into
// t's buffer, without allocating; ok is false without valid ones.
func basicAuth(t *Txn) (user, pass []byte, ok bool) {
	if t.Ctx == nil {
		return nil, nil, false
	}
	h, ok := pick(t.occurrences(false, hdrAuthorization, false), -1)
	if !ok || len(h) < 6 || !equalFold(h[:6], basicPrefix) {
		return nil, nil, false
	}
	start := len(t.buf)
	var err error
	if t.buf, err = base64.StdEncoding.AppendDecode(t.buf, trimOWS(h[6:])); err != nil {
		t.buf = t.buf[:start]
		return nil, nil, false
	}
	cred := t.buf[start:]
	i := bytes.IndexByte(cred, ':')
	if i < 0 {
		return nil, nil, false
	}
	return cred[:i], cred[i+1:], true
}

var (
	hdrAuthorization = []byte("Authorization")
	basicPrefix      = []byte("Basic ")
)

// authUser is the userlist's user the request's credentials are those
// of, nil when there is none or the password is wrong. A crypt(3) check
// is costly by design (SHA-512's 5,000 rounds take about a millisecond),
// and an ACL over http_auth_group asks once per group it tries: the
// verdict is kept for the request, for the same userlist and the same
// credentials (a rule may change the Authorization header in between).
func authUser(t *Txn, f *fetch) *config.User {
	user, pass, ok := basicAuth(t)
	if !ok || f.users == nil {
		return nil
	}
	a := &t.auth
	if a.users == f.users && bytes.Equal(a.user, user) && bytes.Equal(a.pass, pass) {
		return a.result
	}
	u := f.users.Users[bytesString(user)]
	if u != nil && !u.Check(pass) {
		u = nil
	}
	a.users, a.result = f.users, u
	a.user = append(a.user[:0], user...)
	a.pass = append(a.pass[:0], pass...)
	return u
}

func fetchHTTPAuth(t *Txn, f *fetch, _ int, out *value) bool {
	out.setBool(authUser(t, f) != nil)
	return true
}

// fetchHTTPAuthGroup gives, in an ACL, the groups of the authenticated
// user, one per occurrence, so that it matches when the user is in one of
// its patterns' groups, as HAProxy's does; as a sample (a format, set-var:
// the last occurrence asked for), the user's name, as HAProxy gives.
func fetchHTTPAuthGroup(t *Txn, f *fetch, occ int, out *value) bool {
	u := authUser(t, f)
	if u == nil {
		return false
	}
	if occ < 0 {
		out.setStr(strBytesOf(u.Name))
		return true
	}
	switch {
	case occ > 0 && occ <= len(u.Groups):
		out.setStr(strBytesOf(u.Groups[occ-1]))
	case occ < 0 && -occ <= len(u.Groups):
		out.setStr(strBytesOf(u.Groups[len(u.Groups)+occ]))
	default:
		return false
	}
	return true
}
