package config

import (
	"fmt"
	"strconv"
	"strings"
)

// RetryOn is HAProxy's "retry-on": the failures after which a request in
// mode http is tried again (on another server with option redispatch),
// within the backend's retries. The default is RetryConnFailure.
type RetryOn uint32

// The failures retry-on names, as HAProxy's keywords.
const (
	// RetryConnFailure: the connection to the server failed, nothing was
	// sent ("conn-failure").
	RetryConnFailure RetryOn = 1 << iota
	// RetryEmptyResponse: the server closed the connection after the
	// request was sent and before its response head was complete
	// ("empty-response").
	RetryEmptyResponse
	// RetryJunkResponse: what the server sent is not an HTTP response
	// head ("junk-response").
	RetryJunkResponse
	// RetryResponseTimeout: timeout server struck before the response
	// head was complete ("response-timeout").
	RetryResponseTimeout
	// Retry0RTTRejected: a request sent as TLS early data was rejected
	// ("0rtt-rejected"). halo sends no early data to servers, so it never
	// applies; it is accepted so that HAProxy's lines load.
	Retry0RTTRejected
	retryStatusShift
)

// retryStatuses are the statuses retry-on may name, in HAProxy's order;
// each one's flag is RetryOn(1) << (retryStatusShift's bit + index).
var retryStatuses = []int{401, 403, 404, 408, 425, 500, 501, 502, 503, 504}

func retryStatusFlag(i int) RetryOn { return retryStatusShift << i }

// RetryAllRetryable is "all-retryable-errors".
var RetryAllRetryable = RetryConnFailure | RetryEmptyResponse | RetryJunkResponse | RetryResponseTimeout |
	Retry0RTTRejected | RetryStatus(500) | RetryStatus(502) | RetryStatus(503) | RetryStatus(504)

// RetryStatus is the flag of a response status retry-on may name, 0 for
// any other status.
func RetryStatus(code int) RetryOn {
	for i, s := range retryStatuses {
		if s == code {
			return retryStatusFlag(i)
		}
	}
	return 0
}

// Has reports whether r holds every flag of f.
func (r RetryOn) Has(f RetryOn) bool { return f != 0 && r&f == f }

// OnStatus reports whether a response with this status is retried.
func (r RetryOn) OnStatus(code int) bool {
	return r >= retryStatusShift && r.Has(RetryStatus(code))
}

// AfterSending reports whether r retries anything after the request was
// sent (anything but conn-failure): then a request must be kept until its
// response head is in, to be sent again.
func (r RetryOn) AfterSending() bool { return r&^RetryConnFailure != 0 }

var retryWords = []struct {
	word string
	flag RetryOn
}{
	{"conn-failure", RetryConnFailure},
	{"empty-response", RetryEmptyResponse},
	{"junk-response", RetryJunkResponse},
	{"response-timeout", RetryResponseTimeout},
	{"0rtt-rejected", Retry0RTTRejected},
}

// ParseRetryOn parses a retry-on line's keywords. On error it also
// returns the byte offset of the word at fault.
func ParseRetryOn(line string) (RetryOn, int, error) {
	ws, offs := words(line)
	if len(ws) == 0 {
		return 0, 0, fmt.Errorf("retry-on needs at least one keyword to say when to retry")
	}
	var r RetryOn
word:
	for i, w := range ws {
		switch w {
		case "none":
			if len(ws) > 1 {
				return 0, offs[i], fmt.Errorf("retry-on: 'none' must be alone")
			}
			return 0, 0, nil
		case "all-retryable-errors":
			r |= RetryAllRetryable
			continue
		}
		for _, k := range retryWords {
			if w == k.word {
				r |= k.flag
				continue word
			}
		}
		if code, err := strconv.Atoi(w); err == nil && RetryStatus(code) != 0 {
			r |= RetryStatus(code)
			continue
		}
		return 0, offs[i], fmt.Errorf("retry-on: unknown keyword %q (HAProxy's: none, conn-failure, empty-response, junk-response, response-timeout, 0rtt-rejected, all-retryable-errors, or a status among %s)", w, retryStatusList())
	}
	return r, 0, nil
}

func retryStatusList() string {
	s := make([]string, len(retryStatuses))
	for i, c := range retryStatuses {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, " ")
}

// String writes r as a retry-on line.
func (r RetryOn) String() string {
	if r == 0 {
		return "none"
	}
	var ws []string
	for _, k := range retryWords {
		if r.Has(k.flag) {
			ws = append(ws, k.word)
		}
	}
	for i, c := range retryStatuses {
		if r.Has(retryStatusFlag(i)) {
			ws = append(ws, strconv.Itoa(c))
		}
	}
	return strings.Join(ws, " ")
}

// MarshalText writes the retry-on line.
func (r RetryOn) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// buildRetryOn parses the backend's retry-on line (its own or the one it
// inherits from defaults) into be.RetryOn; without one it is
// conn-failure, as in HAProxy. An error in the defaults' line is reported
// once, by checkDefaultsRetryOn.
func (p *parser) buildRetryOn(fc *fileConfig, be *Backend, path string) {
	be.RetryOn = RetryConnFailure
	line, where := (*string)(nil), path+".retry-on"
	if section := backendSection(fc, be.Name); section != nil && section.RetryOn != nil {
		line = section.RetryOn
	} else if fc.Defaults != nil && fc.Defaults.RetryOn != nil {
		line, where = fc.Defaults.RetryOn, ""
	}
	if line == nil {
		return
	}
	r, off, err := ParseRetryOn(*line)
	if err != nil {
		if where != "" {
			p.atWord(where, off, "%v", err)
		}
		return
	}
	be.RetryOn = r
}

// checkDefaultsRetryOn reports an error in the defaults' retry-on line,
// whether or not a backend inherits it.
func (p *parser) checkDefaultsRetryOn(fc *fileConfig) {
	if fc.Defaults == nil || fc.Defaults.RetryOn == nil {
		return
	}
	if _, off, err := ParseRetryOn(*fc.Defaults.RetryOn); err != nil {
		p.atWord("defaults.retry-on", off, "%v", err)
	}
}
