package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"text/template"
	"time"
)

// startNginx runs Debian's nginx as the realistic scenarios' other
// backend: bench/configs/nginx-openstack.conf on listen, its bodies the
// ones benchd -openstack answers with, placed where the load runs (as
// benchd is). It returns the function that stops it.
func (s *suite) startNginx(listen []string) (stop func(), err error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return nil, errors.New("nginx is not installed (bench/setup installs Debian's nginx-light)")
	}
	dir := filepath.Join(s.work, "nginx")
	if err := os.MkdirAll(filepath.Join(dir, "bodies"), 0o755); err != nil {
		return nil, err
	}
	if out, err := exec.Command(s.benchd, "openstack-bodies", filepath.Join(dir, "bodies")).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("benchd openstack-bodies: %v\n%s", err, out)
	}
	tmpl, err := template.ParseFiles(filepath.Join(s.configs, "nginx-openstack.conf"))
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, struct {
		Dir    string
		Listen []string
	}{dir, listen}); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, b.Bytes(), 0o644); err != nil {
		return nil, err
	}
	// -e: the package's default error log may not be writable; -p: no
	// prefix outside dir.
	cmd := s.loadCommand(bin, "-p", dir, "-e", filepath.Join(dir, "nginx-error.log"), "-c", conf)
	log, err := os.Create(filepath.Join(dir, "nginx.out"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting nginx: %w", err)
	}
	stop = func() {
		// SIGQUIT is nginx's graceful stop; SIGTERM its fast one, which
		// is what a finished benchmark wants.
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		log.Close()
	}
	for _, a := range listen {
		if err := waitListening(a, 10*time.Second, nil); err != nil {
			stop()
			errLog, _ := os.ReadFile(filepath.Join(dir, "nginx-error.log"))
			return nil, fmt.Errorf("nginx: %w\n%s", err, errLog)
		}
	}
	return stop, nil
}
