package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/halo-lb/halo/config"
)

// cmdCtl is "halo ctl [-s SOCKET] [-c FILE] COMMAND...": it sends one
// command line to a runtime API socket and prints the answer, as
// "echo COMMAND | socat - SOCKET" does; with no command it is an
// interactive prompt. Without -s it uses the first admin socket of the
// configuration file.
func cmdCtl(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sock := fs.String("s", "", "runtime API socket (default: the first admin socket of the configuration)")
	path := fs.String("c", defaultConfigPath, "configuration file naming the sockets")
	timeout := fs.Duration("t", 30*time.Second, "how long to wait for an answer")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *sock == "" {
		cfg, err := config.Load(*path)
		if err != nil {
			fmt.Fprintf(stderr, "halo ctl: no -s given and the configuration cannot be read: %v\n", err)
			return 2
		}
		s := cfg.Global.Stats.AdminSocket()
		if s == nil {
			fmt.Fprintf(stderr, "halo ctl: no -s given and %s has no stats socket with level admin\n", *path)
			return 2
		}
		*sock = s.Path
	}
	conn, err := net.DialTimeout("unix", *sock, 5*time.Second)
	if err != nil {
		fmt.Fprintf(stderr, "halo ctl: %v\n", err)
		return 1
	}
	defer conn.Close()
	if fs.NArg() == 0 {
		return ctlInteractive(conn, stdin, stdout, stderr)
	}
	line := strings.Join(fs.Args(), " ")
	_ = conn.SetDeadline(time.Now().Add(*timeout))
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		fmt.Fprintf(stderr, "halo ctl: %v\n", err)
		return 1
	}
	if _, err := io.Copy(stdout, conn); err != nil {
		fmt.Fprintf(stderr, "halo ctl: %v\n", err)
		return 1
	}
	return 0
}

// ctlInteractive runs the socket's prompt mode with the terminal: lines
// typed go to halo, its answers and prompts come back, until "quit" or the
// end of input.
func ctlInteractive(conn net.Conn, stdin io.Reader, stdout, stderr io.Writer) int {
	if _, err := io.WriteString(conn, "prompt\n"); err != nil {
		fmt.Fprintf(stderr, "halo ctl: %v\n", err)
		return 1
	}
	go func() {
		in := bufio.NewScanner(stdin)
		in.Buffer(make([]byte, 64<<10), 64<<10)
		for in.Scan() {
			if _, err := io.WriteString(conn, in.Text()+"\n"); err != nil {
				return
			}
		}
		_, _ = io.WriteString(conn, "quit\n")
	}()
	// The first answer is the empty one to "prompt": skip its line so
	// the session starts at the prompt.
	r := bufio.NewReader(conn)
	if _, err := r.ReadString('\n'); err != nil {
		fmt.Fprintf(stderr, "halo ctl: %v\n", err)
		return 1
	}
	if _, err := io.Copy(stdout, r); err != nil && !errors.Is(err, net.ErrClosed) {
		fmt.Fprintf(stderr, "halo ctl: %v\n", err)
		return 1
	}
	return 0
}
