package config

import "fmt"

// backendSection is the file section a backend was written in: its
// backends entry, or its listen entry.
func backendSection(fc *fileConfig, name string) *fileProxy {
	if s, ok := fc.Listen[name]; ok {
		return s
	}
	return fc.Backends[name]
}

// buildBalance parses the backend's balance line (its own or the one it
// inherits from defaults) into be.Balance, and checks that it fits the
// backend: HTTP algorithms in mode http, "first" with maxconn.
func (p *parser) buildBalance(fc *fileConfig, be *Backend, path string) {
	section := backendSection(fc, be.Name)
	line, where := string(AlgoRoundRobin), ""
	if section != nil && section.Balance != nil {
		line, where = *section.Balance, path+".balance"
	} else if fc.Defaults != nil && fc.Defaults.Balance != nil {
		line, where = *fc.Defaults.Balance, "defaults.balance"
	}
	b, err := ParseBalance(line)
	if err != nil {
		off := 0
		if be, ok := err.(*BalanceError); ok {
			off = be.Off
		}
		p.atWord(where, off, "%v", err)
		return
	}
	be.Balance = b
	if b.Algorithm.HTTPOnly() && be.Mode != ModeHTTP {
		if where == "defaults.balance" {
			where = path
		}
		p.atWord(where, 0, "balance %s reads the HTTP request and needs mode http; this backend is in mode %s", b.Algorithm, be.Mode)
	}
	if b.Algorithm == AlgoFirst {
		for i, s := range be.Servers {
			if s.MaxConn == 0 && !s.Backup {
				p.at(fmt.Sprintf("%s.servers[%d]", path, i), "balance first needs maxconn on every server: %q has none, so it would take every connection", s.Name)
			}
		}
	}
}
