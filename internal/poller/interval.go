package poller

import (
	"math"
	"time"
)

// adapt chooses the wait before the next request from the share of new
// addresses in responses, out of what the answer could hold (holds:
// MaxAddresses for a pex peer, the entries sent for a peer that samples):
// MinInterval while answers are full of new addresses, growing as the
// smoothed share falls (MinInterval/share, at most maxSlowdown
// MinInterval), then doubling with each further answer that brings nothing
// new, up to SaturatedInterval; MaxInterval once the book is bookFull.
// Answers to a peer we keep polling carry only what is new to us (see
// PeerManager.Advertise), so polling a saturated network stays cheap.
// midWalk says the answer was a run of a walk whose lap is not done.
func (c *Core) adapt(now time.Time, added, refused, total, holds int, midWalk bool) {
	if c.bk.PeerRatio() >= bookFull && added == 0 {
		// A full book stops polling once answers stop bringing news,
		// but first asks, at once, each peer it has not asked yet (see
		// stallBreaker): junk that a few peers filled it with must not
		// keep it from a peer that may know the network.
		c.interval = c.cfg.MaxInterval
		if c.unasked() {
			c.interval = c.cfg.MinInterval
		}
		return
	}
	if c.cfg.Policy == PolicyTendermint {
		ratio := float64(total+1) / float64(added+1)
		d := float64(c.cfg.MinInterval)/float64(max(len(c.peers), 1))*ratio*ratio + float64(c.cfg.MinInterval)
		c.interval = time.Duration(math.Min(d, float64(c.cfg.MaxInterval)))
		return
	}
	// A pex peer (one that has walked) is counted out of a full answer:
	// once its walk is done it sends its news, often a few entries and all
	// new, and asking again at once brings fewer still, so its share lets
	// news gather. A first run cut short by a small book is counted so
	// too; while our book is clearly short of the network, missing below
	// keeps the wait short. A peer that samples sends a sample of its book
	// whatever its size. This needs the second-source rule (see
	// expectedYield): without it, a node whose only source is stuck would
	// take the lack of news for saturation.
	share := 0.0
	if holds > 0 {
		share = float64(added) / float64(holds)
	}
	// Smooth over responses, so that one peer with nothing new does not
	// stall discovery while others still have plenty.
	c.newShare = (1-shareWeight)*c.newShare + shareWeight*share
	// Our peers' books tell how big the network is: while ours is clearly
	// smaller, answers with nothing new only mean the peers' walks are in
	// a part we know, so keep asking rather than take it for saturation;
	// unless no peer is expected to bring anything (their walks are done
	// or empty, see peerMayTell): then what we miss has not reached our
	// peers yet, and polling them fast would not bring it sooner.
	// Addresses refused for their source's share (groups.go) exist, and
	// the peer that sent them will not send them again: they count as
	// missing too, so we keep asking the others, whose walks bring them.
	// The count fades with each answer that brings nothing new, so a
	// source that keeps sending what cannot be stored does not keep us
	// polling for long.
	c.refusedPending += float64(refused)
	if added == 0 {
		c.refusedPending *= refusedFade
	}
	walked := c.walkedSize()
	missing := max(1-float64(c.bk.Len())/float64(max(c.sizeFrom(walked), 1)),
		min(c.refusedPending/float64(max(c.bk.Len(), 1)), maxRefusedShare))
	switch {
	case added > 0:
		c.idle, c.stallTried = 0, false
	case missing < missingShare || !c.peerMayTell(now, walked):
		c.idle++
	}
	d := float64(c.cfg.MinInterval) / math.Max(math.Max(c.newShare, missing), minShare)
	if c.idle > idleAnswers {
		// The wait doubles towards SaturatedInterval, but not on an
		// empty run of a walk whose lap is not done: the rest of the
		// peer's book is still to come, and what we miss, a few entries
		// the size estimate (a lower bound) cannot show, may lie anywhere
		// in it. A lap costs a request per MaxAddresses entries of the
		// peer's book.
		if !midWalk {
			d = float64(maxSlowdown*c.cfg.MinInterval) * math.Pow(2, float64(min(c.idle-idleAnswers, 30)))
			d = math.Min(d, float64(c.cfg.SaturatedInterval))
		}
		if c.untried() {
			// The network looks saturated, but only to peers that
			// dialled us: one we dialled is asked first, at once (see
			// stallBreaker).
			d = float64(c.cfg.MinInterval)
		}
	}
	c.interval = time.Duration(math.Min(d, float64(c.cfg.MaxInterval)))
}

// peerMayTell reports whether some peer is expected to bring news (see
// expectedYield); walked is c.walkedSize().
func (c *Core) peerMayTell(now time.Time, walked int) bool {
	for _, p := range c.peers {
		if c.expectedYield(now, p, walked) > 0 {
			return true
		}
	}
	return false
}

// unasked reports whether a connected peer has not been asked yet (one
// that was asked and stays silent does not keep a full book polling).
func (c *Core) unasked() bool {
	for _, p := range c.peers {
		if p.lastSent.IsZero() {
			return true
		}
	}
	return false
}

// untried reports whether, of the peers we dialled, fewer than
// minSources have answered and one has not been asked yet. One answer
// is one book, not the network (see minSources): a node whose one
// dialled source held a few entries read its size from that book, took
// every peer never asked for worth nothing, and asked the attackers
// dialling in, whose answers trickle news, while its other dialled
// peers waited.
func (c *Core) untried() bool {
	found, answered := false, 0
	for _, p := range c.peers {
		if c.bk.Inbound(p.id) {
			continue
		}
		if p.answered {
			if answered++; answered >= minSources {
				return false
			}
		}
		found = found || p.lastSent.IsZero()
	}
	return found
}
