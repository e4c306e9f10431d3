package stats

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/internal/panics"
	"go.uber.org/zap"
)

// The runtime API on UNIX sockets, framed as HAProxy frames it: a client
// writes one line of commands separated by ";" and reads the answers, each
// ending with an empty line, until halo closes the connection; "prompt"
// makes the session interactive ("> " before each line, "quit" to leave),
// bounded by "stats timeout". Lines longer than MaxLine are refused and the
// connection closed; every write has a deadline, so a client that never
// reads holds nothing of halo's but its own goroutine, and only until the
// deadline.

// MaxLine is the longest command line a socket accepts, HAProxy's limit.
const MaxLine = 16 << 10

// writeTimeout bounds each write to a client (a variable for tests).
var writeTimeout = 10 * time.Second

// sockets are the listening runtime API sockets, by path. A reload that
// keeps a path keeps its listener and updates its mode and level.
type sockets struct {
	mu      sync.Mutex
	open    map[string]*socket
	timeout time.Duration
	// inherit and gate belong to binary upgrades (upgrade.go): the
	// listeners a previous process passed on, and, while not nil, a
	// channel the accept loops wait on before they accept.
	inherit func(path string) (*net.UnixListener, error)
	gate    chan struct{}
	// oneShot counts the sessions that have not turned interactive and
	// have not ended: those a handover waits for.
	oneShot sync.WaitGroup
}

type socket struct {
	ln    *net.UnixListener
	path  string
	mu    sync.Mutex
	level config.Level
	conns map[net.Conn]struct{}
	// slots bounds the sessions served at once (the socket's maxconn);
	// the accept loop takes one before it accepts, so that the others
	// wait in the kernel's backlog and a local client cannot use up
	// halo's file descriptors.
	slots chan struct{}
}

func (s *socket) getLevel() config.Level {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.level
}

// ServeSockets brings the listening sockets in line with cfg: new paths
// are listened on, removed ones closed, kept ones get the new level and
// mode. An error leaves what could be opened open and names the socket
// that could not.
func (s *Stats) ServeSockets(cfg config.Stats) error {
	ss := &s.sockets
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.open == nil {
		ss.open = map[string]*socket{}
	}
	ss.timeout = cfg.Timeout
	want := map[string]bool{}
	var errs []error
	for _, sc := range cfg.Sockets {
		want[sc.Path] = true
		if sock := ss.open[sc.Path]; sock != nil {
			sock.mu.Lock()
			sock.level = sc.Level
			sock.mu.Unlock()
			// A new maxconn applies from the next restart of halo: the
			// slots in use belong to the running sessions.
			if err := os.Chmod(sc.Path, sc.Mode); err != nil {
				errs = append(errs, fmt.Errorf("stats socket %s: %w", sc.Path, err))
			}
			continue
		}
		sock, err := ss.adopt(sc)
		if err == nil && sock == nil {
			sock, err = listenSocket(sc)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ss.open[sc.Path] = sock
		go s.accept(sock)
	}
	for path, sock := range ss.open {
		if !want[path] {
			sock.close()
			delete(ss.open, path)
		}
	}
	return errors.Join(errs...)
}

// listenSocket listens on the socket's path with its mode. A stale socket
// file left by a process that is gone is replaced; one that a running
// process answers on is not.
func listenSocket(sc config.StatsSocket) (*socket, error) {
	if fi, err := os.Lstat(sc.Path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("stats socket %s: the path exists and is not a socket", sc.Path)
		}
		if c, err := net.DialTimeout("unix", sc.Path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("stats socket %s: another process is listening on it", sc.Path)
		}
		_ = os.Remove(sc.Path)
	}
	// The socket is made under a temporary name and given its mode
	// before it takes its name, so that no one connects to it while it
	// still has the mode the umask gave it (HAProxy does the same).
	tmp := fmt.Sprintf("%s.%d.tmp", sc.Path, os.Getpid())
	_ = os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("stats socket %s: %w", sc.Path, err)
	}
	ln.SetUnlinkOnClose(false) // close removes it by its final name
	if err := os.Chmod(tmp, sc.Mode); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("stats socket %s: %w", sc.Path, err)
	}
	if err := os.Rename(tmp, sc.Path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("stats socket %s: %w", sc.Path, err)
	}
	return &socket{ln: ln, path: sc.Path, level: sc.Level, conns: map[net.Conn]struct{}{},
		slots: make(chan struct{}, max(1, sc.MaxConn))}, nil
}

// close stops listening, removes the socket file and ends its sessions.
func (sock *socket) close() {
	sock.ln.Close()
	os.Remove(sock.path)
	sock.mu.Lock()
	for c := range sock.conns {
		c.Close()
	}
	sock.mu.Unlock()
}

func (ss *sockets) closeAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for path, sock := range ss.open {
		sock.close()
		delete(ss.open, path)
	}
}

func (ss *sockets) idleTimeout() time.Duration {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.timeout
}

func (s *Stats) accept(sock *socket) {
	s.sockets.mu.Lock()
	gate := s.sockets.gate
	s.sockets.mu.Unlock()
	if gate != nil {
		<-gate
	}
	for {
		sock.slots <- struct{}{}
		c, err := sock.ln.Accept()
		if err != nil {
			<-sock.slots
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("stats socket accept failed", zap.String("socket", sock.path), zap.Error(err))
				time.Sleep(100 * time.Millisecond) // no busy loop on EMFILE
				continue
			}
			return
		}
		sock.mu.Lock()
		sock.conns[c] = struct{}{}
		sock.mu.Unlock()
		s.sockets.oneShot.Add(1)
		go func() {
			defer func() { <-sock.slots }()
			// A panic in a command ends its session, not the process:
			// counted and logged (package panics), the connection closed.
			defer func() {
				if r := recover(); r != nil {
					panics.Recovered(s.log, "panic in a runtime API session", r, zap.String("socket", sock.path))
				}
				c.Close()
				sock.mu.Lock()
				delete(sock.conns, c)
				sock.mu.Unlock()
			}()
			s.serveCLI(c, sock)
		}()
	}
}

// session is one client of the runtime API.
type session struct {
	s           *Stats
	sock        *socket // nil for commands that come from the page
	level       config.Level
	interactive bool
	timeout     time.Duration // idle timeout of an interactive session
	out         *bufio.Writer
	conn        io.Writer
	// counted is whether the session still counts in oneShot.
	counted bool
}

// notOneShot takes a socket session out of the sessions a handover waits
// for: it ended, or turned interactive.
func (sess *session) notOneShot() {
	if sess.sock != nil && sess.counted {
		sess.counted = false
		sess.s.sockets.oneShot.Done()
	}
}

// serveCLI runs the runtime API on one connection until the client
// leaves. Each command runs at the socket's level as it is then, so a
// reload that lowers it applies to sessions already open too.
func (s *Stats) serveCLI(c net.Conn, sock *socket) {
	sess := &session{s: s, sock: sock, counted: true, timeout: s.sockets.idleTimeout(), out: bufio.NewWriterSize(c, 8<<10), conn: c}
	defer sess.notOneShot()
	r := bufio.NewReaderSize(c, 4096)
	for {
		if sess.timeout > 0 {
			_ = c.SetReadDeadline(time.Now().Add(sess.timeout))
		} else {
			_ = c.SetReadDeadline(time.Now().Add(config.DefaultStatsTimeout))
		}
		line, err := readLine(r)
		if errors.Is(err, errLineTooLong) {
			_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
			fmt.Fprintf(sess.out, "Command line is too long: at most %d bytes are accepted.\n\n", MaxLine)
			_ = sess.out.Flush()
			return
		}
		if err != nil && len(line) == 0 {
			return
		}
		_ = c.SetWriteDeadline(time.Now().Add(writeTimeout))
		keep := sess.runLine(line)
		if sess.interactive && keep {
			sess.out.WriteString("> ")
		}
		if sess.out.Flush() != nil || !keep || !sess.interactive || err != nil {
			return
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line without its end (\n or \r\n), refusing one
// longer than MaxLine.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxLine+2 {
			return nil, errLineTooLong
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if len(line) > MaxLine {
				return nil, errLineTooLong
			}
			return line, err
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > MaxLine {
			return nil, errLineTooLong
		}
		return line, nil
	}
}

// runLine runs each command of a line and writes the answers; false means
// the session ends (quit).
func (sess *session) runLine(line []byte) bool {
	cmds, err := splitCommands(string(line))
	if err != nil {
		sess.out.WriteString(err.Error() + "\n\n")
		return true
	}
	for _, words := range cmds {
		if len(words) == 0 {
			continue
		}
		if !sess.run(words) {
			return false
		}
	}
	if len(cmds) == 0 || (len(cmds) == 1 && len(cmds[0]) == 0) {
		// An empty line: HAProxy answers with the end marker alone in
		// interactive mode, and leaves otherwise.
		if !sess.interactive {
			return false
		}
		sess.out.WriteString("\n")
	}
	return true
}

// run runs one command; false ends the session.
func (sess *session) run(words []string) bool {
	switch words[0] {
	case "quit":
		return false
	case "prompt":
		sess.interactive = !sess.interactive
		sess.notOneShot()
		sess.out.WriteString("\n")
		return true
	}
	if sess.sock != nil {
		sess.level = sess.sock.getLevel()
	}
	out := sess.s.Exec(words, sess.level, sess)
	sess.out.Write(out)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		sess.out.WriteByte('\n')
	}
	sess.out.WriteString("\n")
	return true
}

// splitCommands splits a line into commands at unescaped ";" and each
// command into words at spaces and tabs, as HAProxy's CLI does: a
// backslash makes the next character literal.
func splitCommands(line string) ([][]string, error) {
	var cmds [][]string
	var words []string
	var word []byte
	inWord := false
	endWord := func() {
		if inWord {
			words = append(words, string(word))
			word, inWord = word[:0], false
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\':
			if i+1 >= len(line) {
				return nil, errors.New("a backslash ends the line: there is nothing for it to escape")
			}
			i++
			word = append(word, line[i])
			inWord = true
		case c == ';':
			endWord()
			cmds = append(cmds, words)
			words = nil
		case c == ' ' || c == '\t':
			endWord()
		default:
			word = append(word, c)
			inWord = true
		}
	}
	endWord()
	cmds = append(cmds, words)
	return cmds, nil
}
