package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"slices"

	"github.com/halo-lb/halo/config"

	"github.com/valyala/fasthttp"
)

// customPage is a configured error page (errorfile, http-error), parsed
// once per snapshot so that answering with it only copies bytes.
type customPage struct {
	status int
	reason []byte
	ctype  []byte
	hdrs   [][2][]byte // in the file's order, names lowercased
	body   []byte
	// closes: the file frames its body by the connection's end (no
	// Content-Length), which HAProxy answers with connection: close.
	closes bool
}

// customPages are a section's pages by status; nil without any.
type customPages map[int]*customPage

// newCustomPages parses a section's raw responses (checked at load by
// package config).
func newCustomPages(raw map[int][]byte) (customPages, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	pages := make(customPages, len(raw))
	for status, b := range raw {
		p, err := parseCustomPage(b)
		if err != nil {
			return nil, fmt.Errorf("error page %d: %w", status, err)
		}
		p.status = status
		pages[status] = p
	}
	return pages, nil
}

func parseCustomPage(raw []byte) (*customPage, error) {
	var h fasthttp.ResponseHeader
	h.DisableNormalizing()
	br := bufio.NewReader(bytes.NewReader(raw))
	if err := h.Read(br); err != nil {
		return nil, err
	}
	head := len(raw) - br.Buffered()
	p := &customPage{reason: slices.Clone(h.StatusMessage())}
	hasLength := false
	// HAProxy sends the headers it parsed from the file with their names
	// lowercased (measured with 2.6); the framing fields are fasthttp's
	// to write, from the body actually sent.
	for k, v := range h.All() {
		name := bytes.ToLower(slices.Clone(k))
		switch string(name) {
		case "content-length":
			hasLength = true
			continue
		case "connection", "transfer-encoding", "keep-alive":
			continue
		case "content-type":
			p.ctype = slices.Clone(v)
			continue
		}
		p.hdrs = append(p.hdrs, [2][]byte{name, slices.Clone(v)})
	}
	p.body = slices.Clone(raw[head:])
	if n := h.ContentLength(); hasLength && n >= 0 && n < len(p.body) {
		p.body = p.body[:n]
	}
	p.closes = !hasLength
	return p, nil
}

// write makes resp the page; closeConn closes the client connection
// after it, as halo's own page for the same error would.
func (p *customPage) write(resp *fasthttp.Response, closeConn bool) {
	// Reset clears the connection's settings too: the names are sent as
	// written (lowercased at load). fasthttp adds its Date, which
	// HAProxy does not send; the server's noDefaultDate cannot be put
	// back from here.
	resp.Reset()
	resp.Header.DisableNormalizing()
	resp.SetStatusCode(p.status)
	if len(p.reason) > 0 {
		resp.Header.SetStatusMessage(p.reason)
	}
	resp.Header.SetNoDefaultContentType(true)
	if p.ctype != nil {
		resp.Header.SetContentTypeBytes(p.ctype)
	}
	for i := range p.hdrs {
		resp.Header.AddBytesKV(p.hdrs[i][0], p.hdrs[i][1])
	}
	resp.SetBodyRaw(p.body)
	if closeConn || p.closes {
		resp.SetConnectionClose()
	}
}

// setError answers with the error page for status: the backend's (when
// the request was routed) over the frontend's, as HAProxy picks it, else
// halo's own.
func (fe *frontend) setError(resp *fasthttp.Response, be *backend, status int, closeConn bool) {
	if be != nil {
		if p := be.pages[status]; p != nil {
			p.write(resp, closeConn)
			return
		}
	}
	if p := fe.pages[status]; p != nil {
		p.write(resp, closeConn)
		return
	}
	setErrorResponse(resp, status, closeConn)
}

// buildPages parses the snapshot's error pages, and readies the
// backends' forwardfor and originalto.
func (s *Snapshot) buildPages() error {
	for _, fe := range s.frontends {
		var err error
		if fe.pages, err = newCustomPages(fe.cfg.ErrorPages); err != nil {
			return fmt.Errorf("frontend %s: %w", fe.cfg.Name, err)
		}
	}
	for _, be := range s.backends {
		var err error
		if be.pages, err = newCustomPages(be.cfg.ErrorPages); err != nil {
			return fmt.Errorf("backend %s: %w", be.cfg.Name, err)
		}
		if be.cfg.Mode == config.ModeHTTP {
			be.fwd = newForwarded(&be.cfg.Options)
		}
	}
	return nil
}
