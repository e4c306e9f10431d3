package h1

import "time"

// Capture is a message halo refused, kept for the runtime API's "show
// errors": when, from whom, why, and the bytes around the offending one.
type Capture struct {
	When time.Time
	Peer string // the client, or the server of a refused response
	Err  Error
	// Bytes holds up to 512 bytes of what was read around the offending
	// byte, which is Bytes[At]; At is -1 when it is not among them.
	Bytes []byte
	At    int
}

// NewCapture copies the part of read around read[at] into a Capture.
func NewCapture(peer string, err *Error, read []byte, at int) *Capture {
	c := &Capture{When: time.Now(), Peer: peer, Err: *err, At: -1}
	if at >= 0 && at < len(read) {
		from := max(0, at-448)
		to := min(len(read), at+64)
		c.Bytes, c.At = append([]byte(nil), read[from:to]...), at-from
	}
	return c
}
