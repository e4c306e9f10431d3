package config

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/halo-lb/halo/config/lang"
)

// errorFileStatuses are the statuses HAProxy takes an errorfile or an
// http-error for: the ones it can produce itself.
var errorFileStatuses = []int{200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504}

// buildErrorPages reads each section's errorfile and http-error lines
// into full raw responses by status. A section's own lines win over
// those of defaults for the same status; the others are inherited, as
// HAProxy copies the defaults' messages into every proxy.
func (p *parser) buildErrorPages(cfg *Config, fc *fileConfig) {
	def := map[int][]byte{}
	if fc.Defaults != nil {
		def = p.sectionErrorPages(fc.Defaults, "defaults")
	}
	merged := func(fp *fileProxy, path string) map[int][]byte {
		own := map[int][]byte{}
		if fp != nil {
			own = p.sectionErrorPages(fp, path)
		}
		for st, b := range def {
			if _, ok := own[st]; !ok {
				own[st] = b
			}
		}
		if len(own) == 0 {
			return nil
		}
		return own
	}
	for _, fe := range cfg.Frontends {
		path := sectionPath(fc, "frontends", fe.Name)
		fp := fc.frontendSection(fe.Name)
		fe.ErrorPages = merged(fp, path)
	}
	for _, be := range cfg.Backends {
		path := sectionPath(fc, "backends", be.Name)
		if _, listen := fc.Listen[be.Name]; listen {
			continue // read once, for its frontend; shared below
		}
		be.ErrorPages = merged(fc.Backends[be.Name], path)
	}
	for _, be := range cfg.Backends {
		if _, listen := fc.Listen[be.Name]; listen {
			for _, fe := range cfg.Frontends {
				if fe.Name == be.Name {
					be.ErrorPages = fe.ErrorPages
				}
			}
		}
	}
}

func (p *parser) sectionErrorPages(fp *fileProxy, path string) map[int][]byte {
	pages := map[int][]byte{}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range fp.ErrorFile {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		kp := joinPath(joinPath(path, "errorfile"), k)
		st, err := strconv.Atoi(k)
		if err != nil || !slices.Contains(errorFileStatuses, st) {
			p.at(kp, "errorfile status %q is not one halo sends (%s)", k, statusList())
			continue
		}
		if b, ok := p.readErrorFile(kp, 0, fp.ErrorFile[k]); ok {
			pages[st] = b
		}
	}
	for i, line := range fp.HTTPError {
		lp := fmt.Sprintf("%s[%d]", joinPath(path, "http-error"), i)
		if st, b, ok := p.parseHTTPError(lp, line); ok {
			pages[st] = b
		}
	}
	return pages
}

func statusList() string {
	s := make([]string, len(errorFileStatuses))
	for i, st := range errorFileStatuses {
		s[i] = strconv.Itoa(st)
	}
	return strings.Join(s, " ")
}

// readErrorFile reads an errorfile and checks that it is an HTTP
// response, which halo sends as it is. An error is reported at the value
// of path (at the word at off of a one-line value).
func (p *parser) readErrorFile(path string, off int, file string) ([]byte, bool) {
	data, err := os.ReadFile(p.relative(file))
	if err != nil {
		p.atWord(path, off, "%v", err)
		return nil, false
	}
	// Parsed as a client would read it, so that a file a client could
	// not read is refused at load instead of sent.
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), nil)
	if err != nil || !bytes.HasPrefix(data, []byte("HTTP/1.")) {
		p.atWord(path, off, "%s is not an HTTP response (a status line, headers and a blank line)", file)
		return nil, false
	}
	_ = resp.Body.Close()
	return data, true
}

// parseHTTPError parses "status N [content-type T] [string S | file F |
// errorfile F] [hdr NAME VALUE]*" into the raw response it defines.
func (p *parser) parseHTTPError(lp, line string) (int, []byte, bool) {
	ws, err := lang.Split(line)
	if err != nil {
		return 0, nil, p.langErrors(lp, 0, err)
	}
	status, ctype := 0, ""
	var body []byte
	var hdrs [][2]string
	ok := true
	arg := func(i int) (lang.Word, bool) {
		if i+1 >= len(ws) {
			p.atWord(lp, ws[i].Pos(), "%s needs a value", ws[i].Text)
			ok = false
			return lang.Word{}, false
		}
		return ws[i+1], true
	}
	for i := 0; i < len(ws); i++ {
		w := ws[i]
		switch w.Text {
		case "status":
			v, has := arg(i)
			if !has {
				return 0, nil, false
			}
			i++
			st, err := strconv.Atoi(v.Text)
			if err != nil || !slices.Contains(errorFileStatuses, st) {
				p.atWord(lp, v.Pos(), "http-error status %q is not one halo sends (%s)", v.Text, statusList())
				ok = false
			}
			status = st
		case "content-type":
			v, has := arg(i)
			if !has {
				return 0, nil, false
			}
			i++
			ctype = v.Text
		case "string":
			v, has := arg(i)
			if !has {
				return 0, nil, false
			}
			i++
			body = []byte(v.Text)
		case "file", "errorfile":
			v, has := arg(i)
			if !has {
				return 0, nil, false
			}
			i++
			if w.Text == "errorfile" {
				raw, read := p.readErrorFile(lp, v.Pos(), v.Text)
				if !read {
					return 0, nil, false
				}
				if i+1 < len(ws) {
					p.atWord(lp, ws[i+1].Pos(), "errorfile sends the file as it is: nothing may follow it")
					return 0, nil, false
				}
				return status, raw, ok && p.needStatus(lp, status)
			}
			data, err := os.ReadFile(p.relative(v.Text))
			if err != nil {
				p.atWord(lp, v.Pos(), "%v", err)
				ok = false
			}
			body = data
		case "hdr":
			n, has := arg(i)
			if !has {
				return 0, nil, false
			}
			v, has := arg(i + 1)
			if !has {
				return 0, nil, false
			}
			i += 2
			if strings.Contains(v.Text, "%") {
				// HAProxy evaluates the value as a log-format string; halo
				// sends http-error pages as built at load, and would send
				// the text as written.
				p.atWord(lp, v.Pos(), "http-error hdr %s: a value with %% (a log-format expression) is not available in this build of halo yet", n.Text)
				ok = false
			}
			hdrs = append(hdrs, [2]string{n.Text, v.Text})
		case "lf-string", "lf-file", "errorfiles", "default-errorfiles":
			p.atWord(lp, w.Pos(), "http-error %s is not available in this build of halo yet", w.Text)
			ok = false
			if w.Text != "default-errorfiles" {
				i++ // its argument
			}
		default:
			p.atWord(lp, w.Pos(), "unknown http-error option %q (status, content-type, string, file, errorfile, hdr)", w.Text)
			ok = false
		}
	}
	if !p.needStatus(lp, status) || !ok {
		return 0, nil, false
	}
	if body != nil && ctype == "" {
		p.at(lp, "http-error with a body needs a content-type")
		return 0, nil, false
	}
	return status, rawResponse(status, ctype, hdrs, body), true
}

func (p *parser) needStatus(lp string, status int) bool {
	if status == 0 {
		p.atWord(lp, 0, "http-error needs status N")
		return false
	}
	return true
}

// rawResponse is the response an http-error line defines, as HAProxy
// sends one: the status line, the headers, a content-length and the
// body.
func rawResponse(status int, ctype string, hdrs [][2]string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	if ctype != "" {
		fmt.Fprintf(&b, "content-type: %s\r\n", ctype)
	}
	for _, h := range hdrs {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	fmt.Fprintf(&b, "content-length: %d\r\n\r\n", len(body))
	b.Write(body)
	return b.Bytes()
}
