package main

import (
	"net"
	"net/http"
	"net/http/pprof"

	"go.uber.org/zap"
)

// servePprof serves Go's runtime profiles on addr, for the benchmark
// suite and for anyone asking where halo spends its time. It has its own
// mux so that nothing else is exposed on that address.
// listen opens its socket (passed on across binary upgrades).
func servePprof(addr string, listen func(string) (net.Listener, error), log *zap.Logger) error {
	ln, err := listen(addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("serving pprof profiles", zap.String("addr", ln.Addr().String()))
	go func() {
		if err := http.Serve(ln, mux); err != nil {
			log.Warn("pprof server stopped", zap.Error(err))
		}
	}()
	return nil
}
