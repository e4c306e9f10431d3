package config

// The types in this file mirror the YAML file as written: optional values are
// pointers so that "not set" can be told apart from "set to the zero value"
// during defaults inheritance. Nothing outside this package sees them.

type fileConfig struct {
	Global    *fileGlobal           `yaml:"global"`
	Defaults  *fileProxy            `yaml:"defaults"`
	Frontends map[string]*fileProxy `yaml:"frontends" validate:"dive"`
	Backends  map[string]*fileProxy `yaml:"backends" validate:"dive"`
	Listen    map[string]*fileProxy `yaml:"listen" validate:"dive"`
	Cluster   *fileCluster          `yaml:"cluster"`
	// Userlists are HAProxy's userlist sections (userlist.go).
	Userlists map[string]*fileUserlist `yaml:"userlists"`
}

type fileGlobal struct {
	MaxConn       *int             `yaml:"maxconn" validate:"omitempty,min=1"`
	HardStopAfter *Duration        `yaml:"hard-stop-after"`
	LogLevel      *string          `yaml:"log-level" validate:"omitempty,oneof=debug info warn error"`
	SpreadChecks  *int             `yaml:"spread-checks" validate:"omitempty,min=0,max=50"`
	Tune          *fileTune        `yaml:"tune"`
	Stats         *fileGlobalStats `yaml:"stats"`
	// HAProxy's ssl-default-bind-* (bind_tls.go).
	SSLBindCiphers *string `yaml:"ssl-default-bind-ciphers" validate:"omitempty,min=1"`
	SSLBindSuites  *string `yaml:"ssl-default-bind-ciphersuites" validate:"omitempty,min=1"`
	SSLBindOptions *string `yaml:"ssl-default-bind-options"`
	// HAProxy's defaults for the TLS of every server line.
	SSLServerVerify              *string `yaml:"ssl-server-verify" validate:"omitempty,oneof=none required"`
	SSLDefaultServerCiphers      *string `yaml:"ssl-default-server-ciphers" validate:"omitempty,min=1"`
	SSLDefaultServerCipherSuites *string `yaml:"ssl-default-server-ciphersuites" validate:"omitempty,min=1"`
	SSLDefaultServerOptions      *string `yaml:"ssl-default-server-options" validate:"omitempty,min=1"`
	// HAProxy's server-state-file and server-state-base (server_state.go).
	ServerStateFile *string `yaml:"server-state-file" validate:"omitempty,min=1"`
	ServerStateBase *string `yaml:"server-state-base" validate:"omitempty,min=1"`
}

// fileGlobalStats is HAProxy's "stats socket" lines and "stats timeout".
type fileGlobalStats struct {
	Socket  []*fileStatsSocket `yaml:"socket" validate:"dive"`
	Timeout *Duration          `yaml:"timeout" validate:"omitempty,min=1"`
}

type fileStatsSocket struct {
	Path    *string `yaml:"path"`
	Mode    *string `yaml:"mode"`
	Level   *string `yaml:"level" validate:"omitempty,oneof=user operator admin"`
	MaxConn *int    `yaml:"maxconn" validate:"omitempty,min=1,max=10000"`
}

// fileStats is a proxy's "stats ..." lines: the HTTP stats page.
type fileStats struct {
	Enable       *bool     `yaml:"enable"`
	URI          *string   `yaml:"uri" validate:"omitempty,startswith=/"`
	Realm        *string   `yaml:"realm" validate:"omitempty,min=1,max=256"`
	Auth         []string  `yaml:"auth"`
	PasswordFile *string   `yaml:"password-file" validate:"omitempty,min=1"`
	Refresh      *Duration `yaml:"refresh" validate:"omitempty,min=1"`
	Admin        *bool     `yaml:"admin"`
	HideVersion  *bool     `yaml:"hide-version"`
	Prometheus   *string   `yaml:"prometheus" validate:"omitempty,startswith=/"`
}

// fileTune is HAProxy's tune.* settings that halo has.
type fileTune struct {
	BufSize    *int `yaml:"bufsize" validate:"omitempty,min=1024,max=1048576"`
	HTTPMaxHdr *int `yaml:"http-maxhdr" validate:"omitempty,min=1,max=32767"`
}

// fileProxy holds the keys of every proxy section. Which keys a section may
// use is checked by sectionKeys, so that a frontend given "servers" gets an
// error naming the key rather than silently ignoring it.
type fileProxy struct {
	Bind           []*fileBind    `yaml:"bind"`
	Mode           *Mode          `yaml:"mode"`
	MaxConn        *int           `yaml:"maxconn" validate:"omitempty,min=1"`
	DefaultBackend *string        `yaml:"default_backend"`
	Balance        *string        `yaml:"balance"`
	HashType       *string        `yaml:"hash-type" validate:"omitempty,oneof=map-based consistent"`
	HashFactor     *int           `yaml:"hash-balance-factor" validate:"omitempty,min=100,max=65535"`
	Retries        *int           `yaml:"retries" validate:"omitempty,min=0,max=100"`
	RetryOn        *string        `yaml:"retry-on"`
	Timeout        *fileTimeout   `yaml:"timeout"`
	Option         *fileOptions   `yaml:"option"`
	HTTPCheck      *fileHTTPCheck `yaml:"http-check"`
	TCPCheck       []*fileTCPStep `yaml:"tcp-check" validate:"dive"`
	DefaultServer  *fileServer    `yaml:"default-server"`
	Servers        []*fileServer  `yaml:"servers" validate:"dive"`
	Stats          *fileStats     `yaml:"stats"`
	// HTTPSRedirect is "redirect scheme https code N unless { ssl_fc }"
	// in one key.
	HTTPSRedirect *int `yaml:"https-redirect" validate:"omitempty,oneof=301 302 303 307 308"`
	// The request language (rules.go): HAProxy's lines as strings.
	ACL          map[string][]string `yaml:"acl"`
	HTTPRequest  []string            `yaml:"http-request"`
	HTTPResponse []string            `yaml:"http-response"`
	TCPRequest   []string            `yaml:"tcp-request"`
	Redirect     []string            `yaml:"redirect"`
	UseBackend   []string            `yaml:"use_backend"`
	Stick        []string            `yaml:"stick"`
	// StickTable is HAProxy's stick-table line as written
	// (stick_table.go).
	StickTable *string `yaml:"stick-table"`
	// Cookie persistence (cookie.go): the cookie line as HAProxy's
	// words, and the conditions that force or ignore persistence.
	Cookie        *string  `yaml:"cookie"`
	ForcePersist  []string `yaml:"force-persist"`
	IgnorePersist []string `yaml:"ignore-persist"`
	// Error pages and the monitor URI (errorpages.go): errorfile maps a
	// status to a raw HTTP response file, http-error defines one inline.
	ErrorFile  map[string]string `yaml:"errorfile"`
	HTTPError  []string          `yaml:"http-error"`
	MonitorURI *string           `yaml:"monitor-uri" validate:"omitempty,startswith=/"`
	Monitor    []string          `yaml:"monitor"`
	// Capture is HAProxy's "capture request header", "capture response
	// header" and "capture cookie" lines.
	Capture []string `yaml:"capture"`
	// Declare is HAProxy's "declare capture request|response len N"
	// (capture.go).
	Declare []string `yaml:"declare"`
	// The request's unique ID (unique_id.go): HAProxy's
	// unique-id-format, as one word of its line, and unique-id-header.
	UniqueIDFormat *string `yaml:"unique-id-format"`
	UniqueIDHeader *string `yaml:"unique-id-header"`
	// Server state at start (server_state.go): HAProxy's
	// load-server-state-from-file and server-state-file-name.
	LoadServerState     *string `yaml:"load-server-state-from-file" validate:"omitempty,oneof=global local none"`
	ServerStateFileName *string `yaml:"server-state-file-name" validate:"omitempty,min=1"`
}

// fileBind is one entry of "bind": a mapping, or a plain string that is its
// address (see shorthandKey).
type fileBind struct {
	Address     *string `yaml:"address"`
	V4V6        *bool   `yaml:"v4v6"`
	V6Only      *bool   `yaml:"v6only"`
	Interface   *string `yaml:"interface"`
	Transparent *bool   `yaml:"transparent"`
	FreeBind    *bool   `yaml:"freebind"`
	// TLS termination (bind_tls.go).
	SSL          *bool    `yaml:"ssl"`
	Crt          []string `yaml:"crt" validate:"dive,min=1"`
	SSLMinVer    *string  `yaml:"ssl-min-ver"`
	SSLMaxVer    *string  `yaml:"ssl-max-ver"`
	Ciphers      *string  `yaml:"ciphers" validate:"omitempty,min=1"`
	CipherSuites *string  `yaml:"ciphersuites" validate:"omitempty,min=1"`
	ALPN         *string  `yaml:"alpn" validate:"omitempty,min=1"`
	Verify       *string  `yaml:"verify" validate:"omitempty,oneof=none optional required"`
	CAFile       *string  `yaml:"ca-file" validate:"omitempty,min=1"`
	CRLFile      *string  `yaml:"crl-file" validate:"omitempty,min=1"`
	NoTLSTickets *bool    `yaml:"no-tls-tickets"`
	StrictSNI    *bool    `yaml:"strict-sni"`
	// The PROXY protocol.
	AcceptProxy     *bool    `yaml:"accept-proxy"`
	AcceptProxyFrom []string `yaml:"accept-proxy-from"`
}

type fileTimeout struct {
	Connect       *Duration `yaml:"connect"`
	Client        *Duration `yaml:"client"`
	Server        *Duration `yaml:"server"`
	Tunnel        *Duration `yaml:"tunnel"`
	Check         *Duration `yaml:"check"`
	HTTPRequest   *Duration `yaml:"http-request"`
	HTTPKeepAlive *Duration `yaml:"http-keep-alive"`
	Queue         *Duration `yaml:"queue"`
}

type fileOptions struct {
	TCPKA    *bool `yaml:"tcpka"`
	CliTCPKA *bool `yaml:"clitcpka"`
	SrvTCPKA *bool `yaml:"srvtcpka"`
	// ForwardFor and OriginalTo take true or HAProxy's arguments as a
	// mapping (forwardfor.go).
	ForwardFor *fileForwardFor `yaml:"forwardfor"`
	OriginalTo *fileForwardFor `yaml:"originalto"`
	// XForwardedProto sets X-Forwarded-Proto and X-Forwarded-Port (a
	// halo option: HAProxy spells it as two http-request set-header
	// rules).
	XForwardedProto *bool `yaml:"x-forwarded-proto"`
	// SSLClientHeaders passes the client certificate's facts on (a halo
	// option: HAProxy spells it as http-request set-header rules).
	SSLClientHeaders *bool `yaml:"ssl-client-headers"`
	HTTPLog          *bool `yaml:"httplog"`
	TCPLog           *bool `yaml:"tcplog"`
	Redispatch       *bool `yaml:"redispatch"`
	Persist          *bool `yaml:"persist"`
	// HTTP connection modes (http_modes.go).
	HTTPKeepAlive        *bool `yaml:"http-keep-alive"`
	HTTPServerClose      *bool `yaml:"http-server-close"`
	HTTPClose            *bool `yaml:"httpclose"`
	HTTPPretendKeepalive *bool `yaml:"http-pretend-keepalive"`
	HTTPBufferRequest    *bool `yaml:"http-buffer-request"`
	AllBackups           *bool `yaml:"allbackups"`
	HTTPChk              *bool `yaml:"httpchk"`
	TCPCheck             *bool `yaml:"tcp-check"`
	RedisCheck           *bool `yaml:"redis-check"`
	// The database checks take their settings as a mapping; which keys
	// each accepts is checked by dbCheckKeys.
	MySQLCheck        *fileDBCheck `yaml:"mysql-check"`
	PgSQLCheck        *fileDBCheck `yaml:"pgsql-check"`
	GaleraCheck       *fileDBCheck `yaml:"galera-check"`
	MySQLReplicaCheck *fileDBCheck `yaml:"mysql-replica-check"`
	PgSQLStandbyCheck *fileDBCheck `yaml:"pgsql-standby-check"`
}

// fileDBCheck holds the settings of every database check.
type fileDBCheck struct {
	User          *string   `yaml:"user" validate:"omitempty,min=1,max=256"`
	Password      *string   `yaml:"password"`
	PasswordFile  *string   `yaml:"password-file" validate:"omitempty,min=1"`
	Database      *string   `yaml:"database" validate:"omitempty,min=1,max=256"`
	AllowDonor    *bool     `yaml:"allow-donor"`
	AllowReadOnly *bool     `yaml:"allow-read-only"`
	MaxRecvQueue  *int      `yaml:"max-recv-queue" validate:"omitempty,min=1"`
	MaxLag        *Duration `yaml:"max-lag" validate:"omitempty,min=1"`
	Heartbeat     *string   `yaml:"heartbeat"`
	OnLag         *string   `yaml:"on-lag" validate:"omitempty,oneof=down drain"`
}

// Which keys each database check accepts.
var dbCheckKeys = map[DBKind]map[string]bool{
	DBMySQL:        set("user"),
	DBPgSQL:        set("user"),
	DBGalera:       set("user", "password", "password-file", "allow-donor", "allow-read-only", "max-recv-queue", "on-lag"),
	DBMySQLReplica: set("user", "password", "password-file", "max-lag", "heartbeat", "on-lag"),
	DBPgSQLStandby: set("user", "password", "password-file", "database", "max-lag", "on-lag"),
}

// fileTCPStep is one "tcp-check" rule: exactly one of its keys is set.
type fileTCPStep struct {
	Connect    *fileTCPConnect `yaml:"connect"`
	Send       *string         `yaml:"send"`
	SendBinary *string         `yaml:"send-binary" validate:"omitempty,hexadecimal"`
	Expect     *fileTCPExpect  `yaml:"expect"`
}

type fileTCPConnect struct {
	Port *int `yaml:"port" validate:"omitempty,min=1,max=65535"`
}

type fileTCPExpect struct {
	String  *string `yaml:"string"`
	RString *string `yaml:"rstring"`
	Binary  *string `yaml:"binary" validate:"omitempty,hexadecimal"`
	Not     *bool   `yaml:"not"`
}

// fileHTTPCheck is HAProxy's "http-check send" and "http-check expect".
type fileHTTPCheck struct {
	Send   *fileHTTPSend   `yaml:"send"`
	Expect *fileHTTPExpect `yaml:"expect"`
}

type fileHTTPSend struct {
	Meth *string           `yaml:"meth" validate:"omitempty,oneof=GET HEAD OPTIONS POST PUT"`
	URI  *string           `yaml:"uri" validate:"omitempty,startswith=/"`
	Ver  *string           `yaml:"ver" validate:"omitempty,oneof=HTTP/1.0 HTTP/1.1"`
	Hdr  map[string]string `yaml:"hdr"`
}

type fileHTTPExpect struct {
	Status  *string `yaml:"status"`
	RStatus *string `yaml:"rstatus"`
	String  *string `yaml:"string"`
	RString *string `yaml:"rstring"`
	Not     *bool   `yaml:"not"`
}

type fileServer struct {
	Name         *string   `yaml:"name"`
	Address      *string   `yaml:"address"`
	Weight       *int      `yaml:"weight" validate:"omitempty,min=0,max=256"`
	Backup       *bool     `yaml:"backup"`
	Disabled     *bool     `yaml:"disabled"`
	Check        *bool     `yaml:"check"`
	Port         *int      `yaml:"port" validate:"omitempty,min=1,max=65535"`
	Inter        *Duration `yaml:"inter" validate:"omitempty,min=1"`
	FastInter    *Duration `yaml:"fastinter" validate:"omitempty,min=1"`
	DownInter    *Duration `yaml:"downinter" validate:"omitempty,min=1"`
	Addr         *string   `yaml:"addr"`
	AgentCheck   *bool     `yaml:"agent-check"`
	AgentPort    *int      `yaml:"agent-port" validate:"omitempty,min=1,max=65535"`
	AgentAddr    *string   `yaml:"agent-addr"`
	AgentInter   *Duration `yaml:"agent-inter" validate:"omitempty,min=1"`
	AgentSend    *string   `yaml:"agent-send"`
	OnMarkedDown *string   `yaml:"on-marked-down" validate:"omitempty,oneof=shutdown-sessions"`
	OnMarkedUp   *string   `yaml:"on-marked-up" validate:"omitempty,oneof=shutdown-backup-sessions"`
	Rise         *int      `yaml:"rise" validate:"omitempty,min=1,max=1000"`
	Fall         *int      `yaml:"fall" validate:"omitempty,min=1,max=1000"`
	MaxConn      *int      `yaml:"maxconn" validate:"omitempty,min=0,max=1000000"`
	MaxQueue     *int      `yaml:"maxqueue" validate:"omitempty,min=0,max=1000000"`
	SlowStart    *Duration `yaml:"slowstart"`
	Observe      *Observe  `yaml:"observe"`
	ErrorLimit   *int      `yaml:"error-limit" validate:"omitempty,min=1,max=1000000"`
	OnError      *OnError  `yaml:"on-error"`
	// TLS and the PROXY protocol towards the server (server_tls.go).
	SSL              *bool   `yaml:"ssl"`
	Verify           *string `yaml:"verify" validate:"omitempty,oneof=none required"`
	CAFile           *string `yaml:"ca-file" validate:"omitempty,min=1"`
	CRLFile          *string `yaml:"crl-file" validate:"omitempty,min=1"`
	SNI              *string `yaml:"sni" validate:"omitempty,min=1"`
	VerifyHost       *string `yaml:"verifyhost" validate:"omitempty,min=1"`
	Crt              *string `yaml:"crt" validate:"omitempty,min=1"`
	SSLMinVer        *string `yaml:"ssl-min-ver" validate:"omitempty,oneof=SSLv3 TLSv1.0 TLSv1.1 TLSv1.2 TLSv1.3"`
	SSLMaxVer        *string `yaml:"ssl-max-ver" validate:"omitempty,oneof=SSLv3 TLSv1.0 TLSv1.1 TLSv1.2 TLSv1.3"`
	Ciphers          *string `yaml:"ciphers" validate:"omitempty,min=1"`
	CipherSuites     *string `yaml:"ciphersuites" validate:"omitempty,min=1"`
	NoSSLReuse       *bool   `yaml:"no-ssl-reuse"`
	ALPN             *string `yaml:"alpn" validate:"omitempty,min=1"`
	CheckSSL         *bool   `yaml:"check-ssl"`
	CheckSNI         *string `yaml:"check-sni" validate:"omitempty,min=1"`
	SendProxy        *bool   `yaml:"send-proxy"`
	SendProxyV2      *bool   `yaml:"send-proxy-v2"`
	SendProxyV2SSL   *bool   `yaml:"send-proxy-v2-ssl"`
	SendProxyV2SSLCN *bool   `yaml:"send-proxy-v2-ssl-cn"`
	CheckSendProxy   *bool   `yaml:"check-send-proxy"`
	// Cookie is the server's persistence cookie value (cookie.go).
	Cookie *string `yaml:"cookie"`
}

// Which keys each kind of section accepts. HAProxy's "defaults" section may
// set anything a frontend or backend inherits, but not bind, servers or
// default_backend.
var sectionKeys = map[string]map[string]bool{
	"defaults":  set("mode", "maxconn", "balance", "hash-type", "hash-balance-factor", "retries", "retry-on", "timeout", "option", "http-check", "tcp-check", "default-server", "cookie", "errorfile", "http-error", "monitor-uri", "load-server-state-from-file", "unique-id-format", "unique-id-header"),
	"frontends": set("bind", "mode", "maxconn", "default_backend", "timeout", "option", "stats", "https-redirect", "acl", "http-request", "http-response", "tcp-request", "redirect", "use_backend", "stick-table", "errorfile", "http-error", "monitor-uri", "monitor", "capture", "declare", "unique-id-format", "unique-id-header"),
	"backends":  set("mode", "balance", "hash-type", "hash-balance-factor", "retries", "retry-on", "timeout", "option", "http-check", "tcp-check", "default-server", "servers", "acl", "http-request", "http-response", "tcp-request", "redirect", "stick-table", "stick", "cookie", "force-persist", "ignore-persist", "errorfile", "http-error", "load-server-state-from-file", "server-state-file-name"),
	"listen":    set("bind", "mode", "maxconn", "balance", "hash-type", "hash-balance-factor", "retries", "retry-on", "timeout", "option", "http-check", "tcp-check", "default-server", "servers", "stats", "https-redirect", "acl", "http-request", "http-response", "tcp-request", "redirect", "use_backend", "stick-table", "stick", "cookie", "force-persist", "ignore-persist", "errorfile", "http-error", "monitor-uri", "monitor", "capture", "declare", "load-server-state-from-file", "server-state-file-name", "unique-id-format", "unique-id-header"),
}

// Which timeouts make sense where, as in HAProxy's keyword matrix.
var sectionTimeouts = map[string]map[string]bool{
	"defaults":  set("connect", "client", "server", "tunnel", "check", "http-request", "http-keep-alive", "queue"),
	"frontends": set("client", "http-request", "http-keep-alive"),
	"backends":  set("connect", "server", "tunnel", "check", "queue"),
	"listen":    set("connect", "client", "server", "tunnel", "check", "http-request", "http-keep-alive", "queue"),
}

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// frontendSection is the file's frontend or listen section called name.
func (fc *fileConfig) frontendSection(name string) *fileProxy {
	if fp := fc.Frontends[name]; fp != nil {
		return fp
	}
	return fc.Listen[name]
}

// SectionAccepts reports whether a section of kind ("defaults",
// "frontends", "backends" or "listen") accepts key, and for key "timeout"
// with a name, that timeout: what halo convert checks before it writes a
// key where HAProxy's file had the line.
func SectionAccepts(kind, key, timeout string) bool {
	if !sectionKeys[kind][key] {
		return false
	}
	return key != "timeout" || timeout == "" || sectionTimeouts[kind][timeout]
}
