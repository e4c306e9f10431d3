package health

import "testing"

func TestCarryHealth(t *testing.T) {
	for _, c := range []struct {
		health, oldRise, oldFall, rise, fall, want int
	}{
		{4, 2, 3, 2, 3, 4}, // fully UP stays fully UP
		{3, 2, 3, 2, 3, 3}, // one failure seen, same settings: unchanged
		{3, 2, 3, 5, 5, 8}, // one failure seen: top 9 minus one
		{3, 2, 3, 2, 1, 2}, // fall 1 leaves no room: UP at rise, the next failure takes it DOWN
		{2, 2, 3, 3, 2, 3}, // one failure from DOWN stays UP
		{0, 2, 3, 2, 3, 0}, // DOWN stays DOWN
		{1, 2, 3, 4, 3, 1}, // one success seen of a DOWN server is kept
		{2, 3, 3, 2, 3, 1}, // two successes of a DOWN server, but rise 2 would make it UP: capped at 1
	} {
		if got := carryHealth(c.health, c.oldRise, c.oldFall, c.rise, c.fall); got != c.want {
			t.Errorf("carryHealth(%d, rise %d fall %d → rise %d fall %d) = %d, want %d", c.health, c.oldRise, c.oldFall, c.rise, c.fall, got, c.want)
		}
		wasUp := c.health >= c.oldRise
		if isUp := carryHealth(c.health, c.oldRise, c.oldFall, c.rise, c.fall) >= c.rise; isUp != wasUp {
			t.Errorf("carryHealth(%d, rise %d fall %d → rise %d fall %d) changed UP=%v to %v", c.health, c.oldRise, c.oldFall, c.rise, c.fall, wasUp, isUp)
		}
	}
}
