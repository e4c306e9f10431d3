package h1

import "encoding/binary"

// fieldLines consumes bytes of field lines (RFC 9112 section 5) and the
// empty line that ends a head or a trailer section. Trailer lines are
// checked and dropped; only the trailer section's final CRLF passes.
func (g *Guard) fieldLines(p []byte, i int) (int, bool) {
	start := i
	switch g.st {
	case stFieldStart:
		c := p[i]
		switch {
		case c == '\r':
			g.st = stHeadLF
			i++
		case isTchar[c]:
			g.fields++
			if g.fields > g.limits.MaxFields {
				g.fail(g.statusFor(431), "more fields than tune.http.maxhdr", p, i)
				return i, false
			}
			if end := plainLine(p, i); end > 0 {
				i = end // the common case: a whole ordinary line at once
				break
			}
			g.nameLen, g.nameUnd, g.st = 0, false, stName
		case c == ' ' || c == '\t':
			g.fail(g.statusFor(400), "obs-fold: a field line starts with whitespace", p, i)
			return i, false
		case c == ':':
			g.fail(g.statusFor(400), "empty field name", p, i)
			return i, false
		default:
			g.badByte(g.statusFor(400), "field name", p, i)
			return i, false
		}
	case stName:
		for i < len(p) && isTchar[p[i]] {
			c := p[i]
			if g.nameLen < nameBuf {
				g.name[g.nameLen] = lower(c)
			}
			g.nameUnd = g.nameUnd || c == '_'
			g.nameLen++
			i++
		}
		if i < len(p) {
			switch p[i] {
			case ':':
				if !g.classify(p, i) {
					return i, false
				}
				g.st = stValueOWS
				i++
			case ' ', '\t':
				g.fail(g.statusFor(400), "whitespace in or after a field name", p, i)
				return i, false
			default:
				g.badByte(g.statusFor(400), "field name", p, i)
				return i, false
			}
		}
	case stValueOWS:
		for i < len(p) && (p[i] == ' ' || p[i] == '\t') {
			i++
		}
		if i < len(p) {
			g.st, g.valueLen, g.ows, g.sub = stValue, 0, 0, 0
		}
	case stValue:
		if g.field == fieldOther {
			i = valueRun(p, i)
		} else {
			for i < len(p) && isFieldValue[p[i]] {
				if !g.valueByte(p, i) {
					return i, false
				}
				i++
			}
		}
		if i < len(p) {
			if p[i] != '\r' {
				g.badByte(g.statusFor(400), "field value", p, i)
				return i, false
			}
			if !g.endValue(p, i) {
				return i, false
			}
			g.st = stFieldLF
			i++
		}
	case stFieldLF:
		if p[i] != '\n' {
			g.badByte(g.statusFor(400), "field line: CR without LF", p, i)
			return i, false
		}
		g.st = stFieldStart
		i++
	case stHeadLF:
		if p[i] != '\n' {
			g.badByte(g.statusFor(400), "empty line: CR without LF", p, i)
			return i, false
		}
		if !g.endHead(p, i) {
			return i, false
		}
		i++
		switch {
		case g.resp:
			g.st = stDone
		case g.trailer || g.st == stStart:
			g.nextMessage(g.base + int64(i))
		}
		// The LF that ends a head passes, and so does the one that ends
		// a trailer section: the trailer's lines were dropped.
		return i, true
	}
	if !g.counted(p, start, i-start) {
		return i, false
	}
	return i, !g.trailer || g.st == stHeadLF
}

// plainLine returns where the field line at p[i] ends if all of it, CRLF
// included, is in p and valid, and its name is not one the guard reads
// the value of; else 0, and the byte-at-a-time states read it (and name
// what is wrong). Most lines of most heads take this path, which tests
// each byte once against one table.
func plainLine(p []byte, i int) int {
	j := i
	for j < len(p) && isPlainName[p[j]] {
		j++
	}
	if j >= len(p) || p[j] != ':' || readsValue(p[i:j]) {
		return 0
	}
	j = valueRun(p, j+1)
	if j+1 >= len(p) || p[j] != '\r' || p[j+1] != '\n' {
		return 0
	}
	return j + 2
}

// valueRun returns the index of the first byte at or after p[j] that may
// not be in a field value. It tests eight bytes at a time for one below
// 0x20 or equal to 0x7f (bytes of 0x80 and above, obs-text, are allowed),
// then leaves the word that has one, HTAB included, to the table.
func valueRun(p []byte, j int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for j+8 <= len(p) {
		x := binary.LittleEndian.Uint64(p[j:])
		y := x ^ 0x7f*ones
		if ((x-0x20*ones)&^x|(y-ones)&^y)&highs != 0 {
			break
		}
		j += 8
	}
	for j < len(p) && isFieldValue[p[j]] {
		j++
	}
	return j
}

// readsValue reports whether name is one the guard reads the value of.
func readsValue(name []byte) bool {
	var want string
	switch len(name) {
	case len(nameHost):
		want = nameHost
	case len(nameExpect):
		want = nameExpect
	case len(nameContentLength):
		want = nameContentLength
	case len(nameTransferEncoding):
		want = nameTransferEncoding
	default:
		return false
	}
	for k, c := range name {
		if lower(c) != want[k] {
			return false
		}
	}
	return true
}

// Names the guard reads the values of.
const (
	nameContentLength    = "content-length"
	nameTransferEncoding = "transfer-encoding"
	nameHost             = "host"
	nameExpect           = "expect"
)

// classify looks at a complete field name, at its colon p[i].
func (g *Guard) classify(p []byte, i int) bool {
	g.field = fieldOther
	if g.nameLen >= nameBuf {
		return true
	}
	name := g.name[:g.nameLen]
	if g.nameUnd {
		// WSGI and CGI servers read '_' as '-': Content_Length would be
		// their Content-Length, which halo did not frame by.
		var dashed [nameBuf]byte
		for k, c := range name {
			if c == '_' {
				c = '-'
			}
			dashed[k] = c
		}
		switch string(dashed[:len(name)]) {
		case nameContentLength, nameTransferEncoding, nameHost:
			g.failAtEnd(g.statusFor(400), "field name with '_' that servers may read as "+string(dashed[:len(name)]), p, i)
			return false
		}
		return true
	}
	switch string(name) {
	case nameContentLength:
		g.field = fieldContentLength
	case nameTransferEncoding:
		g.field = fieldTransferEncoding
	case nameHost:
		if !g.resp {
			g.field = fieldHost
		}
	case nameExpect:
		// Only a request head's Expect asks something of halo.
		if !g.resp && !g.trailer {
			g.field = fieldExpect
		}
	}
	switch {
	case g.field == fieldOther || g.field == fieldExpect:
	case g.trailer:
		g.failAtEnd(g.statusFor(400), "framing or routing field in a trailer", p, i)
		return false
	case g.field == fieldContentLength:
		if g.clSeen {
			g.failAtEnd(g.statusFor(400), "more than one Content-Length", p, i)
			return false
		}
		g.clSeen = true
	case g.field == fieldTransferEncoding:
		g.teSeen = true
	case g.field == fieldHost:
		g.hosts++
		if g.hosts > 1 {
			g.failAtEnd(400, "more than one Host", p, i)
			return false
		}
	}
	return true
}

// valueByte checks one byte of a value the guard reads.
func (g *Guard) valueByte(p []byte, i int) bool {
	c := p[i]
	ws := c == ' ' || c == '\t'
	switch g.field {
	case fieldContentLength:
		switch {
		case c >= '0' && c <= '9' && g.ows == 0:
			g.clDigits++
			if g.clDigits > 18 {
				g.fail(g.statusFor(400), "Content-Length too large", p, i)
				return false
			}
			g.cl = g.cl*10 + int64(c-'0')
		case ws && g.clDigits > 0:
			g.ows++
		default:
			g.fail(g.statusFor(400), "invalid Content-Length", p, i)
			return false
		}
	case fieldTransferEncoding:
		return g.codingByte(p, i, c, ws)
	case fieldHost:
		switch {
		case c == '@':
			g.fail(400, "userinfo in Host", p, i)
			return false
		case ws:
			g.ows++
		case isHostChar[c] && g.ows == 0:
		default:
			g.fail(400, "invalid byte in Host", p, i)
			return false
		}
	case fieldExpect:
		const want = "100-continue"
		switch {
		case ws:
			g.ows++
		case g.ows == 0 && g.valueLen < len(want) && lower(c) == want[g.valueLen]:
		default:
			g.sub = -1 // not 100-continue
		}
	}
	g.valueLen++
	return true
}

// codingByte reads a Transfer-Encoding list: tokens, OWS, commas. g.sub
// is 0 before a coding, 1 inside one, 2 in the OWS after one.
func (g *Guard) codingByte(p []byte, i int, c byte, ws bool) bool {
	const chunked = "chunked"
	switch {
	case c == ',':
		if g.sub == 0 {
			g.fail(g.statusFor(400), "empty transfer-coding", p, i)
			return false
		}
		g.endCoding()
		g.sub = 0
	case ws:
		if g.sub == 1 {
			g.sub = 2
		}
	case c == ';':
		g.fail(g.statusFor(400), "transfer-coding parameters", p, i)
		return false
	case isTchar[c] && g.sub != 2:
		if g.sub == 0 {
			g.sub, g.teTok = 1, 0
		}
		if g.teTok >= 0 && g.teTok < len(chunked) && lower(c) == chunked[g.teTok] {
			g.teTok++
		} else {
			g.teTok = -1
		}
	default:
		g.fail(g.statusFor(400), "invalid Transfer-Encoding", p, i)
		return false
	}
	g.valueLen++
	return true
}

func (g *Guard) endCoding() {
	g.teCodings++
	g.teLast = g.teTok == len("chunked")
	if g.teLast {
		g.teChunked++
	}
}

// endValue checks a value the guard reads once its line ends at p[i].
func (g *Guard) endValue(p []byte, i int) bool {
	switch g.field {
	case fieldContentLength:
		if g.clDigits == 0 {
			g.failAtEnd(g.statusFor(400), "invalid Content-Length", p, i)
			return false
		}
	case fieldTransferEncoding:
		if g.sub == 0 {
			g.failAtEnd(g.statusFor(400), "empty transfer-coding", p, i)
			return false
		}
		g.endCoding()
	case fieldHost:
		// RFC 9112 allows an empty Host for a target without authority;
		// fasthttp refuses one, and no origin server needs it.
		if g.valueLen == 0 {
			g.failAtEnd(400, "empty Host", p, i)
			return false
		}
	case fieldExpect:
		if g.sub < 0 || g.valueLen-g.ows != len("100-continue") {
			g.failAtEnd(417, "Expect other than 100-continue", p, i)
			return false
		}
	}
	return true
}

// endHead decides how the message is framed (RFC 9112 section 6.3) once
// its empty line ends at p[i], and moves to its body.
func (g *Guard) endHead(p []byte, i int) bool {
	if g.trailer {
		return true
	}
	if !g.resp && !g.http10 && g.hosts == 0 {
		g.failAtEnd(400, "HTTP/1.1 request without Host", p, i)
		return false
	}
	if g.teSeen {
		switch {
		case !g.resp && g.http10:
			g.failAtEnd(400, "Transfer-Encoding in an HTTP/1.0 request", p, i)
		case g.clSeen:
			g.failAtEnd(g.statusFor(400), "both Content-Length and Transfer-Encoding", p, i)
		case g.teChunked > 1:
			g.failAtEnd(g.statusFor(400), "chunked applied more than once", p, i)
		case !g.teLast:
			g.failAtEnd(g.statusFor(400), "chunked is not the final transfer-coding", p, i)
		case g.teCodings > 1:
			g.failAtEnd(g.statusFor(501), "transfer-coding other than chunked", p, i)
		}
		if g.err != nil {
			return false
		}
	}
	switch {
	case g.resp:
	case g.teSeen:
		g.st, g.chunk, g.digits, g.chunkLine = stChunkSize, 0, 0, 0
	case g.cl > 0:
		g.st, g.remaining = stBody, g.cl
	default:
		g.st = stStart
	}
	return true
}
