package reactor

import "time"

// check runs from the loop's sweep for a watched tunnel: deadlines, resuming paused ends,
// finishing lingering ones, and the caps on sinks that do not drain. It reports whether the
// tunnel still needs watching and whether it needs the fast sweep.
func (t *tunnel) check(now time.Time) (keep, fast bool) {
	if t.ended {
		return false, false
	}
	if !t.deadline.IsZero() && now.After(t.deadline) {
		t.deadline = time.Time{}
		t.role.deadlineHit(t)
	}
	if t.phase == phaseStall && now.After(t.stallUntil) {
		t.kill()
	}
	for _, x := range [...]*end{&t.tor, &t.net} {
		switch x.st {
		case endPaused:
			t.resumeIfDue(x)
		case endLingering:
			if t.pending(x) == 0 || now.After(x.lingerUntil) {
				t.closeEnd(x)
			}
		case endOpen:
			t.checkDrain(x, now)
		}
	}
	if t.ended {
		return false, false
	}
	for _, x := range [...]*end{&t.tor, &t.net} {
		switch x.st {
		case endPaused, endPausing, endResuming, endLingering:
			keep, fast = true, true
		case endOpen:
			if t.pending(x) > 0 {
				keep = true
			}
		}
	}
	if !t.deadline.IsZero() || t.phase == phaseStall {
		keep = true
	}
	return keep, fast
}

// checkDrain closes the tunnel when bytes for x pass HardCap, or when x has taken none of
// them for NeverDrain: a peer that stops reading must not hold memory for ever.
func (t *tunnel) checkDrain(x *end, now time.Time) {
	p := t.pending(x)
	if p > t.e.lim.HardCap {
		t.e.log.Warn("closing a tunnel whose peer does not read", "queued", p, "cap", t.e.lim.HardCap)
		t.e.stats.closedHardCap.Add(1)
		t.kill()
		return
	}
	ob := x.c.OutboundBuffered()
	if ob == 0 {
		x.stuckSince = time.Time{}
		return
	}
	drained := x.written - int64(ob)
	if drained != x.drained || x.stuckSince.IsZero() {
		x.drained = drained
		x.stuckSince = now
		return
	}
	if now.Sub(x.stuckSince) > t.e.lim.NeverDrain {
		t.e.log.Warn("closing a tunnel whose peer stopped reading", "queued", p, "for", t.e.lim.NeverDrain)
		t.e.stats.closedNeverDrain.Add(1)
		t.kill()
	}
}
