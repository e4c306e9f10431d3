package stats

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/serverstate"
)

// The commands that read or change one server, and the server dumps.

type netAddr = net.Addr

func addrString(a net.Addr) string {
	if a == nil {
		return "?"
	}
	return a.String()
}

func atoiArg(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("not a number")
	}
	return n, nil
}

// target resolves "backend/server" in the live configuration.
func (s *Stats) target(args []string) (*config.Backend, *config.Server, *balancer.Server, string) {
	if len(args) == 0 {
		return nil, nil, nil, "Require 'backend/server'.\n"
	}
	bname, sname, ok := strings.Cut(args[0], "/")
	if !ok || bname == "" || sname == "" {
		return nil, nil, nil, "Require 'backend/server'.\n"
	}
	cfg := s.src.Config()
	if cfg == nil {
		return nil, nil, nil, "No such backend.\n"
	}
	be := cfg.Backend(bname)
	if be == nil {
		return nil, nil, nil, "No such backend.\n"
	}
	for i := range be.Servers {
		if be.Servers[i].Name == sname {
			if st := s.src.Server(bname, sname); st != nil {
				return be, &be.Servers[i], st, ""
			}
		}
	}
	return nil, nil, nil, "No such server.\n"
}

func cmdGetWeight(s *Stats, _ *session, args []string) string {
	_, sc, st, msg := s.target(args)
	if msg != "" {
		return msg
	}
	return fmt.Sprintf("%d (initial %d)\n", st.Weight(sc.Weight), sc.Weight)
}

// parseWeight reads "N" or "N%".
func parseWeight(arg string) (int, bool, error) {
	rel := strings.HasSuffix(arg, "%")
	n, err := strconv.Atoi(strings.TrimSuffix(arg, "%"))
	if err != nil || arg == "" {
		return 0, false, fmt.Errorf("weight %q is not a number or a percentage", arg)
	}
	return n, rel, nil
}

func (s *Stats) setWeight(be *config.Backend, sc *config.Server, arg string) string {
	n, rel, err := parseWeight(arg)
	if err != nil {
		return err.Error() + ".\n"
	}
	if err := s.admin.SetWeight(be.Name, sc.Name, n, rel); err != nil {
		return err.Error() + ".\n"
	}
	return ""
}

func cmdSetWeight(s *Stats, _ *session, args []string) string {
	be, sc, _, msg := s.target(args)
	if msg != "" {
		return msg
	}
	if len(args) != 2 {
		return "Require <weight> or <weight%>.\n"
	}
	return s.setWeight(be, sc, args[1])
}

// setServerLevel is the level "set server" needs: changing a weight is an
// operator's right, as with "set weight"; the rest is admin's.
func setServerLevel(args []string) config.Level {
	if len(args) > 1 && args[1] == "weight" {
		return config.LevelOperator
	}
	return config.LevelAdmin
}

// cmdSetServer is "set server B/S state|weight|health|agent|maxconn V".
func cmdSetServer(s *Stats, sess *session, args []string) string {
	be, sc, st, msg := s.target(args)
	if msg != "" {
		return msg
	}
	if len(args) != 3 {
		return "Require 'state', 'weight', 'health', 'agent' or 'maxconn' and a value.\n"
	}
	what, val := args[1], args[2]
	switch what {
	case "weight":
		return s.setWeight(be, sc, val)
	case "state":
		switch val {
		case "ready":
			st.SetAdmin(balancer.AdminReady)
		case "drain":
			st.SetAdmin(balancer.AdminDrain)
		case "maint":
			st.SetAdmin(balancer.AdminMaint)
		default:
			return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"
		}
	case "health":
		switch val {
		case "up", "stopping", "down":
		default:
			return "'set server <srv> health' expects 'up', 'stopping', or 'down'.\n"
		}
		st.SetNoLB(val == "stopping")
		if err := s.admin.ForceHealth(be.Name, sc.Name, val != "down"); err != nil {
			return err.Error() + ".\n"
		}
	case "agent":
		switch val {
		case "up":
			st.SetAgentUp(true)
		case "down":
			st.SetAgentUp(false)
		default:
			return "'set server <srv> agent' expects 'up' or 'down'.\n"
		}
	case "maxconn":
		return setServerMaxConn(st, val)
	default:
		return "'set server <srv>' only supports 'state', 'weight', 'health', 'agent' and 'maxconn'.\n"
	}
	return ""
}

func setServerMaxConn(st *balancer.Server, val string) string {
	n, err := strconv.Atoi(val)
	if err != nil || n < 0 || n > math.MaxInt32 {
		return "Invalid maxconn value '" + val + "': want a number from 0 (no limit) to 2147483647.\n"
	}
	st.SetMaxConn(n)
	return ""
}

// adminCmd is enable/disable server, health and agent.
func adminCmd(disable bool, what string) func(*Stats, *session, []string) string {
	return func(s *Stats, _ *session, args []string) string {
		be, sc, st, msg := s.target(args)
		if msg != "" {
			return msg
		}
		var err error
		switch what {
		case "server":
			if disable {
				st.SetAdmin(balancer.AdminMaint)
			} else {
				st.SetAdmin(balancer.AdminReady)
			}
		case "health":
			err = s.admin.SetHealthPaused(be.Name, sc.Name, disable)
		case "agent":
			err = s.admin.SetAgentPaused(be.Name, sc.Name, disable)
		}
		if err != nil {
			return err.Error() + ".\n"
		}
		return ""
	}
}

func cmdMaxConnServer(s *Stats, _ *session, args []string) string {
	_, _, st, msg := s.target(args)
	if msg != "" {
		return msg
	}
	if len(args) != 2 {
		return "Integer value expected.\n"
	}
	return setServerMaxConn(st, args[1])
}

func cmdMaxConnFrontend(s *Stats, _ *session, args []string) string {
	if len(args) != 2 {
		return "Frontend name and an integer value expected.\n"
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 0 || n > math.MaxInt32 {
		return "Integer value expected, from 0 (no limit) to 2147483647.\n"
	}
	if err := s.admin.SetFrontendMaxConn(args[0], n); err != nil {
		return "No such frontend.\n"
	}
	return ""
}

func cmdMaxConnGlobal(s *Stats, _ *session, args []string) string {
	if len(args) != 1 {
		return "Expects an integer value.\n"
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n <= 0 || n > math.MaxInt32 {
		return "Expects an integer value from 1 to 2147483647.\n"
	}
	s.admin.SetGlobalMaxConn(n)
	return ""
}

func cmdShutdownServer(s *Stats, _ *session, args []string) string {
	be, sc, _, msg := s.target(args)
	if msg != "" {
		return msg
	}
	if _, err := s.admin.ShutdownServerSessions(be.Name, sc.Name); err != nil {
		return err.Error() + ".\n"
	}
	return ""
}

// cmdServersState is "show servers state [backend]", in the version 1
// format of HAProxy's server-state-file, so that a state dump can seed
// another process (load-server-state-from-file).
func cmdServersState(s *Stats, _ *session, args []string) string {
	if msg := s.knownBackend(args); msg != "" {
		return msg
	}
	backend := ""
	if len(args) > 0 {
		backend = args[0]
	}
	return string(s.ServersState(backend))
}

// ServersState is the state of every server (of one backend when backend
// is not ""), as "show servers state" prints it: a server-state file.
// halo writes it before a binary upgrade and when it stops.
func (s *Stats) ServersState(backend string) []byte {
	b := []byte(serverstate.Header)
	var args []string
	if backend != "" {
		args = []string{backend}
	}
	s.eachServer(args, func(p proxyEntry, sc *config.Server, st *balancer.Server, sid int) {
		l := s.stateLine(p, sc, st, sid)
		b = l.Append(b)
	})
	return b
}

// stateLine is one server's line of the server-state file.
func (s *Stats) stateLine(p proxyEntry, sc *config.Server, st *balancer.Server, sid int) serverstate.Line {
	host, port := splitHostPort(sc.Address)
	l := serverstate.Line{BackendID: p.iid, Backend: p.name, ServerID: sid, Server: sc.Name, Addr: host,
		UWeight: st.Weight(sc.Weight), IWeight: sc.Weight, SinceChange: int64(time.Since(st.LastChange()) / time.Second),
		CheckStatus: 1, CheckHealth: sc.Rise, CheckPort: sc.CheckPort, CheckAddr: sc.CheckAddr}
	l.Port, _ = strconv.Atoi(port)
	if st.Up() {
		l.OpState = serverstate.Running
		if st.NoLB() {
			l.OpState = serverstate.Stopping
		}
	}
	switch st.Admin() {
	case balancer.AdminMaint:
		l.Admin = serverstate.ForcedMaint
		if sc.Disabled {
			l.Admin = serverstate.ConfigMaint
		}
	case balancer.AdminDrain:
		l.Admin = serverstate.ForcedDrain
	}
	if sc.Check {
		l.CheckState = serverstate.CheckConfigured | serverstate.CheckEnabled
		if pr, ok := s.src.CheckProgress(p.name, sc.Name); ok {
			l.CheckHealth = pr.Health
			if pr.Paused {
				l.CheckState = serverstate.CheckConfigured | serverstate.CheckPaused
			}
		}
		if last, ok := s.src.LastCheck(p.name, sc.Name); ok {
			l.CheckStatus = serverstate.StatusCode(last.Status)
			l.CheckResult = serverstate.ResultFailed
			if last.OK {
				l.CheckResult = serverstate.ResultPassed
			}
		}
	}
	if paused, has := s.src.AgentPaused(p.name, sc.Name); has {
		l.AgentState = serverstate.CheckConfigured | serverstate.CheckEnabled | serverstate.CheckAgent
		if paused {
			l.AgentState = serverstate.CheckConfigured | serverstate.CheckAgent
		}
	}
	if sc.Agent != nil {
		l.AgentAddr, l.AgentPort = sc.Agent.Addr, sc.Agent.Port
	}
	return l
}

func splitHostPort(addr string) (string, string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, "0"
	}
	return host, port
}

// cmdServersConn is "show servers conn [backend]".
func cmdServersConn(s *Stats, _ *session, args []string) string {
	if msg := s.knownBackend(args); msg != "" {
		return msg
	}
	var b strings.Builder
	b.WriteString("# bkname/svname bkid/svid addr port - purge_delay used_cur used_max need_est unsafe_nb safe_nb idle_lim idle_cur idle_per_thr[1]\n")
	s.eachServer(args, func(p proxyEntry, sc *config.Server, st *balancer.Server, sid int) {
		host, port := splitHostPort(sc.Address)
		idle := int64(0)
		if p.be.Mode == config.ModeHTTP {
			idle = max(0, int64(s.src.ServerConns(p.name, sc.Name))-st.CurConns())
		}
		fmt.Fprintf(&b, "%s/%s %d/%d %s %s - 0 %d %d 0 0 %d -1 %d %d\n", p.name, sc.Name, p.iid, sid, host, port,
			st.CurConns(), st.MaxServed.Load(), idle, idle, idle)
	})
	return b.String()
}

// knownBackend answers HAProxy's way when args name a backend that does
// not exist.
func (s *Stats) knownBackend(args []string) string {
	if len(args) == 0 {
		return ""
	}
	if cfg := s.src.Config(); cfg == nil || cfg.Backend(args[0]) == nil {
		return "Can't find backend.\n"
	}
	return ""
}

// eachServer visits the servers of every backend, or of the one named in
// args[0], in show stat's order.
func (s *Stats) eachServer(args []string, f func(p proxyEntry, sc *config.Server, st *balancer.Server, sid int)) {
	cfg := s.src.Config()
	if cfg == nil {
		return
	}
	for _, p := range s.proxies(cfg) {
		if p.be == nil || (len(args) > 0 && args[0] != p.name) {
			continue
		}
		for i := range p.be.Servers {
			sc := &p.be.Servers[i]
			if st := s.src.Server(p.name, sc.Name); st != nil {
				f(p, sc, st, s.ids.server(p.name, sc.Name))
			}
		}
	}
}
