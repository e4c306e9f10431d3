package h1

// Limits bound what one request head may hold.
type Limits struct {
	// MaxHead is the largest head in bytes, from the request line to the
	// empty line, and the largest trailer section (HAProxy's
	// tune.bufsize); larger ones get 431.
	MaxHead int
	// MaxFields is the most field lines a head may have (HAProxy's
	// tune.http.maxhdr); more get 431.
	MaxFields int
}

// DefaultLimits are HAProxy's defaults.
var DefaultLimits = Limits{MaxHead: 16384, MaxFields: 101}

// maxChunkSize bounds a chunk so that its canonical size line, a leading
// zero and at most 13 hex digits, stays within what fasthttp parses (15).
const maxChunkSize = 1 << 52

// maxChunkLine bounds a chunk-size line with its extensions.
const maxChunkLine = 4096

// Guard checks the bytes a client sends on one connection, request after
// request, as they arrive. Filter is given each read in turn; it passes on
// in place what RFC 9112 frames one way only, and stops at the first byte
// that breaks the grammar. The zero Guard is not ready: use Reset.
type Guard struct {
	limits Limits
	st     state
	err    *Error
	resp   bool  // checking a response head, not a request stream
	base   int64 // stream offset of the first byte of the p being filtered
	off    int64 // stream offset of the next input byte
	msgOff int64 // stream offset of the current message's first byte

	head   int // bytes of the current head (or trailer section) so far
	fields int

	// The request line.
	options bool // the method is OPTIONS, the only one "*" may follow
	idx     int  // position inside the word being matched
	sub     int  // position inside a field value's grammar
	major   byte
	http10  bool
	trailer bool // the field machine is reading a trailer section

	// The field line being read.
	name     [nameBuf]byte
	nameLen  int
	nameUnd  bool // the name has a '_'
	field    fieldKind
	valueLen int // bytes of the value after leading OWS
	ows      int // trailing OWS seen after the last value byte

	// What the head has said about framing.
	clSeen    bool
	cl        int64
	clDigits  int
	teSeen    bool
	teCodings int
	teChunked int  // codings that were "chunked"
	teLast    bool // the last coding was "chunked"
	teTok     int  // length of the coding being read; -1 once it cannot be "chunked"
	hosts     int

	// The body.
	remaining int64 // Content-Length bytes, or chunk data bytes, left
	chunk     int64 // the chunk size being read
	chunkLine int   // bytes of the chunk-size line so far
	digits    int   // digits of the chunk size so far
}

const nameBuf = 18 // longest name the guard needs to recognise, plus one

// Reset readies g for a new connection.
func (g *Guard) Reset(l Limits) {
	*g = Guard{limits: l}
}

// Err is the error that stopped the guard, or nil.
func (g *Guard) Err() *Error { return g.err }

// Offset is the number of bytes the guard has consumed.
func (g *Guard) Offset() int64 { return g.off }

// Pending is how many bytes of the message after the last complete one the
// guard has passed on: what a client sent past a request, which the
// reader above holds. A protocol switch after a request needs it to be 0.
func (g *Guard) Pending() int64 { return g.off - g.msgOff }

// BeforeMessage reports whether no byte of a next message has come yet
// but empty lines, which are skipped before a request (RFC 9112 section
// 2.2): the connection waits for its next request.
func (g *Guard) BeforeMessage() bool { return g.st == stStart || g.st == stStartLF }

// Filter checks p, the next bytes read from the client, and rewrites it in
// place: p[:n] is what may be passed on. After an error, n counts the
// bytes passed on before the offending one and every later call returns
// the error.
func (g *Guard) Filter(p []byte) (n int, err *Error) {
	if g.err != nil {
		return 0, g.err
	}
	g.base = g.off
	w, i := 0, 0
	for i < len(p) {
		start := i
		var pass bool
		switch {
		case g.st < stFieldStart:
			i, pass = g.requestLine(p, i)
		case g.st < stBody:
			i, pass = g.fieldLines(p, i)
		default:
			i, pass = g.body(p, i, &w)
		}
		if g.err != nil {
			// Nothing of the offending step is passed on.
			break
		}
		if pass {
			if w != start {
				copy(p[w:], p[start:i])
			}
			w += i - start
		}
	}
	g.off = g.base + int64(i)
	return w, g.err
}

// fail stops the guard at p[i].
func (g *Guard) fail(status int, reason string, p []byte, i int) {
	g.err = &Error{Status: status, Reason: reason, Offset: g.base + int64(i), Byte: p[i]}
	g.err.HeadOffset = g.err.Offset - g.msgOff
	g.st = stFailed
}

// failAtEnd stops the guard at the end of a line or head whose content,
// not one byte, is wrong; p[i] is the line's last byte.
func (g *Guard) failAtEnd(status int, reason string, p []byte, i int) {
	g.fail(status, reason, p, i)
	g.err.AtEnd = true
}

// badByte fails at p[i], naming the line ends that RFC 9112 forbids on
// their own.
func (g *Guard) badByte(status int, what string, p []byte, i int) {
	switch p[i] {
	case '\n':
		g.fail(status, "bare LF in "+what, p, i)
	case '\r':
		g.fail(status, "bare CR in "+what, p, i)
	default:
		g.fail(status, "invalid byte in "+what, p, i)
	}
}

// nextMessage readies the guard for the message that starts at stream
// offset at.
func (g *Guard) nextMessage(at int64) {
	*g = Guard{limits: g.limits, resp: g.resp, base: g.base, off: g.off, msgOff: at}
}

// counted adds n bytes to the head, failing with 431 at the first byte
// past the limit.
func (g *Guard) counted(p []byte, start, n int) bool {
	if g.head+n > g.limits.MaxHead {
		g.fail(g.statusFor(431), "head larger than tune.bufsize", p, start+g.limits.MaxHead-g.head)
		return false
	}
	g.head += n
	return true
}

// statusFor is the status a request error gets; any error in a
// response makes the server's answer a 502.
func (g *Guard) statusFor(status int) int {
	if g.resp {
		return 502
	}
	return status
}

type state uint8

const (
	// Request line.
	stStart state = iota // before a request; empty lines are skipped
	stStartLF
	stMethod
	stTargetStart
	stOrigin
	stScheme
	stSlash1
	stSlash2
	stAuthority
	stAsterisk
	stVersion
	stLineLF
	// Status line.
	stStatusVersion
	stStatusCode
	stReason
	// Field lines, of a head or a trailer section.
	stFieldStart
	stName
	stValueOWS
	stValue
	stFieldLF
	stHeadLF
	// Body.
	stBody
	stChunkSize
	stChunkBWS
	stExtNameStart
	stExtName
	stExtAfterName
	stExtValStart
	stExtVal
	stExtQuoted
	stExtQuotedEsc
	stExtAfterQuoted
	stChunkLF
	stChunkData
	stDataCR
	stDataLF
	// A response head is complete; the guard stopped.
	stDone
	stFailed
)

type fieldKind uint8

const (
	fieldOther fieldKind = iota
	fieldContentLength
	fieldTransferEncoding
	fieldHost
	fieldExpect
)
