package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/zap"
)

// act carries out a machine's actions. It runs on the loop; anything that
// may take long (proposals, fence agents, leadership checks) goes to its own
// goroutine and comes back as an event.
func (c *Cluster) act(acts []Action) {
	for _, a := range acts {
		switch a := a.(type) {
		case AddVIP:
			c.hw.add(a.VIP)
		case RemoveVIP:
			c.hw.remove(a.VIP)
		case Announce:
			c.hw.announce(a.VIP)
		case SendPing:
			st := a.Status
			w := wire{Kind: "ping", From: c.cfg.Node, Seq: a.Seq, Status: &st}
			for _, l := range c.links {
				l.post(w)
			}
			c.local = append(c.local, PingIn{From: c.cfg.Node, Seq: a.Seq, Status: st})
		case SendGrant:
			c.grants = append(c.grants, a)
		case Propose:
			c.propose(a.Entry)
		case Fence:
			c.fence(a.Node, a.Attempt)
		case Unfence:
			c.unfence(a.Node)
		case PetWatchdog:
			c.hw.pet()
		case Log:
			c.logDecision(a)
		}
	}
	c.flushGrants()
}

func (c *Cluster) logDecision(a Log) {
	switch a.Level {
	case "error":
		c.log.Error(a.Msg)
	case "warn":
		c.log.Warn(a.Msg)
	default:
		c.log.Info(a.Msg)
	}
}

// flushGrants answers the pings waiting for a grant, after one leadership
// check for all of them: raft's VerifyLeader asks a quorum, now.
func (c *Cluster) flushGrants() {
	if c.verifying || len(c.grants) == 0 {
		return
	}
	grants := c.grants
	c.grants = nil
	c.verifying = true
	go func() {
		err := c.raft.VerifyLeader().Error()
		c.post(verified{grants: grants, err: err})
	}()
}

// verified is the driver's own event: a leadership check finished.
type verified struct {
	grants []SendGrant
	err    error
}

func (verified) isEvent() {}

func (c *Cluster) sendGrants(v verified) {
	c.verifying = false
	if v.err != nil {
		return // not leader, or no quorum: the pings go unanswered
	}
	for _, g := range v.grants {
		w := wire{Kind: "grant", From: c.cfg.Node, Seq: g.Seq, Index: g.Index}
		if g.To == c.cfg.Node {
			c.local = append(c.local, GrantIn{From: c.cfg.Node, Seq: g.Seq, Index: g.Index})
		} else if l := c.links[g.To]; l != nil {
			l.post(w)
		}
	}
	c.flushGrants()
}

func (c *Cluster) propose(e Entry) {
	go func() {
		err := c.raft.Apply(encodeEntry(e), c.cfg.Lease).Error()
		// ErrLeadershipLost leaves the entry's fate open: it may still
		// commit, so only a refusal is reported back.
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrEnqueueTimeout) {
			c.post(ProposeFailed{Entry: e})
		} else if err != nil && !errors.Is(err, raft.ErrLeadershipLost) {
			c.log.Warn("proposing failed", zap.Stringer("entry", e), zap.Error(err))
		}
	}()
}

func (c *Cluster) fence(node string, attempt int) {
	c.log.Warn("fencing", zap.String("node", node), zap.Int("attempt", attempt))
	go func() {
		start := time.Now()
		detail, err := c.hw.fence(context.Background(), node)
		c.record(FenceRecord{Node: node, Action: c.cfg.Fencing.Action, Attempt: attempt, Start: start, Duration: time.Since(start), OK: err == nil, Detail: detail})
		if err != nil {
			c.log.Error("FENCING FAILED: the node's VIPs stay down until it is fenced or answers again",
				zap.String("node", node), zap.Int("attempt", attempt), zap.String("detail", detail), zap.Error(err))
		} else {
			c.log.Warn("fenced", zap.String("node", node), zap.String("detail", detail), zap.Duration("took", time.Since(start)))
		}
		c.post(FenceDone{Node: node, OK: err == nil, Detail: detailOrErr(detail, err)})
	}()
}

func (c *Cluster) unfence(node string) {
	go func() {
		start := time.Now()
		detail, err := c.hw.unfence(context.Background(), node)
		c.record(FenceRecord{Node: node, Action: "on", Start: start, Duration: time.Since(start), OK: err == nil, Detail: detail})
		if err != nil {
			c.log.Error("unfencing failed", zap.String("node", node), zap.String("detail", detail), zap.Error(err))
		}
		c.post(FenceDone{Node: node, Unfence: true, OK: err == nil, Detail: detailOrErr(detail, err)})
	}()
}

func detailOrErr(detail string, err error) string {
	if err != nil {
		if detail != "" {
			return err.Error() + ": " + detail
		}
		return err.Error()
	}
	return detail
}
