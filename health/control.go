package health

import (
	"fmt"

	"go.uber.org/zap"
)

// The runtime API's controls over a running monitor or agent ("enable
// health", "set server ... health", "disable agent"). They are safe from any
// goroutine.

// FailureCounter is implemented by a StatusSetter that counts failed
// checks (HAProxy's chkfail); the monitor calls CheckFailed for each.
type FailureCounter interface {
	CheckFailed()
}

// Progress is where a monitor's health counter stands, as HAProxy's
// check_health (0 to Rise+Fall-1; UP from Rise on), with its rise and fall.
type Progress struct {
	Health, Rise, Fall int
	Paused             bool
}

// Progress returns the monitor's health counter.
func (m *Monitor) Progress() Progress {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Progress{Health: m.health, Rise: m.spec.Rise, Fall: m.spec.Fall, Paused: m.paused.Load()}
}

// SetPaused is "disable health" (true) and "enable health" (false). A
// paused monitor's probes change nothing and the server counts as UP, as
// in HAProxy; enabling it again applies the counter as it stood.
func (m *Monitor) SetPaused(paused bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.paused.Swap(paused) == paused {
		return
	}
	if paused {
		m.setter.SetHealthy(true)
	} else {
		m.setter.SetHealthy(m.health >= m.spec.Rise)
	}
}

// Force is "set server ... health up|down": the counter jumps to fully UP
// or to DOWN, and the server follows at once.
func (m *Monitor) Force(up bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	desc := "forced down by the runtime API"
	if up {
		m.health = m.spec.Rise + m.spec.Fall - 1
		desc = "forced up by the runtime API"
	} else {
		m.health = 0
	}
	if !m.paused.Load() {
		m.setter.SetHealthy(up)
	}
	m.log.Warn(fmt.Sprintf("server %s/%s health set by the runtime API", m.spec.Backend, m.spec.Server), zap.String("check_desc", desc))
}

// SetPaused is "disable agent" (true) and "enable agent" (false): a paused
// agent is not asked.
func (a *Agent) SetPaused(paused bool) { a.paused.Store(paused) }

// Paused reports whether the agent is disabled.
func (a *Agent) Paused() bool { return a.paused.Load() }
