package health

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/halo-lb/halo/internal/panics"
	"go.uber.org/zap"
)

// AgentReport is what an agent-check reply says, in HAProxy's agent
// protocol: one ASCII line of words separated by spaces, commas or tabs,
// such as "75%", "up", "drain", "maxconn:30", optionally followed by "#" and
// a description.
type AgentReport struct {
	// WeightPercent is the weight as a percentage of the configured one,
	// -1 when the reply has none.
	WeightPercent int
	// Health is the agent's verdict on the server, "" when it gave none.
	Health AgentHealth
	// Admin is the admin state the agent asks for, "" when none.
	Admin AgentAdmin
	// MaxConn is "maxconn:N", -1 when absent.
	MaxConn int
	// Desc is the text after "#".
	Desc string
}

// AgentHealth is an agent's verdict on its server.
type AgentHealth string

// The agent verdicts: "up", and "down" (also said as "fail" or "stopped").
const (
	AgentUp   AgentHealth = "up"
	AgentDown AgentHealth = "down"
)

// AgentAdmin is an admin state an agent asks for.
type AgentAdmin string

// The admin states of HAProxy's agent protocol.
const (
	AgentReady AgentAdmin = "ready"
	AgentDrain AgentAdmin = "drain"
	AgentMaint AgentAdmin = "maint"
)

// ParseAgentReply reads one agent reply. Unknown words are an error that
// names them; the words before still count, as in HAProxy.
func ParseAgentReply(line string) (AgentReport, error) {
	r := AgentReport{WeightPercent: -1, MaxConn: -1}
	line, r.Desc, _ = strings.Cut(strings.TrimRight(line, "\r\n"), "#")
	r.Desc = strings.TrimSpace(r.Desc)
	var unknown []string
	for _, w := range strings.FieldsFunc(line, func(c rune) bool { return c == ' ' || c == ',' || c == '\t' }) {
		lw := strings.ToLower(w)
		switch {
		case lw == string(AgentUp):
			r.Health = AgentUp
		case lw == string(AgentDown), lw == "fail", lw == "stopped":
			r.Health = AgentDown
		case lw == string(AgentReady), lw == string(AgentDrain), lw == string(AgentMaint):
			r.Admin = AgentAdmin(lw)
		case strings.HasPrefix(lw, "maxconn:"):
			n, err := strconv.Atoi(lw[len("maxconn:"):])
			if err != nil || n < 0 {
				unknown = append(unknown, w)
				continue
			}
			r.MaxConn = n
		case strings.HasSuffix(lw, "%"):
			n, err := strconv.Atoi(lw[:len(lw)-1])
			if err != nil || n < 0 || n > 100 {
				unknown = append(unknown, w)
				continue
			}
			r.WeightPercent = n
		default:
			unknown = append(unknown, w)
		}
	}
	if len(unknown) > 0 {
		return r, fmt.Errorf("agent reply %q: unknown word %q", line, strings.Join(unknown, " "))
	}
	return r, nil
}

// agentReplyMax bounds how much of an agent's reply is read.
const agentReplyMax = 1024

// AgentTarget applies agent reports. The proxy implements it over the
// server's state.
type AgentTarget interface {
	AgentReport(r AgentReport)
}

// AgentSpec says where the agent listens and how often to ask it.
type AgentSpec struct {
	Backend, Server string
	Addr            string // host:port of the agent
	Send            string // sent before reading the reply ("agent-send")
	Inter           time.Duration
	Timeout         time.Duration
}

// Agent asks one server's agent until stopped. As in HAProxy, an agent
// that cannot be reached changes nothing: connectivity is the health
// check's business.
type Agent struct {
	spec   AgentSpec
	target AgentTarget
	log    *zap.Logger
	loop   *loop
	paused atomic.Bool // "disable agent"
}

// StartAgent begins asking the agent, the first time after a random part
// of one interval.
func StartAgent(spec AgentSpec, target AgentTarget, log *zap.Logger) *Agent {
	a := &Agent{spec: spec, target: target, log: log}
	a.loop = startLoop(spec.Inter, a.probe)
	return a
}

// Stop ends the agent checks and waits for one in flight.
func (a *Agent) Stop() { a.loop.stop() }

func (a *Agent) probe(ctx context.Context) (next time.Duration, ok bool) {
	if a.paused.Load() {
		return a.spec.Inter, true
	}
	// A panic asking or applying (AgentReport is the proxy's) is counted
	// and logged (package panics); the agent is asked again next time.
	defer func() {
		if v := recover(); v != nil {
			panics.Recovered(a.log, "panic in an agent check", v,
				zap.String("backend", a.spec.Backend), zap.String("server", a.spec.Server), zap.String("addr", a.spec.Addr))
			next, ok = a.spec.Inter, true
		}
	}()
	line, err := a.ask(ctx)
	if ctx.Err() != nil {
		return 0, false
	}
	if err == nil {
		r, perr := ParseAgentReply(line)
		if perr != nil && a.log.Core().Enabled(zap.WarnLevel) {
			a.log.Warn("agent reply not understood", zap.String("backend", a.spec.Backend), zap.String("server", a.spec.Server), zap.Error(perr))
		}
		a.target.AgentReport(r)
	}
	return a.spec.Inter, true
}

// ask connects, sends the agent-send string, and reads one line (or up to
// the agent closing the connection).
func (a *Agent) ask(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, a.spec.Timeout)
	defer cancel()
	conn, err := dialCheck(ctx, a.spec.Addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if a.spec.Send != "" {
		if _, err := conn.Write([]byte(a.spec.Send)); err != nil {
			return "", err
		}
	}
	// An agent's line is short; a peer that never ends it is cut off
	// rather than read into memory until the timeout.
	line, err := bufio.NewReader(io.LimitReader(conn, agentReplyMax)).ReadString('\n')
	if err != nil && line == "" {
		return "", err
	}
	return line, nil
}
