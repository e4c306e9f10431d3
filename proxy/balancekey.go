package proxy

import (
	"bytes"
	"net"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
	"github.com/valyala/fasthttp"
)

// keyOf computes the hashing key of a backend's "balance" from an HTTP
// request. ok is false when the request lacks what the algorithm hashes (no
// such header or parameter): the balancer then uses its weighted rotation,
// as HAProxy falls back to round robin.
func keyOf(b *config.Balance, header []byte, ctx *fasthttp.RequestCtx) (key uint64, ok bool) {
	switch b.Algorithm {
	case config.AlgoSource:
		return sourceKey(ctx.RemoteIP())
	case config.AlgoURI:
		return balancer.Hash(uriPart(b, ctx.Request.Header.RequestURI())), true
	case config.AlgoURLParam:
		args := ctx.QueryArgs()
		if !args.Has(b.Param) {
			return 0, false
		}
		return balancer.Hash(args.Peek(b.Param)), true
	case config.AlgoHdr:
		v := ctx.Request.Header.PeekBytes(header)
		if v == nil {
			return 0, false
		}
		if b.UseDomainOnly {
			v = mainDomain(v)
		}
		return balancer.Hash(v), true
	}
	return 0, false
}

// sourceKey hashes a client address: its 4 bytes for IPv4 (also when
// IPv4-mapped), 16 for IPv6.
func sourceKey(ip net.IP) (uint64, bool) {
	if ip == nil {
		return 0, false
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return balancer.Hash(ip), true
}

// uriPart is the part of a request URI that "balance uri" hashes, as
// HAProxy takes it: path-only drops an absolute URI's scheme and
// authority; at most len characters; up to depth directories (the
// depth+1-th slash ends it); the query string only with whole.
func uriPart(b *config.Balance, uri []byte) []byte {
	if b.URIPathOnly {
		if i := bytes.Index(uri, []byte("://")); i >= 0 && bytes.IndexByte(uri[:i], '/') < 0 {
			rest := uri[i+3:]
			if j := bytes.IndexByte(rest, '/'); j >= 0 {
				uri = rest[j:]
			} else {
				uri = rest[len(rest):]
			}
		}
	}
	if b.URILen > 0 && len(uri) > b.URILen {
		uri = uri[:b.URILen]
	}
	slashes := 0
	for i, c := range uri {
		switch {
		case c == '/':
			slashes++
			if b.URIDepth > 0 && slashes == b.URIDepth+1 {
				return uri[:i]
			}
		case c == '?' && !b.URIWhole:
			return uri[:i]
		}
	}
	return uri
}

// mainDomain is what "use_domain_only" hashes of a host name: the label
// before the top-level domain ("1wt" of "haproxy.1wt.eu:8080"), the whole
// name when it has no dot. As in HAProxy, everything after the last dot
// (so also a port) is left out.
func mainDomain(host []byte) []byte {
	last := bytes.LastIndexByte(host, '.')
	if last < 0 {
		return host
	}
	start := bytes.LastIndexByte(host[:last], '.') + 1
	return host[start:last]
}
