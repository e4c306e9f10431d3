package convert

import (
	"strconv"
	"strings"
)

// processNotes are the global keywords of HAProxy's process model, with
// what halo does instead.
var processNotes = map[string]string{
	"daemon":                         "halo runs in the foreground; run it under systemd (or another supervisor), which also restarts it",
	"master-worker":                  "halo is one process; its binary upgrade hands the listeners to the new one (docs/operations.md)",
	"nbproc":                         "halo is one process with a thread per CPU (GOMAXPROCS)",
	"nbthread":                       "halo uses every CPU it may (GOMAXPROCS, or the CPUs of its cgroup or taskset)",
	"cpu-map":                        "pin halo with taskset or systemd's CPUAffinity=",
	"chroot":                         "confine halo with systemd (RootDirectory=, ProtectSystem=) instead",
	"user":                           "start halo as its user with systemd's User= (binding ports below 1024 then needs CAP_NET_BIND_SERVICE)",
	"group":                          "start halo with systemd's Group=",
	"uid":                            "start halo as its user with systemd's User=",
	"gid":                            "start halo with systemd's Group=",
	"pidfile":                        "halo does not write a pid file; systemd tracks its process",
	"ulimit-n":                       "set the descriptor limit with systemd's LimitNOFILE= (halo raises its soft limit to the hard one)",
	"stats-maxconn":                  "",
	"node":                           "halo names itself by its host name in the stats page",
	"description":                    "halo has no process description",
	"localpeer":                      "halo has no peers section: stick tables stay on their node",
	"maxconnrate":                    "",
	"log-send-hostname":              "",
	"tune.ssl.default-dh-param":      "Go's TLS does not use finite-field Diffie-Hellman; nothing to do",
	"ssl-dh-param-file":              "Go's TLS does not use finite-field Diffie-Hellman; nothing to do",
	"ssl-engine":                     "halo's TLS is Go's crypto/tls; nothing to do",
	"ssl-mode-async":                 "halo's TLS is Go's crypto/tls; nothing to do",
	"setenv":                         "applied while converting",
	"presetenv":                      "applied while converting",
	"unsetenv":                       "applied while converting",
	"resetenv":                       "",
	"zero-warning":                   "halo check lists every warning of its own",
	"expose-experimental-directives": "",
	"set-dumpable":                   "",
	"insecure-fork-wanted":           "halo starts no programs",
	"external-check":                 "halo has no external checks",
	"strict-limits":                  "",
	"quiet":                          "",
	"noepoll":                        "",
	"nosplice":                       "",
}

func (c *converter) mapGlobal(s *Section, g *node) {
	m := &proxyMapper{c: c, kind: "global", out: g, sec: s}
	for _, st := range s.Body {
		m.st = st
		m.global()
	}
}

func (m *proxyMapper) global() {
	w := m.st.Texts()
	kw := w[0]
	if msg, ok := processNotes[kw]; ok {
		switch {
		case kw == "resetenv":
			m.warn("the environment is not reset while converting; variables expand with the converting shell's environment")
		case msg == "":
			m.note("HAProxy's process tuning; halo has none to set")
		default:
			m.note("%s", msg)
		}
		return
	}
	if strings.HasPrefix(kw, "tune.") {
		switch kw {
		case "tune.bufsize":
			m.globalInt(w, 1024, 1048576, "tune", "bufsize")
		case "tune.http.maxhdr":
			m.globalInt(w, 1, 32767, "tune", "http-maxhdr")
		default:
			m.note("HAProxy's tuning; halo sizes this itself")
		}
		return
	}
	switch kw {
	case "maxconn":
		m.globalInt(w, 1, 1<<31-1, "maxconn")
	case "spread-checks":
		m.globalInt(w, 0, 50, "spread-checks")
	case "hard-stop-after":
		if m.need(1, 1, "the time") {
			m.putDuration(w[1], "hard-stop-after")
		}
	case "ssl-default-bind-ciphers", "ssl-default-bind-ciphersuites", "ssl-default-server-ciphers", "ssl-default-server-ciphersuites", "server-state-file", "server-state-base":
		if m.need(1, 1, "the value") {
			m.put(str(w[1]), kw)
		}
	case "ssl-default-bind-options", "ssl-default-server-options":
		if m.need(1, 1, "the options") {
			if opts := m.tlsOptions(w[1:], kw == "ssl-default-server-options"); opts != "" {
				m.put(str(opts), kw)
			}
		}
	case "ssl-server-verify":
		if m.need(1, 1, "none or required") {
			m.put(str(w[1]), kw)
		}
	case "crt-base":
		if m.need(1, 1, "the directory") {
			m.c.crtBase = w[1]
			m.note("applied: relative crt paths of bind and server lines are written under %s", w[1])
		}
	case "ca-base":
		if m.need(1, 1, "the directory") {
			m.c.caBase = w[1]
			m.note("applied: relative ca-file and crl-file paths are written under %s", w[1])
		}
	case "stats":
		m.globalStats(w)
	case "log":
		m.warn("halo has no syslog output yet: it logs to standard error (the journal under systemd); the target is dropped")
	case "maxconnrate", "maxsessrate", "maxsslrate":
		m.warn("halo has no process-wide rate limit of new connections; dropped (a tcp-request connection rule with a stick table can limit each source)")
	case "log-tag":
		m.warn("halo's log lines carry no syslog tag yet; dropped")
	default:
		m.warn("dropped")
	}
}

// tlsOptions keeps the words of ssl-default-*-options that halo takes.
func (m *proxyMapper) tlsOptions(w []string, server bool) string {
	var kept []string
	for i := 0; i < len(w); i++ {
		switch a := w[i]; {
		case (a == "ssl-min-ver" || a == "ssl-max-ver") && i+1 < len(w):
			kept = append(kept, a, w[i+1])
			i++
		case a == "no-sslv3", a == "no-tlsv10", a == "no-tlsv11", a == "no-tlsv12", a == "no-tlsv13", a == "no-tls-tickets":
			kept = append(kept, a)
		case server && strings.HasPrefix(a, "force-tlsv1"):
			kept = append(kept, a)
		case a == "prefer-client-ciphers":
			m.note("prefer-client-ciphers: Go's TLS chooses the suite itself, preferring AES-GCM where the CPU has AES instructions and ChaCha20 where it has not, which is what this option is for")
		default:
			m.warn("option %q is not in halo's TLS (Go's crypto/tls); dropped", a)
		}
	}
	return strings.Join(kept, " ")
}

func (m *proxyMapper) globalInt(w []string, lo, hi int, path ...string) {
	if !m.need(1, 1, "the number") {
		return
	}
	m.putInt(w[1], lo, hi, path...)
}

// globalStats maps "stats socket ..." and "stats timeout".
func (m *proxyMapper) globalStats(w []string) {
	if len(w) < 3 {
		m.warn("stats needs a directive and its value; dropped")
		return
	}
	switch w[1] {
	case "timeout":
		m.putDuration(w[2], "stats", "timeout")
	case "socket":
		path := strings.TrimPrefix(w[2], "unix@")
		if strings.Contains(path, "@") || !strings.HasPrefix(path, "/") {
			m.warn("halo's stats socket is a UNIX socket path: %q; dropped", w[2])
			return
		}
		sock := newMap()
		sock.flow = true
		sock.set("path", str(path))
		for i := 3; i < len(w); i++ {
			switch a := w[i]; {
			case a == "mode" && i+1 < len(w):
				sock.set("mode", str(w[i+1]))
				i++
			case a == "level" && i+1 < len(w):
				sock.set("level", str(w[i+1]))
				i++
			case a == "maxconn" && i+1 < len(w):
				n, err := strconv.Atoi(w[i+1])
				if err != nil {
					m.warn("stats socket maxconn %q is not a number; dropped", w[i+1])
				} else {
					sock.set("maxconn", integer(int64(n)))
				}
				i++
			case a == "expose-fd" && i+1 < len(w):
				m.note("expose-fd %s: halo's binary upgrade hands its listeners over itself (docs/operations.md)", w[i+1])
				i++
			case (a == "user" || a == "group" || a == "uid" || a == "gid") && i+1 < len(w):
				m.warn("stats socket %s %s: halo creates the socket as its own user; set its directory's ownership instead; dropped", a, w[i+1])
				i++
			default:
				m.warn("stats socket word %q is not in halo; dropped", a)
			}
		}
		if sock.get("mode") == nil {
			m.note("halo creates the socket with mode 0600 (HAProxy: by its umask); write stats socket ... mode to choose")
		}
		st := m.out.child("stats")
		l := st.list("socket")
		sock.head, sock.line = m.st.Head, m.st.Comment
		l.items = append(l.items, sock)
	default:
		m.warn("dropped")
	}
}

// mapUserlist maps a userlist section: users with their passwords and
// groups, groups with their users.
func (c *converter) mapUserlist(s *Section, lists *node) {
	u := newMap()
	u.head = s.Head
	lists.set(s.Name, u)
	m := &proxyMapper{c: c, kind: "userlist", out: u, sec: s}
	for _, st := range s.Body {
		m.st = st
		w := st.Texts()
		switch {
		case w[0] == "user" && len(w) >= 2:
			user := newMap()
			user.flow = true
			for i := 2; i < len(w); i++ {
				switch a := w[i]; {
				case (a == "password" || a == "insecure-password") && i+1 < len(w):
					user.set(a, str(w[i+1]))
					i++
				case a == "groups" && i+1 < len(w):
					g := newSeq()
					g.flow = true
					for name := range strings.SplitSeq(w[i+1], ",") {
						g.items = append(g.items, str(name))
					}
					user.set("groups", g)
					i++
				default:
					m.warn("user word %q is not in halo; dropped", a)
				}
			}
			m.put(user, "users", w[1])
		case w[0] == "group" && len(w) >= 2:
			g := newSeq()
			g.flow = true
			for i := 2; i < len(w); i++ {
				if w[i] == "users" && i+1 < len(w) {
					for name := range strings.SplitSeq(w[i+1], ",") {
						g.items = append(g.items, str(name))
					}
					i++
				}
			}
			m.put(g, "groups", w[1])
		default:
			m.warn("dropped")
		}
	}
}
