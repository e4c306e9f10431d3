package stats

import (
	"fmt"
	"strings"
	"time"

	"github.com/halo-lb/halo/config"
)

// command is one runtime API command: the words that name it, the level it
// needs, its usage line for help, and what it does. run returns the answer
// without the final empty line, which the session adds.
type command struct {
	words []string
	level config.Level
	usage string
	help  string
	run   func(s *Stats, sess *session, args []string) string
	// levelFor, when set, decides the level from the arguments.
	levelFor func(args []string) config.Level
}

// commands is the runtime API, HAProxy's commands with HAProxy's levels:
// "show errors" and "show sess" need operator, as in HAProxy, because what
// they show (captured requests, client addresses) may hold secrets.
// Commands are matched on their longest list of words.
var commands []command

func init() {
	commands = []command{
		{words: []string{"help"}, level: config.LevelUser, usage: "help", help: "list the commands", run: cmdHelp},
		{words: []string{"prompt"}, level: config.LevelUser, usage: "prompt", help: "toggle interactive mode with a prompt", run: nil},
		{words: []string{"quit"}, level: config.LevelUser, usage: "quit", help: "leave the session", run: nil},
		{words: []string{"set", "timeout", "cli"}, level: config.LevelUser, usage: "set timeout cli <delay>", help: "change this session's idle timeout (seconds unless a unit is given)", run: cmdSetTimeout},
		{words: []string{"show", "info"}, level: config.LevelUser, usage: "show info [typed|json]", help: "report on the running process", run: cmdShowInfo},
		{words: []string{"show", "stat"}, level: config.LevelUser, usage: "show stat [{<iid>|<proxy>} <type> <sid>] [typed|json]", help: "report counters of every frontend, backend and server (CSV)", run: cmdShowStat},
		{words: []string{"show", "servers", "state"}, level: config.LevelUser, usage: "show servers state [<backend>]", help: "dump server state in the server-state-file format", run: cmdServersState},
		{words: []string{"show", "servers", "conn"}, level: config.LevelUser, usage: "show servers conn [<backend>]", help: "dump server connection counts", run: cmdServersConn},
		{words: []string{"show", "backend"}, level: config.LevelUser, usage: "show backend", help: "list backends", run: cmdShowBackend},
		{words: []string{"show", "sess"}, level: config.LevelOperator, usage: "show sess", help: "list the client connections being served", run: cmdShowSess},
		{words: []string{"show", "errors"}, level: config.LevelOperator, usage: "show errors [<proxy>] [request|response]", help: "show the last request and response refused per proxy", run: cmdShowErrors},
		{words: []string{"show", "ssl", "cert"}, level: config.LevelOperator, usage: "show ssl cert [<filename>]", help: "list the certificates in use, or show one", run: cmdShowSSLCert},
		{words: []string{"show", "cluster"}, level: config.LevelUser, usage: "show cluster [json]", help: "report the cluster: members, leader, quorum, each VIP's holder, fencing", run: cmdShowCluster},
		{words: []string{"cluster", "unfence"}, level: config.LevelAdmin, usage: "cluster unfence <node>", help: "let a fenced node back into the cluster after repair", run: cmdClusterUnfence},
		{words: []string{"get", "weight"}, level: config.LevelUser, usage: "get weight <backend>/<server>", help: "report a server's current and configured weight", run: cmdGetWeight},
		{words: []string{"set", "weight"}, level: config.LevelOperator, usage: "set weight <backend>/<server> <weight>[%]", help: "change a server's weight", run: cmdSetWeight},
		{words: []string{"set", "server"}, level: config.LevelAdmin, usage: "set server <backend>/<server> state|weight|health|agent|maxconn <value>", help: "change a server's state, weight, health, agent or maxconn", run: cmdSetServer, levelFor: setServerLevel},
		{words: []string{"enable", "server"}, level: config.LevelAdmin, usage: "enable server <backend>/<server>", help: "end a server's maintenance", run: adminCmd(false, "server")},
		{words: []string{"disable", "server"}, level: config.LevelAdmin, usage: "disable server <backend>/<server>", help: "put a server in maintenance", run: adminCmd(true, "server")},
		{words: []string{"enable", "health"}, level: config.LevelAdmin, usage: "enable health <backend>/<server>", help: "resume a server's health checks", run: adminCmd(false, "health")},
		{words: []string{"disable", "health"}, level: config.LevelAdmin, usage: "disable health <backend>/<server>", help: "pause a server's health checks", run: adminCmd(true, "health")},
		{words: []string{"enable", "agent"}, level: config.LevelAdmin, usage: "enable agent <backend>/<server>", help: "resume a server's agent-check", run: adminCmd(false, "agent")},
		{words: []string{"disable", "agent"}, level: config.LevelAdmin, usage: "disable agent <backend>/<server>", help: "pause a server's agent-check", run: adminCmd(true, "agent")},
		{words: []string{"set", "maxconn", "server"}, level: config.LevelAdmin, usage: "set maxconn server <backend>/<server> <n>", help: "change a server's maxconn", run: cmdMaxConnServer},
		{words: []string{"set", "maxconn", "frontend"}, level: config.LevelAdmin, usage: "set maxconn frontend <frontend> <n>", help: "change a frontend's maxconn", run: cmdMaxConnFrontend},
		{words: []string{"set", "maxconn", "global"}, level: config.LevelAdmin, usage: "set maxconn global <n>", help: "change the process's maxconn", run: cmdMaxConnGlobal},
		{words: []string{"shutdown", "sessions", "server"}, level: config.LevelAdmin, usage: "shutdown sessions server <backend>/<server>", help: "close every session of a server", run: cmdShutdownServer},
		{words: []string{"shutdown", "session"}, level: config.LevelAdmin, usage: "shutdown session <id>", help: "close one client connection (an id from show sess)", run: cmdShutdownSession},
		{words: []string{"clear", "counters", "all"}, level: config.LevelAdmin, usage: "clear counters all", help: "reset every counter", run: cmdClearAll},
		{words: []string{"clear", "counters"}, level: config.LevelOperator, usage: "clear counters", help: "reset the maxima and rates' maxima", run: cmdClearMax},
	}
}

// Exec runs one command (its words) at the given level and returns its
// answer. sess is nil when no session is behind it (the page's actions).
func (s *Stats) Exec(words []string, level config.Level, sess *session) []byte {
	cmd, args := lookup(words)
	if cmd == nil || cmd.run == nil {
		return []byte("Unknown command: '" + strings.Join(words, " ") + "'. The commands are:\n" + helpText(level))
	}
	need := cmd.level
	if cmd.levelFor != nil {
		need = cmd.levelFor(args)
	}
	if level < need {
		return []byte("Permission denied\n")
	}
	return []byte(cmd.run(s, sess, args))
}

func lookup(words []string) (*command, []string) {
	var best *command
	for i := range commands {
		c := &commands[i]
		if len(c.words) > len(words) || (best != nil && len(c.words) <= len(best.words)) {
			continue
		}
		match := true
		for j, w := range c.words {
			if words[j] != w {
				match = false
				break
			}
		}
		if match {
			best = c
		}
	}
	if best == nil {
		return nil, nil
	}
	return best, words[len(best.words):]
}

// helpText lists the commands a level may use, HAProxy's way: usage,
// padded, then what it does.
func helpText(level config.Level) string {
	var b strings.Builder
	for _, c := range commands {
		if c.level <= level {
			fmt.Fprintf(&b, "  %-55s : %s\n", c.usage, c.help)
		}
	}
	return b.String()
}

func cmdHelp(_ *Stats, sess *session, _ []string) string {
	level := config.LevelAdmin
	if sess != nil {
		level = sess.level
	}
	return helpText(level)
}

func cmdSetTimeout(_ *Stats, sess *session, args []string) string {
	if len(args) != 1 {
		return "Expects an integer value.\n"
	}
	// HAProxy reads this delay in seconds unless a unit is given (hatop
	// sends "set timeout cli 60"), unlike the configuration's timeouts,
	// whose bare numbers are milliseconds.
	arg := args[0]
	if arg != "" && arg[len(arg)-1] >= '0' && arg[len(arg)-1] <= '9' {
		arg += "s"
	}
	d, err := config.ParseDuration(arg)
	if err != nil || d <= 0 {
		return "Invalid timeout value " + args[0] + ": " + errText(err, "it must be positive") + "\n"
	}
	if sess != nil {
		sess.timeout = d
	}
	return ""
}

func errText(err error, otherwise string) string {
	if err != nil {
		return err.Error()
	}
	return otherwise
}

func cmdShowInfo(s *Stats, _ *session, args []string) string {
	in := s.Info()
	for _, a := range args {
		switch a {
		case "typed":
			return string(in.Typed())
		case "json":
			return string(in.JSON())
		}
	}
	return string(in.Text())
}

// cmdShowStat is "show stat [{<iid>|<proxy>} <type> <sid>] [typed|json]".
func cmdShowStat(s *Stats, _ *session, args []string) string {
	f := AllRows
	format := "csv"
	var pos []string
	for _, a := range args {
		switch a {
		case "typed", "json":
			format = a
		case "desc", "up", "no-maint":
			// accepted as HAProxy does; halo's output has no other form
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) > 0 {
		f.Proxy = pos[0]
		if f.Proxy == "*" {
			f.Proxy = ""
		}
	}
	if len(pos) == 2 || len(pos) > 3 {
		return "Require 'type' and 'sid' after the proxy: show stat {<iid>|<proxy>} <type> <sid>.\n"
	}
	if len(pos) == 3 {
		var err error
		if f.Types, err = atoiArg(pos[1]); err != nil {
			return "Invalid type " + pos[1] + ": " + err.Error() + "\n"
		}
		if f.SID, err = atoiArg(pos[2]); err != nil {
			return "Invalid sid " + pos[2] + ": " + err.Error() + "\n"
		}
	}
	t := s.Table(f)
	switch format {
	case "typed":
		return string(t.Typed())
	case "json":
		return string(t.JSON())
	}
	return string(t.CSV())
}

func cmdShowBackend(s *Stats, _ *session, _ []string) string {
	var b strings.Builder
	b.WriteString("# name\n")
	if cfg := s.src.Config(); cfg != nil {
		for _, p := range s.proxies(cfg) {
			if p.be != nil {
				b.WriteString(p.name + "\n")
			}
		}
	}
	return b.String()
}

func cmdShowSess(s *Stats, _ *session, _ []string) string {
	var b strings.Builder
	s.src.EachSession(func(id, fe, mode string, client, local netAddr, age time.Duration) {
		proto := "tcpv4"
		if client != nil && strings.HasPrefix(client.String(), "[") {
			proto = "tcpv6"
		}
		fmt.Fprintf(&b, "%s: proto=%s src=%s dst=%s fe=%s mode=%s age=%s\n", id, proto, addrString(client), addrString(local), fe, mode, ageString(age))
	})
	return b.String()
}

// ageString is HAProxy's way of writing an age: 5s, 2m3s, 1h2m, 3d4h.
func ageString(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%dm", s/3600, s/60%60)
	default:
		return fmt.Sprintf("%dd%dh", s/86400, s/3600%24)
	}
}

func cmdShutdownSession(s *Stats, _ *session, args []string) string {
	if len(args) != 1 {
		return "Session pointer expected (use 'show sess').\n"
	}
	if !s.admin.ShutdownSession(args[0]) {
		return "No such session (use 'show sess').\n"
	}
	return ""
}

func cmdClearMax(s *Stats, _ *session, _ []string) string {
	s.admin.ClearCounters(false)
	s.samples.clearMax()
	return ""
}

func cmdClearAll(s *Stats, _ *session, _ []string) string {
	s.admin.ClearCounters(true)
	s.samples.clearAll()
	return ""
}
