package config

import (
	"path/filepath"
)

// LoadServerState is HAProxy's load-server-state-from-file: which file a
// backend's servers take their state from when halo starts.
type LoadServerState string

// The values of load-server-state-from-file, with HAProxy's meaning: none
// loads nothing (the default, the zero value), global the global
// server-state-file, local a file of the backend's own
// (server-state-file-name, by default the backend's name, under
// server-state-base).
const (
	LoadStateNone   LoadServerState = ""
	LoadStateGlobal LoadServerState = "global"
	LoadStateLocal  LoadServerState = "local"
)

// buildServerState resolves server-state-file, server-state-base and
// each backend's load-server-state-from-file and server-state-file-name.
// A path that does not start with "/" is under server-state-base when it
// is set, as in HAProxy; otherwise (and server-state-base itself) it is
// relative to the configuration file's directory, like every path halo
// reads, where HAProxy takes the directory it was started in.
func (p *parser) buildServerState(cfg *Config, fc *fileConfig) {
	g := fc.Global
	if g == nil {
		g = &fileGlobal{}
	}
	if g.ServerStateBase != nil {
		cfg.Global.ServerStateBase = p.relative(*g.ServerStateBase)
	}
	under := func(name string) string {
		if filepath.IsAbs(name) {
			return name
		}
		if cfg.Global.ServerStateBase != "" {
			return filepath.Join(cfg.Global.ServerStateBase, name)
		}
		return p.relative(name)
	}
	if g.ServerStateFile != nil {
		cfg.Global.ServerStateFile = under(*g.ServerStateFile)
	}
	def := fc.Defaults
	if def == nil {
		def = &fileProxy{}
	}
	for _, be := range cfg.Backends {
		path := sectionPath(fc, "backends", be.Name)
		s := fc.Backends[be.Name]
		if s == nil {
			s = fc.Listen[be.Name]
		}
		if s == nil {
			s = &fileProxy{}
		}
		be.LoadServerState = LoadServerState(or("none", s.LoadServerState, def.LoadServerState))
		if be.LoadServerState == "none" {
			be.LoadServerState = LoadStateNone
		}
		where := path + ".load-server-state-from-file"
		if s.LoadServerState == nil {
			where = "defaults.load-server-state-from-file"
		}
		switch be.LoadServerState {
		case LoadStateGlobal:
			if cfg.Global.ServerStateFile == "" {
				p.at(where, "load-server-state-from-file global needs global.server-state-file")
			}
			be.StateFile = cfg.Global.ServerStateFile
		case LoadStateLocal:
			name := or(be.Name, s.ServerStateFileName)
			if name == "use-backend-name" {
				name = be.Name
			}
			be.StateFile = under(name)
		}
		if s.ServerStateFileName != nil && be.LoadServerState != LoadStateLocal {
			p.at(path+".server-state-file-name", "server-state-file-name is read only with load-server-state-from-file local (here: %s)", be.LoadServerState)
		}
	}
}

// String is the value as the file spells it.
func (l LoadServerState) String() string {
	if l == LoadStateNone {
		return "none"
	}
	return string(l)
}
