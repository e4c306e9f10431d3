package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Balance is a backend's "balance" line, parsed.
type Balance struct {
	// Algorithm is one of roundrobin, static-rr, leastconn, first, source,
	// uri, url_param, hdr, random.
	Algorithm string
	// Draws is random(N)'s N: how many servers are drawn before the least
	// loaded is taken. random alone means 2, as in HAProxy.
	Draws int
	// uri: hash at most URILen characters (0: all) and at most URIDepth
	// directories (0: all); URIWhole includes the query string; with
	// URIPathOnly an absolute URI's scheme and authority are left out.
	URILen      int
	URIDepth    int
	URIWhole    bool
	URIPathOnly bool
	// Param is url_param's query-string parameter.
	Param string
	// Header is hdr(NAME)'s header; UseDomainOnly hashes only the main
	// part of a host name ("1wt" of "haproxy.1wt.eu").
	Header        string
	UseDomainOnly bool
}

// Hashed reports whether the algorithm hashes a key of the connection or
// request, so that hash-type applies.
func (b Balance) Hashed() bool {
	switch b.Algorithm {
	case "source", "uri", "url_param", "hdr":
		return true
	}
	return false
}

// HTTPOnly reports whether the algorithm reads the HTTP request.
func (b Balance) HTTPOnly() bool {
	switch b.Algorithm {
	case "uri", "url_param", "hdr":
		return true
	}
	return false
}

// String writes the balance line back in HAProxy's syntax.
func (b Balance) String() string {
	var s strings.Builder
	switch b.Algorithm {
	case "random":
		fmt.Fprintf(&s, "random(%d)", b.Draws)
	case "url_param":
		fmt.Fprintf(&s, "url_param %s", b.Param)
	case "hdr":
		fmt.Fprintf(&s, "hdr(%s)", b.Header)
		if b.UseDomainOnly {
			s.WriteString(" use_domain_only")
		}
	case "uri":
		s.WriteString("uri")
		if b.URILen > 0 {
			fmt.Fprintf(&s, " len %d", b.URILen)
		}
		if b.URIDepth > 0 {
			fmt.Fprintf(&s, " depth %d", b.URIDepth)
		}
		if b.URIWhole {
			s.WriteString(" whole")
		}
		if b.URIPathOnly {
			s.WriteString(" path-only")
		}
	default:
		s.WriteString(b.Algorithm)
	}
	return s.String()
}

const supportedBalance = "roundrobin, static-rr, leastconn, first, source, uri, url_param, hdr(NAME), random, random(N)"

// ParseBalance parses a "balance" value written as in haproxy.cfg, such as
// "leastconn", "random(3)", "uri len 32 depth 2 whole" or
// "hdr(host) use_domain_only".
func ParseBalance(line string) (Balance, error) {
	words := strings.Fields(line)
	if len(words) == 0 {
		return Balance{}, fmt.Errorf("empty balance: must be one of %s", supportedBalance)
	}
	name, args := words[0], words[1:]
	noArgs := func(b Balance) (Balance, error) {
		if len(args) > 0 {
			return Balance{}, fmt.Errorf("balance %s takes no arguments, got %q", name, strings.Join(args, " "))
		}
		return b, nil
	}
	switch {
	case name == "roundrobin", name == "static-rr", name == "leastconn", name == "first", name == "source":
		return noArgs(Balance{Algorithm: name})
	case name == "random":
		return noArgs(Balance{Algorithm: "random", Draws: 2})
	case strings.HasPrefix(name, "random(") && strings.HasSuffix(name, ")"):
		n, err := strconv.Atoi(name[len("random(") : len(name)-1])
		if err != nil || n < 1 || n > 100 {
			return Balance{}, fmt.Errorf("%q: the number of draws must be from 1 to 100", name)
		}
		return noArgs(Balance{Algorithm: "random", Draws: n})
	case strings.HasPrefix(name, "hdr(") && strings.HasSuffix(name, ")"):
		h := name[len("hdr(") : len(name)-1]
		if h == "" || strings.ContainsAny(h, " :()") {
			return Balance{}, fmt.Errorf("%q: want hdr(NAME) with a header name", name)
		}
		b := Balance{Algorithm: "hdr", Header: h}
		for _, a := range args {
			if a != "use_domain_only" {
				return Balance{}, fmt.Errorf("balance hdr: unknown option %q (only use_domain_only)", a)
			}
			b.UseDomainOnly = true
		}
		return b, nil
	case name == "url_param":
		if len(args) == 0 {
			return Balance{}, fmt.Errorf("balance url_param needs a parameter name")
		}
		if len(args) > 1 {
			return Balance{}, fmt.Errorf("balance url_param: %q is not supported (halo hashes the query string only, not a POST body)", strings.Join(args[1:], " "))
		}
		return Balance{Algorithm: "url_param", Param: args[0]}, nil
	case name == "uri":
		b := Balance{Algorithm: "uri"}
		for i := 0; i < len(args); i++ {
			switch args[i] {
			case "whole":
				b.URIWhole = true
			case "path-only":
				b.URIPathOnly = true
			case "len", "depth":
				if i+1 == len(args) {
					return Balance{}, fmt.Errorf("balance uri: %s needs a number", args[i])
				}
				n, err := strconv.Atoi(args[i+1])
				if err != nil || n < 1 {
					return Balance{}, fmt.Errorf("balance uri: %s %q must be a positive number", args[i], args[i+1])
				}
				if args[i] == "len" {
					b.URILen = n
				} else {
					b.URIDepth = n
				}
				i++
			default:
				return Balance{}, fmt.Errorf("balance uri: unknown option %q (len N, depth N, whole, path-only)", args[i])
			}
		}
		return b, nil
	}
	return Balance{}, fmt.Errorf("%q is not supported: must be one of %s", line, supportedBalance)
}
