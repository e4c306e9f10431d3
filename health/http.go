package health

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/halo-lb/halo/config"
)

// The statuses an HTTP check adds to the TCP ones.
const (
	L7OK   Status = "L7OK"   // the response passed the expectation
	L7STS  Status = "L7STS"  // the response status did not pass
	L7RSP  Status = "L7RSP"  // invalid response, or its content did not pass
	L7TOUT Status = "L7TOUT" // no complete response within the check timeout
)

// httpCheckBody is how much of a response body "string" and "rstring" look
// at, as HAProxy's default buffer size.
const httpCheckBody = 16 << 10

// httpCheckResponseMax bounds how much of a check response is read at all.
const httpCheckResponseMax = 1 << 20

// HTTPChecker is HAProxy's "option httpchk": it sends the configured
// request and judges the response by "http-check expect" (by default, a 2xx
// or 3xx status passes). The connection is not reused: a check sends
// "Connection: close".
type HTTPChecker struct {
	Spec *config.HTTPCheck
	// Transport is check-ssl and check-send-proxy; nil is plain TCP.
	Transport *Transport
}

var _ Checker = HTTPChecker{}

func (h HTTPChecker) Check(ctx context.Context, addr string) Result {
	start := time.Now()
	conn, r, ok := h.Transport.dial(ctx, addr)
	if !ok {
		r.Duration = time.Since(start)
		return r
	}
	defer conn.Close()
	r = h.exchange(conn, addr)
	r.Duration = time.Since(start)
	return r
}

func (h HTTPChecker) exchange(conn net.Conn, addr string) Result {
	c := h.Spec
	var req bytes.Buffer
	fmt.Fprintf(&req, "%s %s %s\r\n", c.Method, c.URI, c.Version)
	hasHost := false
	for _, kv := range c.Headers {
		fmt.Fprintf(&req, "%s: %s\r\n", kv[0], kv[1])
		hasHost = hasHost || strings.EqualFold(kv[0], "Host")
	}
	if !hasHost && c.Version == "HTTP/1.1" {
		fmt.Fprintf(&req, "Host: %s\r\n", addr)
	}
	req.WriteString("Connection: close\r\n\r\n")
	if _, err := conn.Write(req.Bytes()); err != nil {
		return Result{Status: L4CON, Err: err}
	}
	// The response head and the body part that expect reads fit well in
	// this; a server sending endless headers is cut off there.
	resp, err := http.ReadResponse(bufio.NewReader(io.LimitReader(conn, httpCheckResponseMax)), &http.Request{Method: c.Method})
	if err != nil {
		if isTimeout(err) {
			return Result{Status: L7TOUT, Err: err, Desc: "Layer7 timeout"}
		}
		return Result{Status: L7RSP, Err: err, Desc: "Layer7 invalid response: " + err.Error()}
	}
	defer resp.Body.Close()
	e := c.Expect
	switch e.Kind {
	case config.ExpectString, config.ExpectRString:
		body, err := io.ReadAll(io.LimitReader(resp.Body, httpCheckBody))
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			if isTimeout(err) {
				return Result{Status: L7TOUT, Err: err, Desc: "Layer7 timeout reading the body"}
			}
			return Result{Status: L7RSP, Err: err, Desc: "Layer7 invalid response: " + err.Error()}
		}
		matched := bytes.Contains(body, []byte(e.Pattern))
		if e.Kind == config.ExpectRString {
			matched = e.Regexp.Match(body)
		}
		if matched == e.Not {
			return Result{Status: L7RSP, Err: errExpect, Desc: fmt.Sprintf("HTTP check did not match: %s %s%q (status %d)", notWord(e.Not), e.Kind+" ", e.Pattern, resp.StatusCode)}
		}
	default:
		var matched bool
		switch e.Kind {
		case config.ExpectStatus:
			for _, rg := range e.StatusRanges {
				matched = matched || (resp.StatusCode >= rg[0] && resp.StatusCode <= rg[1])
			}
		case config.ExpectRStatus:
			matched = e.Regexp.MatchString(fmt.Sprint(resp.StatusCode))
		default:
			matched = resp.StatusCode >= 200 && resp.StatusCode < 400
		}
		if matched == e.Not {
			return Result{Status: L7STS, Err: errExpect, Desc: fmt.Sprintf("Layer7 wrong status: %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))}
		}
	}
	return Result{Status: L7OK, OK: true, Desc: fmt.Sprintf("Layer7 check passed: %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))}
}

var errExpect = errors.New("response did not pass http-check expect")

func notWord(not bool) string {
	if not {
		return "not"
	}
	return "expected"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
