package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// WrkScript is the Lua script given to wrk with -s: at the end of a run it
// prints one JSON line with the request count, the socket errors by kind
// (what a reload costs shows there) and the latency percentiles, which
// wrk's own --latency table lacks at 99.9%.
const WrkScript = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\nHALO-BENCH {"requests":%d,"duration_us":%d,"errors":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"status_errors":%d,"p50_us":%d,"p99_us":%d,"p999_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
`

// OpenStackWrkScript sends requests as OpenStack clients do, then
// reports as WrkScript does: the paths of four APIs in turn (their
// answers from benchd -openstack weigh 1, 2, 4 and 8 KiB), with the
// headers keystoneauth sends: a Fernet token of 183 bytes in
// X-Auth-Token, User-Agent, Accept, Accept-Encoding, the microversion
// and request-id headers, eight fields and those wrk -H adds.
const OpenStackWrkScript = `local paths = {"/identity/v3/auth/projects", "/compute/v2.1/servers/detail",
  "/image/v2/images?limit=20", "/network/v2.0/ports?device_owner=compute%3Anova"}
local token = "gAAAAABnX2mQ" .. string.rep("k3Yv8Jq0ZtR1wL5pN9sC", 7) .. "xZ7bQ2mT4rW6yU8iO0pA5sD7fG9hJ1k"
local n = 0
request = function()
  n = n + 1
  local headers = {
    ["Host"] = "controller:5000",
    ["User-Agent"] = "python-keystoneclient keystoneauth1/5.1.2 python-requests/2.28.1 CPython/3.11.2",
    ["Accept"] = "application/json",
    ["Accept-Encoding"] = "gzip, deflate",
    ["X-Auth-Token"] = token,
    ["OpenStack-API-Version"] = "compute 2.79",
    ["X-OpenStack-Nova-API-Version"] = "2.79",
    ["X-OpenStack-Request-ID"] = string.format("req-%08x-2f3c-4d5e-8f9a-0b1c2d3e4f50", n),
  }
  -- What wrk -H adds (Connection: close for the new-connection runs).
  for k, v in pairs(wrk.headers) do
    if headers[k] == nil then headers[k] = v end
  end
  return wrk.format("GET", paths[(n % #paths) + 1], headers)
end
` + WrkScript

// WrkResult is one wrk run as WrkScript reports it.
type WrkResult struct {
	Requests   int64 `json:"requests"`
	DurationUS int64 `json:"duration_us"`
	// Errors is the sum of the socket errors that follow: connections
	// refused or failed (Connect), reset or closed before a whole
	// response (Read), failed sends (Write), and responses that took
	// longer than wrk's timeout (Timeouts).
	Errors        int64 `json:"errors"`
	ConnectErrors int64 `json:"connect_errors"`
	ReadErrors    int64 `json:"read_errors"`
	WriteErrors   int64 `json:"write_errors"`
	Timeouts      int64 `json:"timeouts"`
	// StatusErrors counts responses with a status of 400 or more (wrk's
	// "Non-2xx or 3xx responses").
	StatusErrors int64 `json:"status_errors"`
	P50US        int64 `json:"p50_us"`
	P99US        int64 `json:"p99_us"`
	P999US       int64 `json:"p999_us"`
}

// RequestsPerSecond is the run's request rate.
func (r WrkResult) RequestsPerSecond() float64 {
	if r.DurationUS <= 0 {
		return 0
	}
	return float64(r.Requests) / (float64(r.DurationUS) / 1e6)
}

const wrkMarker = "HALO-BENCH "

// ParseWrk finds WrkScript's line in wrk's output.
func ParseWrk(out []byte) (WrkResult, error) {
	var r WrkResult
	i := bytes.LastIndex(out, []byte(wrkMarker))
	if i < 0 {
		return r, fmt.Errorf("wrk printed no %q line (is it built with Lua?): %q", strings.TrimSpace(wrkMarker), tail(out, 400))
	}
	line := out[i+len(wrkMarker):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("wrk result %q: %w", line, err)
	}
	if r.Requests == 0 {
		return r, fmt.Errorf("wrk completed no request: %q", tail(out, 400))
	}
	return r, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times; it is 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// CPUSeconds is the user plus system CPU time of process pid and all its
// threads so far.
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

func parseStatCPU(b []byte) (float64, error) {
	// The command name (field 2) is in parentheses and may contain spaces;
	// fields are counted after its closing one.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc stat line %q", tail(b, 200))
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc stat line %q", tail(b, 200))
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("malformed /proc stat times %q %q", fields[11], fields[12])
	}
	return float64(utime+stime) / clockTicks, nil
}

// Memory is a process's resident set size now and at its peak, in bytes.
type Memory struct{ RSS, Peak int64 }

// ReadMemory reads VmRSS and VmHWM of process pid.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	return parseStatus(b)
}

func parseStatus(b []byte) (Memory, error) {
	var m Memory
	var found int
	for line := range strings.SplitSeq(string(b), "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(value)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("unexpected %s line %q", key, line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("%s: %w", key, err)
		}
		if key == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.Peak = kb << 10
		}
		found++
	}
	if found != 2 {
		return m, fmt.Errorf("/proc status has no VmRSS and VmHWM lines")
	}
	return m, nil
}

// SNMPCounter reads one counter from the contents of /proc/net/snmp, where
// each protocol has a line of names followed by a line of values.
func SNMPCounter(b []byte, proto, name string) (int64, error) {
	lines := strings.Split(string(b), "\n")
	prefix := proto + ":"
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], prefix) || !strings.HasPrefix(lines[i+1], prefix) {
			continue
		}
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j, n := range names {
			if n == name && j < len(values) {
				return strconv.ParseInt(values[j], 10, 64)
			}
		}
		break
	}
	return 0, fmt.Errorf("no %s %s counter in /proc/net/snmp", proto, name)
}

// SignalsCaught reads the SigCgt mask from the contents of /proc/PID/status:
// bit n-1 is set when signal n has a handler.
func SignalsCaught(status []byte) (uint64, error) {
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "SigCgt:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("/proc status has no SigCgt line")
}
