package proxy

import (
	"crypto/tls"
	"net"
	"sync"

	"go.uber.org/zap"
)

// sessionSet holds the established L4 sessions of one server, for
// "on-marked-down shutdown-sessions" and "on-marked-up
// shutdown-backup-sessions". Only servers that one of those options may
// reach have one, so other sessions pay nothing; a tracked session costs a
// lock to join and one to leave.
type sessionSet struct {
	mu       sync.Mutex
	sessions map[net.Conn]net.Conn // client → server connection
}

func newSessionSet() *sessionSet {
	return &sessionSet{sessions: map[net.Conn]net.Conn{}}
}

func (s *sessionSet) add(client net.Conn, server net.Conn) {
	s.mu.Lock()
	s.sessions[client] = server
	s.mu.Unlock()
}

func (s *sessionSet) remove(client net.Conn) {
	s.mu.Lock()
	delete(s.sessions, client)
	s.mu.Unlock()
}

// closeAll closes both connections of every session: the relay of each
// ends at once and the clients see their connection close, as with
// HAProxy's shutdown-sessions. It returns how many sessions it closed.
func (s *sessionSet) closeAll() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for client, server := range s.sessions {
		client.Close()
		if tc, ok := server.(*tls.Conn); ok {
			// The socket itself: tls.Conn's Close would first try to send
			// close_notify, for up to 5 s, under this lock.
			server = tc.NetConn()
		}
		server.Close()
	}
	return len(s.sessions)
}

// shutdownSessions closes the server's established sessions: its tracked
// L4 sessions and, in mode http, its idle kept-alive connections.
func (srv *server) shutdownSessions(why string) {
	n := 0
	if srv.sessions != nil {
		n = srv.sessions.closeAll()
	}
	if srv.http != nil {
		srv.http.CloseIdleConnections()
	}
	if n > 0 {
		srv.be.log.Info("sessions shut down", zap.String("backend", srv.be.cfg.Name), zap.String("server", srv.cfg.Name),
			zap.Int("sessions", n), zap.String("reason", why))
	}
}
