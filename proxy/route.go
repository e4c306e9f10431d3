package proxy

// routeTo is the routing step of a request (mode http) or connection (mode
// tcp): it picks the backend the session goes to and counts the session
// there until endSession. Everything after it reads the backend it
// returned, never the frontend's. In mode http the use_backend lines have
// chosen the backend (applyRequestRules); in mode tcp it is the
// default_backend.
//
// The backend counts a session from routing on, so one waiting in the queue
// is counted (HAProxy's beconn); a server counts it while it holds a slot
// there, through the balancer's Acquire and Release, in both modes.
func (fe *frontend) routeTo(be *backend) *backend {
	be.counters.MaxConns.Note(be.counters.CurConns.Add(1))
	be.counters.TotalConns.Add(1)
	return be
}

// endSession ends a session that route counted on be.
func (be *backend) endSession() { be.counters.CurConns.Add(-1) }
