package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Algorithm is a "balance" algorithm, spelled as in HAProxy.
type Algorithm string

// The balance algorithms.
const (
	AlgoRoundRobin Algorithm = "roundrobin"
	AlgoStaticRR   Algorithm = "static-rr"
	AlgoLeastConn  Algorithm = "leastconn"
	AlgoFirst      Algorithm = "first"
	AlgoSource     Algorithm = "source"
	AlgoURI        Algorithm = "uri"
	AlgoURLParam   Algorithm = "url_param"
	AlgoHdr        Algorithm = "hdr"
	AlgoRandom     Algorithm = "random"
)

// Algorithms is every balance algorithm, in the order messages list them.
var Algorithms = []Algorithm{AlgoRoundRobin, AlgoStaticRR, AlgoLeastConn, AlgoFirst, AlgoSource, AlgoURI, AlgoURLParam, AlgoHdr, AlgoRandom}

// Hashed reports whether the algorithm hashes a key of the connection or
// request, so that hash-type applies.
func (a Algorithm) Hashed() bool {
	switch a {
	case AlgoSource, AlgoURI, AlgoURLParam, AlgoHdr:
		return true
	}
	return false
}

// HTTPOnly reports whether the algorithm reads the HTTP request.
func (a Algorithm) HTTPOnly() bool {
	switch a {
	case AlgoURI, AlgoURLParam, AlgoHdr:
		return true
	}
	return false
}

// takesArgs reports whether the algorithm's balance line has more than its
// name: hdr(NAME), url_param NAME, uri's options, random(N).
func (a Algorithm) takesArgs() bool {
	return a == AlgoHdr || a == AlgoURLParam || a == AlgoURI || a == AlgoRandom
}

// Balance is a backend's "balance" line, parsed.
type Balance struct {
	Algorithm Algorithm
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

// String writes the balance line back in HAProxy's syntax.
func (b Balance) String() string {
	var s strings.Builder
	switch b.Algorithm {
	case AlgoRandom:
		fmt.Fprintf(&s, "random(%d)", b.Draws)
	case AlgoURLParam:
		fmt.Fprintf(&s, "url_param %s", b.Param)
	case AlgoHdr:
		fmt.Fprintf(&s, "hdr(%s)", b.Header)
		if b.UseDomainOnly {
			s.WriteString(" use_domain_only")
		}
	case AlgoURI:
		s.WriteString(string(AlgoURI))
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
		s.WriteString(string(b.Algorithm))
	}
	return s.String()
}

// supportedBalance lists the balance spellings for messages.
var supportedBalance = func() string {
	var words []string
	for _, a := range Algorithms {
		switch a {
		case AlgoHdr:
			words = append(words, "hdr(NAME)")
		case AlgoRandom:
			words = append(words, string(AlgoRandom), string(AlgoRandom)+"(N)")
		default:
			words = append(words, string(a))
		}
	}
	return strings.Join(words, ", ")
}()

// BalanceError is an error about one word of a balance line, Off bytes
// into it.
type BalanceError struct {
	Off int
	Msg string
}

func (e *BalanceError) Error() string { return e.Msg }

// ParseBalance parses a "balance" value written as in haproxy.cfg, such as
// "leastconn", "random(3)", "uri len 32 depth 2 whole" or
// "hdr(host) use_domain_only". An error is a *BalanceError naming the
// word it is about.
func ParseBalance(line string) (Balance, error) {
	// strings.Fields, as before offsets were kept: any white space,
	// a line break of a block scalar too, separates words.
	words := strings.Fields(line)
	offs := make([]int, len(words))
	for i, pos := 0, 0; i < len(words); i++ {
		offs[i] = pos + strings.Index(line[pos:], words[i])
		pos = offs[i] + len(words[i])
	}
	fail := func(w int, format string, args ...any) (Balance, error) {
		off := 0
		if w < len(offs) {
			off = offs[w]
		}
		return Balance{}, &BalanceError{Off: off, Msg: fmt.Sprintf(format, args...)}
	}
	if len(words) == 0 {
		return fail(0, "empty balance: must be one of %s", supportedBalance)
	}
	name, args := words[0], words[1:]
	noArgs := func(b Balance) (Balance, error) {
		if len(args) > 0 {
			return fail(1, "balance %s takes no arguments, got %q", name, strings.Join(args, " "))
		}
		return b, nil
	}
	switch a := Algorithm(name); {
	case slices.Contains(Algorithms, a) && !a.takesArgs():
		return noArgs(Balance{Algorithm: a})
	case a == AlgoRandom:
		return noArgs(Balance{Algorithm: AlgoRandom, Draws: 2})
	case strings.HasPrefix(name, "random(") && strings.HasSuffix(name, ")"):
		n, err := strconv.Atoi(name[len("random(") : len(name)-1])
		if err != nil || n < 1 || n > 100 {
			return fail(0, "%q: the number of draws must be from 1 to 100", name)
		}
		return noArgs(Balance{Algorithm: AlgoRandom, Draws: n})
	case strings.HasPrefix(name, "hdr(") && strings.HasSuffix(name, ")"):
		h := name[len("hdr(") : len(name)-1]
		if h == "" || strings.ContainsAny(h, " :()") {
			return fail(0, "%q: want hdr(NAME) with a header name", name)
		}
		b := Balance{Algorithm: AlgoHdr, Header: h}
		for i, a := range args {
			if a != "use_domain_only" {
				return fail(1+i, "balance hdr: unknown option %q (only use_domain_only)", a)
			}
			b.UseDomainOnly = true
		}
		return b, nil
	case a == AlgoURLParam:
		if len(args) == 0 {
			return fail(0, "balance url_param needs a parameter name")
		}
		if len(args) > 1 {
			return fail(2, "balance url_param: %q is not supported (halo hashes the query string only, not a POST body)", strings.Join(args[1:], " "))
		}
		return Balance{Algorithm: AlgoURLParam, Param: args[0]}, nil
	case a == AlgoURI:
		b := Balance{Algorithm: AlgoURI}
		for i := 0; i < len(args); i++ {
			switch args[i] {
			case "whole":
				b.URIWhole = true
			case "path-only":
				b.URIPathOnly = true
			case "len", "depth":
				if i+1 == len(args) {
					return fail(1+i, "balance uri: %s needs a number", args[i])
				}
				n, err := strconv.Atoi(args[i+1])
				if err != nil || n < 1 {
					return fail(2+i, "balance uri: %s %q must be a positive number", args[i], args[i+1])
				}
				if args[i] == "len" {
					b.URILen = n
				} else {
					b.URIDepth = n
				}
				i++
			default:
				return fail(1+i, "balance uri: unknown option %q (len N, depth N, whole, path-only)", args[i])
			}
		}
		return b, nil
	}
	return fail(0, "%q is not supported: must be one of %s", line, supportedBalance)
}
