// Package conformance holds halo's HTTP/1 request-smuggling corpus and the
// tests that run it through the real halo binary and the real HAProxy to a
// backend that records the exact bytes it receives, then frames those
// bytes with a strict RFC 9112 parser and with lenient parsers modelled on
// real servers. It has no code but its tests; docs/http-conformance.md is
// the table of decisions the corpus checks.
package conformance
