package cluster

import (
	"context"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/halo-lb/halo/cluster/fence"
	"github.com/halo-lb/halo/cluster/vip"
	"github.com/halo-lb/halo/cluster/watchdog"
	"github.com/halo-lb/halo/config"
)

// system is the real hardware.
type system struct {
	cfg       *config.Cluster
	log       *zap.Logger
	addrs     map[string]vip.Address
	announcer map[string]*vip.Announcer
	agents    map[string]fence.Agent
	dog       *watchdog.Device
	lastPet   time.Time
	lastErr   map[string]time.Time // rate limit of repeated errors
}

func newSystem(cfg *config.Cluster, log *zap.Logger) *system {
	h := &system{cfg: cfg, log: log, addrs: map[string]vip.Address{}, announcer: map[string]*vip.Announcer{},
		agents: map[string]fence.Agent{}, lastErr: map[string]time.Time{}}
	for _, v := range cfg.VIPs {
		h.addrs[v.Prefix.String()] = vip.Address{Prefix: v.Prefix, Interface: v.Interface}
	}
	for node, a := range cfg.Fencing.Nodes {
		h.agents[node] = fence.Agent{Path: a.Agent, Options: a.Options, Secret: a.Secret, Timeout: cfg.Fencing.Timeout}
	}
	return h
}

// lifetime is the kernel lifetime of a held address: renewed every ping
// while held, it outlives the lease by half, so an address whose process
// died (kill -9) still leaves the kernel by itself.
func (h *system) lifetime() time.Duration { return h.cfg.Lease + h.cfg.Lease/2 }

func (h *system) complain(key, msg string, err error) {
	if t, ok := h.lastErr[key]; ok && time.Since(t) < 10*time.Second {
		return
	}
	h.lastErr[key] = time.Now()
	h.log.Error(msg, zap.String("vip", key), zap.Error(err))
}

func (h *system) clearAll() {
	for name, a := range h.addrs {
		if err := vip.Remove(a); err != nil {
			h.log.Warn("clearing a VIP left from before", zap.String("vip", name), zap.Error(err))
		}
	}
}

func (h *system) add(name string) {
	a, ok := h.addrs[name]
	if !ok {
		return
	}
	if err := vip.Add(a, h.lifetime()); err != nil {
		h.complain(name, "adding the VIP failed", err)
	}
}

func (h *system) remove(name string) {
	a, ok := h.addrs[name]
	if !ok {
		return
	}
	if err := vip.Remove(a); err != nil {
		h.log.Error("removing the VIP failed", zap.String("vip", name), zap.Error(err))
	}
	if an := h.announcer[name]; an != nil {
		an.Close()
		delete(h.announcer, name)
	}
}

func (h *system) announce(name string) {
	a, ok := h.addrs[name]
	if !ok {
		return
	}
	an := h.announcer[name]
	if an == nil {
		var err error
		if an, err = vip.NewAnnouncer(a); err != nil {
			h.complain(name, "cannot announce the VIP (gratuitous ARP / NA)", err)
			return
		}
		h.announcer[name] = an
	}
	if err := an.Announce(); err != nil {
		h.complain(name, "announcing the VIP failed", err)
	}
}

// pet opens the watchdog on the first pet (a node that never had a lease
// is never reset) and pets it at most every half second.
func (h *system) pet() {
	w := h.cfg.Watchdog
	if w == nil || time.Since(h.lastPet) < 500*time.Millisecond {
		return
	}
	if h.dog == nil {
		d, err := watchdog.Open(w.Device, w.Timeout)
		if err != nil {
			h.complain(w.Device, "cannot open the watchdog", err)
			return
		}
		h.dog = d
		h.log.Info("watchdog armed", zap.String("device", w.Device), zap.Duration("timeout", w.Timeout))
	}
	if err := h.dog.Pet(); err != nil {
		h.complain(w.Device, "petting the watchdog failed", err)
		return
	}
	h.lastPet = time.Now()
}

func (h *system) close() {
	for name := range h.announcer {
		h.announcer[name].Close()
	}
	if h.dog != nil {
		if err := h.dog.Close(); err != nil {
			h.log.Error("closing the watchdog", zap.Error(err))
		}
	}
}

func summarize(rs []fence.Result) string {
	var parts []string
	for _, r := range rs {
		s := r.Action + "=" + strconv.Itoa(r.ExitCode)
		if out := strings.TrimSpace(r.Output); out != "" {
			if len(out) > 200 {
				out = out[len(out)-200:]
			}
			s += " (" + out + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func (h *system) fence(ctx context.Context, node string) (string, error) {
	a, ok := h.agents[node]
	if !ok {
		return "", errNoAgent(node)
	}
	rs, err := a.Fence(ctx, h.cfg.Fencing.Action)
	return summarize(rs), err
}

func (h *system) unfence(ctx context.Context, node string) (string, error) {
	a, ok := h.agents[node]
	if !ok {
		return "", errNoAgent(node)
	}
	rs, err := a.Unfence(ctx)
	return summarize(rs), err
}

type errNoAgent string

func (e errNoAgent) Error() string { return "no fence agent configured for " + string(e) }
