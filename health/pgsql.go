package health

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/halo-lb/halo/config"
)

// PgSQLChecker is HAProxy's "option pgsql-check user X": it sends
// PostgreSQL's start-up message for the user and passes when the server
// answers with an authentication request (or OK), as a live server does
// whatever the user's authentication method; an error message fails it.
type PgSQLChecker struct {
	Spec *config.DBCheck
	// Transport is check-ssl and check-send-proxy; nil is plain TCP.
	Transport *Transport
}

var _ Checker = PgSQLChecker{}

func (c PgSQLChecker) Check(ctx context.Context, addr string) Result {
	start := time.Now()
	r := c.check(ctx, addr)
	r.Duration = time.Since(start)
	return r
}

func (c PgSQLChecker) check(ctx context.Context, addr string) Result {
	conn, err := c.Transport.dialTCP(ctx, "tcp", addr)
	if err != nil {
		return connectFailure(err)
	}
	defer func() { conn.Close() }()
	if cfg := c.Transport.tlsConfig(); cfg != nil {
		tc, r, ok := startPgTLS(ctx, conn, cfg)
		if !ok {
			return r
		}
		conn = tc
	}
	fe := pgproto3.NewFrontend(conn, conn)
	fe.Send(&pgproto3.StartupMessage{
		ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters:      map[string]string{"user": c.Spec.User},
	})
	if err := fe.Flush(); err != nil {
		return Result{Status: L7RSP, Err: err, Desc: "sending the start-up message: " + err.Error()}
	}
	msg, err := fe.Receive()
	if err != nil {
		if isTimeout(err) || errors.Is(err, os.ErrDeadlineExceeded) {
			return Result{Status: L7TOUT, Err: err, Desc: "Layer7 timeout: no answer to the start-up message"}
		}
		return Result{Status: L7RSP, Err: err, Desc: "Layer7 invalid response: " + err.Error()}
	}
	switch m := msg.(type) {
	case *pgproto3.AuthenticationOk, *pgproto3.AuthenticationCleartextPassword,
		*pgproto3.AuthenticationMD5Password, *pgproto3.AuthenticationSASL, *pgproto3.AuthenticationGSS:
		// Close politely: the server logs a dropped start-up otherwise.
		fe.Send(&pgproto3.Terminate{})
		_ = fe.Flush()
		return Result{Status: L7OK, OK: true, Desc: "PostgreSQL server is ok"}
	case *pgproto3.ErrorResponse:
		return Result{Status: L7STS, Desc: fmt.Sprintf("PostgreSQL error %s: %s", m.Code, m.Message)}
	default:
		return Result{Status: L7RSP, Desc: fmt.Sprintf("Layer7 invalid response: %T to the start-up message", msg)}
	}
}

// PgSQLStandbyChecker checks a PostgreSQL standby: that it is in recovery,
// and how far its replay is behind. It keeps its connection as the MySQL
// checkers do, through pgx's database/sql driver.
type PgSQLStandbyChecker struct {
	Spec *config.DBCheck
	sqlChecker
}

// NewPgSQLStandbyChecker returns a checker for one server; Close releases
// its connection.
func NewPgSQLStandbyChecker(spec *config.DBCheck) *PgSQLStandbyChecker {
	return &PgSQLStandbyChecker{Spec: spec}
}

// standbyQuery reads, in one round trip, whether the server is a standby
// and its replay lag. A standby that has replayed everything it received
// has no lag, however old its last replayed transaction: on an idle
// primary nothing new comes.
const standbyQuery = `SELECT pg_is_in_recovery(),
  COALESCE(pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), false),
  COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8, -1)`

func (c *PgSQLStandbyChecker) Check(ctx context.Context, addr string) Result {
	return c.timed(func() Result { return c.check(ctx, addr) })
}

func (c *PgSQLStandbyChecker) check(ctx context.Context, addr string) Result {
	db, err := c.conn(addr, func() (*sql.DB, error) { return c.open(addr) })
	if err != nil {
		return Result{Status: L7RSP, Err: err, Desc: "PostgreSQL client: " + err.Error()}
	}
	var recovering, caughtUp bool
	var lagSecs float64
	if err := db.QueryRowContext(ctx, standbyQuery).Scan(&recovering, &caughtUp, &lagSecs); err != nil {
		return pgFailure(err)
	}
	switch {
	case !recovering:
		return Result{Status: L7STS, Desc: "not a standby: pg_is_in_recovery() is false"}
	case caughtUp || lagSecs < 0:
		return judgeLag(c.Spec, 0, "replay (all received WAL replayed)")
	}
	return judgeLag(c.Spec, time.Duration(lagSecs*float64(time.Second)), "replay")
}

func (c *PgSQLStandbyChecker) open(addr string) (*sql.DB, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, err
	}
	// Every field that matters is set here, over what ParseConfig took
	// from PG* environment variables of whoever runs halo: no TLS
	// (sslmode=disable) unless check-ssl gives its configuration, no
	// fallback hosts.
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port, cfg.User = host, uint16(p), c.Spec.User
	cfg.Password = c.Spec.Password.Reveal()
	cfg.Database = c.Spec.Database
	if cfg.Database == "" {
		cfg.Database = c.Spec.User
	}
	cfg.Fallbacks = nil
	cfg.TLSConfig = c.Transport.tlsConfig()
	if c.Transport != nil && c.Transport.ProxyVersion != 0 {
		cfg.DialFunc = c.Transport.dialTCP
	}
	cfg.RuntimeParams = map[string]string{"application_name": "halo-check"}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	return stdlib.OpenDB(*cfg), nil
}

// pgFailure classifies an error of a PostgreSQL check.
func pgFailure(err error) Result {
	var pe *pgconn.PgError
	var oe *net.OpError
	switch {
	case errors.As(err, &pe):
		return Result{Status: L7STS, Err: err, Desc: fmt.Sprintf("PostgreSQL error %s: %s", pe.Code, pe.Message)}
	case errors.As(err, &oe) && oe.Op == "dial":
		return connectFailure(err)
	case isTLSFailure(err):
		return handshakeFailure(err)
	case isTimeout(err) || errors.Is(err, context.DeadlineExceeded):
		return Result{Status: L7TOUT, Err: err, Desc: "Layer7 timeout: " + err.Error()}
	default:
		return Result{Status: L7RSP, Err: err, Desc: "Layer7 invalid response: " + err.Error()}
	}
}

// startPgTLS asks a PostgreSQL server for TLS (SSLRequest) and does the
// handshake: PostgreSQL speaks TLS only after that request, as libpq's
// sslmode=require or verify-full does. A server that declines is L6RSP.
func startPgTLS(ctx context.Context, conn net.Conn, cfg *tls.Config) (net.Conn, Result, bool) {
	req, _ := (&pgproto3.SSLRequest{}).Encode(nil)
	if _, err := conn.Write(req); err != nil {
		return nil, Result{Status: L4CON, Err: err, Desc: "sending SSLRequest: " + err.Error()}, false
	}
	var answer [1]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		return nil, handshakeFailure(err), false
	}
	if answer[0] != 'S' {
		return nil, Result{Status: L6RSP, Desc: fmt.Sprintf("Layer6 invalid response: the server declines TLS (%q)", answer[0])}, false
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, handshakeFailure(err), false
	}
	return tc, Result{}, true
}
