package h1

// statusLine consumes bytes of a status line (RFC 9112 section 4):
// "HTTP/1.x", SP, three digits, then SP and a reason phrase or, as servers
// that send no reason do, the CRLF at once.
func (g *Guard) statusLine(p []byte, i int) (int, bool) {
	start := i
	if end := plainStatusLine(p, i); end > 0 && g.st == stStatusVersion && g.idx == 0 {
		g.st = stFieldStart
		return end, g.counted(p, start, end-start)
	}
	for ; i < len(p) && g.st < stFieldStart && g.err == nil; i++ {
		c := p[i]
		switch g.st {
		case stStart, stStatusVersion:
			g.st = stStatusVersion
			ok := false
			switch g.idx {
			case 0, 1, 2, 3, 4:
				ok = c == "HTTP/"[g.idx]
			case 5:
				ok = c == '1'
			case 6:
				ok = c == '.'
			case 7:
				ok = c >= '0' && c <= '9'
			case 8:
				ok = c == ' '
			}
			if !ok {
				g.badByte(502, "status line version", p, i)
				break
			}
			if g.idx++; g.idx == 9 {
				g.st, g.idx = stStatusCode, 0
			}
		case stStatusCode:
			switch {
			case c >= '0' && c <= '9' && g.idx < 3:
				g.idx++
			case g.idx == 3 && c == ' ':
				g.st = stReason
			case g.idx == 3 && c == '\r':
				g.st = stLineLF
			default:
				g.badByte(502, "status code", p, i)
			}
		case stReason:
			switch {
			case isFieldValue[c]:
			case c == '\r':
				g.st = stLineLF
			default:
				g.badByte(502, "reason phrase", p, i)
			}
		case stLineLF:
			if c != '\n' {
				g.badByte(502, "status line: CR without LF", p, i)
				break
			}
			g.st = stFieldStart
		}
	}
	if g.err != nil {
		return i, false
	}
	return i, g.counted(p, start, i-start)
}

// plainStatusLine returns where the status line at p[i] ends if all of it
// is in p and it is "HTTP/1.x NNN reason" CRLF with a valid reason; else 0,
// and the byte-at-a-time states read it.
func plainStatusLine(p []byte, i int) int {
	b := p[i:]
	if len(b) < 15 || string(b[:7]) != "HTTP/1." || !isDigit(b[7]) || b[8] != ' ' ||
		!isDigit(b[9]) || !isDigit(b[10]) || !isDigit(b[11]) || b[12] != ' ' {
		return 0
	}
	j := valueRun(p, i+13)
	if j+1 >= len(p) || p[j] != '\r' || p[j+1] != '\n' {
		return 0
	}
	return j + 2
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// CheckResponseHead checks the response head at the start of buf. It
// returns the head's length once buf holds all of it, 0 while more is
// needed, or the first error. A head longer than l.MaxHead is an error.
// The framing rules are those for requests, answered with 502: one
// Content-Length at most, no Transfer-Encoding but a single chunked, not
// both.
func CheckResponseHead(buf []byte, l Limits) (int, *Error) {
	var g Guard
	g.limits, g.resp = l, true
	g.st = stStatusVersion
	i := 0
	for i < len(buf) && g.st != stDone && g.err == nil {
		if g.st < stFieldStart {
			i, _ = g.statusLine(buf, i)
		} else {
			i, _ = g.fieldLines(buf, i)
		}
	}
	if g.err != nil {
		return 0, g.err
	}
	if g.st != stDone {
		return 0, nil
	}
	return i, nil
}
