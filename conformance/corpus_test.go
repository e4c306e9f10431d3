package conformance

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// corpusCase is one request payload and what halo must do with it.
type corpusCase struct {
	name     string
	line     int
	statuses []int // responses the client gets, in order; 100 for an interim 100 Continue
	forward  int   // requests that reach the backend
	payload  []byte
}

// loadCorpus reads file: one case per line, "NAME STATUSES FORWARDED
// "PAYLOAD" [# why]", with '#' comment lines.
func loadCorpus(t *testing.T, file string) []corpusCase {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []corpusCase
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		c, err := parseCase(line)
		if err != nil {
			t.Fatalf("%s:%d: %v", file, n, err)
		}
		if prev, dup := seen[c.name]; dup {
			t.Fatalf("%s:%d: case %q already defined on line %d", file, n, c.name, prev)
		}
		seen[c.name], c.line = n, n
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

func parseCase(line string) (corpusCase, error) {
	var c corpusCase
	fields := strings.SplitN(line, " ", 4)
	if len(fields) < 4 {
		return c, fmt.Errorf("want NAME STATUSES FORWARDED \"PAYLOAD\"")
	}
	c.name = fields[0]
	if fields[1] != "-" {
		for _, s := range strings.Split(fields[1], ",") {
			st, err := strconv.Atoi(s)
			if err != nil || st < 100 || st > 599 {
				return c, fmt.Errorf("status %q is not a number from 100 to 599", s)
			}
			c.statuses = append(c.statuses, st)
		}
	}
	fwd, err := strconv.Atoi(fields[2])
	if err != nil || fwd < 0 {
		return c, fmt.Errorf("forwarded count %q is not a number", fields[2])
	}
	c.forward = fwd
	quoted, err := strconv.QuotedPrefix(fields[3])
	if err != nil {
		return c, fmt.Errorf("payload: %v", err)
	}
	if rest := strings.TrimSpace(fields[3][len(quoted):]); rest != "" && rest[0] != '#' {
		return c, fmt.Errorf("after the payload: want a # comment, got %q", rest)
	}
	p, _ := strconv.Unquote(quoted)
	c.payload = []byte(p)
	return c, nil
}
