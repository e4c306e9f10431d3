package health

import "go.uber.org/zap"

// StartAfter is Start for a server whose check settings changed at a
// reload: the new monitor continues from prev, which the caller has
// stopped. It keeps prev's last result, for the stats socket, and its
// health counter mapped onto the new rise and fall (see carryHealth), so
// the server stays UP or DOWN and keeps the progress it made towards the
// other state. Its first probe comes after a random part of the new
// interval, like any monitor's.
func StartAfter(prev *Monitor, spec Spec, checker Checker, setter StatusSetter, log *zap.Logger) *Monitor {
	prev.mu.Lock()
	health, draining := prev.health, prev.draining
	oldRise, oldFall := prev.spec.Rise, prev.spec.Fall
	prev.mu.Unlock()
	m := newMonitor(spec, checker, setter, log)
	m.health = carryHealth(health, oldRise, oldFall, spec.Rise, spec.Fall)
	m.draining = spec.DrainOnLag && draining
	m.last.Store(prev.last.Load())
	m.schedule()
	return m
}

// carryHealth maps HAProxy's health counter (0 to rise+fall-1, UP from rise
// on) from one rise/fall to another: an UP server keeps the number of
// failed checks it has had since it was last fully UP, capped so it stays
// UP; a DOWN one keeps its successful checks, capped so it stays DOWN.
func carryHealth(health, oldRise, oldFall, rise, fall int) int {
	if health >= oldRise {
		failed := oldRise + oldFall - 1 - health
		return max(rise+fall-1-failed, rise)
	}
	return min(health, rise-1)
}

// Resumed is where a previous process left a server's check: its health
// counter, its last result (nil: none) and whether "disable health" had
// paused it.
type Resumed struct {
	Health int
	Last   *Checked
	Paused bool
}

// StartResumed is Start for a server whose check a previous process ran
// (a start that loads a server-state file, a binary upgrade): the counter
// continues from r.Health, held within the spec's 0 to rise+fall-1, the
// last result is r's and a paused check stays paused. The caller has
// given the server the state that counter means (UP from rise on); the
// monitor reports only the edges after it.
func StartResumed(spec Spec, r Resumed, checker Checker, setter StatusSetter, log *zap.Logger) *Monitor {
	m := newMonitor(spec, checker, setter, log)
	m.health = min(max(r.Health, 0), spec.Rise+spec.Fall-1)
	m.draining = spec.DrainOnLag && spec.Draining
	if r.Last != nil {
		last := *r.Last
		m.last.Store(&last)
	}
	m.paused.Store(r.Paused)
	m.schedule()
	return m
}
