package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/convert"
)

// splitMissingFiles sorts halo check's errors into files that do not
// exist on this machine (certificates, error pages, maps, a socket's
// directory: the host that runs halo has them) and everything else.
func splitMissingFiles(err error) (missing, other []string) {
	var list config.ErrorList
	if !errors.As(err, &list) {
		return nil, []string{err.Error()}
	}
	for _, e := range list {
		msg := e.Error()
		if strings.Contains(msg, "no such file or directory") || strings.HasSuffix(msg, "does not exist") {
			missing = append(missing, msg)
		} else {
			other = append(other, msg)
		}
	}
	return missing, other
}

// cmdConvert is "halo convert [-o OUT.yaml] [--strict] haproxy.cfg|-": it
// writes the YAML (to stdout without -o), prints every warning and note
// to stderr, and checks the output as "halo check" would. Exit 1: the file
// could not be read or converted, the output does not pass the check, or
// --strict and a warning remains.
func cmdConvert(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the YAML to this file (default: standard output)")
	strict := fs.Bool("strict", false, "exit 1 if any warning remains")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: halo convert [-o OUT.yaml] [--strict] haproxy.cfg|-")
		fs.PrintDefaults()
	}
	// Flags may come after the file too: halo convert haproxy.cfg -o x.yaml.
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 1 {
		fs.Usage()
		return 2
	}
	name := files[0]
	var (
		src []byte
		err error
	)
	if name == "-" {
		src, err = io.ReadAll(stdin)
		name = "stdin"
	} else {
		src, err = os.ReadFile(name)
	}
	if err != nil {
		fmt.Fprintf(stderr, "halo convert: %v\n", err)
		return 1
	}
	res, err := convert.Convert(src, convert.Options{File: name, Lookup: os.LookupEnv})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, d := range res.Diags {
		fmt.Fprintln(stderr, d)
	}
	// The output must pass "halo check": relative paths in it are taken
	// from the directory it is written to, as halo will read them.
	checkAs := "converted.yaml"
	if *out != "" {
		checkAs = *out
	} else if name != "stdin" {
		checkAs = filepath.Join(filepath.Dir(name), "converted.yaml")
	}
	if *out != "" {
		if err := os.WriteFile(*out, res.YAML, 0o644); err != nil {
			fmt.Fprintf(stderr, "halo convert: %v\n", err)
			return 1
		}
	} else if _, err := stdout.Write(res.YAML); err != nil {
		return 1
	}
	if _, err := config.Parse(checkAs, res.YAML); err != nil {
		missing, other := splitMissingFiles(err)
		if len(missing) > 0 {
			fmt.Fprintf(stderr, "halo convert: files the configuration names are not on this machine (they must be where halo runs; run halo check there):\n%s\n", strings.Join(missing, "\n"))
		}
		if len(other) > 0 {
			fmt.Fprintf(stderr, "halo convert: the output does not pass halo check:\n%s\n", strings.Join(other, "\n"))
			return 1
		}
	}
	if n := res.Warnings(); n > 0 {
		fmt.Fprintf(stderr, "halo convert: %d warning(s)\n", n)
		if *strict {
			return 1
		}
	}
	return 0
}
