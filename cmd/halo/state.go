package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/proxy"
	"github.com/halo-lb/halo/serverstate"
	"github.com/halo-lb/halo/stats"
	"go.uber.org/zap"
)

// Server-state files: read at start for the backends whose
// load-server-state-from-file asks (HAProxy's rules, in serverstate and
// proxy), written before a binary upgrade and at a stop.

// loadServerState reads the server-state files cfg's backends ask for and
// returns the lines that apply to their servers. Every bad line is logged
// with its FILE:LINE and skipped, a missing file is a warning (the first
// start has none), as HAProxy warns; nothing here stops halo from
// starting.
func loadServerState(cfg *config.Config, ids map[string]int, log *zap.Logger) *proxy.Carried {
	files := map[string]*serverstate.File{}
	read := func(path string) *serverstate.File {
		if f, ok := files[path]; ok {
			return f
		}
		f, errs := serverstate.ReadFile(path)
		for _, err := range errs {
			if errors.Is(err, fs.ErrNotExist) {
				log.Warn("no server state file to load; servers start with the configuration's state", zap.String("file", path))
			} else {
				log.Error("server state file: line not loaded", zap.String("error", err.Error()))
			}
		}
		files[path] = f
		return f
	}
	out := &proxy.Carried{Servers: map[[2]string]serverstate.Line{}}
	for _, be := range cfg.Backends {
		if be.LoadServerState == config.LoadStateNone {
			continue
		}
		f := read(be.StateFile)
		if f == nil {
			continue
		}
		var lines map[string]serverstate.Line
		if be.LoadServerState == config.LoadStateGlobal {
			lines = map[string]serverstate.Line{}
			for k, l := range f.Global() {
				if k[0] == be.Name {
					lines[k[1]] = l
				}
			}
		} else {
			var notes []string
			lines, notes = f.Local(be.Name, ids[be.Name])
			for _, n := range notes {
				log.Warn("server state file: " + n)
			}
		}
		for name, l := range lines {
			if !hasServer(be, name) {
				log.Warn("server state file names a server the backend does not have", zap.String("line", l.Where),
					zap.String("backend", be.Name), zap.String("server", name))
				continue
			}
			out.Servers[[2]string{be.Name, name}] = l
		}
	}
	if n := len(out.Servers); n > 0 {
		log.Info("server state loaded", zap.Int("servers", n))
	}
	return out
}

func hasServer(be *config.Backend, name string) bool {
	for i := range be.Servers {
		if be.Servers[i].Name == name {
			return true
		}
	}
	return false
}

// writeServerState writes the state of every server to the global
// server-state-file and that of each backend with
// load-server-state-from-file local to its own file, when the
// configuration names them, so that the next start finds them. Each file
// is written whole under a temporary name and renamed into place, so a
// reader never sees half of one.
func writeServerState(cfg *config.Config, st *stats.Stats, log *zap.Logger) {
	if cfg.Global.ServerStateFile != "" {
		writeStateFile(cfg.Global.ServerStateFile, st.ServersState(""), log)
	}
	for _, be := range cfg.Backends {
		if be.LoadServerState == config.LoadStateLocal {
			writeStateFile(be.StateFile, st.ServersState(be.Name), log)
		}
	}
}

func writeStateFile(path string, data []byte, log *zap.Logger) {
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	err := os.WriteFile(tmp, data, 0o600)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		log.Error("cannot write the server state file", zap.String("file", path), zap.Error(err))
		return
	}
	log.Info("server state written", zap.String("file", filepath.Clean(path)))
}
