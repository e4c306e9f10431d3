package convert

import "strings"

// haproxyCaps says in which sections HAProxy applies each YAML key (its
// keyword matrix, configuration.txt 4.1): d defaults, f frontend, l
// listen, b backend. Where HAProxy applies a key and halo's section does
// not take it, the line is not "ignored by HAProxy too": it is a loss, and
// the warning says so.
var haproxyCaps = map[string]string{
	"acl": "dflb", "balance": "dlb", "bind": "fl", "capture": "fl", "cookie": "dlb", "declare": "fl",
	"default-server": "dlb", "default_backend": "dfl", "errorfile": "dflb", "force-persist": "lb",
	"hash-type": "dlb", "hash-balance-factor": "dlb", "http-check": "dlb", "http-error": "dflb",
	"http-request": "dflb", "http-response": "dflb", "ignore-persist": "lb",
	"load-server-state-from-file": "dlb", "maxconn": "dfl", "mode": "dflb", "monitor": "fl",
	"monitor-uri": "dfl", "redirect": "flb", "retries": "dlb", "retry-on": "dlb", "servers": "lb",
	"server-state-file-name": "dlb", "stats": "dflb", "stick": "lb", "stick-table": "flb",
	"tcp-check": "dlb", "tcp-request": "dflb", "unique-id-format": "dfl", "unique-id-header": "dfl",
	"use_backend": "fl", "option": "dflb", "timeout": "dflb",
}

// timeoutCaps is the same for each timeout.
var timeoutCaps = map[string]string{
	"client": "dfl", "server": "dlb", "connect": "dlb", "check": "dlb", "tunnel": "dlb",
	"http-request": "dflb", "http-keep-alive": "dflb", "queue": "dlb",
}

var kindLetter = map[string]string{"defaults": "d", "frontends": "f", "listen": "l", "backends": "b"}

// haproxyApplies reports whether HAProxy applies key (and timeout) in a
// section of the YAML kind.
func haproxyApplies(kind, key, timeout string) bool {
	caps, ok := haproxyCaps[key]
	if !ok {
		return true
	}
	if key == "timeout" && timeout != "" {
		if t, ok := timeoutCaps[timeout]; ok {
			caps = t
		}
	}
	return strings.Contains(caps, kindLetter[kind])
}
