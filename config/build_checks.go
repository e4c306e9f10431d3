package config

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// buildHTTPCheck builds be.HTTPCheck from "option httpchk" and the
// http-check section (the backend's own or the one from defaults).
func (p *parser) buildHTTPCheck(fc *fileConfig, be *Backend, path string) {
	section := backendSection(fc, be.Name)
	hc, where := (*fileHTTPCheck)(nil), ""
	if section != nil && section.HTTPCheck != nil {
		hc, where = section.HTTPCheck, path+".http-check"
	} else if fc.Defaults != nil && fc.Defaults.HTTPCheck != nil {
		hc, where = fc.Defaults.HTTPCheck, "defaults.http-check"
	}
	if !be.Options.HTTPChk {
		if hc != nil && where != "defaults.http-check" {
			p.at(where, "http-check needs option httpchk in this backend")
		}
		return
	}
	check := &HTTPCheck{Method: "OPTIONS", URI: "/", Version: "HTTP/1.0"}
	if hc != nil && hc.Send != nil {
		check.Method = or(check.Method, hc.Send.Meth)
		check.URI = or(check.URI, hc.Send.URI)
		check.Version = or(check.Version, hc.Send.Ver)
		for k, v := range hc.Send.Hdr {
			if k == "" || strings.ContainsAny(k, " :\r\n") || strings.ContainsAny(v, "\r\n") {
				p.at(where+".send.hdr", "invalid header %q", k)
				continue
			}
			check.Headers = append(check.Headers, [2]string{k, v})
		}
		slices.SortFunc(check.Headers, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	}
	if hc != nil && hc.Expect != nil {
		e, ep := hc.Expect, where+".expect"
		set := 0
		for kind, v := range map[ExpectKind]*string{ExpectStatus: e.Status, ExpectRStatus: e.RStatus, ExpectString: e.String, ExpectRString: e.RString} {
			if v != nil {
				set++
				check.Expect.Kind, check.Expect.Pattern = kind, *v
			}
		}
		if set != 1 {
			p.at(ep, "expect needs exactly one of status, rstatus, string, rstring")
			return
		}
		check.Expect.Not = or(false, e.Not)
		switch check.Expect.Kind {
		case ExpectStatus:
			ranges, err := parseStatusRanges(check.Expect.Pattern)
			if err != nil {
				p.at(ep+".status", "%v", err)
			}
			check.Expect.StatusRanges = ranges
		case ExpectRStatus, ExpectRString:
			re, err := regexp.Compile(check.Expect.Pattern)
			if err != nil {
				p.at(ep+"."+string(check.Expect.Kind), "invalid regular expression: %v", err)
			}
			check.Expect.Regexp = re
		}
	}
	be.HTTPCheck = check
}

// parseStatusRanges parses "http-check expect status" codes: a list of
// codes and ranges such as "200,301-308".
func parseStatusRanges(s string) ([][2]int, error) {
	var ranges [][2]int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
			return nil, fmt.Errorf("invalid status %q: want codes from 100 to 599 or ranges such as 200-299, separated by commas", part)
		}
		ranges = append(ranges, [2]int{a, b})
	}
	return ranges, nil
}

// buildTCPCheck builds be.TCPCheck from "option tcp-check" and its
// tcp-check rules (the backend's own or those from defaults).
func (p *parser) buildTCPCheck(fc *fileConfig, be *Backend, path string) {
	section := backendSection(fc, be.Name)
	steps, where := []*fileTCPStep(nil), ""
	if section != nil && section.TCPCheck != nil {
		steps, where = section.TCPCheck, path+".tcp-check"
	} else if fc.Defaults != nil && fc.Defaults.TCPCheck != nil {
		steps, where = fc.Defaults.TCPCheck, "defaults.tcp-check"
	}
	opts, _ := checkerOptions(section, fc.Defaults, path)
	if !p.checkOneChecker(be, opts, path) {
		return
	}
	if be.Options.RedisCheck {
		// HAProxy's "option redis-check": PING, expect +PONG.
		be.TCPCheck = []TCPStep{{Action: TCPConnect}, {Action: TCPSend, Data: []byte("PING\r\n")},
			{Action: TCPExpect, Data: []byte("+PONG\r\n"), Pattern: "+PONG\r\n"}}
	}
	if !be.Options.TCPCheck {
		if steps != nil && where != "defaults.tcp-check" {
			p.at(where, "tcp-check needs option tcp-check in this backend")
		}
		return
	}
	script := []TCPStep{}
	for i, st := range steps {
		if step, ok := p.buildTCPStep(st, fmt.Sprintf("%s[%d]", where, i)); ok {
			script = append(script, step)
		}
	}
	// As HAProxy: a script that does not start with a connect gets one.
	if len(script) == 0 || script[0].Action != TCPConnect {
		script = append([]TCPStep{{Action: TCPConnect}}, script...)
	}
	be.TCPCheck = script
}

// checkOneChecker reports whether the backend chooses at most one health
// checker, and reports an error at its options otherwise.
func (p *parser) checkOneChecker(be *Backend, opts *fileOptions, path string) bool {
	checkers := 0
	for _, on := range []bool{be.Options.HTTPChk, be.Options.TCPCheck, be.Options.RedisCheck,
		opts.MySQLCheck != nil, opts.PgSQLCheck != nil, opts.GaleraCheck != nil,
		opts.MySQLReplicaCheck != nil, opts.PgSQLStandbyCheck != nil} {
		if on {
			checkers++
		}
	}
	if checkers > 1 {
		p.at(path+".option", "httpchk, tcp-check, redis-check, mysql-check, pgsql-check, galera-check, mysql-replica-check and pgsql-standby-check exclude each other: a server has one health check")
		return false
	}
	return true
}

// buildTCPStep builds one tcp-check rule, written at key path sp; false
// when it is in error.
func (p *parser) buildTCPStep(st *fileTCPStep, sp string) (TCPStep, bool) {
	if st == nil {
		p.at(sp, "empty tcp-check rule")
		return TCPStep{}, false
	}
	n := 0
	for _, set := range []bool{st.Connect != nil, st.Send != nil, st.SendBinary != nil, st.Expect != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		p.at(sp, "a tcp-check rule needs exactly one of connect, send, send-binary, expect")
		return TCPStep{}, false
	}
	switch {
	case st.Connect != nil:
		return TCPStep{Action: TCPConnect, Port: or(0, st.Connect.Port)}, true
	case st.Send != nil:
		return TCPStep{Action: TCPSend, Data: []byte(*st.Send)}, true
	case st.SendBinary != nil:
		b, err := hex.DecodeString(*st.SendBinary)
		if err != nil {
			p.at(sp+".send-binary", "%q is not hexadecimal: write bytes as pairs of 0-9, a-f", *st.SendBinary)
		}
		return TCPStep{Action: TCPSend, Data: b}, true
	}
	return p.buildTCPExpect(st.Expect, sp)
}

// buildTCPExpect builds a tcp-check expect rule; false when it is in error.
func (p *parser) buildTCPExpect(e *fileTCPExpect, sp string) (TCPStep, bool) {
	step := TCPStep{Action: TCPExpect, Not: or(false, e.Not)}
	kinds := 0
	if e.String != nil {
		kinds++
		step.Data, step.Pattern = []byte(*e.String), *e.String
	}
	if e.Binary != nil {
		kinds++
		b, err := hex.DecodeString(*e.Binary)
		if err != nil {
			p.at(sp+".expect.binary", "%q is not hexadecimal: write bytes as pairs of 0-9, a-f", *e.Binary)
		}
		step.Data, step.Pattern = b, *e.Binary
	}
	if e.RString != nil {
		kinds++
		re, err := regexp.Compile(*e.RString)
		if err != nil {
			p.at(sp+".expect.rstring", "invalid regular expression: %v", err)
		}
		step.Regexp, step.Pattern = re, *e.RString
	}
	if kinds != 1 {
		p.at(sp+".expect", "expect needs exactly one of string, rstring, binary")
		return TCPStep{}, false
	}
	return step, true
}
