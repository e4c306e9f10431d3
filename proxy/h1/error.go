package h1

import "strconv"

// Error is a message that breaks the grammar or halo's framing rules. It
// says where: the offending byte and its offset, counted from the first
// byte the connection received and from the start of the message.
type Error struct {
	// Status is the response the client gets: 400 for syntax, 405, 417,
	// 431, 501 or 505 where RFC 9110 names one. Response errors carry
	// 502.
	Status int
	Reason string
	// Offset is the offending byte's position in the connection's
	// stream (the client's bytes as received); HeadOffset its position
	// in the message, from the first byte of its start line.
	Offset, HeadOffset int64
	// Byte is the offending byte; AtEnd is set when the error is about
	// what a finished line or head lacks rather than about one byte.
	Byte  byte
	AtEnd bool
}

func (e *Error) Error() string {
	s := "invalid HTTP/1 message: " + e.Reason + " at byte " + strconv.FormatInt(e.HeadOffset, 10)
	if !e.AtEnd {
		s += " (byte 0x" + strconv.FormatUint(uint64(e.Byte)|0x100, 16)[1:]
		if e.Byte >= 0x21 && e.Byte < 0x7f {
			s += " '" + string(rune(e.Byte)) + "'"
		}
		s += ")"
	}
	return s
}
