package proxy

import (
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/sticktable"
)

// This file is the proxy's side of the stick tables: the registry that
// keeps them across reloads (p.tables, created by New, its sweeper
// stopped by Shutdown) and the stats package's optional StickTables.

// stickSweepEvery is how often expired entries are removed beyond the
// lazy removal a lookup does: often enough that "show table" and the
// memory follow expiry within a second.
const stickSweepEvery = time.Second

// prepareStickTables gives the snapshot being built its stick tables: an
// unchanged stick-table line keeps its table and entries, a changed one
// starts afresh. The registry is not touched until installStickTables.
func (p *Proxy) prepareStickTables(s *Snapshot, cfg *config.Config) {
	s.tables = map[string]*sticktable.Table{}
	for _, fe := range cfg.Frontends {
		if fe.StickTable != nil {
			s.tables[fe.Name] = p.tables.Prepare(fe.Name, *fe.StickTable)
		}
	}
	for _, be := range cfg.Backends {
		if be.StickTable != nil {
			s.tables[be.Name] = p.tables.Prepare(be.Name, *be.StickTable)
		}
	}
}

// installStickTables makes a built snapshot's tables the registry's (a
// removed section's table goes). Apply calls it under mu once the
// snapshot can no longer fail.
func (p *Proxy) installStickTables(s *Snapshot) {
	p.tables.Install(s.tables)
	p.tables.StartSweep(stickSweepEvery, sticktable.Now)
}

// StickTable returns the live table of a section, nil without one.
func (p *Proxy) StickTable(name string) *sticktable.Table { return p.tables.Lookup(name) }

// StickTables returns the live stick tables, sorted by name, for the
// runtime API's show/clear/set table. It never waits on a reload.
func (p *Proxy) StickTables() []*sticktable.Table { return p.tables.Tables() }
