package stats

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/halo-lb/halo/config"
	"go.uber.org/zap"
)

// The runtime API's part in a binary upgrade. Its sockets pass to the new
// process, which takes them (Inherit) but holds its accept loops (Hold)
// until the old process has stopped answering (HandOver) and its counters
// have been added to the new one's; then Release. So a monitor polling
// show stat sees the old process's counters, then the new one's, which
// include them: never a smaller number. The "upgrade" command starts one.

// Upgrader starts a binary upgrade for the "upgrade" command and says how
// it went: the command answers once the new process serves, or has
// failed.
type Upgrader interface {
	Upgrade() string
}

type upgraderRef struct{ u atomic.Pointer[Upgrader] }

// SetUpgrader gives the runtime API its "upgrade" command.
func (s *Stats) SetUpgrader(u Upgrader) { s.upgrader.u.Store(&u) }

func init() {
	commands = append(commands, command{words: []string{"upgrade"}, level: config.LevelAdmin, usage: "upgrade",
		help: "start the binary at halo's path as a new process that takes over (halo's own; HAProxy has none)", run: cmdUpgrade})
}

func cmdUpgrade(s *Stats, _ *session, args []string) string {
	if len(args) > 0 {
		return "Usage: upgrade\n"
	}
	p := s.upgrader.u.Load()
	if p == nil {
		return "This process cannot be upgraded (it is not \"halo run\").\n"
	}
	return (*p).Upgrade()
}

// Inherit has the sockets opened from now on taken from a previous
// process: inherited returns the listener it passed on for a path, or
// nil. Call it before the first ServeSockets.
func (s *Stats) Inherit(inherited func(path string) (*net.UnixListener, error)) {
	s.sockets.mu.Lock()
	defer s.sockets.mu.Unlock()
	s.sockets.inherit = inherited
}

// Hold has the sockets' accept loops wait until Release: connections
// queue in the sockets' backlogs meanwhile.
func (s *Stats) Hold() {
	s.sockets.mu.Lock()
	defer s.sockets.mu.Unlock()
	if s.sockets.gate == nil {
		s.sockets.gate = make(chan struct{})
	}
}

// Release lets the accept loops that Hold stopped accept.
func (s *Stats) Release() {
	s.sockets.mu.Lock()
	defer s.sockets.mu.Unlock()
	if s.sockets.gate != nil {
		close(s.sockets.gate)
		s.sockets.gate = nil
	}
}

// PassedSocket is a listening runtime API socket for the next process.
type PassedSocket struct {
	Path     string
	Listener *net.UnixListener
}

// PassSockets returns the listening sockets, for a binary upgrade.
func (s *Stats) PassSockets() []PassedSocket {
	ss := &s.sockets
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]PassedSocket, 0, len(ss.open))
	for path, sock := range ss.open {
		out = append(out, PassedSocket{Path: path, Listener: sock.ln})
	}
	return out
}

// HandOver stops answering on the sockets once the next process listens
// on them: this process's listeners close (the socket files stay, the
// next process's now), and it waits, at most wait, for the sessions of
// one command each to end, so that no answer of this process leaves after
// the counters it hands over were read. Interactive sessions stay until
// this process exits.
func (s *Stats) HandOver(wait time.Duration) {
	ss := &s.sockets
	ss.mu.Lock()
	for path, sock := range ss.open {
		sock.ln.Close() // SetUnlinkOnClose(false): the file stays
		delete(ss.open, path)
	}
	ss.mu.Unlock()
	done := make(chan struct{})
	go func() {
		ss.oneShot.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(wait):
		s.log.Warn("runtime API sessions still running at the handover", zap.Duration("waited", wait))
	}
}

// adopt takes the socket a previous process passed on for sc's path, or
// returns nil: none was passed, or the one passed is not the socket the
// path names now (its file was replaced), which is then closed.
func (ss *sockets) adopt(sc config.StatsSocket) (*socket, error) {
	if ss.inherit == nil {
		return nil, nil
	}
	ln, err := ss.inherit(sc.Path)
	if err != nil || ln == nil {
		return nil, err
	}
	if !sameFile(ln, sc.Path) {
		ln.Close()
		return nil, nil
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(sc.Path, sc.Mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("stats socket %s: %w", sc.Path, err)
	}
	return &socket{ln: ln, path: sc.Path, level: sc.Level, conns: map[net.Conn]struct{}{},
		slots: make(chan struct{}, max(1, sc.MaxConn))}, nil
}

// sameFile reports whether ln is bound to path (under the temporary name
// listenSocket gives it before it takes its name) and a socket file is
// there. (Whether the file is still ln's own, not one made again after a
// reload removed and re-added the path, the kernel does not tell cheaply;
// ServeSockets keeps a path's socket across reloads, so only a failed
// upgrade followed by such a reload could pass on a stale one.)
func sameFile(ln *net.UnixListener, path string) bool {
	fi, err := os.Stat(path)
	bound := ln.Addr().String()
	return err == nil && fi.Mode()&os.ModeSocket != 0 &&
		(bound == path || strings.HasPrefix(bound, path+".") && strings.HasSuffix(bound, ".tmp"))
}

// IDs are the numbers show stat gives proxies (iid) and servers (sid), by
// name: a binary upgrade carries them, so that a tool keyed on them sees
// the same numbers in the new process.
type IDs struct {
	Proxies map[string]int `json:"proxies"`
	// Servers are by backend, then server.
	Servers map[string]map[string]int `json:"servers"`
}

// IDs returns the numbers given so far.
func (s *Stats) IDs() IDs {
	d := &s.ids
	d.mu.Lock()
	defer d.mu.Unlock()
	out := IDs{Proxies: map[string]int{}, Servers: map[string]map[string]int{}}
	for name, id := range d.proxies {
		out.Proxies[name] = id
	}
	for k, id := range d.servers {
		if out.Servers[k[0]] == nil {
			out.Servers[k[0]] = map[string]int{}
		}
		out.Servers[k[0]][k[1]] = id
	}
	return out
}

// SetIDs takes the numbers of a previous process, before any are given:
// the names it numbered keep their numbers, new ones get the next.
func (s *Stats) SetIDs(ids IDs) {
	d := &s.ids
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, id := range ids.Proxies {
		d.proxies[name] = id
		d.nextIID = max(d.nextIID, id+1)
	}
	for be, servers := range ids.Servers {
		for name, id := range servers {
			d.servers[[2]string{be, name}] = id
			d.nextSIDs[be] = max(d.nextSIDs[be], id)
		}
	}
}

// ProxyIDs numbers the proxies of cfg as show stat will (those a previous
// process numbered keep their numbers), for a start that matches a
// server-state file's lines by backend id.
func (s *Stats) ProxyIDs(cfg *config.Config) map[string]int {
	out := map[string]int{}
	for _, p := range s.proxies(cfg) {
		out[p.name] = p.iid
	}
	return out
}
