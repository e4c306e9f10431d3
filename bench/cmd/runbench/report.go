package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/halo-lb/halo/bench"
)

func writeResults(dir string, m bench.Machine, tables []*bench.Table) error {
	var md, svg bytes.Buffer
	bench.WriteMarkdown(&md, m, tables, targets)
	bench.WriteSVG(&svg, "halo vs HAProxy, "+m.Date, tables)
	raw, err := json.MarshalIndent(struct {
		Machine bench.Machine
		Tables  []*bench.Table
	}{m, tables}, "", "  ")
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{"results.md": md.Bytes(), "chart.svg": svg.Bytes(), "results.json": raw} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// updateReadme replaces the README's text between the bench-results
// markers with these results, headings moved two levels down.
func updateReadme(path, dir string, m bench.Machine, tables []*bench.Table) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i, j := bytes.Index(b, []byte(readmeStart)), bytes.Index(b, []byte(readmeEnd))
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s … %s section", path, readmeStart, readmeEnd)
	}
	var md bytes.Buffer
	bench.WriteMarkdown(&md, m, tables, targets)
	var sec strings.Builder
	fmt.Fprintf(&sec, "%s\nLatest run: [`%s`](%s) — ![halo vs HAProxy](%s/chart.svg)\n\n", readmeStart, dir, dir, dir)
	for line := range strings.SplitSeq(md.String(), "\n") {
		if strings.HasPrefix(line, "#") {
			line = "##" + line
		}
		sec.WriteString(line + "\n")
	}
	out := slices.Concat(b[:i], []byte(sec.String()), b[j:])
	return os.WriteFile(path, out, 0o644)
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module root (run from the halo repository): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func describeMachine(o options) bench.Machine {
	first := func(name string, args ...string) string {
		// wrk -v prints its version and exits 1: take the output as is.
		out, err := exec.Command(name, args...).CombinedOutput()
		if len(out) == 0 && err != nil {
			return name + ": " + err.Error()
		}
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		line, _, _ = strings.Cut(line, " - ") // haproxy -v ends with its web site
		return line
	}
	m := bench.Machine{
		Date:    time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		Cores:   runtime.NumCPU(),
		Kernel:  first("uname", "-r"),
		Go:      first("go", "version"),
		HAProxy: first("haproxy", "-v"),
		Wrk:     first("wrk", "-v"),
		CPU:     "unknown CPU",
		Settings: fmt.Sprintf("%d runs per proxy, wrk %d connections for %s after a %s warm-up, %d MiB bulk transfers, "+
			"%d idle connections, %d checked servers over %s, %d backends reloaded, a reload every %s under load",
			o.runs, o.connections, o.duration, o.warmup, o.bulkSize>>20, o.idleConns, o.checkServers, o.checkTime, o.reloadBackends, o.reloadEvery),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

const (
	readmeStart = "<!-- bench-results:start -->"
	readmeEnd   = "<!-- bench-results:end -->"
)
