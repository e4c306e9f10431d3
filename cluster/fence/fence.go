// Package fence owns running fence agents: programs that speak ClusterLabs'
// FenceAgentAPI (doc/FenceAgentAPI.md in github.com/ClusterLabs/fence-agents),
// so every fence_* agent of Debian's fence-agents package works, and so does
// any script that follows the same rules.
//
// The API, as this package speaks it: the agent gets its options as
// key=value lines on standard input, the last one action=...; it exits 0 on
// success and 1 on failure, and for status (and monitor) 0 means on, 2 off
// and 1 that the device could not be asked. A timeout is a failure, never a
// success: on timeout (or when the context ends) the agent's whole process
// group is killed, so a hung agent leaves nothing behind.
//
// An Agent is a value; Run, Fence and Unfence may be called from several
// goroutines at once (each call runs its own process).
package fence

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Exit codes of the FenceAgentAPI.
const (
	ExitSuccess = 0 // off, on, reboot: done; status, monitor: on (or working)
	ExitFailure = 1 // failed, or the device could not be contacted
	ExitOff     = 2 // status, monitor: the device answers and the port is off
)

// DefaultTimeout bounds one run of an agent whose Timeout is 0: Pacemaker's
// default stonith-timeout.
const DefaultTimeout = 60 * time.Second

// Errors a Result or Fence may wrap (match with errors.Is).
var (
	// ErrTimeout: the agent did not finish within its Timeout; its process
	// group was killed.
	ErrTimeout = errors.New("fence agent timed out")
	// ErrFailed: the agent exited with a code that means failure for the
	// action (or was killed by a signal).
	ErrFailed = errors.New("fence agent failed")
	// ErrNotOff: status after off said the node is still on (or did not
	// say off).
	ErrNotOff = errors.New("fence agent's status does not confirm the node is off")
	// ErrOption: an option cannot be written as a FenceAgentAPI line.
	ErrOption = errors.New("invalid fence agent option")
	// ErrAction: Fence was asked for an action other than off or reboot.
	ErrAction = errors.New("invalid fence action")
)

// Agent is one fence agent with the options that select the node it fences.
type Agent struct {
	// Path is the program, e.g. /usr/sbin/fence_ipmilan.
	Path string
	// Options are written to the agent's stdin as key=value lines, in sorted
	// key order, before action=. Neither keys nor values may contain a
	// newline; keys may not contain '=' or white space, nor be "action" or
	// "option" (its deprecated alias): the action is the caller's.
	Options map[string]string
	// Secret names the options never to be logged (passwords read from
	// files). Redacted hides them, and Result.Output has their values
	// replaced.
	Secret map[string]bool
	// Timeout bounds each run of the agent; 0 means DefaultTimeout.
	Timeout time.Duration
}

// Result is what one run of the agent did.
type Result struct {
	Action   string
	ExitCode int // -1 when the agent did not exit by itself (killed, never started)
	// Output is the tail (at most OutputLimit bytes, plus a note of how much
	// was dropped) of the agent's stdout and stderr, interleaved, with the
	// values of secret options replaced.
	Output   string
	Duration time.Duration
	// Err is nil only on success: exit 0 (or, for status and monitor, 0 or
	// 2: both are answers).
	Err error
}

// Run runs the agent once with action (off, on, reboot, status, monitor,
// list, ...), within the agent's Timeout and ctx.
func (a Agent) Run(ctx context.Context, action string) Result {
	start := time.Now()
	r := Result{Action: action, ExitCode: -1}
	input, err := a.input(action)
	if err != nil {
		r.Err = err
		return r
	}
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, ErrTimeout)
	defer cancel()

	out := newTail(OutputLimit)
	cmd := exec.CommandContext(ctx, a.Path)
	cmd.Stdin = strings.NewReader(input)
	cmd.Stdout = out // the same pointer for both: one goroutine writes, in order
	cmd.Stderr = out
	// Its own process group, so that on timeout the agent and everything it
	// started (ssh, ipmitool, a sleep in a script) die together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A child that left the group and kept our pipes open must not hold Run
	// past the kill.
	cmd.WaitDelay = time.Second

	runErr := cmd.Run()
	r.Duration = time.Since(start)
	r.Output = a.scrub(out.String())
	if cmd.ProcessState != nil {
		r.ExitCode = cmd.ProcessState.ExitCode()
	}
	r.Err = a.verdict(ctx, action, r.ExitCode, runErr)
	return r
}

// verdict turns how the run ended into Result.Err.
func (a Agent) verdict(ctx context.Context, action string, code int, runErr error) error {
	what := fmt.Sprintf("%s action=%s", a.Path, action)
	if ctx.Err() != nil {
		// Killed by us, whatever it had done so far: a timeout is a
		// failure, never a success.
		if cause := context.Cause(ctx); !errors.Is(cause, ErrTimeout) {
			return fmt.Errorf("%s: %w (process group killed)", what, cause)
		}
		return fmt.Errorf("%s: %w after %v (process group killed)", what, ErrTimeout, a.timeout())
	}
	var exitErr *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exitErr) {
		return fmt.Errorf("%s: %w", what, runErr) // never started, or a pipe failed
	}
	switch {
	case code == ExitSuccess:
		return nil
	case code == ExitOff && (action == "status" || action == "monitor"):
		return nil
	case code < 0:
		return fmt.Errorf("%s: %w: %v", what, ErrFailed, runErr)
	default:
		return fmt.Errorf("%s: %w: exit status %d", what, ErrFailed, code)
	}
}

func (a Agent) timeout() time.Duration {
	if a.Timeout <= 0 {
		return DefaultTimeout
	}
	return a.Timeout
}

// Fence powers the node off and proves it. action is off or reboot. For off,
// a status run must then exit 2 (off): an agent whose off succeeded but whose
// status says on, or cannot tell, has not fenced the node. A reboot is not
// verified by status (the node is meant to come back on): as the API says,
// its exit 0 means the off part succeeded. It returns the results of each
// step run, and nil only when the node is confirmed fenced.
func (a Agent) Fence(ctx context.Context, action string) ([]Result, error) {
	if action != "off" && action != "reboot" {
		return nil, fmt.Errorf("%w %q: fencing is off or reboot", ErrAction, action)
	}
	off := a.Run(ctx, action)
	results := []Result{off}
	if off.Err != nil {
		return results, off.Err
	}
	if action == "reboot" {
		return results, nil
	}
	status := a.Run(ctx, "status")
	results = append(results, status)
	switch {
	case status.Err != nil:
		return results, fmt.Errorf("%w: %w", ErrNotOff, status.Err)
	case status.ExitCode != ExitOff:
		return results, fmt.Errorf("%s: %w: status after off exited %d (on)", a.Path, ErrNotOff, status.ExitCode)
	}
	return results, nil
}

// Unfence lets a fenced node back: action=on. It returns the one result, and
// its error.
func (a Agent) Unfence(ctx context.Context) ([]Result, error) {
	r := a.Run(ctx, "on")
	return []Result{r}, r.Err
}

// Redacted returns a copy of the options for logging, with the value of
// every secret option (Secret, and any whose key contains "passw", as
// fence-agents' passwd does) replaced by "<redacted>".
func (a Agent) Redacted() map[string]string {
	out := make(map[string]string, len(a.Options))
	for k, v := range a.Options {
		if a.secret(k) {
			v = redacted
		}
		out[k] = v
	}
	return out
}

const redacted = "<redacted>"

func (a Agent) secret(key string) bool {
	return a.Secret[key] || strings.Contains(strings.ToLower(key), "passw")
}

// scrub replaces, in an agent's output, the values of secret options long
// enough not to be confused with ordinary text (a verbose agent may echo
// what it sends to the device).
func (a Agent) scrub(s string) string {
	for k, v := range a.Options {
		if a.secret(k) && len(v) >= minScrub {
			s = strings.ReplaceAll(s, v, redacted)
		}
	}
	return s
}

// minScrub is the shortest secret value scrubbed from output: replacing
// every "a" of an output would hide more than it protects.
const minScrub = 4

// input is the agent's stdin: the options in sorted key order, then the
// action.
func (a Agent) input(action string) (string, error) {
	if err := checkLine("action", action); err != nil {
		return "", err
	}
	keys := make([]string, 0, len(a.Options))
	for k := range a.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		if k == "action" || k == "option" {
			return "", fmt.Errorf("%w %q: the action is given by the caller, not in the options", ErrOption, k)
		}
		v := a.Options[k]
		if err := checkLine(k, v); err != nil {
			return "", err
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	b.WriteString("action=")
	b.WriteString(action)
	b.WriteByte('\n')
	return b.String(), nil
}

// checkLine refuses what the FenceAgentAPI does not allow in a key=value
// line. The value is not quoted in the error: it may be a secret.
func checkLine(key, value string) error {
	switch {
	case key == "" || strings.ContainsAny(key, "= \t\r\n") || strings.HasPrefix(key, "#"):
		return fmt.Errorf("%w %q: a key must be non-empty, without '=' or white space, and not start with '#'", ErrOption, key)
	case strings.ContainsAny(value, "\r\n\x00"):
		return fmt.Errorf("%w %q: its value contains a newline or NUL", ErrOption, key)
	}
	return nil
}
