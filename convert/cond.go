package convert

import (
	"fmt"
	"strconv"
	"strings"
)

// The HAProxy that .if blocks are evaluated as: the version whose keywords
// halo follows, with the features a halo build has (TLS, but no Lua, no
// QUIC). A block that tests the SSL library is evaluated too and says so.
const haproxyVersion = "2.6.12"

var features = map[string]bool{"OPENSSL": true, "LINUX_SPLICE": true, "REGPARM": false, "PCRE": false, "PCRE2": true, "ZLIB": false, "LUA": false, "QUIC": false, "PROMEX": true, "TPROXY": true, "CPU_AFFINITY": false, "GETADDRINFO": true, "NS": false}

var enabledOptions = map[string]bool{"EPOLL": true, "POLL": true, "SPLICE": true, "GETADDRINFO": true, "REUSEPORT": true, "FAST-FORWARD": true}

// condBlock is one open .if level.
type condBlock struct {
	line    int
	taken   bool // some branch of this block was taken
	active  bool // the current branch is taken
	hadElse bool
	parent  bool // the enclosing level is active
}

// condExpr evaluates the expression of an .if or .elif: the words after
// the directive, joined by single spaces, as HAProxy reassembles them.
// note reports a predicate halo cannot answer exactly.
func condExpr(words []Word, lookup func(string) (string, bool), note func(string)) (bool, error) {
	if len(words) == 0 {
		return false, nil
	}
	texts := make([]string, len(words))
	for i, w := range words {
		texts[i] = w.Text
	}
	p := &condParser{s: strings.Join(texts, " "), lookup: lookup, note: note}
	v, err := p.or()
	if err != nil {
		return false, err
	}
	if p.i < len(p.s) {
		return false, fmt.Errorf("unexpected %q in the condition", p.s[p.i:])
	}
	return v, nil
}

type condParser struct {
	s      string
	i      int
	lookup func(string) (string, bool)
	note   func(string)
}

func (p *condParser) or() (bool, error) {
	v, err := p.and()
	if err != nil {
		return false, err
	}
	for strings.HasPrefix(p.s[p.i:], "||") {
		p.i += 2
		w, err := p.and()
		if err != nil {
			return false, err
		}
		v = v || w
	}
	return v, nil
}

func (p *condParser) and() (bool, error) {
	v, err := p.term()
	if err != nil {
		return false, err
	}
	for strings.HasPrefix(p.s[p.i:], "&&") {
		p.i += 2
		w, err := p.term()
		if err != nil {
			return false, err
		}
		v = v && w
	}
	return v, nil
}

func (p *condParser) skipSpace() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *condParser) term() (bool, error) {
	p.skipSpace()
	defer p.skipSpace()
	if p.i >= len(p.s) {
		return false, fmt.Errorf("the condition ends where a term was expected")
	}
	switch c := p.s[p.i]; {
	case c == '!':
		p.i++
		v, err := p.term()
		return !v, err
	case c == '(':
		p.i++
		v, err := p.or()
		if err != nil {
			return false, err
		}
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return false, fmt.Errorf("missing ')' in the condition")
		}
		p.i++
		return v, nil
	case c >= '0' && c <= '9' || c == '-':
		j := p.i + 1
		for j < len(p.s) && p.s[j] >= '0' && p.s[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(p.s[p.i:j])
		if err != nil {
			return false, fmt.Errorf("invalid number %q in the condition", p.s[p.i:j])
		}
		p.i = j
		return n != 0, nil
	}
	j := p.i
	for j < len(p.s) && (isAlpha(p.s[j]) || p.s[j] == '_' || p.s[j] >= '0' && p.s[j] <= '9') {
		j++
	}
	name := p.s[p.i:j]
	if name == "" {
		return false, fmt.Errorf("unexpected %q in the condition", p.s[p.i:])
	}
	p.i = j
	var args []string
	if p.i < len(p.s) && p.s[p.i] == '(' {
		var err error
		if args, err = p.args(); err != nil {
			return false, err
		}
	}
	return p.predicate(name, args)
}

// args reads a predicate's arguments: comma-separated, quotes group, a
// backslash escapes the next byte.
func (p *condParser) args() ([]string, error) {
	p.i++ // '('
	var (
		args  []string
		cur   strings.Builder
		quote byte
	)
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && p.i < len(p.s) {
				cur.WriteByte(p.s[p.i])
				p.i++
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '\\' && p.i < len(p.s):
			cur.WriteByte(p.s[p.i])
			p.i++
		case c == ',':
			args = append(args, cur.String())
			cur.Reset()
		case c == ')':
			args = append(args, cur.String())
			return args, nil
		default:
			cur.WriteByte(c)
		}
	}
	return nil, fmt.Errorf("missing ')' after the predicate's arguments")
}

func (p *condParser) predicate(name string, args []string) (bool, error) {
	want := map[string]int{"defined": 1, "feature": 1, "streq": 2, "strneq": 2, "strstr": 2, "version_atleast": 1, "version_before": 1, "enabled": 1, "openssl_version_atleast": 1, "openssl_version_before": 1, "ssllib_name_startswith": 1, "awslc_api_atleast": 1, "awslc_api_before": 1, "fips_mode": 0}
	n, known := want[name]
	if !known {
		return false, fmt.Errorf("unknown predicate %q", name)
	}
	if len(args) != n && !(n == 0 && len(args) == 1 && args[0] == "") {
		return false, fmt.Errorf("predicate %s takes %d argument(s), not %d", name, n, len(args))
	}
	switch name {
	case "defined":
		// Variables are expanded before the condition is read, so
		// "defined" asks the environment of the conversion.
		_, ok := p.lookup(args[0])
		return ok, nil
	case "feature":
		return features[args[0]], nil
	case "streq":
		return args[0] == args[1], nil
	case "strneq":
		return args[0] != args[1], nil
	case "strstr":
		return strings.Contains(args[0], args[1]), nil
	case "version_atleast":
		return compareVersions(haproxyVersion, args[0]) >= 0, nil
	case "version_before":
		return compareVersions(haproxyVersion, args[0]) < 0, nil
	case "enabled":
		return enabledOptions[args[0]], nil
	}
	// The SSL library: halo's TLS is Go's, not a C library. It answers
	// as OpenSSL 3.0 without FIPS would, and says so.
	p.note(fmt.Sprintf("predicate %s(%s) is answered as for OpenSSL 3.0.0 (halo's TLS is Go's crypto/tls)", name, strings.Join(args, ",")))
	switch name {
	case "openssl_version_atleast":
		return compareVersions("3.0.0", args[0]) >= 0, nil
	case "openssl_version_before":
		return compareVersions("3.0.0", args[0]) < 0, nil
	case "ssllib_name_startswith":
		return strings.HasPrefix("OpenSSL", args[0]), nil
	}
	return false, nil // awslc_*, fips_mode
}

// compareVersions compares dotted versions, a missing part counting as
// zero and a "-dev" suffix as before the release.
func compareVersions(a, b string) int {
	parse := func(v string) []int {
		v, dev, _ := strings.Cut(v, "-")
		var out []int
		for part := range strings.SplitSeq(v, ".") {
			n, _ := strconv.Atoi(part)
			out = append(out, n)
		}
		if dev != "" {
			out = append(out, -1)
		}
		return out
	}
	x, y := parse(a), parse(b)
	for i := range max(len(x), len(y)) {
		var p, q int
		if i < len(x) {
			p = x[i]
		}
		if i < len(y) {
			q = y[i]
		}
		if p != q {
			if p < q {
				return -1
			}
			return 1
		}
	}
	return 0
}
