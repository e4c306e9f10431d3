package h1

// body consumes bytes of a request body: Content-Length bytes pass as
// they are; a chunked body (RFC 9112 section 7.1) passes with each
// chunk-size line rewritten to at most one leading zero and the hex digits
// of the size, its extensions dropped, so that fasthttp's stricter chunk
// parser reads what the guard read. The rewrite never makes the output
// longer than the input, so it is done in place: chunk-size bytes are
// written at p[*w] as they are consumed.
func (g *Guard) body(p []byte, i int, w *int) (int, bool) {
	switch g.st {
	case stBody, stChunkData:
		k := int(min(g.remaining, int64(len(p)-i)))
		g.remaining -= int64(k)
		i += k
		if g.remaining == 0 {
			if g.st == stBody {
				g.nextMessage(g.base + int64(i))
			} else {
				g.st = stDataCR
			}
		}
		return i, true
	case stDataCR, stDataLF:
		want := byte('\r')
		if g.st == stDataLF {
			want = '\n'
		}
		if p[i] != want {
			g.badByte(400, "chunk: data longer than its size, or no CRLF after it", p, i)
			return i, false
		}
		if g.st == stDataCR {
			g.st = stDataLF
		} else {
			g.st, g.chunk, g.digits, g.chunkLine = stChunkSize, 0, 0, 0
		}
		return i + 1, true
	}
	for ; i < len(p) && g.st != stChunkData && g.st != stFieldStart; i++ {
		g.chunkLine++
		if g.chunkLine > maxChunkLine {
			g.fail(400, "chunk-size line longer than 4096 bytes", p, i)
			return i, false
		}
		out, ok := g.chunkLineByte(p, i)
		if !ok {
			return i, false
		}
		if out != 0 {
			p[*w] = out
			*w++
		}
	}
	return i, false
}

// chunkLineByte consumes one byte of a chunk-size line and returns the
// byte to write in its place, or 0 for none.
func (g *Guard) chunkLineByte(p []byte, i int) (byte, bool) {
	c := p[i]
	ws := c == ' ' || c == '\t'
	switch g.st {
	case stChunkSize:
		if v := hexValue[c]; v >= 0 {
			g.digits++
			g.chunk = g.chunk<<4 | int64(v)
			if g.chunk > maxChunkSize {
				g.fail(400, "chunk size too large", p, i)
				return 0, false
			}
			// The first digit, then every digit once the size is not zero.
			if g.digits == 1 || g.chunk != 0 {
				return c, true
			}
			return 0, true
		}
		if g.digits == 0 {
			return g.chunkFail(p, i, "chunk size: want a hex digit")
		}
		switch {
		case ws:
			g.st = stChunkBWS
		case c == ';':
			g.st = stExtNameStart
		case c == '\r':
			g.st = stChunkLF
			return c, true
		default:
			return g.chunkFail(p, i, "chunk size")
		}
	case stChunkBWS:
		switch {
		case ws:
		case c == ';':
			g.st = stExtNameStart
		default:
			return g.chunkFail(p, i, "chunk-size line: whitespace not followed by ';'")
		}
	case stExtNameStart:
		switch {
		case ws:
		case isTchar[c]:
			g.st = stExtName
		default:
			return g.chunkFail(p, i, "chunk extension name")
		}
	case stExtName, stExtAfterName:
		switch {
		case isTchar[c] && g.st == stExtName:
		case ws:
			g.st = stExtAfterName
		case c == '=':
			g.st = stExtValStart
		case c == ';':
			g.st = stExtNameStart
		case c == '\r' && g.st == stExtName:
			g.st = stChunkLF
			return c, true
		default:
			return g.chunkFail(p, i, "chunk extension")
		}
	case stExtValStart:
		switch {
		case ws:
		case c == '"':
			g.st = stExtQuoted
		case isTchar[c]:
			g.st = stExtVal
		default:
			return g.chunkFail(p, i, "chunk extension value")
		}
	case stExtVal, stExtAfterQuoted:
		switch {
		case isTchar[c] && g.st == stExtVal:
		case ws:
			g.st = stChunkBWS
		case c == ';':
			g.st = stExtNameStart
		case c == '\r':
			g.st = stChunkLF
			return c, true
		default:
			return g.chunkFail(p, i, "chunk extension value")
		}
	case stExtQuoted:
		switch {
		case c == '"':
			g.st = stExtAfterQuoted
		case c == '\\':
			g.st = stExtQuotedEsc
		case isFieldValue[c]:
		default:
			return g.chunkFail(p, i, "chunk extension quoted value")
		}
	case stExtQuotedEsc:
		if !isFieldValue[c] {
			return g.chunkFail(p, i, "chunk extension quoted value")
		}
		g.st = stExtQuoted
	case stChunkLF:
		if c != '\n' {
			return g.chunkFail(p, i, "chunk-size line: CR without LF")
		}
		if g.chunk == 0 {
			// The last chunk: a trailer section follows, read by the
			// field machine; its lines are checked and dropped.
			g.trailer, g.head, g.fields, g.st = true, 0, 0, stFieldStart
		} else {
			g.st, g.remaining = stChunkData, g.chunk
		}
		return c, true
	}
	return 0, true
}

// chunkFail stops the guard at p[i], a byte of a chunk-size line.
func (g *Guard) chunkFail(p []byte, i int, what string) (byte, bool) {
	g.badByte(400, what, p, i)
	return 0, false
}
