package config

import (
	"slices"
	"strings"
)

// The small closed vocabularies of the file that have a type of their own.
// Each keeps its words in one list, which the decoder checks a file value
// against (see enum) and messages print.

// Modes are the proxy modes.
var Modes = []Mode{ModeTCP, ModeHTTP}

// Observe is a server's passive check, as HAProxy's "observe".
type Observe string

// The passive checks.
const (
	ObserveLayer4 Observe = "layer4" // a failed connection is an error
	ObserveLayer7 Observe = "layer7" // also a 5xx response but 501 and 505
)

// Observes are the passive checks.
var Observes = []Observe{ObserveLayer4, ObserveLayer7}

// OnError is what a passive check does when traffic to a server has shown
// error-limit consecutive errors, as HAProxy's "on-error".
type OnError string

// The on-error actions.
const (
	OnErrorFastInter   OnError = "fastinter"    // check again after fastinter
	OnErrorFailCheck   OnError = "fail-check"   // count one failed check
	OnErrorSuddenDeath OnError = "sudden-death" // leave one check before DOWN, then fail one
	OnErrorMarkDown    OnError = "mark-down"    // DOWN at once
)

// OnErrors are the on-error actions.
var OnErrors = []OnError{OnErrorFastInter, OnErrorFailCheck, OnErrorSuddenDeath, OnErrorMarkDown}

// DBKind is a database check, named as its option.
type DBKind string

// The database checks, as DBCheck.Kind.
const (
	DBMySQL        DBKind = "mysql-check"         // HAProxy's: log in, expect OK
	DBPgSQL        DBKind = "pgsql-check"         // HAProxy's: start-up, expect an authentication request
	DBGalera       DBKind = "galera-check"        // Galera node state, one query
	DBMySQLReplica DBKind = "mysql-replica-check" // SHOW REPLICA STATUS, heartbeat
	DBPgSQLStandby DBKind = "pgsql-standby-check" // pg_is_in_recovery, replay lag
)

// DBKinds are the database checks.
var DBKinds = []DBKind{DBMySQL, DBPgSQL, DBGalera, DBMySQLReplica, DBPgSQLStandby}

// TCPAction is what one tcp-check rule does.
type TCPAction string

// The tcp-check actions.
const (
	TCPConnect TCPAction = "connect"
	TCPSend    TCPAction = "send" // send and send-binary
	TCPExpect  TCPAction = "expect"
)

// ExpectKind is how "http-check expect" matches a response.
type ExpectKind string

// The http-check expect matches; the zero value is the default rule (a
// 2xx or 3xx status passes).
const (
	ExpectStatus  ExpectKind = "status"
	ExpectRStatus ExpectKind = "rstatus"
	ExpectString  ExpectKind = "string"
	ExpectRString ExpectKind = "rstring"
)

// enum is a file value that must be one of a fixed list of words; the
// decoder rejects any other, at the value.
type enum interface {
	words() []string
}

func (Mode) words() []string    { return wordsOf(Modes) }
func (Observe) words() []string { return wordsOf(Observes) }
func (OnError) words() []string { return wordsOf(OnErrors) }

func wordsOf[T ~string](vals []T) []string {
	words := make([]string, len(vals))
	for i, v := range vals {
		words[i] = string(v)
	}
	return words
}

// enumError is the message for a word that is not in e's list, or "".
func enumError(e enum, word string) string {
	if slices.Contains(e.words(), word) {
		return ""
	}
	return "\"" + word + "\" is not supported: must be one of " + strings.Join(e.words(), ", ")
}
