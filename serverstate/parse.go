package serverstate

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Error is a line of a file that could not be read, at FILE:LINE.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// File is a server-state file read into lines.
type File struct {
	Name  string
	Lines []Line
}

// maxLine is HAProxy's SRV_STATE_LINE_MAXLEN.
const maxLine = 512

// ReadFile reads the file at path (Parse).
func ReadFile(path string) (*File, []error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, []error{err}
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads a server-state file; name is what messages call it. A file
// without the version line gives no lines, as in HAProxy; a bad line is
// an *Error and the lines around it are still read (HAProxy stops at a
// line with the wrong number of fields, and ignores one whose values are
// out of range). Blank lines and lines starting with "#" are skipped.
func Parse(r io.Reader, name string) (*File, []error) {
	f := &File{Name: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, []error{fmt.Errorf("%s: %w", name, err)}
		}
		return nil, []error{&Error{name, 1, "empty: no version line"}}
	}
	if v := strings.TrimSuffix(sc.Text(), "\r"); v != strconv.Itoa(Version) {
		return nil, []error{&Error{name, 1, fmt.Sprintf("version %q: only version %d is known", v, Version)}}
	}
	var errs []error
	for n := 2; sc.Scan(); n++ {
		text := strings.TrimLeft(sc.Text(), " \t")
		if text == "" || text[0] == '#' {
			continue
		}
		if len(sc.Text()) >= maxLine {
			errs = append(errs, &Error{name, n, fmt.Sprintf("line of %d bytes: at most %d are read", len(sc.Text()), maxLine-1)})
			continue
		}
		l, err := parseLine(text)
		if err != nil {
			errs = append(errs, &Error{name, n, err.Error()})
			continue
		}
		l.Where = fmt.Sprintf("%s:%d", name, n)
		f.Lines = append(f.Lines, l)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	return f, errs
}

// The number of fields a version 1 line has: the first 20 always, the
// last five since HAProxy 2.1.
const minFields, maxFields = 20, 25

func parseLine(text string) (Line, error) {
	w := strings.Fields(text)
	if len(w) < minFields || len(w) > maxFields {
		return Line{}, fmt.Errorf("%d fields: a version 1 line has %d to %d", len(w), minFields, maxFields)
	}
	for len(w) < maxFields {
		w = append(w, "")
	}
	var l Line
	var bad []string
	num := func(i int, name string, lo, hi int64) int64 {
		if w[i] == "" && i >= minFields {
			return 0
		}
		n, err := strconv.ParseInt(w[i], 10, 64)
		if err != nil || n < lo || n > hi {
			bad = append(bad, fmt.Sprintf("%s %q", name, w[i]))
		}
		return n
	}
	const maxInt = 1<<31 - 1
	l.BackendID = int(num(0, "be_id", 0, maxInt))
	l.Backend = w[1]
	l.ServerID = int(num(2, "srv_id", 0, maxInt))
	l.Server = w[3]
	l.Addr = w[4]
	l.OpState = OpState(num(5, "srv_op_state", int64(Stopped), int64(Stopping)))
	l.Admin = int(num(6, "srv_admin_state", 0, 0x7f))
	// As HAProxy: inherited states are worked out again from the
	// configuration, and what is left must be a known combination.
	switch a := l.Admin &^ (InheritedMaint | InheritedDrain | ResolutionMaint | FQDNFromCLI); a {
	case 0, ForcedMaint, ConfigMaint, ConfigMaint | ForcedMaint, ConfigMaint | ForcedDrain, ForcedDrain:
		l.Admin = a
	default:
		bad = append(bad, fmt.Sprintf("srv_admin_state %q", w[6]))
	}
	l.UWeight = int(num(7, "srv_uweight", 0, 256))
	l.IWeight = int(num(8, "srv_iweight", 0, 256))
	l.SinceChange = num(9, "srv_time_since_last_change", 0, 1<<40)
	l.CheckStatus = int(num(10, "srv_check_status", 0, numStatuses-1))
	l.CheckResult = int(num(11, "srv_check_result", ResultUnknown, ResultCondPass))
	l.CheckHealth = int(num(12, "srv_check_health", 0, maxInt))
	const stateBits = CheckInProgress | CheckConfigured | CheckEnabled | CheckPaused | CheckAgent
	l.CheckState = int(num(13, "srv_check_state", 0, stateBits))
	l.AgentState = int(num(14, "srv_agent_state", 0, stateBits))
	if l.CheckState&^stateBits != 0 {
		bad = append(bad, fmt.Sprintf("srv_check_state %q", w[13]))
	}
	if l.AgentState&^stateBits != 0 {
		bad = append(bad, fmt.Sprintf("srv_agent_state %q", w[14]))
	}
	l.BackendForcedID = int(num(15, "bk_f_forced_id", 0, 1))
	l.ServerForcedID = int(num(16, "srv_f_forced_id", 0, 1))
	l.FQDN = dashless(w[17])
	l.Port = int(num(18, "srv_port", 0, 65535))
	l.SRVRecord = dashless(w[19])
	l.UseSSL = int(num(20, "srv_use_ssl", 0, 1))
	l.CheckPort = int(num(21, "srv_check_port", 0, 65535))
	l.CheckAddr = dashless(w[22])
	l.AgentAddr = dashless(w[23])
	l.AgentPort = int(num(24, "srv_agent_port", 0, 65535))
	if bad != nil {
		return Line{}, fmt.Errorf("invalid %s", strings.Join(bad, ", "))
	}
	return l, nil
}

func dashless(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// Global indexes the lines of a global file by backend and server name,
// as HAProxy looks them up for a backend with load-server-state-from-file
// global: the first line of a name wins, a later one is a hand-made
// duplicate and is dropped.
func (f *File) Global() map[[2]string]Line {
	m := map[[2]string]Line{}
	for _, l := range f.Lines {
		k := [2]string{l.Backend, l.Server}
		if _, dup := m[k]; !dup {
			m[k] = l
		}
	}
	return m
}

// Local picks the lines of a backend's own file (local) for the backend
// called name with id: a line of that name applies; a line of another
// name applies only when its id is the backend's and was forced (its
// bk_f_forced_id), as in HAProxy. It returns them by server name, and a
// note for every line it skipped for its backend name.
func (f *File) Local(name string, id int) (map[string]Line, []string) {
	m := map[string]Line{}
	var notes []string
	for _, l := range f.Lines {
		if l.Backend != name {
			if l.BackendID != id || l.BackendForcedID != 1 {
				notes = append(notes, fmt.Sprintf("%s: backend %q is not %s: line skipped", l.Where, l.Backend, name))
				continue
			}
		}
		if _, dup := m[l.Server]; !dup {
			m[l.Server] = l
		}
	}
	return m, notes
}
