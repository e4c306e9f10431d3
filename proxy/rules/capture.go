package rules

// Captures are one request's capture slots, HAProxy's req_cap and
// res_cap: what the capture header lines recorded and the capture rules
// put in them, for the access log line and capture.req.hdr(N). The proxy
// keeps them for the whole exchange (a Txn ends before the access line is
// written) and hands them to the Txn as its Caps. Each slot's buffer is
// kept from request to request: filling a slot allocates nothing once
// the buffer has grown to the slot's length.
type Captures struct {
	req, res []captured
}

type captured struct {
	b   []byte
	max int // the slot's len
	set bool
}

// Reset readies the slots for a new request of a frontend whose request
// and response slots have the lengths req and res.
func (c *Captures) Reset(req, res []int) {
	c.req = resetSlots(c.req, req)
	c.res = resetSlots(c.res, res)
}

func resetSlots(s []captured, lens []int) []captured {
	if cap(s) < len(lens) {
		s = append(s[:cap(s)], make([]captured, len(lens)-cap(s))...)
	}
	s = s[:len(lens)]
	for i := range s {
		s[i] = captured{b: s[i].b[:0], max: lens[i]}
	}
	return s
}

// Set fills slot i of the request's slots (response false) or the
// response's with v cut at the slot's length; a slot the frontend does
// not have is left alone, as HAProxy leaves it.
func (c *Captures) Set(response bool, i int, v []byte) {
	s := c.slots(response)
	if i < 0 || i >= len(s) {
		return
	}
	k := &s[i]
	k.b = append(k.b[:0], v[:min(len(v), k.max)]...)
	k.set = true
}

// Get returns slot i and whether something filled it.
func (c *Captures) Get(response bool, i int) ([]byte, bool) {
	s := c.slots(response)
	if i < 0 || i >= len(s) || !s[i].set {
		return nil, false
	}
	return s[i].b, true
}

func (c *Captures) slots(response bool) []captured {
	switch {
	case c == nil:
		return nil
	case response:
		return c.res
	}
	return c.req
}

// capture runs a capture rule: the sample, as a string, into the rule's
// slot; a sample that gives no value leaves the slot as it was.
func (r *Rule) capture(t *Txn) {
	if t.Caps == nil {
		return
	}
	v := t.push()
	mark := len(t.buf)
	if r.expr.eval(t, 0, v) {
		v.asStr(t)
		t.Caps.Set(r.capResponse, r.capSlot, v.b)
	}
	t.buf = t.buf[:mark]
	t.pop(v)
}

// fetchCapture is capture.req.hdr(N) and capture.res.hdr(N): what slot N
// holds, no value when nothing filled it.
func fetchCapture(response bool) fetchFn {
	return func(t *Txn, f *fetch, _ int, out *value) bool {
		b, ok := t.Caps.Get(response, int(f.n))
		if ok {
			out.setStr(b)
		}
		return ok
	}
}
