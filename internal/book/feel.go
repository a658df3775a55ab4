package book

import (
	"cmp"
	"slices"
	"time"

	"github.com/pexnet/pex/internal/addr"
)

// Feelers and junk groups (DESIGN.md, "The attacker we defend against").
//
// Counting cannot tell an attacker's /16 holding a few addresses nobody
// listens on from a /16 holding a few honest nodes; a dial can. While
// no ordinary dial may go (so none tests anything), the book
// sends test dials, feelers, to addresses we never reached in network
// groups that hold several entries, and closes each connection once it is
// made: the address is then proven. A feeler that finds nobody (or
// another node ID) counts against the address's network group; a group
// whose feelers failed more often than its addresses ever worked is junk:
// what gossip alone placed there and we never reached leaves at once, and
// it takes no more hearsay until MaxRetryTime after its last failed
// feeler. Its nodes' own word (an inbound peer's address) and what we
// reached stay. A lone node's group holds one entry, so no feeler tests
// it: a network of lone nodes sends none.
//
// The pace: each group of several entries is felt within feelSpan, and
// one a second at least while any waits; at most MaxOutbound feelers are
// in flight, as they stand in for the outbound dials the full slots
// hold back.
const (
	// feelSpan is how long the feelers take to test every group of
	// several entries: the gap between two is feelSpan over the number
	// of such groups.
	// Why: the attackers' share of a book must be down to their share
	// of the network from the first minute on (SPEC 8), and outbound
	// slots fill in a cold start's first half minute; an attacker spread
	// over 256 /16s places hearsay in each, and one failed feeler marks
	// a group none of whose entries we reached.
	// Guards: the 256-/16 attack rows; TestFeelersKeepPaceWithTheGroupsToTest.
	feelSpan = 10 * time.Second

	// feelEvery is the longest gap between two feelers while a group of
	// several entries holds one we never reached.
	// Why: a few such groups are tested in a few seconds, not in
	// feelSpan, as a cloud range of honest nodes gets its entries
	// proven; one a second is no load for any peer.
	// Guards: TestFeelersMarkAJunkGroup.
	feelEvery = time.Second

	// feelGroup is the least number of entries a network group holds for
	// its untested entries to be felt.
	// Why: one entry per group is what a network of lone nodes looks
	// like; an attacker with more addresses than groups crowds each.
	// Guards: the golden runs (no feeler in a network of lone nodes).
	feelGroup = 2

	// feelLook is how many entries of the log a draw for a feeler
	// looks at, at most.
	// Why: a lap of a book of 1,000 in four draws, of 100,000 in a few
	// minutes, and a draw costs no more than adding an answer.
	// Guards: the spoofing attack rows (censored nodes);
	// TestFeelersFindTheLastUntestedEntryOfALargeBook.
	feelLook = 256
)

// junkMark is what feelers found in one network group.
type junkMark struct {
	fails int    // feelers that found nobody there, or another ID
	until stamp  // when the mark is forgotten: MaxRetryTime after the last failure
	junk  bool   // fails passed the group's proven entries: it takes no hearsay
	seq   uint64 // the last entry inserted when it was marked junk
}

// feelerDue reports whether a feeler may go out at at: its time has
// come and one may go (mayFeel).
func (m *Book) feelerDue(at stamp) bool {
	return at >= m.feelAt && m.mayFeel()
}

// mayFeel reports whether a feeler may go out once its time comes: no
// ordinary dial may (outbound slots full, or every slot taken; such a
// dial would test as much), fewer than MaxOutbound feelers are in flight,
// and some group holds feelGroup entries or more. Feelers go beside the
// slots: peers that fill our inbound slots, an attacker's among them, do
// not stop them.
func (m *Book) mayFeel() bool {
	return m.feelers < m.opts.MaxOutbound && (m.slots.OutboundFull() || m.slots.Full()) && m.crowd.top() >= feelGroup
}

// nextFeeler is when the next feeler may go out, zero if none is
// waiting for its time.
func (m *Book) nextFeeler() time.Time {
	if !m.mayFeel() {
		return time.Time{}
	}
	return m.time(m.feelAt)
}

// feelGap is the gap between two feelers: feelSpan over the groups of
// feelGroup entries or more, and feelEvery at most.
func (m *Book) feelGap() stamp {
	return stamp(min(feelEvery, feelSpan/time.Duration(max(1, m.crowd.atLeast(feelGroup)))))
}

// feeler picks an entry to test and its address, looking at up to
// feelLook entries of the log from where the last draw stopped: idle
// hearsay we never reached, due, in a group of feelGroup entries or more
// (its own or its address's).
// It sets the time of the next feeler: feelGap after a draw, and, once
// draws have looked at the whole log and found none, twice the last
// wait, up to MaxRetryTime, so that a book whose groups of several are
// all tested draws seldom. Draws go round the log rather than at random,
// so that the last few untested entries of a large book are found within
// a lap, however few they are. The caller holds the lock.
func (m *Book) feeler(at stamp) (*peerInfo, *addrInfo) {
	for range min(feelLook, len(m.log)) {
		m.feelNext %= len(m.log)
		p := m.log[m.feelNext].E
		m.feelNext++
		m.feelLooked++
		if p.is(removed) || !p.is(placed) || p.persistent || p.connected() || p.is(proven) || p.src == noSrc {
			continue
		}
		ai := m.dueAddr(p, at, nil)
		if ai == nil || ai.everWorked {
			continue
		}
		// The group of several may be the address's or the entry's;
		// an entry stays counted where it was placed when a junk
		// group takes the address that placed it, alone there now.
		if m.groupLoad(p.slotGroup) >= feelGroup || m.junkGroup(p.slotGroup) || m.groupLoad(addr.Group(ai.addr().of(p.id))) >= feelGroup {
			m.feelLooked = 0
			m.feelWait = m.feelGap()
			m.feelAt = at + m.feelWait
			return p, ai
		}
	}
	if m.feelLooked < len(m.log) {
		m.feelWait = m.feelGap()
	} else {
		m.feelLooked = 0
		m.feelWait = min(max(2*m.feelWait, m.feelGap()), stamp(m.opts.MaxRetryTime))
	}
	m.feelAt = at + m.feelWait
	return nil, nil
}

// feltNothing records that a feeler to an entry of network group g found
// nobody, or another node ID, and marks g junk once such failures pass its
// proven entries (purging what gossip alone placed there). The table
// holds the groups feelers failed in within MaxRetryTime. The caller
// holds the lock.
func (m *Book) feltNothing(at stamp, g uint64) {
	j := m.junkMarks[g]
	if j == nil {
		j = &junkMark{}
		m.junkMarks[g] = j
	}
	j.fails++
	j.until = at + stamp(m.opts.MaxRetryTime)
	if j.junk {
		return
	}
	var reached int
	var gone []*peerInfo
	for _, p := range m.peers.all() {
		switch {
		case !p.is(placed):
		case p.slotGroup == g && p.is(proven):
			reached++
		case (p.slotGroup == g || m.extra.num(p) > 1) && m.untestedHearsay(p):
			// An entry placed elsewhere may hold an address here too.
			gone = append(gone, p)
		}
	}
	if j.fails <= reached {
		return
	}
	j.junk, j.seq = true, m.seq
	slices.SortFunc(gone, func(a, b *peerInfo) int { return cmp.Compare(a.seq, b.seq) })
	for _, p := range gone {
		// An ID with addresses elsewhere keeps those: a spoof in the
		// group does not take the node's true address with it.
		before := m.passedOn(p)
		for i := m.extra.num(p) - 1; i >= 0 && m.extra.num(p) > 1; i-- {
			if m.inGroup(m.extra.at(p, i), p.id, g) {
				m.extra.delete(p, i)
			}
		}
		if m.extra.num(p) == 1 && m.inGroup(m.extra.at(p, 0), p.id, g) {
			m.remove(p)
		}
		m.noteBest(p, before)
	}
	m.wake = m.wake || len(gone) > 0
}

// inGroup reports whether ai, an address of id, is in network group g.
func (m *Book) inGroup(ai *addrInfo, id addr.NodeID, g uint64) bool {
	return addr.Group(ai.addr().of(id)) == g
}

// inJunkGroup reports whether ai, an address of id, is in a group marked
// junk.
func (m *Book) inJunkGroup(ai *addrInfo, id addr.NodeID) bool {
	return len(m.junkMarks) > 0 && m.junkGroup(addr.Group(ai.addr().of(id)))
}

// untestedHearsay reports whether p is an idle entry that gossip alone
// placed (not configured, not the peer's own word) and that we never
// reached: what a junk group loses (its addresses there, and the entry
// if it has none elsewhere).
func (m *Book) untestedHearsay(p *peerInfo) bool {
	if p.persistent || p.connected() || p.is(proven) || p.src == noSrc || m.srcs.id(p.src) == p.id {
		return false
	}
	return !m.extra.any(p, func(ai *addrInfo) bool { return ai.everWorked })
}

// junkGroup reports whether network group g is marked junk.
func (m *Book) junkGroup(g uint64) bool {
	if len(m.junkMarks) == 0 {
		return false
	}
	j := m.junkMarks[g]
	return j != nil && j.junk
}

// forgetJunk drops the marks whose time has passed.
func (m *Book) forgetJunk(at stamp) {
	for g, j := range m.junkMarks {
		if j.until <= at {
			delete(m.junkMarks, g)
		}
	}
}

// Feeler reports whether id is connected, or being dialled, as a feeler:
// a test of its address that the book closes (EvictNext) once it is made.
func (m *Book) Feeler(id addr.NodeID) bool {
	p := m.peers.get(id)
	return p != nil && p.state != stateIdle && m.conns[p].feeler
}
