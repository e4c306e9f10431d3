// Package h1 owns the syntax of HTTP/1.1 messages as halo accepts them
// (RFC 9112): a streaming guard that checks every request head and chunked
// body on a client connection before fasthttp parses it, and a check of the
// response heads servers send.
//
// halo's HTTP/1 parser is fasthttp's, which is lenient in ways a request
// smuggler can use (field names with spaces, bare LF, Transfer-Encoding
// values other than chunked) and strict in ways that refuse valid requests
// (long chunk sizes, whitespace in chunk extensions). The guard sits between
// the socket and fasthttp: it passes through only bytes that frame one way
// under RFC 9112, rewrites chunk-size lines to their canonical form (so
// fasthttp never sees an extension or a leading zero) and drops trailers,
// and stops at the first byte that breaks the grammar, reporting it with its
// position and the status to answer with. Everything it does is pure (no
// I/O, no allocation), so it is fuzzed directly.
//
// docs/http-conformance.md lists every decision with its RFC rule and
// HAProxy's behaviour.
package h1
