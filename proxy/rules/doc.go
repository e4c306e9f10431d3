// Package rules compiles HAProxy's request language, as config/lang
// parses it, into programs built once per snapshot, and evaluates them
// on the hot path without allocating: ACLs over sample fetches and
// converters, the http-request, http-response and tcp-request rule
// sets, use_backend and redirect.
//
// A program is a tree of small structs holding their precomputed
// patterns (a map for exact strings, sorted tables for prefixes and
// networks, compiled RE2 expressions); evaluating it reads the request
// through a Txn, which the proxy keeps per connection and resets per
// request, and writes converted values into the Txn's scratch buffer.
// The package knows nothing of listeners or snapshots: what it needs of
// the running configuration (server states, connection counts) it asks
// through Env. Two kinds of its state outlive a request's Txn: a request's
// capture slots (Captures), which the proxy keeps until the access line,
// and the process-wide variables (ProcVars), which the proxy owns across
// snapshots.
package rules
