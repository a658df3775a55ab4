package book

import (
	"cmp"
	"slices"

	"github.com/pexnet/pex/internal/addr"
)

// Accountability of sources (DESIGN.md, "The attacker we defend
// against").
//
// Every gossiped address remembers the network group of the connection
// that told us of it (addrInfo.srcGroup). When we first dial an address,
// the outcome is charged to that group: a live node is a life; an address
// where the handshake proves another node ID (a spoof, or an identity its
// owner dropped) is a strike. A source group whose strikes pass
// strikeRatio times its lives by more than strikeSlack is distrusted: it
// places nothing new, and what it alone told us and we never reached
// leaves the book at once (purge).
//
// Only a proved lie is a strike, not an address nobody answers at: honest
// nodes pass on what their books hold, junk included, and in a book an
// attacker has flooded most dials go to junk, so charging the relays
// would distrust honest sources. Junk leaves by its own failures
// (junkTries).
const (
	// strikeSlack is how many more strikes than lives a source group
	// may have before it is distrusted.
	// Why: an honest node may relay a spoof it holds; a few are normal.
	// Guards: TestSpoofingSourceIsPurged; the spoofing attack rows.
	strikeSlack = 4

	// strikeRatio: a source group is distrusted once its addresses
	// proved lies more than strikeRatio times as often as they proved
	// live.
	// Why: an honest relay of spoofs tells far more live addresses
	// than spoofs; an attacker's spoofs are most of what it tells.
	// Guards: TestSpoofingSourceIsPurged; the spoofing attack rows.
	strikeRatio = 3

	// junkTries is how many dials in a row a gossiped address we never
	// reached gets before it is dropped.
	// Why: one failure may be a node restarting or cut off; a second,
	// after the back-off, is what junk looks like.
	// Guards: churn-150-seed1, churn-150-seed2 (their message counts).
	junkTries = 2
)

// sourceTrust is what a source group's addresses proved when dialled:
// live, another node ID (strikes), or nobody there, dropped as junk
// (dead; not held against the source here, see above, but read by
// NewsLasts).
type sourceTrust struct{ lives, strikes, dead int }

// distrusted reports whether source group g lost our trust.
func (m *Book) distrusted(g uint64) bool {
	t, ok := m.trust[g]
	return ok && t.strikes > strikeRatio*t.lives+strikeSlack
}

// trustOf returns g's record, making one; the table is bounded by
// MaxPeers groups (past it, a record with no strikes is forgotten, else
// any: an attacker cannot grow it without bound).
func (m *Book) trustOf(g uint64) *sourceTrust {
	if t := m.trust[g]; t != nil {
		return t
	}
	if len(m.trust) >= m.opts.MaxPeers {
		var victim uint64
		found := false
		for k, t := range m.trust {
			victim, found = k, true
			if t.strikes == 0 {
				break
			}
		}
		if found {
			delete(m.trust, victim)
		}
	}
	t := &sourceTrust{}
	m.trust[g] = t
	return t
}

// proved charges the first successful dial of ai to its source group.
func (m *Book) proved(ai *addrInfo) {
	if ai.srcGroup != addr.NoGroup {
		m.trustOf(ai.srcGroup).lives++
	}
}

// strike charges an address that proved another node ID to its source
// group, and purges the group's unproven entries once it is
// distrusted.
func (m *Book) strike(ai *addrInfo) {
	g := ai.srcGroup
	if g == addr.NoGroup {
		return
	}
	was := m.distrusted(g)
	m.trustOf(g).strikes++
	if !was && m.distrusted(g) {
		m.purge()
	}
}

// NewsLasts is the share of what connected peer id's source group told
// us that proved live, of what of it we dialled: (lives+1) /
// (lives+strikes+dead+1), 1 for a group not yet tested. The Core weighs
// a peer's expected news by it: attackers answer every request with a
// few addresses nobody listens on, new each time, which leave the book
// at their dials; an honest peer's news is nodes that stay. It moves no
// entry: honest peers relay junk too.
func (m *Book) NewsLasts(id addr.NodeID) float64 {
	p := m.peers.get(id)
	if p == nil {
		return 1
	}
	t, ok := m.trust[m.group(p)]
	if !ok {
		return 1
	}
	return float64(t.lives+1) / float64(t.lives+t.strikes+t.dead+1)
}

// baseless reports whether p is an idle entry we never reached that
// stands on the word of distrusted source groups alone.
func (m *Book) baseless(p *peerInfo) bool {
	if p.persistent || p.connected() || p.is(proven) || m.extra.num(p) == 0 {
		return false
	}
	return !m.extra.any(p, func(ai *addrInfo) bool {
		return ai.everWorked || ai.vouched() || !m.distrusted(ai.srcGroup)
	})
}

// purge removes the baseless entries, once a source group is distrusted.
func (m *Book) purge() {
	var gone []*peerInfo
	for _, p := range m.peers.all() {
		if m.baseless(p) {
			gone = append(gone, p)
		}
	}
	slices.SortFunc(gone, func(a, b *peerInfo) int { return cmp.Compare(a.seq, b.seq) })
	for _, p := range gone {
		m.remove(p)
	}
	if len(gone) > 0 {
		m.wake = true
	}
}
