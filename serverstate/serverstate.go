// Package serverstate owns HAProxy's server-state-file format, version 1:
// the line one server's state is written as (by "show servers state", and
// by halo itself before a binary upgrade and when it stops), reading a file
// of them back with each bad line reported at FILE:LINE, which line applies
// to which server of a running configuration, and what its fields mean
// when applied (HAProxy's rules for health, admin state and weight). It
// knows nothing of pools, checks or processes: the stats package fills
// lines from the live state, the proxy applies them.
package serverstate

import (
	"strconv"

	"github.com/halo-lb/halo/health"
)

// Version is the format's version, the file's first line.
const Version = 1

// Header is what a file starts with: its version, then the column names.
const Header = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"

// OpState is srv_op_state, HAProxy's enum srv_state.
type OpState int

// The operational states: only Stopped is a DOWN server; Starting is
// HAProxy's slow start, Stopping its NOLB (up but taking no new
// sessions).
const (
	Stopped OpState = iota
	Starting
	Running
	Stopping
)

// The bits of srv_admin_state (HAProxy's SRV_ADMF_*).
const (
	ForcedMaint     = 0x01 // "disable server", "set server ... state maint"
	InheritedMaint  = 0x02 // from a tracked server
	ConfigMaint     = 0x04 // "disabled" in the configuration
	ForcedDrain     = 0x08 // "set server ... state drain"
	InheritedDrain  = 0x10
	ResolutionMaint = 0x20 // an address resolution failed
	FQDNFromCLI     = 0x40 // the FQDN was set on the runtime API
)

// The bits of srv_check_state and srv_agent_state (HAProxy's CHK_ST_*).
const (
	CheckInProgress = 0x01
	CheckConfigured = 0x02
	CheckEnabled    = 0x04
	CheckPaused     = 0x08
	CheckAgent      = 0x10
)

// The values of srv_check_result (HAProxy's enum chk_result).
const (
	ResultUnknown = iota
	ResultNeutral
	ResultFailed
	ResultPassed
	ResultCondPass
)

// statusCodes are HAProxy's numbers for check results (enum
// healthcheck_status); numStatuses is one past the largest.
var statusCodes = map[health.Status]int{
	health.HANA: 4, health.SOCKERR: 5, health.L4OK: 6, health.L4TOUT: 7, health.L4CON: 8,
	health.L6OK: 9, health.L6TOUT: 10, health.L6RSP: 11,
	health.L7TOUT: 12, health.L7RSP: 13, health.L7OK: 15, health.L7STS: 17,
}

const numStatuses = 21

// StatusCode is HAProxy's number for a check status; 0 (unknown) for one
// it does not have.
func StatusCode(s health.Status) int { return statusCodes[s] }

// StatusOf is the check status a number stands for, false for one halo's
// checks never give (initializing, a socket error, an external check).
func StatusOf(code int) (health.Status, bool) {
	for s, c := range statusCodes {
		if c == code {
			return s, true
		}
	}
	return "", false
}

// Line is one server's state, the fields in the file's order.
type Line struct {
	BackendID int
	Backend   string
	ServerID  int
	Server    string
	Addr      string
	OpState   OpState
	// Admin is srv_admin_state's bits.
	Admin            int
	UWeight, IWeight int
	// SinceChange is how many seconds ago the server last went UP or DOWN.
	SinceChange int64
	CheckStatus int
	CheckResult int
	// CheckHealth is the check's rise/fall counter: 0 to rise+fall-1,
	// UP from rise on.
	CheckHealth int
	CheckState  int
	AgentState  int
	// BackendForcedID and ServerForcedID say the ids were set in the
	// configuration (HAProxy's "id"); halo numbers proxies itself and
	// writes 0.
	BackendForcedID, ServerForcedID int
	FQDN                            string // "-": none
	Port                            int
	SRVRecord                       string // "-": none
	UseSSL                          int
	CheckPort                       int
	CheckAddr                       string // "-": the server's own
	AgentAddr                       string // "-": the server's own
	AgentPort                       int

	// Where is FILE:LINE of a line that was read, for messages.
	Where string
}

// Append writes the line as the file has it, with its newline.
func (l *Line) Append(b []byte) []byte {
	num := func(n int64) { b = strconv.AppendInt(b, n, 10); b = append(b, ' ') }
	str := func(s string) {
		if s == "" {
			s = "-"
		}
		b = append(b, s...)
		b = append(b, ' ')
	}
	num(int64(l.BackendID))
	str(l.Backend)
	num(int64(l.ServerID))
	str(l.Server)
	str(l.Addr)
	for _, n := range []int64{int64(l.OpState), int64(l.Admin), int64(l.UWeight), int64(l.IWeight), l.SinceChange,
		int64(l.CheckStatus), int64(l.CheckResult), int64(l.CheckHealth), int64(l.CheckState), int64(l.AgentState),
		int64(l.BackendForcedID), int64(l.ServerForcedID)} {
		num(n)
	}
	str(l.FQDN)
	num(int64(l.Port))
	str(l.SRVRecord)
	num(int64(l.UseSSL))
	num(int64(l.CheckPort))
	str(l.CheckAddr)
	str(l.AgentAddr)
	b = strconv.AppendInt(b, int64(l.AgentPort), 10)
	return append(b, '\n')
}

// Up reports whether the line's server was UP (any state but Stopped).
func (l *Line) Up() bool { return l.OpState != Stopped }

// Maint reports whether the server was in maintenance, forced or by its
// configuration.
func (l *Line) Maint() bool { return l.Admin&(ForcedMaint|ConfigMaint) != 0 }

// ConfiguredMaint reports whether the configuration the line was written
// under had the server "disabled".
func (l *Line) ConfiguredMaint() bool { return l.Admin&ConfigMaint != 0 }

// Drain reports whether the server was forced into drain.
func (l *Line) Drain() bool { return l.Admin&ForcedDrain != 0 }

// CheckDisabled reports a health check that was configured but disabled
// on the runtime API ("disable health"): the one check change HAProxy
// carries over.
func (l *Line) CheckDisabled() bool { return disabled(l.CheckState) }

// AgentDisabled is CheckDisabled for the agent ("disable agent").
func (l *Line) AgentDisabled() bool { return disabled(l.AgentState) }

func disabled(state int) bool {
	return state&CheckConfigured != 0 && (state&CheckEnabled == 0 || state&CheckPaused != 0)
}

// Health is the check counter a server with rise and fall resumes from,
// as HAProxy restores it: RUNNING (and STARTING, which halo, with no
// separate warm-up state, takes as UP) is fully UP, STOPPED fully DOWN,
// STOPPING keeps its counter within the UP range short of full. up is the
// state the server resumes in, nolb whether it takes no new sessions.
func (l *Line) Health(rise, fall int) (counter int, up, nolb bool) {
	top := rise + fall - 1
	switch l.OpState {
	case Stopped:
		return 0, false, false
	case Stopping:
		if fall == 1 {
			return 0, false, false
		}
		h := l.CheckHealth
		if h < rise || h > top-1 {
			h = rise
		}
		return h, true, true
	default:
		return top, true, false
	}
}
