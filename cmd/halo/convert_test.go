package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const convertSample = `global
    daemon
    maxconn 2000
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend web
    bind 127.0.0.1:18080
    default_backend app
backend app
    balance roundrobin
    server a 127.0.0.1:19001 check
`

// halo convert writes YAML that halo check accepts, with flags before or
// after the file, from a file or from standard input; --strict fails
// while a warning remains.
func TestConvertCommand(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(src, []byte(convertSample), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "halo.yaml")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"convert", src, "-o", out, "--strict"}, &stdout, &stderr); code != 0 {
		t.Fatalf("convert: exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), `haproxy.cfg:2: note: "daemon"`) {
		t.Errorf("no note for daemon in:\n%s", stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"check", "-c", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("check of the output: exit %d\n%s", code, stderr.String())
	}
	yaml, _ := os.ReadFile(out)
	if !bytes.HasPrefix(yaml, []byte("# Converted by halo convert from haproxy.cfg.")) {
		t.Errorf("no header naming the source:\n%s", yaml)
	}

	// From standard input, to standard output.
	stdout.Reset()
	stderr.Reset()
	if code := cmdConvert([]string{"-"}, strings.NewReader(convertSample), &stdout, &stderr); code != 0 {
		t.Fatalf("convert -: exit %d\n%s", code, stderr.String())
	}
	if !bytes.Equal(bytes.Replace(stdout.Bytes(), []byte("from stdin."), []byte("from haproxy.cfg."), 1), yaml) {
		t.Errorf("stdin gave other YAML:\n%s", stdout.String())
	}

	// A warning: exit 0, but 1 with --strict.
	warned := convertSample + "    option abortonclose\n"
	for _, c := range []struct {
		args []string
		code int
	}{{[]string{"-"}, 0}, {[]string{"--strict", "-"}, 1}} {
		stdout.Reset()
		stderr.Reset()
		if code := cmdConvert(c.args, strings.NewReader(warned), &stdout, &stderr); code != c.code {
			t.Errorf("%v: exit %d, want %d\n%s", c.args, code, c.code, stderr.String())
		}
		if !strings.Contains(stderr.String(), `stdin:15: keyword "option abortonclose" is not supported by halo:`) || !strings.Contains(stderr.String(), "1 warning(s)") {
			t.Errorf("%v: stderr\n%s", c.args, stderr.String())
		}
	}

	// A broken file: its position, exit 1.
	stdout.Reset()
	stderr.Reset()
	if code := cmdConvert([]string{"-"}, strings.NewReader("frontend a\n  bind \"127.0.0.1:80\n"), &stdout, &stderr); code != 1 || !strings.HasPrefix(stderr.String(), "stdin:2:8: the quote \" opened here is not closed") {
		t.Errorf("exit %d, stderr %q", code, stderr.String())
	}
	// Files the configuration names that this machine lacks (a
	// certificate) are said, but do not fail the conversion.
	stdout.Reset()
	stderr.Reset()
	tlsSample := strings.Replace(convertSample, "bind 127.0.0.1:18080", "bind 127.0.0.1:18080 ssl crt /nonexistent/site.pem", 1)
	if code := cmdConvert([]string{"-"}, strings.NewReader(tlsSample), &stdout, &stderr); code != 0 || !strings.Contains(stderr.String(), "not on this machine") || !strings.Contains(stderr.String(), "/nonexistent/site.pem") {
		t.Errorf("missing certificate: exit %d, stderr\n%s", code, stderr.String())
	}
	// Usage.
	if code := cmdConvert(nil, strings.NewReader(""), &stdout, &stderr); code != 2 {
		t.Errorf("no file: exit %d, want 2", code)
	}
}
