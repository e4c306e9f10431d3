// Package lang parses HAProxy's request language as halo's configuration
// holds it: one rule, ACL or sample expression per YAML string, in
// HAProxy's own words. It owns the words (which fetches, converters,
// matchers and actions exist, what arguments they take, what type they
// give) and produces typed syntax trees in which every node carries the
// byte offset of its text in the string, so that the config package can
// report an error at FILE:LINE:COL of the offending word.
//
// It does no I/O: pattern and map files named with -f or map() are
// recorded with their positions and read by the config package. The
// trees are compiled into evaluable programs by proxy/rules.
package lang
