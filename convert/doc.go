// Package convert translates an HAProxy configuration file (haproxy.cfg)
// into halo's YAML. It owns HAProxy's file format as HAProxy reads it
// (sections, quoting and escaping, environment variables, conditional
// blocks), the mapping of each HAProxy keyword to its YAML, and the
// warnings for what halo cannot carry over.
//
// It reads the file in phases, each in its own file: lex.go cuts lines into
// words with their columns, cond.go evaluates .if blocks, sections.go
// groups statements into sections and resolves which defaults section each
// proxy takes, the map_*.go files turn each section's keywords into an
// ordered YAML tree (tree.go), and emit.go writes it. It never reads halo's
// running state: "halo check" of the output is the caller's proof.
package convert
