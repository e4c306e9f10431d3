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

// applyStickTables makes the registry hold exactly cfg's tables: an
// unchanged stick-table line keeps its table and entries, a changed one
// starts afresh, a removed section's table goes. Apply calls it under mu
// once the new snapshot is built; the snapshot's frontends and backends
// take their *sticktable.Table from StickTable(name).
func (p *Proxy) applyStickTables(cfg *config.Config) {
	keep := map[string]bool{}
	for _, fe := range cfg.Frontends {
		if fe.StickTable != nil {
			p.tables.Table(fe.Name, *fe.StickTable)
			keep[fe.Name] = true
		}
	}
	for _, be := range cfg.Backends {
		if be.StickTable != nil {
			p.tables.Table(be.Name, *be.StickTable)
			keep[be.Name] = true
		}
	}
	p.tables.Retain(func(name string) bool { return keep[name] })
	p.tables.StartSweep(stickSweepEvery, sticktable.Now)
}

// StickTable returns the live table of a section, nil without one.
func (p *Proxy) StickTable(name string) *sticktable.Table { return p.tables.Lookup(name) }

// StickTables returns the live stick tables, sorted by name, for the
// runtime API's show/clear/set table. It never waits on a reload.
func (p *Proxy) StickTables() []*sticktable.Table { return p.tables.Tables() }
