package health

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/halo-lb/halo/config"
)

// MySQL errors the checks name.
const (
	erUnknownComError = 1047 // what a Galera node answers while it rejects queries
	erParseError      = 1064
)

func mysqlConfig(spec *config.DBCheck, addr string, password bool, t *Transport) *mysql.Config {
	c := mysql.NewConfig()
	// check-ssl: MySQL's TLS starts inside its own handshake, so the
	// driver does it, with the server's verify and ca-file; the PROXY
	// header comes before anything, from the dial function.
	c.TLS = t.tlsConfig()
	if t != nil && t.ProxyVersion != 0 {
		c.DialFunc = t.dialTCP
	}
	c.Net, c.Addr, c.User = "tcp", addr, spec.User
	// The driver would write its own log lines to stderr, outside zap;
	// every error it logs is also returned to the check, which records it
	// as the check's description.
	c.Logger = &mysql.NopLogger{}
	if password {
		c.Passwd = spec.Password.Reveal()
	}
	return c
}

// MySQLChecker is HAProxy's "option mysql-check user X": it logs in as the
// user, without a password, and expects the server's OK; then it quits.
type MySQLChecker struct {
	Spec *config.DBCheck
	// Transport is check-ssl and check-send-proxy; nil is plain TCP.
	Transport *Transport
}

var _ Checker = MySQLChecker{}

func (c MySQLChecker) Check(ctx context.Context, addr string) Result {
	start := time.Now()
	conn, err := mysqlConnect(ctx, mysqlConfig(c.Spec, addr, false, c.Transport))
	r := Result{Status: L7OK, OK: true, Desc: "MySQL server is ok"}
	if err != nil {
		r = mysqlFailure(err, true)
	} else {
		conn.Close() // sends COM_QUIT
	}
	r.Duration = time.Since(start)
	return r
}

func mysqlConnect(ctx context.Context, cfg *mysql.Config) (io.Closer, error) {
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return connector.Connect(ctx)
}

// mysqlFailure classifies an error of a MySQL check: the connection
// (L4CON, L4TOUT), an error the server sent (L7STS, with its code and
// message), a timeout waiting for it (L7TOUT) or a reply that is not
// MySQL's (L7RSP).
func mysqlFailure(err error, connecting bool) Result {
	var me *mysql.MySQLError
	var oe *net.OpError
	switch {
	case errors.As(err, &me):
		desc := fmt.Sprintf("MySQL error %d: %s", me.Number, me.Message)
		if me.Number == erUnknownComError {
			desc = "the node rejects queries (" + desc + ")"
		}
		return Result{Status: L7STS, Err: err, Desc: desc}
	case errors.As(err, &oe) && oe.Op == "dial":
		return connectFailure(err)
	case isTLSFailure(err):
		return handshakeFailure(err)
	case errors.Is(err, mysql.ErrNoTLS):
		return Result{Status: L6RSP, Err: err, Desc: "Layer6 invalid response: the server does not offer TLS"}
	case isTimeout(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		if connecting {
			return Result{Status: L7TOUT, Err: err, Desc: "Layer7 timeout: no MySQL handshake in time"}
		}
		return Result{Status: L7TOUT, Err: err, Desc: "Layer7 timeout: no answer to the check query in time"}
	default:
		return Result{Status: L7RSP, Err: err, Desc: "Layer7 invalid response: " + err.Error()}
	}
}

// sqlChecker holds the one connection a database check keeps to its
// server between checks. database/sql reopens it after an error.
type sqlChecker struct {
	// Transport is check-ssl and check-send-proxy; nil is plain TCP. Set
	// before the first check.
	Transport *Transport
	mu        sync.Mutex
	db        *sql.DB
	addr      string
}

func (s *sqlChecker) conn(addr string, open func() (*sql.DB, error)) (*sql.DB, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil || s.addr != addr {
		if s.db != nil {
			s.db.Close()
		}
		db, err := open()
		if err != nil {
			return nil, err
		}
		s.db, s.addr = db, addr
		s.db.SetMaxOpenConns(1)
		s.db.SetMaxIdleConns(1)
	}
	return s.db, nil
}

// Close closes the kept connection.
func (s *sqlChecker) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return err
}

// broken drops the kept connection after a failed check, so that the next
// check starts from a new connection: a server restarted in between must
// be seen as the new process it is, not through an error on the old one.
func (s *sqlChecker) broken() { _ = s.Close() }

// timed runs one check on the kept connection, times it, and drops the
// connection after a failure.
func (s *sqlChecker) timed(check func() Result) Result {
	start := time.Now()
	r := check()
	r.Duration = time.Since(start)
	if !r.OK && !r.Lagging {
		s.broken()
	}
	return r
}

func (s *sqlChecker) mysqlDB(spec *config.DBCheck, addr string) (*sql.DB, error) {
	return s.conn(addr, func() (*sql.DB, error) {
		connector, err := mysql.NewConnector(mysqlConfig(spec, addr, true, s.Transport))
		if err != nil {
			return nil, err
		}
		return sql.OpenDB(connector), nil
	})
}

// GaleraChecker asks a Galera node (MariaDB or Percona XtraDB Cluster) for
// its state in one query and decides as the documented order says.
type GaleraChecker struct {
	Spec *config.DBCheck
	sqlChecker
	statusTable string // information_schema.GLOBAL_STATUS or performance_schema.global_status
}

// NewGaleraChecker returns a checker for one server; Close releases its
// connection.
func NewGaleraChecker(spec *config.DBCheck) *GaleraChecker { return &GaleraChecker{Spec: spec} }

// galeraState is what one Galera check reads.
type galeraState struct {
	localState, clusterStatus, ready, recvQueue   sql.NullString
	desync, rejectQueries, donorRejects, readOnly sql.NullString
}

// galeraQuery reads everything in one round trip. Each status comes from
// a subquery of its own: MariaDB 10.11 reads system variables as 0 in an
// aggregate over information_schema.GLOBAL_STATUS (seen with read_only=ON).
const galeraQuery = `SELECT
  (SELECT VARIABLE_VALUE FROM %[1]s WHERE VARIABLE_NAME = 'wsrep_local_state'),
  (SELECT VARIABLE_VALUE FROM %[1]s WHERE VARIABLE_NAME = 'wsrep_cluster_status'),
  (SELECT VARIABLE_VALUE FROM %[1]s WHERE VARIABLE_NAME = 'wsrep_ready'),
  (SELECT VARIABLE_VALUE FROM %[1]s WHERE VARIABLE_NAME = 'wsrep_local_recv_queue'),
  @@wsrep_desync, @@wsrep_reject_queries, @@wsrep_sst_donor_rejects_queries, @@read_only`

func (c *GaleraChecker) Check(ctx context.Context, addr string) Result {
	return c.timed(func() Result { return c.check(ctx, addr) })
}

func (c *GaleraChecker) check(ctx context.Context, addr string) Result {
	db, err := c.mysqlDB(c.Spec, addr)
	if err != nil {
		return Result{Status: L7RSP, Err: err, Desc: "MySQL client: " + err.Error()}
	}
	if c.statusTable == "" {
		// MariaDB keeps status in information_schema; MySQL 8, which
		// Percona XtraDB Cluster is built on, only in performance_schema.
		var version string // e.g. 10.11.19-MariaDB-0+deb12u1 or 8.0.36-28.1
		if err := db.QueryRowContext(ctx, "SELECT @@version").Scan(&version); err != nil {
			return mysqlFailure(err, false)
		}
		c.statusTable = "performance_schema.global_status"
		if strings.Contains(strings.ToLower(version), "mariadb") {
			c.statusTable = "information_schema.GLOBAL_STATUS"
		}
	}
	var st galeraState
	err = db.QueryRowContext(ctx, fmt.Sprintf(galeraQuery, c.statusTable)).Scan(
		&st.localState, &st.clusterStatus, &st.ready, &st.recvQueue,
		&st.desync, &st.rejectQueries, &st.donorRejects, &st.readOnly)
	if err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == 1193 { // unknown system variable
			return Result{Status: L7STS, Err: err, Desc: "not a Galera node: " + me.Message}
		}
		return mysqlFailure(err, false)
	}
	return judgeGalera(c.Spec, st)
}

func on(v sql.NullString) bool {
	return v.Valid && (v.String == "1" || strings.EqualFold(v.String, "ON"))
}

// judgeGalera applies the decision order: the first rule that holds
// decides.
func judgeGalera(spec *config.DBCheck, st galeraState) Result {
	down := func(format string, args ...any) Result {
		return Result{Status: L7STS, Desc: fmt.Sprintf(format, args...)}
	}
	if !st.localState.Valid || !st.clusterStatus.Valid {
		return down("not a Galera node: no wsrep status")
	}
	state, err := strconv.Atoi(st.localState.String)
	if err != nil {
		return Result{Status: L7RSP, Desc: fmt.Sprintf("wsrep_local_state %q is not a number", st.localState.String)}
	}
	switch {
	case st.clusterStatus.String != "Primary":
		return down("wsrep_cluster_status is %s, not Primary", st.clusterStatus.String)
	case !on(st.ready):
		return down("wsrep_ready is OFF")
	case on(st.desync):
		return down("wsrep_desync is ON")
	case state == 2 && spec.AllowDonor && on(st.donorRejects):
		return down("the node is a donor (wsrep_local_state 2) and wsrep_sst_donor_rejects_queries is ON")
	case state != 4 && !(state == 2 && spec.AllowDonor):
		return down("wsrep_local_state is %d (%s), not 4 (Synced)", state, galeraStateName(state))
	case st.rejectQueries.Valid && !strings.EqualFold(st.rejectQueries.String, "NONE"):
		return down("wsrep_reject_queries is %s", st.rejectQueries.String)
	case on(st.readOnly) && !spec.AllowReadOnly:
		return down("read_only is ON")
	}
	if spec.MaxRecvQueue > 0 && st.recvQueue.Valid {
		if q, err := strconv.Atoi(st.recvQueue.String); err == nil && q > spec.MaxRecvQueue {
			return Result{Status: L7STS, Lagging: true,
				Desc: fmt.Sprintf("lagging: wsrep_local_recv_queue is %d, above max-recv-queue %d", q, spec.MaxRecvQueue)}
		}
	}
	return Result{Status: L7OK, OK: true, Desc: fmt.Sprintf("Galera node is %s", galeraStateName(state))}
}

func galeraStateName(state int) string {
	switch state {
	case 1:
		return "Joining"
	case 2:
		return "Donor/Desynced"
	case 3:
		return "Joined"
	case 4:
		return "Synced"
	}
	return "unknown"
}

// MySQLReplicaChecker checks a MySQL or MariaDB replica: its replication
// threads, its lag by Seconds_Behind_Master and, when configured, by a
// heartbeat table.
type MySQLReplicaChecker struct {
	Spec *config.DBCheck
	sqlChecker
	oldSyntax bool // the server predates SHOW REPLICA STATUS
}

// NewMySQLReplicaChecker returns a checker for one server; Close releases
// its connection.
func NewMySQLReplicaChecker(spec *config.DBCheck) *MySQLReplicaChecker {
	return &MySQLReplicaChecker{Spec: spec}
}

func (c *MySQLReplicaChecker) Check(ctx context.Context, addr string) Result {
	return c.timed(func() Result { return c.check(ctx, addr) })
}

// replicaColumns are the SHOW REPLICA STATUS columns read, under both their
// old and new names.
var replicaColumns = map[string]string{
	"Slave_IO_Running": "io", "Replica_IO_Running": "io",
	"Slave_SQL_Running": "sql", "Replica_SQL_Running": "sql",
	"Seconds_Behind_Master": "behind", "Seconds_Behind_Source": "behind",
	"Last_IO_Error": "io_error", "Last_SQL_Error": "sql_error",
	"Connection_name": "name", "Channel_Name": "name",
}

func (c *MySQLReplicaChecker) check(ctx context.Context, addr string) Result {
	db, err := c.mysqlDB(c.Spec, addr)
	if err != nil {
		return Result{Status: L7RSP, Err: err, Desc: "MySQL client: " + err.Error()}
	}
	stmt := "SHOW REPLICA STATUS"
	if c.oldSyntax {
		stmt = "SHOW SLAVE STATUS"
	}
	rows, err := db.QueryContext(ctx, stmt)
	var me *mysql.MySQLError
	if err != nil && !c.oldSyntax && errors.As(err, &me) && me.Number == erParseError {
		c.oldSyntax = true
		return c.check(ctx, addr)
	}
	if err != nil {
		return mysqlFailure(err, false)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return mysqlFailure(err, false)
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var lag time.Duration
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return mysqlFailure(err, false)
		}
		n++
		row := map[string]sql.NullString{}
		for i, col := range cols {
			if key, ok := replicaColumns[col]; ok {
				row[key] = vals[i]
			}
		}
		behind, failed := judgeReplicaRow(row)
		if failed != nil {
			return *failed
		}
		lag = max(lag, behind)
	}
	if err := rows.Err(); err != nil {
		return mysqlFailure(err, false)
	}
	if n == 0 {
		return Result{Status: L7STS, Desc: "not a replica: SHOW REPLICA STATUS is empty"}
	}
	source := "Seconds_Behind_Master"
	if c.Spec.Heartbeat != "" {
		hb, err := c.heartbeatLag(ctx, db)
		if err != nil {
			r := mysqlFailure(err, false)
			r.Desc = "reading the heartbeat: " + describe(r)
			return r
		}
		if hb > lag {
			lag, source = hb, "heartbeat "+c.Spec.Heartbeat
		}
	}
	return judgeLag(c.Spec, lag, source)
}

// judgeReplicaRow reads one row of SHOW REPLICA STATUS (one replication
// connection): how far behind it is, or the failed check when a thread is
// stopped or the lag unknown.
func judgeReplicaRow(row map[string]sql.NullString) (time.Duration, *Result) {
	channel := ""
	if name := row["name"].String; name != "" {
		channel = fmt.Sprintf(" (connection %q)", name)
	}
	switch {
	case row["io"].String != "Yes":
		return 0, &Result{Status: L7STS, Desc: fmt.Sprintf("replica IO thread is not running%s: %s%s",
			channel, orNone(row["io"].String), errorSuffix(row["io_error"].String))}
	case row["sql"].String != "Yes":
		return 0, &Result{Status: L7STS, Desc: fmt.Sprintf("replica SQL thread is not running%s%s",
			channel, errorSuffix(row["sql_error"].String))}
	case !row["behind"].Valid:
		return 0, &Result{Status: L7STS, Desc: "Seconds_Behind_Master is NULL" + channel}
	}
	secs, err := strconv.ParseInt(row["behind"].String, 10, 64)
	if err != nil {
		return 0, &Result{Status: L7RSP, Desc: fmt.Sprintf("Seconds_Behind_Master %q is not a number", row["behind"].String)}
	}
	return time.Duration(secs) * time.Second, nil
}

func (c *MySQLReplicaChecker) heartbeatLag(ctx context.Context, db *sql.DB) (time.Duration, error) {
	parts := strings.Split(c.Spec.Heartbeat, ".") // validated: three plain identifiers
	q := fmt.Sprintf("SELECT TIMESTAMPDIFF(MICROSECOND, MAX(`%s`), UTC_TIMESTAMP(6)) FROM `%s`.`%s`", parts[2], parts[0], parts[1])
	var us sql.NullInt64
	if err := db.QueryRowContext(ctx, q).Scan(&us); err != nil {
		return 0, err
	}
	if !us.Valid {
		return 0, fmt.Errorf("heartbeat table %s.%s is empty", parts[0], parts[1])
	}
	return time.Duration(us.Int64) * time.Microsecond, nil
}

// judgeLag passes a replica within max-lag and reports one beyond it as
// lagging.
func judgeLag(spec *config.DBCheck, lag time.Duration, source string) Result {
	lag = lag.Round(time.Millisecond)
	if lag > spec.MaxLag {
		return Result{Status: L7STS, Lagging: true,
			Desc: fmt.Sprintf("lagging: %v behind by %s, above max-lag %v", lag, source, spec.MaxLag)}
	}
	return Result{Status: L7OK, OK: true, Desc: fmt.Sprintf("replica %v behind by %s", lag, source)}
}

func orNone(s string) string {
	if s == "" {
		return "(not configured)"
	}
	return s
}

func errorSuffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}
