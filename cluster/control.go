package cluster

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// This file is the node's control socket, <data-dir>/control.sock (mode
// 0600, so root only): `halo cluster status` and `halo cluster unfence` talk
// to it, one command per connection.

// ControlSocket is where a node's control socket lives.
func ControlSocket(dataDir string) string { return filepath.Join(dataDir, "control.sock") }

func (c *Cluster) serveControl() error {
	path := ControlSocket(c.cfg.DataDir)
	tmp := path + ".new"
	_ = os.Remove(tmp)
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return fmt.Errorf("cluster control socket: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		return err
	}
	c.control = ln
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go c.controlSession(conn)
		}
	}()
	return nil
}

func (c *Cluster) controlSession(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && line == "" {
		return
	}
	fmt.Fprint(conn, c.Command(strings.Fields(line)))
}

// Command runs one cluster command (the words after "halo cluster", or
// after "show cluster" / "cluster" on the runtime API) and returns its
// output; an error's output starts with "error: ".
func (c *Cluster) Command(words []string) string {
	switch {
	case len(words) == 0 || words[0] == "status" && len(words) == 1:
		return c.Status().Text()
	case words[0] == "status" && len(words) == 2 && words[1] == "json":
		return c.Status().JSON()
	case words[0] == "unfence" && len(words) == 2:
		if err := c.Unfence(words[1]); err != nil {
			return "error: " + err.Error() + "\n"
		}
		return fmt.Sprintf("asked the leader to unfence %s: it runs its fence agent's \"on\" and then lets it back\n", words[1])
	}
	return "error: usage: status [json] | unfence NODE\n"
}

// Ask sends one command to the control socket of the node whose data
// directory is dataDir, and returns its answer.
func Ask(dataDir string, words []string) (string, error) {
	conn, err := net.DialTimeout("unix", ControlSocket(dataDir), 2*time.Second)
	if err != nil {
		return "", fmt.Errorf("no cluster node running with data-dir %s (%w)", dataDir, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintln(conn, strings.Join(words, " ")); err != nil {
		return "", err
	}
	var b strings.Builder
	sc := bufio.NewScanner(conn)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return b.String(), sc.Err()
}
