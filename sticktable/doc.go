// Package sticktable owns halo's stick tables: HAProxy's per-key counters
// (a client address, an integer, a string) that rules track and "stick on"
// reads, and that outlive reloads.
//
// A Registry holds the tables by section name. Its Table and Retain are
// called by the proxy while it applies a configuration (one caller at a
// time); its Tables and Lookup may be called from any goroutine and never
// wait on a reload. The data path uses *Table and *Entry directly: every
// method of both is safe for concurrent use, and the hot ones (looking a
// key up, creating an entry while the table has room, updating counters,
// reading a rate) allocate nothing.
//
// Time is passed in, never read inside, as milliseconds on a monotonic
// clock (Now), so that rates and expiry are deterministic under test.
package sticktable
