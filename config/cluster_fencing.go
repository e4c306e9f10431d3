package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// fenceOptionKey is what a fence-agents option name may be: the key of a
// key=value line on the agent's stdin, so no '=', white space or '#'.
var fenceOptionKey = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// buildFencing converts cluster.fencing: every non-witness peer needs an
// agent, and the options' secrets are read from their files here, at load,
// so that a missing secret is found by `halo check` and not in the middle
// of a failover.
func (p *parser) buildFencing(c *Cluster, f *fileCluster, peers map[string]Peer) {
	c.Fencing = Fencing{Timeout: DefaultFenceTimeout, Action: DefaultFenceAction, Nodes: map[string]FenceAgent{}}
	ff := f.Fencing
	if ff != nil {
		c.Fencing.Timeout = dur(DefaultFenceTimeout, ff.Timeout)
		c.Fencing.Action = or(DefaultFenceAction, ff.Action)
		if c.Fencing.Timeout < time.Second || c.Fencing.Timeout > 10*time.Minute {
			p.at("cluster.fencing.timeout", "timeout %s: between 1s and 10m", c.Fencing.Timeout)
		}
	}
	var nodes map[string]*fileFenceAgent
	if ff != nil {
		nodes = ff.Nodes
	}
	for _, name := range sortedNames(nodes) {
		np := "cluster.fencing.nodes." + name
		peer, ok := peers[name]
		switch {
		case !ok:
			p.at(np, "%q is not one of peers", name)
			continue
		case peer.Witness:
			p.at(np, "%q is a witness: it never holds a VIP, so it is never fenced", name)
			continue
		}
		fa := nodes[name]
		if fa == nil || fa.Agent == nil || *fa.Agent == "" {
			p.at(np, "node %s needs agent: the fence agent's absolute path (such as /usr/sbin/fence_ipmilan)", name)
			continue
		}
		a := FenceAgent{Agent: *fa.Agent, Options: map[string]string{}, Secret: map[string]bool{}}
		if !filepath.IsAbs(a.Agent) {
			p.at(np+".agent", "agent %q is not an absolute path", a.Agent)
		} else if st, err := os.Stat(a.Agent); err != nil {
			p.at(np+".agent", "agent %s: %v", a.Agent, err)
		} else if st.IsDir() || st.Mode()&0o111 == 0 {
			p.at(np+".agent", "agent %s is not an executable file", a.Agent)
		}
		p.buildFenceOptions(&a, fa.Options, np+".options")
		c.Fencing.Nodes[name] = a
	}
	for _, peer := range c.Peers {
		if _, ok := c.Fencing.Nodes[peer.Name]; !ok && !peer.Witness {
			if _, listed := nodes[peer.Name]; listed {
				continue // already reported
			}
			at := "cluster"
			if ff != nil {
				at = "cluster.fencing"
				if ff.Nodes != nil {
					at = "cluster.fencing.nodes"
				}
			}
			p.at(at, "no fence agent for peer %s: a VIP moves off a silent node only once it is fenced, so every node that can hold one needs fencing.nodes.%s", peer.Name, peer.Name)
		}
	}
}

// buildFenceOptions fills a's options from opts, written at path. A key
// ending in -file names a file (relative to the configuration's directory)
// whose content, without its trailing line break, is the option of the key
// without the suffix, marked secret.
func (p *parser) buildFenceOptions(a *FenceAgent, opts map[string]*fenceOptionValue, path string) {
	for _, key := range sortedNames(opts) {
		kp := path + "." + key
		if !fenceOptionKey.MatchString(key) {
			p.at(kp, "option %q: a fence agent option is a name of letters, digits, '_', '-' and '.' (a key=value line on the agent's stdin)", key)
			continue
		}
		if key == "action" || key == "option" {
			p.at(kp, "%q is set by halo for each run (off, status, on), not in options", key)
			continue
		}
		if opts[key] == nil {
			p.at(kp, "option %s has no value (write \"\" for an empty one)", key)
			continue
		}
		val := string(*opts[key])
		if strings.ContainsAny(val, "\r\n\x00") {
			p.at(kp, "option %s has a line break or NUL: each option is one line on the agent's stdin", key)
			continue
		}
		name, isFile := strings.CutSuffix(key, "-file")
		if !isFile {
			a.Options[key] = val
			continue
		}
		if _, both := opts[name]; both {
			p.at(kp, "%s and %s exclude each other", name, key)
			continue
		}
		if name == "action" || name == "option" {
			p.at(kp, "%q is set by halo for each run (off, status, on), not in options", name)
			continue
		}
		if val == "" {
			p.at(kp, "%s needs a file name", key)
			continue
		}
		data, err := os.ReadFile(p.relative(val))
		if err != nil {
			// The error names the file, never its content.
			p.at(kp, "reading %s: %v", key, err)
			continue
		}
		secret := strings.TrimRight(string(data), "\r\n")
		if strings.ContainsAny(secret, "\r\n\x00") {
			p.at(kp, "%s %s has more than one line", key, val)
			continue
		}
		a.Options[name] = secret
		a.Secret[name] = true
	}
}
