// Package config owns halo's configuration: the haproxy.cfg-shaped YAML
// schema, strict decoding with file:line:col positions, inheritance from the
// defaults section, and validation. It produces an immutable *Config snapshot
// and imports no other package of halo, so every runtime package can depend on
// it without ever seeing YAML.
package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/halo-lb/halo/config/lang"
)

// Mode is a proxy's protocol mode, as HAProxy's "mode" keyword.
type Mode string

// The modes a frontend or backend may run in.
const (
	ModeTCP  Mode = "tcp"
	ModeHTTP Mode = "http"
)

// HAProxy's defaults where the file sets nothing.
const (
	DefaultInter         = 2 * time.Second
	DefaultRise          = 2
	DefaultFall          = 3
	DefaultWeight        = 1
	DefaultRetries       = 3
	DefaultHardStopAfter = 30 * time.Second
	// HAProxy's defaults for tune.bufsize and tune.http.maxhdr.
	DefaultBufSize    = 16384
	DefaultHTTPMaxHdr = 101
	DefaultErrorLimit = 10
)

// Config is one validated, fully resolved configuration. It is never modified
// after Load returns, so it may be shared between goroutines freely.
type Config struct {
	// File is the path the configuration was read from ("" for Parse).
	File      string
	Global    Global
	Frontends []*Frontend // sorted by name
	Backends  []*Backend  // sorted by name
	// Cluster is the cluster section, nil when there is none.
	Cluster *Cluster
	// Maps are the map files that converters name, read at load, by
	// path as the rules hold it.
	Maps map[string][]MapEntry
	// Userlists are the userlist sections, by name (userlist.go).
	Userlists map[string]*Userlist
}

// Global holds process-wide settings.
type Global struct {
	// MaxConn bounds concurrent client connections over all frontends; 0
	// means "derive it from the file descriptor limit" at run time.
	MaxConn       int
	HardStopAfter time.Duration
	LogLevel      string
	// SpreadChecks is HAProxy's "spread-checks": each interval between
	// health checks is moved randomly by up to this many percent either
	// way (0 to 50; 0: exact intervals).
	SpreadChecks int
	// BufSize is HAProxy's tune.bufsize: the largest request head (and
	// trailer section) halo reads; a larger one is answered with 431.
	BufSize int
	// HTTPMaxHdr is tune.http.maxhdr: the most field lines in a request
	// head; more are answered with 431.
	HTTPMaxHdr int
	// Stats is the runtime API's sockets ("stats socket", "stats
	// timeout").
	Stats Stats
	// ServerStateFile is HAProxy's server-state-file, resolved against
	// server-state-base (server_state.go); "" when not set.
	ServerStateFile string `json:",omitempty"`
	// ServerStateBase is server-state-base, resolved; "" when not set.
	ServerStateBase string `json:",omitempty"`
}

// Frontend is a set of listening addresses and what to do with their traffic.
// A "listen" section becomes a Frontend and a Backend of the same name.
type Frontend struct {
	Name           string
	Binds          []Bind
	Mode           Mode
	MaxConn        int // 0: only the global limit applies
	DefaultBackend string
	Timeouts       Timeouts
	Options        Options
	// Stats is the stats page served on the frontend's binds, nil
	// without "stats enable".
	Stats *StatsPage
	// HTTPSRedirect is "https-redirect": the status (301, 302, 303, 307
	// or 308) that sends a request which came over plain TCP to the same
	// URL with https://; 0: none.
	HTTPSRedirect int
	// Rules are the frontend's (a listen section's) request language:
	// ACLs, rule sets, use_backend.
	Rules Rules
	// StickTable is the frontend's "stick-table", nil without one (a
	// listen section's table is its Backend's).
	StickTable *StickTable
	// ErrorPages are the responses halo sends for its own errors, by
	// status (errorfile, http-error): each a full raw HTTP response.
	ErrorPages map[int][]byte
	// MonitorURI is "monitor-uri": a request for exactly this URI is
	// answered 200 by halo ("" : none); MonitorFail are the "monitor
	// fail" conditions, any of which makes the answer 503.
	MonitorURI  string
	MonitorFail []*lang.Cond
	// UniqueIDFormat is "unique-id-format": each request's ID is made
	// from it (nil: none), and sent in the UniqueIDHeader field ("":
	// not sent).
	UniqueIDFormat *lang.Format
	UniqueIDHeader string
	// Captures are the frontend's capture slots in the file's order (the
	// capture lines', declare capture's and the capture ... len rules'),
	// and its capture cookie line (capture.go).
	Captures []Capture
}

// Backend is a pool of servers and how to balance and reach them.
type Backend struct {
	Name    string
	Mode    Mode
	Balance Balance
	// HashConsistent is "hash-type consistent"; false is map-based.
	HashConsistent bool
	// HashBalanceFactor is "hash-balance-factor": 0, or at least 100.
	HashBalanceFactor int
	Retries           int
	// RetryOn is what a request in mode http is retried after (HAProxy's
	// retry-on, retry_on.go); mode tcp only retries failed connections.
	RetryOn RetryOn
	// HTTPCheck is how servers are checked with "option httpchk"; nil
	// means TCP connect checks.
	HTTPCheck *HTTPCheck
	// TCPCheck is the "tcp-check" script of "option tcp-check"; nil means
	// a plain TCP connect check.
	TCPCheck []TCPStep
	// DBCheck is a database check (option mysql-check, pgsql-check,
	// galera-check, mysql-replica-check or pgsql-standby-check); nil
	// without one.
	DBCheck  *DBCheck
	Timeouts Timeouts
	Options  Options
	Servers  []Server
	// Rules are a backend's own ACLs and rule sets (a listen section's
	// are its frontend's).
	Rules Rules
	// StickTable is the backend's "stick-table", nil without one.
	StickTable *StickTable
	// Cookie is cookie persistence ("cookie"), nil without; Persist
	// its force-persist and ignore-persist conditions, nil without.
	Cookie  *Cookie
	Persist *Persist
	// ErrorPages are as a Frontend's; a backend's page for a status wins
	// over its frontend's, as in HAProxy.
	ErrorPages map[int][]byte
	// LoadServerState is load-server-state-from-file: where the
	// backend's servers take their state from when halo starts
	// (server_state.go); StateFile is the file that names, resolved.
	LoadServerState LoadServerState `json:",omitempty"`
	StateFile       string          `json:",omitempty"`
}

// Server is one backend server.
type Server struct {
	Name     string
	Address  string
	Weight   int
	Backup   bool
	Disabled bool
	Check    bool
	// CheckPort is the port health checks connect to; 0 means the
	// server's own port.
	CheckPort int
	// CheckAddr is the address health checks connect to; "" means the
	// server's own.
	CheckAddr string
	// Inter is the interval between checks of a server that is UP and
	// passed its last check; FastInter applies while it is rising or
	// falling, DownInter while it is DOWN. Both default to Inter.
	Inter     time.Duration
	FastInter time.Duration
	DownInter time.Duration
	// Agent is the server's agent-check, nil without one.
	Agent *Agent
	// ShutdownOnDown is "on-marked-down shutdown-sessions": when a check
	// marks the server DOWN, its established sessions are closed at once,
	// so clients reconnect to another server.
	ShutdownOnDown bool
	// ShutdownBackupsOnUp is "on-marked-up shutdown-backup-sessions": when
	// a check marks this (non-backup) server UP, the sessions on the
	// backend's backup servers are closed, so traffic comes back to it.
	ShutdownBackupsOnUp bool
	Rise                int
	Fall                int
	// MaxConn is the most sessions the server takes at once (0: no
	// limit); MaxQueue the most that may wait for it (0: no limit).
	MaxConn   int
	MaxQueue  int
	SlowStart time.Duration
	// Observe is the passive check ("" for none): ErrorLimit consecutive
	// errors seen in live traffic trigger OnError.
	Observe    Observe
	ErrorLimit int
	OnError    OnError
	// TLS is how traffic to the server is ciphered ("ssl"), nil for
	// plain TCP; CheckTLS the same for health checks ("check-ssl", or
	// "ssl" without port or addr), nil for plain checks.
	TLS      *ServerTLS
	CheckTLS *ServerTLS
	// SendProxy is the PROXY protocol header sent ahead of traffic,
	// CheckSendProxy the one sent ahead of health checks.
	SendProxy      ProxyProtocol
	CheckSendProxy ProxyProtocol
	// Cookie is the persistence cookie's value that brings a client
	// back to this server ("" : none, the server gets no persistence).
	Cookie string
}

// DBCheck is a database health check.
type DBCheck struct {
	Kind     DBKind
	User     string
	Password Secret
	// Database is the PostgreSQL database to connect to ("" : the user's).
	Database string
	// AllowDonor keeps a Galera node in state 2 (Donor/Desynced) UP
	// while it serves an SST, unless wsrep_sst_donor_rejects_queries is
	// on; AllowReadOnly keeps a node with read_only=ON UP.
	AllowDonor    bool
	AllowReadOnly bool
	// MaxRecvQueue is the most write sets a Galera node may have waiting
	// to be applied (wsrep_local_recv_queue) before it counts as lagging;
	// 0: no bound.
	MaxRecvQueue int
	// MaxLag is how far a replica may be behind before it counts as
	// lagging.
	MaxLag time.Duration
	// Heartbeat is "schema.table.column" of a timestamp (UTC, DATETIME(6))
	// that a writer keeps updating on the primary; "" reads only
	// Seconds_Behind_Master.
	Heartbeat string
	// DrainOnLag drains a lagging server (no new sessions; established
	// ones go on) instead of marking it DOWN ("on-lag drain").
	DrainOnLag bool
}

// Secret is a credential. It prints, logs and marshals as "<redacted>", so
// that it reaches no log or dump by accident; Reveal returns it.
type Secret string

const redacted = "<redacted>"

// Reveal returns the secret itself, for the one place that sends it.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the secret.
func (s Secret) GoString() string { return s.String() }

// MarshalText keeps encoders (JSON, zap) from writing the secret.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Timeouts are HAProxy's "timeout" values; zero means no timeout.
type Timeouts struct {
	Connect       time.Duration
	Client        time.Duration
	Server        time.Duration
	Tunnel        time.Duration
	Check         time.Duration
	HTTPRequest   time.Duration
	HTTPKeepAlive time.Duration
	// Queue is how long a session may wait for a server slot; unset, it
	// is the connect timeout, as in HAProxy.
	Queue time.Duration
}

// Options are HAProxy's boolean "option" keywords.
type Options struct {
	TCPKA    bool
	CliTCPKA bool
	SrvTCPKA bool
	// ForwardFor is "option forwardfor", with its arguments in XFF;
	// OriginalTo is "option originalto", with its arguments in XOT.
	ForwardFor bool
	XFF        ForwardHeader
	OriginalTo bool
	XOT        ForwardHeader
	// XForwardedProto is "option x-forwarded-proto": requests get
	// X-Forwarded-Proto (https on an ssl bind, else http) and
	// X-Forwarded-Port (the bind's port), replacing any the client sent.
	XForwardedProto bool
	// SSLClientHeaders is "option ssl-client-headers": requests get
	// X-SSL-Client-Used, -Verify, -S-DN, -I-DN, -CN, -Serial and
	// -NotAfter from the client certificate (HAProxy's ssl_c_* fetches),
	// replacing any the client sent.
	SSLClientHeaders bool
	HTTPLog          bool
	TCPLog           bool
	Redispatch       bool
	// Persist is "option persist": a client's persistence cookie keeps
	// it on its server even while the server is DOWN.
	Persist    bool
	AllBackups bool
	// ConnMode is option http-keep-alive, http-server-close or
	// httpclose; PretendKeepalive is http-pretend-keepalive (the server
	// is not told that its connection will close); BufferRequest is
	// http-buffer-request.
	ConnMode         ConnMode
	PretendKeepalive bool
	BufferRequest    bool
	HTTPChk          bool
	TCPCheck         bool
	RedisCheck       bool
}

// Agent is a server's "agent-check": a small program on the server that
// answers, in HAProxy's agent protocol, with a weight, a state or a maxconn.
type Agent struct {
	Port  int
	Addr  string // "" means the server's address
	Inter time.Duration
	Send  string
}

// TCPStep is one "tcp-check" rule.
type TCPStep struct {
	Action TCPAction
	// Port is connect's port; 0 means the check port.
	Port int
	// Data is what send writes, or what expect looks for with "string"
	// and "binary" (binary already decoded from hex).
	Data []byte
	// Regexp is expect's "rstring" pattern; nil for string and binary.
	Regexp *regexp.Regexp `json:"-"`
	// Pattern is expect's pattern as written, for messages.
	Pattern string
	// Not inverts expect.
	Not bool
}

// HTTPCheck is "option httpchk" with its "http-check send" and
// "http-check expect".
type HTTPCheck struct {
	Method  string
	URI     string
	Version string
	Headers [][2]string // sorted by name
	Expect  HTTPExpect
}

// HTTPExpect is what a check response must show. Without an expect line, a
// 2xx or 3xx status passes, as in HAProxy.
type HTTPExpect struct {
	// Kind is how the response is matched; "" is the default 2xx/3xx
	// rule.
	Kind    ExpectKind
	Pattern string
	// Not inverts the match ("http-check expect ! ...").
	Not bool
	// StatusRanges are the codes of "status", as inclusive ranges.
	StatusRanges [][2]int
	// Regexp is the compiled pattern of "rstatus" and "rstring".
	Regexp *regexp.Regexp `json:"-"`
}

// Backend returns the backend called name, or nil.
func (c *Config) Backend(name string) *Backend {
	i, ok := slices.BinarySearchFunc(c.Backends, name, func(b *Backend, n string) int { return strings.Compare(b.Name, n) })
	if !ok {
		return nil
	}
	return c.Backends[i]
}

// Error is one problem in a configuration file, with where it is.
type Error struct {
	File string
	Line int
	Col  int
	Path string // key path, e.g. backends.keystone.servers[1].address
	Msg  string
}

func (e *Error) Error() string {
	file := e.File
	if file == "" {
		file = "<config>"
	}
	if e.Path == "" {
		return fmt.Sprintf("%s:%d:%d: %s", file, e.Line, e.Col, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", file, e.Line, e.Col, e.Path, e.Msg)
}

// ErrorList is every problem found in one file, in file order.
type ErrorList []*Error

func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Errors returns the positioned errors inside err, or nil if it holds none.
func Errors(err error) ErrorList {
	var l ErrorList
	if errors.As(err, &l) {
		return l
	}
	var e *Error
	if errors.As(err, &e) {
		return ErrorList{e}
	}
	return nil
}

// Load reads, decodes, resolves and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	return Parse(path, data)
}
