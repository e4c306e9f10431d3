package stats

import (
	"fmt"
	"strings"
	"time"

	"github.com/halo-lb/halo/proxy/h1"
)

// cmdShowErrors is "show errors [<proxy>] [request|response]": the last
// request each frontend refused and the last response each backend's
// servers sent that halo refused, with the bytes around the offending one,
// in the layout of HAProxy's dump.
func cmdShowErrors(s *Stats, _ *session, args []string) string {
	only, dir := "", ""
	for _, a := range args {
		switch a {
		case "request", "response":
			dir = a
		default:
			only = a
		}
	}
	var b strings.Builder
	cfg := s.src.Config()
	n := 0
	var body strings.Builder
	if cfg != nil {
		for _, p := range s.proxies(cfg) {
			if only != "" && only != p.name && only != itoa(p.iid) {
				continue
			}
			if p.fe != nil && dir != "response" {
				if c := s.src.LastBadRequest(p.name); c != nil {
					n++
					writeCapture(&body, "frontend", p.name, p.iid, "invalid request", c)
				}
			}
			if p.be != nil && dir != "request" {
				if c := s.src.LastBadResponse(p.name); c != nil {
					n++
					writeCapture(&body, "backend", p.name, p.iid, "invalid response", c)
				}
			}
		}
	}
	fmt.Fprintf(&b, "Total events captured on [%s] : %d\n", logTime(time.Now()), n)
	b.WriteString(body.String())
	return b.String()
}

func logTime(t time.Time) string { return t.Format("02/Jan/2006:15:04:05.000") }

func writeCapture(b *strings.Builder, kind, name string, iid int, what string, c *h1.Capture) {
	peer := "src"
	if kind == "backend" {
		peer = "server"
	}
	fmt.Fprintf(b, "\n[%s] %s %s (#%d): %s\n", logTime(c.When), kind, name, iid, what)
	fmt.Fprintf(b, "  %s %s, status %d, reason: %s\n", peer, c.Peer, c.Err.Status, c.Err.Reason)
	at := "error at position " + itoa(int(c.Err.HeadOffset)) + " of the message"
	if c.Err.Offset > 0 {
		at += ", byte " + itoa(int(c.Err.Offset)) + " of the connection"
	}
	if c.At >= 0 {
		at += ", " + itoa(c.At) + " in the dump below"
	}
	fmt.Fprintf(b, "  %s\n\n", at)
	dumpBytes(b, c.Bytes)
}

// dumpBytes writes bytes as HAProxy's error dump does: the offset, then
// the bytes with non-printable ones escaped, one line per line of the
// message (or per 64 bytes).
func dumpBytes(b *strings.Builder, data []byte) {
	for off := 0; off < len(data); {
		fmt.Fprintf(b, "  %05d  ", off)
		n := 0
		for off < len(data) && n < 64 {
			c := data[off]
			off++
			n++
			switch {
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\t':
				b.WriteString(`\t`)
			case c == '\\':
				b.WriteString(`\\`)
			case c < 0x20 || c >= 0x7f:
				fmt.Fprintf(b, `\x%02x`, c)
			default:
				b.WriteByte(c)
			}
			if c == '\n' {
				break
			}
		}
		b.WriteByte('\n')
	}
}

func itoa(n int) string { return fmt.Sprint(n) }
