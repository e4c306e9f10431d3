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
