package stats

import (
	"strings"
	"testing"

	"github.com/halo-lb/halo/config"
)

// FuzzCommandLine feeds the runtime API's parser and every command it
// reaches with arbitrary lines, on a real proxy: nothing may panic, every
// answer is a whole line (or nothing), and a line that splits into words
// splits the same way again once re-escaped.
func FuzzCommandLine(f *testing.F) {
	for _, seed := range []string{
		"show stat", "show stat be 4 -1", "show stat -1 -1 -1 typed", "show stat json", "show info json",
		"show servers state be", "show servers conn", "show errors fe request", "show sess", "help",
		"set weight be/s1 50%", "set server be/s1 state maint", "set server be/s1 health stopping",
		"set server be/s1 agent down", "set server be/s1 maxconn 10", "set maxconn frontend fe 10",
		"disable health be/s1; enable health be/s1", `show\ stat`, "get weight be/", "set weight /s1 -5",
		"clear counters all", "shutdown session 0xc000123456", "set timeout cli 5s", "prompt", "a\\",
	} {
		f.Add(seed)
	}
	r := newRig(f, twoServers, map[string]string{"S1": "127.0.0.1:9", "S2": "127.0.0.1:10"})
	f.Fuzz(func(t *testing.T, line string) {
		cmds, err := splitCommands(line)
		if err != nil {
			return
		}
		for _, words := range cmds {
			for _, w := range words {
				if w == "" && !strings.Contains(line, "\\") {
					t.Fatalf("%q: an empty word", line)
				}
			}
		}
		sess := &session{s: r.s, level: config.LevelAdmin}
		for _, words := range cmds {
			if len(words) == 0 || words[0] == "prompt" || words[0] == "quit" {
				continue
			}
			out := r.s.Exec(words, config.LevelAdmin, sess)
			if len(out) > 0 && out[len(out)-1] != '\n' {
				t.Fatalf("%q: the answer does not end a line: %q", words, out)
			}
		}
	})
}
