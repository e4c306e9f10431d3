// Package tlsfront owns the TLS that halo's binds terminate: the
// tls.Config built from a bind's config.BindTLS (certificates chosen by
// the client's SNI, versions, suites, ALPN, client certificates checked
// against a CA and CRLs), the session-ticket keys that rotate and outlive
// reloads (Tickets, one per process), the facts about a handshake that
// logs and headers show (Facts), and a peek at a ClientHello's SNI that
// leaves the bytes for a passthrough relay (Peek).
//
// Certificates are read and checked by package config, so a reload with a
// broken one fails before anything here runs; this package only arranges
// them for crypto/tls, which speaks the protocol.
package tlsfront
