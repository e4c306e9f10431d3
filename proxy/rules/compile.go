package rules

import (
	"strings"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/sticktable"

	"github.com/halo-lb/halo/config/lang"
)

// Names are the indexes of what rules may name, in the snapshot the
// programs are built for.
type Names struct {
	Frontends map[string]int
	Backends  map[string]int
	// Servers are by backend, then server name.
	Servers map[string]map[string]int
	// Maps are the entries of the map files converters name, by path
	// as the configuration resolved it.
	Maps map[string][]MapEntry
	// Tables are the stick tables, by the name of the section that
	// declares them.
	Tables map[string]*sticktable.Table
	// Userlists are the userlist sections, by name.
	Userlists map[string]*config.Userlist
}

// MapEntry is one line of a map file.
type MapEntry struct{ Key, Value string }

func (n *Names) server(bs string) (int, int, bool) {
	b, s, _ := strings.Cut(bs, "/")
	bi, ok := n.Backends[b]
	if !ok {
		return 0, 0, false
	}
	si, ok := n.Servers[b][s]
	return bi, si, ok
}

// Compiler builds the programs of one snapshot. Variables are numbered
// across all its programs, since a txn variable set by a frontend's rule
// is read by its backend's.
type Compiler struct {
	Names Names
	// Section is the section whose rules are being compiled: its
	// stick-table is the one track-sc and src_* use without "table".
	Section  string
	vars     map[string]int
	sessVars bool // a sess. variable was numbered
	maps     map[string]*mapTable
	// Proc holds the process-wide variables (proc.NAME); nil gives the
	// compiler a set of its own.
	Proc *ProcVars
}

// NewCompiler returns a compiler for a snapshot with the given names.
func NewCompiler(n Names) *Compiler {
	return &Compiler{Names: n, vars: map[string]int{}, maps: map[string]*mapTable{}}
}

// Vars is how many variable slots a Txn needs for the programs built.
func (c *Compiler) Vars() int { return len(c.vars) }

// varSlot numbers a variable; a session variable's slot carries
// sessSlot, so that a request reads and writes it in its connection's
// Txn (Txn.varAt).
func (c *Compiler) varSlot(name string) int {
	i, ok := c.vars[name]
	if !ok {
		i = len(c.vars)
		c.vars[name] = i
	}
	if strings.HasPrefix(name, "sess.") {
		c.sessVars = true
		i |= sessSlot
	}
	return i
}

// procVar is the process-wide variable called name (proc.NAME).
func (c *Compiler) procVar(name string) *procVar {
	if c.Proc == nil {
		c.Proc = NewProcVars()
	}
	return c.Proc.of(name)
}

// isProc reports whether a variable's name is a process-wide one's.
func isProc(name string) bool { return strings.HasPrefix(name, "proc.") }

// sessSlot marks a session variable's slot.
const sessSlot = 1 << 30

// SessionVars reports whether the programs built use a session variable
// (sess.NAME), which lives as long as its connection.
func (c *Compiler) SessionVars() bool { return c.sessVars }

// ACLs are a section's named ACLs: each name's definitions, ORed.
type ACLs map[string][]*lang.Match

// Cond is a compiled condition.
type Cond struct {
	unless bool
	or     [][]term
	// single is the one matcher of a condition of one term with one
	// definition, evaluated without the loops; singleNot its "!".
	single    *matcher
	singleNot bool
}

type term struct {
	not bool
	any []*matcher // a named ACL's definitions, ORed; or one anonymous
}

// Eval reports whether the condition holds; a nil condition always does.
func (c *Cond) Eval(t *Txn) bool {
	if c == nil {
		return true
	}
	if c.single != nil {
		// One ACL, as most conditions are: "if { ssl_fc }", "if blocked".
		return (c.single.eval(t) != c.singleNot) != c.unless
	}
	ok := false
	for _, and := range c.or {
		all := true
		for i := range and {
			if and[i].eval(t) == and[i].not {
				all = false
				break
			}
		}
		if all {
			ok = true
			break
		}
	}
	return ok != c.unless
}

func (tm *term) eval(t *Txn) bool {
	for _, m := range tm.any {
		if m.eval(t) {
			return true
		}
	}
	return false
}

// CompileCond builds a condition over the section's ACLs; predefined
// ACLs (TRUE, LOCALHOST, METH_GET, ...) are known everywhere.
func (c *Compiler) CompileCond(lc *lang.Cond, acls ACLs) (*Cond, error) {
	if lc == nil {
		return nil, nil
	}
	cond := &Cond{unless: lc.Unless}
	for _, and := range lc.Or {
		var terms []term
		for _, lt := range and {
			tm := term{not: lt.Not}
			if lt.Anon != nil {
				m, err := c.compileMatch(lt.Anon)
				if err != nil {
					return nil, err
				}
				tm.any = []*matcher{m}
			} else {
				defs, ok := acls[lt.Name]
				if !ok {
					src, pre := lang.Predefined[lt.Name]
					if !pre {
						return nil, &PosError{lt.Pos, "unknown ACL " + lt.Name}
					}
					m, err := lang.ParseACL(src, 0)
					if err != nil {
						return nil, err
					}
					defs = []*lang.Match{m}
				}
				for _, d := range defs {
					m, err := c.compileMatch(d)
					if err != nil {
						return nil, err
					}
					tm.any = append(tm.any, m)
				}
			}
			terms = append(terms, tm)
		}
		cond.or = append(cond.or, terms)
	}
	if len(cond.or) == 1 && len(cond.or[0]) == 1 && len(cond.or[0][0].any) == 1 {
		cond.single, cond.singleNot = cond.or[0][0].any[0], cond.or[0][0].not
	}
	return cond, nil
}
