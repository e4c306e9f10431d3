package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// framer is a way a server may read request boundaries. The strict one is
// RFC 9112; each lenient one bends one rule the way real servers have
// (the request-smuggling literature's usual suspects).
type framer struct {
	name        string
	bareLF      bool // a lone LF ends a line
	clWins      bool // with both Content-Length and Transfer-Encoding, Content-Length frames
	firstCL     bool // of several Content-Length fields, the first counts (else the last)
	teSubstring bool // Transfer-Encoding containing "chunked" anywhere means chunked
	trimName    bool // whitespace before the colon is ignored
	foldJoin    bool // obs-fold lines continue the previous value
	underscore  bool // '_' in a name reads as '-'
	ignoreTE10  bool // Transfer-Encoding is ignored in HTTP/1.0
	lenient     bool // several Content-Length fields are not an error
}

var framers = []framer{
	{name: "strict"},
	{name: "cl-wins", clWins: true, lenient: true},
	{name: "first-cl", firstCL: true, lenient: true},
	{name: "last-cl", lenient: true},
	{name: "bare-lf", bareLF: true},
	{name: "te-substring", teSubstring: true},
	{name: "trim-name-ws", trimName: true},
	{name: "fold-join", foldJoin: true},
	{name: "underscore-dash", underscore: true},
	{name: "te-ignored-in-1.0", ignoreTE10: true},
	{name: "everything-lenient", bareLF: true, teSubstring: true, trimName: true, foldJoin: true, underscore: true, ignoreTE10: true, lenient: true},
}

// framing is where a framer says each request in a byte stream ends, and
// how the stream ends: complete, cut short, or refused.
type framing struct {
	ends []int
	tail string // "" (ends on a boundary), "incomplete", or the error
}

func (f framing) String() string { return fmt.Sprintf("ends %v %s", f.ends, f.tail) }

func (f framing) equal(o framing) bool {
	return fmt.Sprint(f.ends) == fmt.Sprint(o.ends) && (f.tail == "") == (o.tail == "") && (f.tail == "incomplete") == (o.tail == "incomplete")
}

var errIncomplete = errors.New("incomplete")

func (fr framer) frame(data []byte) framing {
	var out framing
	pos := 0
	for pos < len(data) {
		n, err := fr.request(data[pos:])
		if err != nil {
			if errors.Is(err, errIncomplete) {
				out.tail = "incomplete"
			} else {
				out.tail = err.Error()
			}
			return out
		}
		pos += n
		out.ends = append(out.ends, pos)
	}
	return out
}

// line returns the line at b's start, without its end, and its length with it.
func (fr framer) line(b []byte) ([]byte, int, error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, 0, errIncomplete
	}
	if i > 0 && b[i-1] == '\r' {
		return b[:i-1], i + 1, nil
	}
	if !fr.bareLF {
		return nil, 0, errors.New("bare LF")
	}
	return b[:i], i + 1, nil
}

type field struct{ name, value string }

// fields reads field lines up to the empty line.
func (fr framer) fields(b []byte) ([]field, int, error) {
	var fs []field
	pos := 0
	for {
		l, n, err := fr.line(b[pos:])
		if err != nil {
			return nil, 0, err
		}
		pos += n
		if len(l) == 0 {
			return fs, pos, nil
		}
		if l[0] == ' ' || l[0] == '\t' {
			if !fr.foldJoin || len(fs) == 0 {
				return nil, 0, errors.New("obs-fold")
			}
			fs[len(fs)-1].value += " " + string(bytes.TrimSpace(l))
			continue
		}
		c := bytes.IndexByte(l, ':')
		if c <= 0 {
			return nil, 0, errors.New("no colon")
		}
		name := l[:c]
		if fr.trimName {
			name = bytes.TrimRight(name, " \t")
		}
		if bytes.ContainsAny(name, " \t\r") {
			return nil, 0, errors.New("whitespace in name")
		}
		nm := string(bytes.ToLower(name))
		if fr.underscore {
			nm = string(bytes.ReplaceAll([]byte(nm), []byte("_"), []byte("-")))
		}
		fs = append(fs, field{nm, string(bytes.Trim(l[c+1:], " \t"))})
	}
}

// request frames the request at b's start and returns its length.
func (fr framer) request(b []byte) (int, error) {
	rl, n, err := fr.line(b)
	if err != nil {
		return 0, err
	}
	parts := bytes.Split(rl, []byte(" "))
	if len(parts) != 3 || !bytes.HasPrefix(parts[2], []byte("HTTP/1.")) {
		return 0, fmt.Errorf("request line %q", rl)
	}
	http10 := string(parts[2]) == "HTTP/1.0"
	fs, m, err := fr.fields(b[n:])
	if err != nil {
		return 0, err
	}
	pos := n + m
	var cls []string
	te := ""
	for _, f := range fs {
		switch f.name {
		case "content-length":
			cls = append(cls, f.value)
		case "transfer-encoding":
			if te != "" {
				te += ", "
			}
			te += f.value
		}
	}
	if http10 && fr.ignoreTE10 {
		te = ""
	}
	chunked := false
	if te != "" {
		switch {
		case fr.teSubstring && bytes.Contains(bytes.ToLower([]byte(te)), []byte("chunked")):
			chunked = true
		case bytes.EqualFold([]byte(te), []byte("chunked")):
			chunked = true
		default:
			return 0, fmt.Errorf("transfer-encoding %q", te)
		}
	}
	if len(cls) > 0 && chunked {
		if !fr.clWins {
			if !fr.lenient {
				return 0, errors.New("both content-length and transfer-encoding")
			}
		} else {
			chunked = false
		}
	}
	if chunked {
		k, err := fr.chunked(b[pos:])
		return pos + k, err
	}
	if len(cls) == 0 {
		return pos, nil
	}
	if len(cls) > 1 && !fr.lenient {
		return 0, errors.New("several content-length")
	}
	v := cls[len(cls)-1]
	if fr.firstCL {
		v = cls[0]
	}
	cl, err := strconv.ParseUint(v, 10, 62)
	if err != nil {
		return 0, fmt.Errorf("content-length %q", v)
	}
	if uint64(len(b)-pos) < cl {
		return 0, errIncomplete
	}
	return pos + int(cl), nil
}

func (fr framer) chunked(b []byte) (int, error) {
	pos := 0
	for {
		l, n, err := fr.line(b[pos:])
		if err != nil {
			return 0, err
		}
		if i := bytes.IndexByte(l, ';'); i >= 0 {
			l = l[:i]
		}
		size, err := strconv.ParseUint(string(bytes.TrimRight(l, " \t")), 16, 62)
		if err != nil {
			return 0, fmt.Errorf("chunk size %q", l)
		}
		pos += n
		if size == 0 {
			_, m, err := fr.fields(b[pos:])
			return pos + m, err
		}
		if uint64(len(b)-pos) < size+2 {
			return 0, errIncomplete
		}
		pos += int(size)
		if b[pos] != '\r' || b[pos+1] != '\n' {
			return 0, errors.New("no CRLF after chunk data")
		}
		pos += 2
	}
}
