package rules

import "github.com/halo-lb/halo/config/lang"

// stickFetch is a compiled stick-table fetch.
type stickFetch struct {
	data    string
	counter int
}

// compileStickFetch builds sc_*/src_* fetches. Stick tables are not part
// of the programs yet: the config package refuses these fetches with a
// positioned error, so reaching here is a bug.
func (c *Compiler) compileStickFetch(ls *lang.Sample, f *fetch) error {
	return &PosError{ls.Pos, "stick-table fetches are not available"}
}
