package stats

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"syscall"
	"time"

	"github.com/halo-lb/halo/internal/panics"
)

// infoField is one line of "show info", in HAProxy 2.6's order.
type infoField struct {
	name string
	tags string
	typ  valueType
}

// infoFields are show info's fields. Positions matter to "typed" output;
// those HAProxy leaves unset without zlib (45, 46) and without a
// description (51) stay unset here too.
var infoFields = [...]infoField{
	{"Name", "POS", tSTR}, {"Version", "POS", tSTR}, {"Release_date", "POS", tSTR},
	{"Nbthread", "CGS", tU32}, {"Nbproc", "CGS", tU32}, {"Process_num", "KGP", tU32}, {"Pid", "SGP", tU32},
	{"Uptime", "MDP", tSTR}, {"Uptime_sec", "MDP", tU32}, {"Memmax_MB", "CLP", tU32}, {"PoolAlloc_MB", "MGP", tU32},
	{"PoolUsed_MB", "MGP", tU32}, {"PoolFailed", "MCP", tU32}, {"Ulimit-n", "CLP", tU32}, {"Maxsock", "CLP", tU32},
	{"Maxconn", "CLP", tU32}, {"Hard_maxconn", "CLP", tU32}, {"CurrConns", "MGP", tU32}, {"CumConns", "MCP", tU32},
	{"CumReq", "MCP", tU32}, {"MaxSslConns", "MMP", tU32}, {"CurrSslConns", "MGP", tU32}, {"CumSslConns", "MCP", tU32},
	{"Maxpipes", "CLP", tU32}, {"PipesUsed", "MGP", tU32}, {"PipesFree", "MGP", tU32}, {"ConnRate", "MRP", tU32},
	{"ConnRateLimit", "CLP", tU32}, {"MaxConnRate", "MMP", tU32}, {"SessRate", "MRP", tU32},
	{"SessRateLimit", "CLP", tU32}, {"MaxSessRate", "MRP", tU32}, {"SslRate", "MRP", tU32},
	{"SslRateLimit", "CLP", tU32}, {"MaxSslRate", "MMP", tU32}, {"SslFrontendKeyRate", "MGP", tU32},
	{"SslFrontendMaxKeyRate", "MMP", tU32}, {"SslFrontendSessionReuse_pct", "MGP", tU32},
	{"SslBackendKeyRate", "MRP", tU32}, {"SslBackendMaxKeyRate", "MMP", tU32}, {"SslCacheLookups", "MCP", tU32},
	{"SslCacheMisses", "MCP", tU32}, {"CompressBpsIn", "MRP", tU32}, {"CompressBpsOut", "MRP", tU32},
	{"CompressBpsRateLim", "CLP", tU32}, {"ZlibMemUsage", "MGP", tU32}, {"MaxZlibMemUsage", "CLP", tU32},
	{"Tasks", "MGP", tU32}, {"Run_queue", "MGP", tU32}, {"Idle_pct", "MaP", tU32}, {"node", "COS", tSTR},
	{"description", "COS", tSTR}, {"Stopping", "MGP", tU32}, {"Jobs", "MGP", tU32}, {"Unstoppable Jobs", "MGP", tU32},
	{"Listeners", "MGP", tU32}, {"ActivePeers", "MGP", tU32}, {"ConnectedPeers", "MGP", tU32},
	{"DroppedLogs", "MGP", tU32}, {"BusyPolling", "MGP", tU32}, {"FailedResolutions", "MGP", tU32},
	{"TotalBytesOut", "MGP", tU64}, {"TotalSplicdedBytesOut", "MGP", tU64}, {"BytesOutRate", "MRP", tU64},
	{"DebugCommandsIssued", "MGP", tU32}, {"CumRecvLogs", "MCP", tU32}, {"Build info", "POS", tSTR},
	{"Memmax_bytes", "CLP", tU32}, {"PoolAlloc_bytes", "MGP", tU64}, {"PoolUsed_bytes", "MGP", tU64},
	{"Start_time_sec", "MDP", tU32}, {"Tainted", "SGP", tSTR},
	// halo's own, after HAProxy's so that none of theirs moves: panics
	// halo recovered since it started (package panics).
	{"RecoveredPanics", "MCP", tU64},
}

// Info is one reading of "show info": a value per infoFields entry.
type Info struct {
	v [len(infoFields)]value
}

func (in *Info) set(name string, v value) {
	for i := range infoFields {
		if infoFields[i].name == name {
			v.set = true
			in.v[i] = v
			return
		}
	}
	panic("stats: no show info field " + name)
}

func (in *Info) num(name string, n int64) { in.set(name, value{n: n}) }
func (in *Info) str(name, s string)       { in.set(name, value{isStr: true, s: s}) }

// Get returns the named field as show info prints it, "" when unset.
func (in *Info) Get(name string) string {
	for i := range infoFields {
		if infoFields[i].name == name {
			v := in.v[i]
			if !v.set {
				return ""
			}
			if v.isStr {
				return v.s
			}
			return strconv.FormatInt(v.n, 10)
		}
	}
	return ""
}

// releaseDate is show info's Release_date, never empty, as HAProxy's never
// is (hatop refuses a show info without one): the day of the commit the
// binary was built from, written as HAProxy writes it (2022/05/13), or
// "unknown" for a build without version control information.
var releaseDate = func() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if t, err := time.Parse(time.RFC3339, s.Value); s.Key == "vcs.time" && err == nil {
				return t.UTC().Format("2006/01/02")
			}
		}
	}
	return "unknown"
}()

// Info reads the process's figures.
func (s *Stats) Info() Info {
	var in Info
	up := time.Since(s.started)
	in.str("Name", "halo")
	in.str("Version", s.version)
	in.str("Release_date", releaseDate)
	in.num("Nbthread", int64(runtime.GOMAXPROCS(0)))
	in.num("Nbproc", 1)
	in.num("Process_num", 1)
	in.num("Pid", int64(s.pid))
	secs := int64(up / time.Second)
	in.str("Uptime", fmt.Sprintf("%dd %dh%02dm%02ds", secs/86400, secs/3600%24, secs/60%60, secs%60))
	in.num("Uptime_sec", secs)
	heapSys, heapUsed := heapBytes()
	in.num("Memmax_MB", 0)
	in.num("PoolAlloc_MB", int64(heapSys>>20))
	in.num("PoolUsed_MB", int64(heapUsed>>20))
	in.num("PoolFailed", 0)
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	in.num("Ulimit-n", int64(lim.Cur))
	in.num("Maxsock", int64(lim.Cur))
	maxconn := int64(s.src.GlobalMaxConn())
	in.num("Maxconn", maxconn)
	in.num("Hard_maxconn", maxconn)
	in.num("CurrConns", s.src.ActiveConns())
	var conns, reqs, bytesOut, connRate, connMax uint64
	if cfg := s.src.Config(); cfg != nil {
		for _, fe := range cfg.Frontends {
			if c := s.src.FrontendCounters(fe.Name); c != nil {
				conns += c.TotalConns.Load()
				reqs += c.Requests.Load()
				bytesOut += c.BytesOut.Load()
			}
			v := s.samples.view(sampleKey{ObjFrontend, fe.Name, ""})
			connRate += v.sessRate
			connMax += v.sessMax
		}
	}
	in.num("CumConns", int64(conns))
	in.num("CumReq", int64(reqs))
	for _, n := range []string{"MaxSslConns", "CurrSslConns", "CumSslConns", "Maxpipes", "PipesUsed", "PipesFree",
		"ConnRateLimit", "SessRateLimit", "SslRate", "SslRateLimit", "MaxSslRate", "SslFrontendKeyRate",
		"SslFrontendMaxKeyRate", "SslFrontendSessionReuse_pct", "SslBackendKeyRate", "SslBackendMaxKeyRate",
		"SslCacheLookups", "SslCacheMisses", "CompressBpsIn", "CompressBpsOut", "CompressBpsRateLim", "Run_queue",
		"ActivePeers", "ConnectedPeers", "DroppedLogs", "BusyPolling", "FailedResolutions", "TotalSplicdedBytesOut",
		"BytesOutRate", "DebugCommandsIssued", "CumRecvLogs", "Memmax_bytes", "Unstoppable Jobs"} {
		in.num(n, 0)
	}
	in.num("ConnRate", int64(connRate))
	in.num("MaxConnRate", int64(connMax))
	in.num("SessRate", int64(connRate))
	in.num("MaxSessRate", int64(connMax))
	in.num("Tasks", int64(runtime.NumGoroutine()))
	in.num("Idle_pct", 100)
	host, _ := os.Hostname()
	in.str("node", host)
	stopping := int64(0)
	if s.src.Stopping() {
		stopping = 1
	}
	in.num("Stopping", stopping)
	in.num("Jobs", s.src.ActiveConns()+int64(s.src.Listeners()))
	in.num("Listeners", int64(s.src.Listeners()))
	in.num("TotalBytesOut", int64(bytesOut))
	in.str("Build info", s.version+" "+runtime.Version())
	in.num("PoolAlloc_bytes", int64(heapSys))
	in.num("PoolUsed_bytes", int64(heapUsed))
	in.num("Start_time_sec", s.started.Unix())
	in.str("Tainted", "0")
	in.num("RecoveredPanics", int64(panics.Count()))
	return in
}

// heapBytes reads the heap obtained from the system and the part of it in
// use from runtime/metrics, which, unlike runtime.ReadMemStats, does not
// stop the world: show info, the page and every scrape read it.
func heapBytes() (sys, used uint64) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	metrics.Read(samples)
	for i, s := range samples {
		if s.Value.Kind() != metrics.KindUint64 {
			continue
		}
		sys += s.Value.Uint64()
		if i == 0 {
			used = s.Value.Uint64()
		}
	}
	return sys, used
}

// Text renders "show info".
func (in *Info) Text() []byte {
	var b []byte
	for i, f := range infoFields {
		v := in.v[i]
		if !v.set {
			continue
		}
		b = append(b, f.name...)
		b = append(b, ": "...)
		b = v.appendTo(b)
		b = append(b, '\n')
	}
	return b
}

// Typed renders "show info typed": "pos.name.1:TAGS:type:value".
func (in *Info) Typed() []byte {
	var b []byte
	for i, f := range infoFields {
		v := in.v[i]
		if !v.set {
			continue
		}
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, '.')
		b = append(b, f.name...)
		b = append(b, ".1:"...)
		b = append(b, f.tags...)
		b = append(b, ':')
		b = append(b, f.typ.String()...)
		b = append(b, ':')
		b = v.appendTo(b)
		b = append(b, '\n')
	}
	return b
}

// JSON renders "show info json".
func (in *Info) JSON() []byte {
	type field struct {
		Field      jsonPosition `json:"field"`
		ProcessNum int          `json:"processNum"`
		Tags       jsonTags     `json:"tags"`
		Value      jsonValue    `json:"value"`
	}
	out := []field{}
	for i, f := range infoFields {
		v := in.v[i]
		if !v.set {
			continue
		}
		out = append(out, field{Field: jsonPosition{i, f.name}, ProcessNum: 1, Tags: tagsOf(f.tags), Value: v.jsonValue(f.typ)})
	}
	b, _ := json.Marshal(out)
	return append(b, '\n')
}
