package fence

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fake returns an Agent running testdata/fake_agent with opts, plus a state
// and a record file in a fresh directory, and the directory.
func fake(t *testing.T, opts map[string]string) (Agent, string) {
	t.Helper()
	path, err := filepath.Abs("testdata/fake_agent")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o := map[string]string{
		"state":  filepath.Join(dir, "state"),
		"record": filepath.Join(dir, "record"),
	}
	for k, v := range opts {
		o[k] = v
	}
	return Agent{Path: path, Options: o, Timeout: 10 * time.Second}, dir
}

// runs returns the stdin of each run the fake agent recorded.
func runs(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "record"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(string(b), "--\n")
	return parts[:len(parts)-1]
}

func TestRunWritesSortedOptionsThenAction(t *testing.T) {
	a, dir := fake(t, map[string]string{"port": "ctl2", "ipaddr": "192.0.2.12", "login": "admin"})
	r := a.Run(context.Background(), "off")
	if r.Err != nil || r.ExitCode != 0 || r.Action != "off" {
		t.Fatalf("Run(off) = %+v, want success", r)
	}
	if !strings.Contains(r.Output, "Success: Powered OFF") {
		t.Errorf("Output = %q, want the agent's stdout", r.Output)
	}
	if r.Duration <= 0 {
		t.Errorf("Duration = %v", r.Duration)
	}
	want := "ipaddr=192.0.2.12\nlogin=admin\nport=ctl2\n" +
		"record=" + filepath.Join(dir, "record") + "\nstate=" + filepath.Join(dir, "state") + "\naction=off\n"
	if got := runs(t, dir); len(got) != 1 || got[0] != want {
		t.Errorf("stdin = %q, want %q", got, want)
	}
}

func TestFenceOffConfirmedByStatus(t *testing.T) {
	a, dir := fake(t, nil)
	rs, err := a.Fence(context.Background(), "off")
	if err != nil {
		t.Fatalf("Fence(off): %v", err)
	}
	if len(rs) != 2 || rs[0].Action != "off" || rs[0].ExitCode != 0 || rs[1].Action != "status" || rs[1].ExitCode != ExitOff || rs[1].Err != nil {
		t.Fatalf("results = %+v, want off=0 then status=2", rs)
	}
	got := runs(t, dir)
	if len(got) != 2 || !strings.HasSuffix(got[0], "action=off\n") || !strings.HasSuffix(got[1], "action=status\n") {
		t.Errorf("runs = %q, want off then status", got)
	}
}

func TestFenceFailsWhenOffExits1(t *testing.T) {
	a, dir := fake(t, map[string]string{"fail": "off"})
	rs, err := a.Fence(context.Background(), "off")
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("Fence = %v, want ErrFailed", err)
	}
	if len(rs) != 1 || rs[0].ExitCode != 1 || !errors.Is(rs[0].Err, ErrFailed) || !strings.Contains(rs[0].Output, "off failed as asked") {
		t.Fatalf("results = %+v, want one failed off with its stderr", rs)
	}
	if n := len(runs(t, dir)); n != 1 {
		t.Errorf("%d runs, want 1: no status after a failed off", n)
	}
}

func TestFenceFailsWhenStatusSaysOn(t *testing.T) {
	a, _ := fake(t, map[string]string{"lie": "on"})
	rs, err := a.Fence(context.Background(), "off")
	if !errors.Is(err, ErrNotOff) {
		t.Fatalf("Fence = %v, want ErrNotOff", err)
	}
	if len(rs) != 2 || rs[0].Err != nil || rs[1].ExitCode != 0 || rs[1].Err != nil {
		t.Fatalf("results = %+v, want off ok, status ran and answered on", rs)
	}
}

func TestFenceFailsWhenStatusCannotTell(t *testing.T) {
	a, _ := fake(t, map[string]string{"fail": "status"})
	rs, err := a.Fence(context.Background(), "off")
	if !errors.Is(err, ErrNotOff) || !errors.Is(err, ErrFailed) {
		t.Fatalf("Fence = %v, want ErrNotOff wrapping ErrFailed", err)
	}
	if len(rs) != 2 || rs[1].ExitCode != 1 {
		t.Fatalf("results = %+v", rs)
	}
}

func TestFenceRebootIsNotVerifiedByStatus(t *testing.T) {
	a, dir := fake(t, nil)
	rs, err := a.Fence(context.Background(), "reboot")
	if err != nil || len(rs) != 1 || rs[0].Action != "reboot" {
		t.Fatalf("Fence(reboot) = %+v, %v", rs, err)
	}
	if n := len(runs(t, dir)); n != 1 {
		t.Errorf("%d runs, want 1", n)
	}
}

func TestFenceRefusesOtherActions(t *testing.T) {
	a, dir := fake(t, nil)
	for _, action := range []string{"on", "status", "", "OFF"} {
		if rs, err := a.Fence(context.Background(), action); !errors.Is(err, ErrAction) || rs != nil {
			t.Errorf("Fence(%q) = %v, %v; want ErrAction and no run", action, rs, err)
		}
	}
	if n := len(runs(t, dir)); n != 0 {
		t.Errorf("%d runs, want none", n)
	}
}

func TestUnfenceRunsOn(t *testing.T) {
	a, dir := fake(t, nil)
	if _, err := a.Fence(context.Background(), "off"); err != nil {
		t.Fatal(err)
	}
	rs, err := a.Unfence(context.Background())
	if err != nil || len(rs) != 1 || rs[0].Action != "on" {
		t.Fatalf("Unfence = %+v, %v", rs, err)
	}
	if r := a.Run(context.Background(), "status"); r.Err != nil || r.ExitCode != ExitSuccess {
		t.Errorf("status after unfence = %+v, want 0 (on)", r)
	}
	if s, _ := os.ReadFile(filepath.Join(dir, "state")); string(s) != "on\n" {
		t.Errorf("state = %q", s)
	}
}

// A hung agent is a failure once its timeout passes, and everything it
// started dies with it.
func TestRunTimeoutKillsProcessGroup(t *testing.T) {
	a, dir := fake(t, map[string]string{"hang": "off", "pidfile": filepath.Join(t.TempDir(), "child.pid")})
	a.Timeout = 300 * time.Millisecond
	start := time.Now()
	r := a.Run(context.Background(), "off")
	took := time.Since(start)
	if !errors.Is(r.Err, ErrTimeout) || r.ExitCode != -1 {
		t.Fatalf("Run = %+v, want ErrTimeout and no exit code", r)
	}
	if took > a.Timeout+2*time.Second {
		t.Errorf("Run took %v with a %v timeout", took, a.Timeout)
	}
	if !strings.Contains(r.Output, "hanging in off") {
		t.Errorf("Output = %q, want what the agent said before it hung", r.Output)
	}
	b, err := os.ReadFile(a.Options["pidfile"])
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, child)
	if n := len(runs(t, dir)); n != 1 {
		t.Errorf("%d runs", n)
	}
}

// waitGone waits until pid has exited: no longer in /proc, or a zombie
// (dead, waiting for whichever process reaps orphans here).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if err == nil {
			// pid (comm) STATE ...: comm may hold spaces, the state follows the last ')'.
			s := string(stat)
			if i := strings.LastIndexByte(s, ')'); i > 0 && strings.HasPrefix(s[i+1:], " Z") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent's child %d still runs after the agent timed out: %s", pid, stat)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunContextCanceled(t *testing.T) {
	a, _ := fake(t, map[string]string{"hang": "off", "pidfile": filepath.Join(t.TempDir(), "child.pid")})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	r := a.Run(ctx, "off")
	if !errors.Is(r.Err, context.Canceled) || errors.Is(r.Err, ErrTimeout) {
		t.Fatalf("Run = %v, want context.Canceled", r.Err)
	}
	if rs, err := a.Fence(ctx, "off"); err == nil || len(rs) != 1 {
		t.Fatalf("Fence with an ended context = %+v, %v", rs, err)
	}
}

func TestRunOutputIsBounded(t *testing.T) {
	a, _ := fake(t, map[string]string{"flood": "off"})
	r := a.Run(context.Background(), "off")
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	note, rest, ok := strings.Cut(r.Output, "\n")
	if !ok || !strings.HasPrefix(note, "[") || !strings.HasSuffix(note, " bytes of output dropped]") {
		t.Fatalf("Output starts %.80q, want a note of the dropped bytes", r.Output)
	}
	if len(rest) != OutputLimit {
		t.Errorf("kept %d bytes, want %d", len(rest), OutputLimit)
	}
	if !strings.HasSuffix(rest, "x\nfake_agent: end of flood\nSuccess: Powered OFF\n") {
		t.Errorf("Output ends %q, want the end of what the agent wrote", rest[len(rest)-80:])
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	a := Agent{
		Options: map[string]string{"ipaddr": "192.0.2.11", "login": "admin", "passwd": "inline-pw", "token": "file-secret"},
		Secret:  map[string]bool{"token": true},
	}
	got := a.Redacted()
	want := map[string]string{"ipaddr": "192.0.2.11", "login": "admin", "passwd": "<redacted>", "token": "<redacted>"}
	if len(got) != len(want) {
		t.Fatalf("Redacted = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Redacted[%s] = %q, want %q", k, got[k], v)
		}
	}
	if a.Options["passwd"] != "inline-pw" || a.Options["token"] != "file-secret" {
		t.Error("Redacted changed the agent's own options")
	}
}

// A verbose agent that echoes the password does not put it in the log.
func TestOutputHasSecretsScrubbed(t *testing.T) {
	a, _ := fake(t, map[string]string{"verbose": "1", "passwd": "hunter22", "community": "private-ro", "x": "ab"})
	a.Secret = map[string]bool{"community": true, "x": true}
	r := a.Run(context.Background(), "off")
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	for _, s := range []string{"hunter22", "private-ro"} {
		if strings.Contains(r.Output, s) {
			t.Errorf("Output shows the secret %q: %q", s, r.Output)
		}
	}
	if !strings.Contains(r.Output, "passwd=<redacted>") || !strings.Contains(r.Output, "community=<redacted>") {
		t.Errorf("Output = %q, want the secrets replaced", r.Output)
	}
	if !strings.Contains(r.Output, "x=ab\n") {
		t.Errorf("Output = %q: a secret shorter than %d bytes is left alone", r.Output, minScrub)
	}
}

func TestBadOptionsNeverReachTheAgent(t *testing.T) {
	for name, opts := range map[string]map[string]string{
		"newline in value": {"passwd": "a\nport=other"},
		"CR in value":      {"login": "a\r"},
		"action option":    {"action": "on"},
		"option option":    {"option": "on"},
		"space in key":     {"ip addr": "x"},
		"= in key":         {"a=b": "x"},
		"comment key":      {"#x": "y"},
		"empty key":        {"": "y"},
	} {
		t.Run(name, func(t *testing.T) {
			a, dir := fake(t, opts)
			r := a.Run(context.Background(), "off")
			if !errors.Is(r.Err, ErrOption) || r.ExitCode != -1 {
				t.Fatalf("Run = %+v, want ErrOption", r)
			}
			if strings.Contains(r.Err.Error(), "port=other") {
				t.Errorf("the error quotes the value: %v", r.Err)
			}
			if n := len(runs(t, dir)); n != 0 {
				t.Errorf("the agent ran %d times", n)
			}
		})
	}
	a, _ := fake(t, nil)
	if r := a.Run(context.Background(), "off\naction=on"); !errors.Is(r.Err, ErrOption) {
		t.Errorf("an action with a newline: %v", r.Err)
	}
}

func TestRunMissingProgram(t *testing.T) {
	a := Agent{Path: filepath.Join(t.TempDir(), "fence_nothing")}
	r := a.Run(context.Background(), "off")
	if r.Err == nil || r.ExitCode != -1 || errors.Is(r.Err, ErrTimeout) {
		t.Fatalf("Run = %+v, want a start error", r)
	}
}
