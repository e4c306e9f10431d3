package balancer

import (
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
)

func TestSetWeight(t *testing.T) {
	reg := NewRegistry()
	a, c := member(reg, "a", 10, false), member(reg, "c", 10, false)
	a.State.SetConfigWeight(10)
	c.State.SetConfigWeight(10)
	b := newTestBackend(t, rr(), a, c)
	if err := b.SetWeight("a", 50, true); err != nil {
		t.Fatal(err)
	}
	if got := b.EffectiveWeight(0); got != 5 {
		t.Fatalf("50%% of 10 = %d, want 5", got)
	}
	if err := b.SetWeight("a", 0, false); err != nil || b.UsableCount() != 1 {
		t.Fatalf("weight 0: err %v, usable %d; want 1 (no new traffic)", err, b.UsableCount())
	}
	if err := b.SetWeight("a", 257, false); err == nil {
		t.Fatal("weight 257 accepted")
	}
	if err := b.SetWeight("nope", 1, false); err == nil {
		t.Fatal("unknown server accepted")
	}
	// A reload that keeps the file's weight keeps the override; one that
	// changes it drops the override.
	a.State.SetConfigWeight(10)
	if b.EffectiveWeight(0) != 0 {
		t.Fatal("an unchanged configured weight dropped the runtime override")
	}
	a.State.SetConfigWeight(20)
	if got := b.EffectiveWeight(0); got != 20 {
		t.Fatalf("file changed the weight to 20: effective %d", got)
	}
	st := newTestBackend(t, Spec{Algorithm: "static-rr"}, member(reg, "s", 4, false))
	reg.Server("be", "s").SetConfigWeight(4)
	if err := st.SetWeight("s", 2, false); err == nil {
		t.Fatal("static-rr accepted weight 2 of 4")
	}
	if err := st.SetWeight("s", 0, true); err != nil {
		t.Fatalf("static-rr refused 0%%: %v", err)
	}
	if err := st.SetWeight("s", 100, true); err != nil || st.EffectiveWeight(0) != 4 {
		t.Fatalf("static-rr 100%%: %v, weight %d", err, st.EffectiveWeight(0))
	}
}

func TestSlowStartRamps(t *testing.T) {
	reg := NewRegistry()
	m := member(reg, "a", 100, false)
	m.SlowStart = time.Second
	other := member(reg, "b", 100, false)
	b := newTestBackend(t, rr(), m, other)
	if got := b.EffectiveWeight(0); got != 100 {
		t.Fatalf("up since start: weight %d, want 100 (slowstart applies after a return only)", got)
	}
	m.State.SetHealthy(false)
	start := time.Now()
	m.State.SetHealthy(true)
	w0 := b.EffectiveWeight(0)
	time.Sleep(500 * time.Millisecond)
	w1 := b.EffectiveWeight(0)
	elapsed := time.Since(start)
	time.Sleep(700 * time.Millisecond)
	w2 := b.EffectiveWeight(0)
	t.Logf("weights at 0, %v and 1.2 s: %d, %d, %d", elapsed.Round(time.Millisecond), w0, w1, w2)
	if w0 < 1 || w0 > 10 {
		t.Fatalf("weight at return = %d, want 1..10", w0)
	}
	// The ramp steps every 100 ms, so at 500 ms it is 40..60% of the way.
	if w1 < 35 || w1 > 65 {
		t.Fatalf("weight half-way = %d, want 35..65", w1)
	}
	if w2 != 100 {
		t.Fatalf("weight after the period = %d, want 100", w2)
	}
	st := newTestBackend(t, Spec{Algorithm: "static-rr"}, Member{State: reg.Server("be", "s"), Weight: 7, SlowStart: time.Hour})
	reg.Server("be", "s").SetHealthy(false)
	reg.Server("be", "s").SetHealthy(true)
	if got := st.EffectiveWeight(0); got != 7 {
		t.Fatalf("static-rr with slowstart: weight %d, want 7 (static weights do not ramp)", got)
	}
}

// TestSlowStartRampsMaxConn: during a slow start the maxconn grows from 1
// as the weight does, with static algorithms too, whose weights stay put.
func TestSlowStartRampsMaxConn(t *testing.T) {
	for _, alg := range []string{"roundrobin", "static-rr", "first"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			reg := NewRegistry()
			m := Member{State: reg.Server("be", alg), Weight: 10, MaxConn: 100, SlowStart: time.Second}
			b := newTestBackend(t, Spec{Algorithm: config.Algorithm(alg)}, m)
			m.State.SetHealthy(false)
			m.State.SetHealthy(true)
			held := 0
			for {
				if _, r := b.Acquire(0, false); r != Assigned {
					break
				}
				held++
			}
			if held < 1 || held > 10 {
				t.Fatalf("right after the return %d sessions were taken, want 1..10 of maxconn 100", held)
			}
			if alg == "static-rr" && b.EffectiveWeight(0) != 10 {
				t.Fatalf("static-rr weight during slow start = %d, want 10", b.EffectiveWeight(0))
			}
			time.Sleep(1100 * time.Millisecond)
			for {
				if _, r := b.Acquire(0, false); r != Assigned {
					break
				}
				held++
			}
			if held != 100 {
				t.Fatalf("after the slow start %d sessions are held, want maxconn 100", held)
			}
		})
	}
}
