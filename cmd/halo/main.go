// Command halo is a Go-native L4/L7 load balancer that replaces HAProxy.
// This package holds only flags, subcommands, signals and wiring; the logic
// lives in the config, proxy, balancer and health packages.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/proxy"
	"github.com/halo-lb/halo/stats"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The proxy is what the stats read and steer.
var (
	_ stats.Source = (*proxy.Proxy)(nil)
	_ stats.Admin  = (*proxy.Proxy)(nil)
)

// started is when the process started, for show info's uptime.
var started = time.Now()

// version is set at link time (-ldflags "-X main.version=v1.2.3").
var version = "dev"

const defaultConfigPath = "/etc/halo/halo.yaml"

const usage = `usage: halo <command> [flags]

commands:
  run     -c FILE   run in the foreground (SIGHUP reloads, SIGUSR2 upgrades to the binary at
                    halo's path, SIGTERM/SIGINT stop gracefully)
  check   -c FILE   validate a configuration file, like haproxy -c
  convert [-o OUT.yaml] [--strict] haproxy.cfg|-
                    translate an HAProxy configuration into halo's YAML
  ctl     [-s SOCKET] [COMMAND...]
                    send a runtime API command (none: an interactive prompt)
  cluster [-c FILE] status [json] | unfence NODE
                    show the cluster as the local node sees it; let a fenced node back
  demo              run three demo HTTP servers behind halo on 127.0.0.1:8080
  version           print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "convert":
		return cmdConvert(args[1:], os.Stdin, stdout, stderr)
	case "ctl":
		return cmdCtl(args[1:], os.Stdin, stdout, stderr)
	case "cluster":
		return cmdCluster(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "version", "-v", "--version":
		fmt.Fprintf(stdout, "halo %s\n", versionString())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "halo: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func versionString() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		v += " " + info.GoVersion
	}
	return v
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", defaultConfigPath, "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if _, err := config.Load(*path); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, "configuration is valid")
	return 0
}

// logFlushInterval is how long a log line may wait in the buffer before it
// is written.
const logFlushInterval = 50 * time.Millisecond

// newLogger returns the process's logger, writing to stderr, and the
// function that flushes it and stops its flushing goroutine, which the
// caller defers.
//
// Lines are buffered and written in batches, every logFlushInterval or
// when 256 KiB have gathered: one write(2) per batch rather than one per
// line. Every access log line takes the logger's lock, and with a write
// per line a request waited for the other requests' lines to reach
// stderr's reader (a pipe or journald): 5,000 slow clients cut at timeout
// http-request, one line each, took the other clients' p99 from 1.4x to
// 2.7x its value without them (measured, provisional on a shared machine).
func newLogger(level string, stderr io.Writer) (*zap.Logger, func()) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		lvl = zapcore.InfoLevel
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeLevel = zapcore.CapitalLevelEncoder
	out := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(stderr), FlushInterval: logFlushInterval}
	log := zap.New(&consoleCore{Core: zapcore.NewCore(zapcore.NewConsoleEncoder(enc), out, lvl), out: out})
	return log, func() { _ = out.Stop() }
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", defaultConfigPath, "configuration file")
	pprofAddr := fs.String("pprof", "", "serve Go's pprof profiles on this address, e.g. 127.0.0.1:6060 (for profiling; keep it on loopback)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	log, closeLog := newLogger(cfg.Global.LogLevel, stderr)
	defer closeLog()
	upg := newUpgrades(*path, log)
	if *pprofAddr != "" {
		if err := servePprof(*pprofAddr, upg.listen, log); err != nil {
			fmt.Fprintf(stderr, "halo: -pprof: %v\n", err)
			return 1
		}
	}
	return serve(log, cfg, func() (*config.Config, error) { return config.Load(*path) }, upg)
}

// serve runs cfg until SIGTERM or SIGINT, reloading on SIGHUP with load;
// with upg, SIGUSR2 and the runtime API's "upgrade" hand it over to a new
// process of the binary (upgrade.go), and a process that is such a new
// one takes over from the old.
func serve(log *zap.Logger, cfg *config.Config, load func() (*config.Config, error), upg *upgrades) int {
	raiseFileLimit(log)
	cfg = withDefaultMaxConn(cfg)
	// Signals are caught before the listeners open: a SIGHUP sent as soon
	// as the port answers must reload, not kill the process.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	p := proxy.New(log)
	st := stats.New(p, p, log.Named("stats"), stats.Options{Version: version, Started: started})
	defer st.Close()
	carried, handoverIn, first := upg.takeOver(st)
	if carried == nil {
		carried = loadServerState(cfg, st.ProxyIDs(cfg), log.Named("state"))
	}
	if upg != nil {
		upg.inherit(p, st)
	}
	p.Restore(carried)
	if err := p.Apply(cfg); err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}
	p.SetStatsPage(st)
	if handoverIn != nil {
		st.Hold() // until the previous process no longer answers
	}
	if err := st.ServeSockets(cfg.Global.Stats); err != nil {
		log.Error("cannot start", zap.Error(err))
		return 1
	}
	cl := newClusterNode(cfg.Cluster, p, st, log)
	if first != nil && first.Cluster {
		cl.later() // once the previous process's node has left
	} else if err := cl.startNow(); err != nil {
		// After the proxy: the listeners are open (VIP binds with
		// IP_FREEBIND), so local health is true from the first tick.
		return 1
	}
	var upgrader stats.Upgrader
	var requests chan chan string
	if upg != nil {
		if err := upg.upg.Ready(); err != nil {
			log.Error("cannot tell the previous process this one is ready", zap.Error(err))
		}
		upgrader, requests = upg, upg.requests
		st.SetUpgrader(upgrader)
		if handoverIn != nil {
			go upg.follow(handoverIn, carried.Totals, p, st, cl)
		}
	}
	log.Info("halo started", zap.String("version", version), zap.String("config", cfg.File), zap.Int("pid", os.Getpid()),
		zap.Int("frontends", len(cfg.Frontends)), zap.Int("backends", len(cfg.Backends)), zap.Int("maxconn", cfg.Global.MaxConn))
	upgrade := func(answer chan string) (int, bool) {
		began := time.Now()
		msg, ok := upg.start(p, st, cl)
		if answer != nil {
			answer <- msg
		}
		if !ok {
			log.Warn(strings.TrimSpace(strings.SplitN(msg, "\n", 2)[0]))
			return 0, false
		}
		return upg.handOver(p, st, cl, began), true
	}
	for {
		select {
		case answer := <-requests:
			if code, done := upgrade(answer); done {
				return code
			}
			continue
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				reload(log, p, st, load)
				continue
			case syscall.SIGUSR2:
				if upg == nil {
					log.Warn("SIGUSR2: this process cannot be upgraded")
					continue
				}
				if code, done := upgrade(nil); done {
					return code
				}
				continue
			}
			live := p.Snapshot().Config()
			if cl.stop() {
				// First: the VIPs leave this node, released, so they move
				// at once without a fence while the connections drain.
				log.Info("left the cluster")
			}
			writeServerState(live, st, log)
			hardStop := live.Global.HardStopAfter
			log.Info("stopping: no longer accepting, waiting for connections to finish",
				zap.String("signal", sig.String()), zap.Duration("hard-stop-after", hardStop))
			ctx, cancel := context.WithTimeout(context.Background(), hardStop)
			err := p.Shutdown(ctx)
			cancel()
			if err != nil {
				log.Warn("hard stop", zap.Error(err))
			} else {
				log.Info("stopped")
			}
			if upg != nil {
				upg.upg.Stop()
			}
			return 0
		}
	}
}

func reload(log *zap.Logger, p *proxy.Proxy, st *stats.Stats, load func() (*config.Config, error)) {
	cfg, err := load()
	if err != nil {
		if errs := config.Errors(err); errs != nil {
			for _, e := range errs {
				log.Error("reload rejected: invalid configuration; still serving the previous one", zap.String("error", e.Error()))
			}
		} else {
			log.Error("reload rejected; still serving the previous configuration", zap.Error(err))
		}
		return
	}
	oldCluster := p.Snapshot().Config().Cluster
	if err := p.Apply(withDefaultMaxConn(cfg)); err != nil {
		log.Error("reload failed; still serving the previous configuration", zap.Error(err))
		return
	}
	if err := st.ServeSockets(cfg.Global.Stats); err != nil {
		log.Error("reloaded, but a stats socket could not be opened", zap.Error(err))
	}
	if !reflect.DeepEqual(oldCluster, cfg.Cluster) {
		log.Warn("the cluster section changed: it takes effect when halo restarts; the cluster keeps running as started")
	}
	log.Info("reloaded", zap.String("config", cfg.File),
		zap.Int("frontends", len(cfg.Frontends)), zap.Int("backends", len(cfg.Backends)))
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit, as HAProxy
// does, since every proxied connection needs two descriptors.
func raiseFileLimit(log *zap.Logger) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			log.Warn("cannot raise the open file limit", zap.Error(err))
		}
	}
}

// withDefaultMaxConn fills in a global maxconn left unset, from the file
// descriptor limit as HAProxy does: two descriptors per connection, with
// some kept back for listeners, checks and logs.
func withDefaultMaxConn(cfg *config.Config) *config.Config {
	if cfg.Global.MaxConn > 0 {
		return cfg
	}
	var lim syscall.Rlimit
	n := 4096
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur > 256 {
		n = int(min(lim.Cur, 1<<22)-128) / 2
	}
	c := *cfg
	c.Global.MaxConn = n
	return &c
}
