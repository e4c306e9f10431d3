package config

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
)

// checkSections rejects keys that exist in the schema but not in the kind of
// section they were written in.
func (p *parser) checkSections(fc *fileConfig) {
	check := func(kind, path string, s *fileProxy) {
		if s == nil {
			return
		}
		for key := range yamlFields(reflect.TypeOf(*s)) {
			if !sectionKeys[kind][key] && p.isSet(s, key) {
				p.at(joinPath(path, key), "%q is not allowed in %s", key, kind)
			}
		}
		if s.Timeout != nil {
			for key := range yamlFields(reflect.TypeOf(*s.Timeout)) {
				if !sectionTimeouts[kind][key] && !reflect.ValueOf(*s.Timeout).Field(yamlFields(reflect.TypeOf(*s.Timeout))[key]).IsNil() {
					p.at(joinPath(path, "timeout."+key), "timeout %q is not allowed in %s", key, kind)
				}
			}
		}
	}
	check("defaults", "defaults", fc.Defaults)
	for _, kind := range []string{"frontends", "backends", "listen"} {
		sections := map[string]map[string]*fileProxy{"frontends": fc.Frontends, "backends": fc.Backends, "listen": fc.Listen}[kind]
		for name, s := range sections {
			if s == nil {
				p.at(joinPath(kind, name), "section is empty")
				continue
			}
			check(kind, joinPath(kind, name), s)
		}
	}
}

func (p *parser) isSet(s *fileProxy, key string) bool {
	f := reflect.ValueOf(*s).Field(yamlFields(reflect.TypeOf(*s))[key])
	return !f.IsNil()
}

var mapIndex = regexp.MustCompile(`^(frontends|backends|listen)\[([^\]]*)\]`)

// checkTags runs the validator tags and reports each failure at its key.
func (p *parser) checkTags(fc *fileConfig) {
	err := validate.Struct(fc)
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		if err != nil {
			p.at("", "%v", err)
		}
		return
	}
	for _, fe := range verrs {
		_, path, _ := strings.Cut(fe.Namespace(), ".")
		path = mapIndex.ReplaceAllString(path, "$1.$2")
		p.at(path, "%s", tagMessage(fe))
	}
}

func tagMessage(fe validator.FieldError) string {
	val := fmt.Sprint(reflect.Indirect(reflect.ValueOf(fe.Value())))
	if d, ok := reflect.Indirect(reflect.ValueOf(fe.Value())).Interface().(Duration); ok {
		val = time.Duration(d).String()
	}
	switch fe.Tag() {
	case "min":
		return fmt.Sprintf("%s is too small: must be at least %s", val, fe.Param())
	case "max":
		return fmt.Sprintf("%s is too large: must be at most %s", val, fe.Param())
	case "hexadecimal":
		return fmt.Sprintf("%q is not hexadecimal: write bytes as pairs of 0-9, a-f", val)
	case "startswith":
		return fmt.Sprintf("%q must start with %q", val, fe.Param())
	case "oneof":
		return fmt.Sprintf("%q is not supported: must be one of %s", val, strings.ReplaceAll(fe.Param(), " ", ", "))
	default:
		return fmt.Sprintf("%s fails %s %s", val, fe.Tag(), fe.Param())
	}
}

// sectionPath is the key path of a proxy section, wherever it was written.
func sectionPath(fc *fileConfig, kind, name string) string {
	if _, ok := fc.Listen[name]; ok {
		return joinPath("listen", name)
	}
	return joinPath(kind, name)
}

// build turns what is still HAProxy's words or raw strings in cfg into typed
// values, reporting what cannot be: the binds, and each backend's balance
// and health checks.
func (p *parser) build(cfg *Config, fc *fileConfig) {
	p.buildBinds(cfg, fc)
	p.buildGlobalStats(cfg, fc)
	p.buildStatsPages(cfg, fc)
	p.buildCluster(cfg, fc)
	p.buildStickTables(cfg, fc)
	freeBindVIPs(cfg)
	p.checkDefaultsRetryOn(fc)
	for _, be := range cfg.Backends {
		path := sectionPath(fc, "backends", be.Name)
		p.buildBalance(fc, be, path)
		p.buildRetryOn(fc, be, path)
		p.buildHTTPCheck(fc, be, path)
		p.buildTCPCheck(fc, be, path)
		p.buildDBCheck(fc, be, path)
		p.buildServerTransports(fc, be, path)
	}
	p.buildUserlists(cfg, fc)
	p.buildRules(cfg, fc)
	for _, be := range cfg.Backends {
		p.buildCookie(cfg, fc, be, sectionPath(fc, "backends", be.Name))
	}
	p.buildErrorPages(cfg, fc)
	p.buildForwarded(cfg, fc)
	p.buildMonitor(cfg, fc)
	p.buildUniqueID(cfg, fc)
	p.buildCaptures(cfg, fc)
	p.buildServerState(cfg, fc)
}

// checkCrossField checks the rules that span keys or sections.
func (p *parser) checkCrossField(cfg *Config, fc *fileConfig) {
	for name := range fc.Listen {
		if _, ok := fc.Frontends[name]; ok {
			p.at(joinPath("listen", name), "listen %q has the same name as frontend %q", name, name)
		}
		if _, ok := fc.Backends[name]; ok {
			p.at(joinPath("listen", name), "listen %q has the same name as backend %q", name, name)
		}
	}
	p.checkDefaultBackends(cfg, fc)
	p.checkConnModes(fc)
	for _, be := range cfg.Backends {
		path := sectionPath(fc, "backends", be.Name)
		names := map[string]bool{}
		for i := range be.Servers {
			p.checkServer(be, i, fmt.Sprintf("%s.servers[%d]", path, i), names)
		}
	}
}

// checkDefaultBackends checks that a frontend's default_backend (a listen
// section's is itself) names a backend that exists, in its mode. A
// frontend may have none, as in HAProxy: what no use_backend line routes
// is answered 503 (a stats or monitor-uri frontend needs no backend).
func (p *parser) checkDefaultBackends(cfg *Config, fc *fileConfig) {
	for _, fe := range cfg.Frontends {
		path := sectionPath(fc, "frontends", fe.Name)
		if _, isListen := fc.Listen[fe.Name]; isListen {
			continue
		}
		if fe.DefaultBackend == "" {
			continue
		}
		be := cfg.Backend(fe.DefaultBackend)
		if be == nil {
			p.at(path+".default_backend", "backend %q does not exist", fe.DefaultBackend)
			continue
		}
		if be.Mode != fe.Mode {
			p.at(path+".default_backend", "backend %q is in mode %s but this frontend is in mode %s", be.Name, be.Mode, fe.Mode)
		}
	}
}

// checkServer checks server i of be, at key path sp; names holds the names
// of the servers before it.
func (p *parser) checkServer(be *Backend, i int, sp string, names map[string]bool) {
	s := be.Servers[i]
	switch {
	case s.Name == "":
		p.at(sp, "server has no name")
	case names[s.Name]:
		p.at(sp+".name", "server name %q is used twice in this backend", s.Name)
	}
	names[s.Name] = true
	if s.Address == "" {
		p.at(sp, "server %q has no address", s.Name)
	} else if err := checkServerAddress(s.Address); err != nil {
		p.at(sp+".address", "%v", err)
	}
	if s.Agent != nil && s.Agent.Port == 0 {
		p.at(sp, "server %q has agent-check but no agent-port", s.Name)
	}
	if s.Agent != nil && s.Agent.Addr != "" {
		if err := checkServerAddress(net.JoinHostPort(s.Agent.Addr, "1")); err != nil {
			p.at(sp+".agent-addr", "invalid agent address %q: want an IP address or a host name", s.Agent.Addr)
		}
	}
	if s.Observe != "" && !s.Check {
		p.at(sp+".observe", "observe needs check on this server: errors seen in traffic act through its health check")
	}
	if s.Observe == ObserveLayer7 && be.Mode != ModeHTTP {
		p.at(sp+".observe", "observe layer7 reads HTTP responses and needs mode http; this backend is in mode %s", be.Mode)
	}
	if s.CheckAddr != "" {
		if err := checkServerAddress(net.JoinHostPort(s.CheckAddr, "1")); err != nil {
			p.at(sp+".addr", "invalid check address %q: want an IP address or a host name", s.CheckAddr)
		}
	}
}

func checkPort(port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	return nil
}

var hostnameLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

func checkServerAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid address %q: want HOST:PORT or [IPv6]:PORT", addr)
	}
	if err := checkPort(port); err != nil {
		return fmt.Errorf("invalid address %q: %v", addr, err)
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	for _, l := range labels {
		if !hostnameLabel.MatchString(l) {
			return fmt.Errorf("invalid address %q: %q is neither an IP address nor a host name", addr, host)
		}
	}
	return nil
}
