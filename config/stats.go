package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Level is what a stats socket lets its clients do, as HAProxy's "level".
type Level int

// The levels, each allowing what the one before it does and more: user
// reads, operator also clears counters and changes weights, admin may do
// everything.
const (
	LevelUser Level = iota
	LevelOperator
	LevelAdmin
)

func (l Level) String() string {
	switch l {
	case LevelOperator:
		return "operator"
	case LevelAdmin:
		return "admin"
	default:
		return "user"
	}
}

// HAProxy's defaults for the stats keywords halo has.
const (
	DefaultStatsTimeout = 10 * time.Second
	DefaultStatsURI     = "/haproxy?stats"
	DefaultStatsRealm   = "halo statistics"
	DefaultSocketMode   = 0o600
	// DefaultSocketMaxConn is how many sessions a stats socket serves at
	// once, as HAProxy's default for a stats socket's maxconn.
	DefaultSocketMaxConn = 10
)

// StatsSocket is one "stats socket" line: a UNIX socket serving the
// runtime API.
type StatsSocket struct {
	Path  string
	Mode  os.FileMode // the socket file's permission bits
	Level Level
	// MaxConn is how many sessions it serves at once; more wait in the
	// kernel's backlog.
	MaxConn int
}

// Stats holds the process-wide stats settings.
type Stats struct {
	Sockets []StatsSocket
	// Timeout is how long an interactive session may stay idle.
	Timeout time.Duration
}

// AdminSocket returns the first socket with level admin, or nil.
func (s Stats) AdminSocket() *StatsSocket {
	for i := range s.Sockets {
		if s.Sockets[i].Level == LevelAdmin {
			return &s.Sockets[i]
		}
	}
	return nil
}

// StatsPage is a frontend's "stats enable" and its settings: the HTTP
// stats page (and halo's Prometheus endpoint) served on its binds.
type StatsPage struct {
	URI   string // requests whose URI starts with it get the page
	Realm string
	// Users may log in with basic auth; none means the page is open.
	Users   []StatsUser
	Refresh time.Duration // 0: the page does not reload itself
	// Admin lets logged-in users change server state from the page; it
	// requires Users.
	Admin       bool
	HideVersion bool
	// Prometheus is the path of the metrics endpoint, "" for none.
	Prometheus string
}

// StatsUser is one "stats auth USER:PASSWORD".
type StatsUser struct {
	Name     string
	Password Secret
}

// buildGlobalStats checks and converts the stats sockets.
func (p *parser) buildGlobalStats(cfg *Config, fc *fileConfig) {
	cfg.Global.Stats.Timeout = DefaultStatsTimeout
	if fc.Global == nil || fc.Global.Stats == nil {
		return
	}
	fs := fc.Global.Stats
	cfg.Global.Stats.Timeout = dur(DefaultStatsTimeout, fs.Timeout)
	seen := map[string]bool{}
	for i, sock := range fs.Socket {
		path := fmt.Sprintf("global.stats.socket[%d]", i)
		if sock == nil || sock.Path == nil || *sock.Path == "" {
			p.at(path, "a stats socket needs a path")
			continue
		}
		s := StatsSocket{Path: *sock.Path, Mode: DefaultSocketMode, Level: LevelOperator, MaxConn: or(DefaultSocketMaxConn, sock.MaxConn)}
		if !filepath.IsAbs(s.Path) {
			p.at(path+".path", "socket path %q is not absolute", s.Path)
		} else if st, err := os.Stat(filepath.Dir(s.Path)); err != nil || !st.IsDir() {
			p.at(path+".path", "directory %s of the socket does not exist", filepath.Dir(s.Path))
		}
		if seen[s.Path] {
			p.at(path+".path", "socket %s is listed twice", s.Path)
		}
		seen[s.Path] = true
		if sock.Mode != nil {
			m, err := strconv.ParseUint(*sock.Mode, 8, 32)
			if err != nil || m > 0o777 {
				p.at(path+".mode", "mode %q is not octal permission bits such as \"0600\"", *sock.Mode)
			}
			s.Mode = os.FileMode(m)
		}
		// As in HAProxy, a socket without a level is operator's.
		switch or("operator", sock.Level) {
		case "user":
			s.Level = LevelUser
		case "admin":
			s.Level = LevelAdmin
		}
		cfg.Global.Stats.Sockets = append(cfg.Global.Stats.Sockets, s)
	}
}

// buildStatsPages checks and converts every frontend's stats page.
func (p *parser) buildStatsPages(cfg *Config, fc *fileConfig) {
	for _, fe := range cfg.Frontends {
		path := sectionPath(fc, "frontends", fe.Name)
		s := fc.Frontends[fe.Name]
		if s == nil {
			s = fc.Listen[fe.Name]
		}
		if s == nil || s.Stats == nil || !or(false, s.Stats.Enable) {
			continue
		}
		fs := s.Stats
		path += ".stats"
		if fe.Mode != ModeHTTP {
			p.at(path+".enable", "the stats page needs mode http; this section is in mode %s", fe.Mode)
		}
		page := &StatsPage{
			URI:         or(DefaultStatsURI, fs.URI),
			Realm:       or(DefaultStatsRealm, fs.Realm),
			Refresh:     dur(0, fs.Refresh),
			Admin:       or(false, fs.Admin),
			HideVersion: or(false, fs.HideVersion),
			Prometheus:  or("", fs.Prometheus),
		}
		for i, a := range fs.Auth {
			u, err := parseStatsUser(a)
			if err != nil {
				p.at(fmt.Sprintf("%s.auth[%d]", path, i), "%v", err)
				continue
			}
			page.Users = append(page.Users, u)
		}
		if fs.PasswordFile != nil {
			users, err := readStatsUsers(*fs.PasswordFile)
			if err != nil {
				p.at(path+".password-file", "%v", err)
			}
			page.Users = append(page.Users, users...)
		}
		if page.Admin && len(page.Users) == 0 {
			p.at(path+".admin", "admin lets the page change server state: it needs auth (or password-file) so that only logged-in users can")
		}
		if page.Prometheus != "" && strings.HasPrefix(page.Prometheus, page.URI) {
			p.at(path+".prometheus", "%q is inside the page's uri %q: pick a path the page does not answer", page.Prometheus, page.URI)
		}
		fe.Stats = page
	}
}

func parseStatsUser(a string) (StatsUser, error) {
	name, pass, ok := strings.Cut(a, ":")
	if !ok {
		return StatsUser{}, fmt.Errorf("%q has no colon: write USER:PASSWORD", redactAfter(a))
	}
	if name == "" {
		return StatsUser{}, fmt.Errorf("the user name before the colon is empty")
	}
	return StatsUser{Name: name, Password: Secret(pass)}, nil
}

// redactAfter keeps a mistyped credential's first characters only, so a
// password written without its user does not reach a log whole.
func redactAfter(s string) string {
	if len(s) > 3 {
		return s[:3] + "…"
	}
	return s
}

// readStatsUsers reads a password-file: one USER:PASSWORD per line, blank
// lines and lines starting with # ignored. Its errors name the line.
func readStatsUsers(file string) ([]StatsUser, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading password-file: %w", err)
	}
	var users []StatsUser
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, err := parseStatsUser(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", file, n, err)
		}
		users = append(users, u)
	}
	return users, nil
}
