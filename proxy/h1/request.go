package h1

// requestLine consumes bytes of the request line (RFC 9112 section 3) from
// p[i:], and the empty lines a client may send before it (section 2.2),
// which are not passed on. It returns where it stopped and whether the
// consumed bytes pass.
func (g *Guard) requestLine(p []byte, i int) (int, bool) {
	start := i
	switch g.st {
	case stStart:
		c := p[i]
		switch {
		case c == '\r':
			g.st = stStartLF
			return g.skipped(p, i)
		case isTchar[c]:
			g.msgOff = g.base + int64(i)
			g.st = stMethod
			return i, true // consumed by stMethod on the next step
		default:
			g.fail(400, notRequest(c), p, i)
			return i, false
		}
	case stStartLF:
		if p[i] != '\n' {
			g.badByte(400, "empty line before the request", p, i)
			return i, false
		}
		g.st = stStart
		return g.skipped(p, i)
	case stMethod:
		for i < len(p) && isTchar[p[i]] {
			if g.idx < len(g.name) {
				g.name[g.idx] = p[i]
			}
			g.idx++
			i++
		}
		if i < len(p) {
			if p[i] != ' ' {
				g.badByte(400, "method", p, i)
				return i, false
			}
			switch string(g.name[:min(g.idx, len(g.name))]) {
			case "CONNECT":
				g.failAtEnd(405, "CONNECT is not allowed", p, i)
				return i, false
			case "OPTIONS":
				g.options = true
			}
			g.idx = 0
			g.st = stTargetStart
			i++
		}
	case stTargetStart:
		c := p[i]
		switch {
		case c == '/':
			g.st = stOrigin
		case c == '*':
			g.st = stAsterisk
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			g.st = stScheme
			g.name[0] = lower(c)
			g.idx = 1
		default:
			g.badByte(400, "request-target", p, i)
			return i, false
		}
		i++
	case stOrigin:
		for i < len(p) && isTargetChar[p[i]] {
			i++
		}
		if i < len(p) {
			if !g.endOfTarget(p, i) {
				return i, false
			}
			i++
		}
	case stScheme:
		for i < len(p) && isSchemeChar(p[i]) {
			if g.idx < len(g.name) {
				g.name[g.idx] = lower(p[i])
			}
			g.idx++
			i++
		}
		if i < len(p) {
			if p[i] != ':' {
				g.badByte(400, "request-target scheme", p, i)
				return i, false
			}
			if s := string(g.name[:min(g.idx, len(g.name))]); g.idx > 5 || s != "http" && s != "https" {
				g.failAtEnd(400, "request-target scheme is not http or https", p, i)
				return i, false
			}
			g.st = stSlash1
			i++
		}
	case stSlash1, stSlash2:
		if p[i] != '/' {
			g.badByte(400, "request-target: want \"//\" after the scheme", p, i)
			return i, false
		}
		if g.st == stSlash1 {
			g.st = stSlash2
		} else {
			g.st, g.idx = stAuthority, 0
		}
		i++
	case stAuthority:
		for i < len(p) && isTargetChar[p[i]] && p[i] != '/' && p[i] != '?' && p[i] != '@' {
			g.idx++
			i++
		}
		if i < len(p) {
			switch c := p[i]; {
			case c == '@':
				g.fail(400, "userinfo in request-target", p, i)
				return i, false
			case g.idx == 0:
				g.badByte(400, "request-target: empty authority", p, i)
				return i, false
			case c == '/' || c == '?':
				g.st = stOrigin
				i++
			default:
				if !g.endOfTarget(p, i) {
					return i, false
				}
				i++
			}
		}
	case stAsterisk:
		if p[i] != ' ' {
			g.badByte(400, "request-target: only \"*\" may start with '*'", p, i)
			return i, false
		}
		if !g.options {
			g.failAtEnd(400, "request-target \"*\" is only for OPTIONS", p, i)
			return i, false
		}
		g.st, g.idx = stVersion, 0
		i++
	case stVersion:
		for i < len(p) && g.st == stVersion {
			if !g.versionByte(p, i) {
				return i, false
			}
			i++
		}
	case stLineLF:
		if p[i] != '\n' {
			g.badByte(400, "request line: CR without LF", p, i)
			return i, false
		}
		g.st = stFieldStart
		i++
	}
	return i, g.counted(p, start, i-start)
}

// skipped consumes p[i], a byte of an empty line before a request.
func (g *Guard) skipped(p []byte, i int) (int, bool) {
	if !g.counted(p, i, 1) {
		return i, false
	}
	return i + 1, false
}

// endOfTarget handles the byte that ends a request-target: SP starts the
// version; anything else is not allowed in a target.
func (g *Guard) endOfTarget(p []byte, i int) bool {
	if p[i] != ' ' {
		g.badByte(400, "request-target", p, i)
		return false
	}
	g.st, g.idx = stVersion, 0
	return true
}

// versionByte checks p[i] against "HTTP/" DIGIT "." DIGIT CR. A minor
// version above 1 is rewritten to 1 in place, so that halo and the server
// both read the request as HTTP/1.1 (RFC 9110 section 2.5).
func (g *Guard) versionByte(p []byte, i int) bool {
	c := p[i]
	ok := false
	switch g.idx {
	case 0, 1, 2, 3, 4:
		ok = c == "HTTP/"[g.idx]
	case 5:
		ok = c >= '0' && c <= '9'
		g.major = c
	case 6:
		ok = c == '.'
	case 7:
		ok = c >= '0' && c <= '9'
		if ok && g.major == '1' {
			g.http10 = c == '0'
			if c > '1' {
				p[i] = '1'
			}
		}
	case 8:
		if c == '\r' {
			if g.major != '1' {
				g.failAtEnd(505, "HTTP version not supported", p, i)
				return false
			}
			g.st = stLineLF
			return true
		}
	}
	if !ok {
		g.badByte(400, "HTTP version", p, i)
		return false
	}
	g.idx++
	return true
}

// notRequest names what a connection that does not start with a method
// is likely to be.
func notRequest(c byte) string {
	switch c {
	case 0x16:
		return "not HTTP: a TLS handshake on a plain HTTP bind"
	case '\n':
		return "bare LF before the request"
	case ' ', '\t':
		return "whitespace before the request line"
	case 0x0d:
		return "bare CR before the request"
	default:
		return "not an HTTP request: invalid byte at its start"
	}
}

// isSchemeChar reports whether c may follow a scheme's first letter
// (RFC 3986 section 3.1).
func isSchemeChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'
}
