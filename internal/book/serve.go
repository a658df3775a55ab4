package book

import (
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/walk"
)

// Advertise returns at most limit addresses to send to peer to: our own
// advertised addresses first, then one address per known peer, never to's
// own, never a private peer's, never a peer at the bottom of the scores.
//
// The book is walked in an order specific to the requester (entries ranked
// by a mix of their ID's hash and the requester's, the same on every node)
// once round, from a place fixed for the pair (walkStart); entries added
// behind the walk since the last answer (the news) have the room first in
// each answer (after the walk's run, which leads so the requester can read
// it), in laps drawn for the requester (once the walk is done, the newest
// first: see nextNews), so a connected peer is not sent the same address
// twice. The walk is forgotten on disconnect, and begins again at the same
// place. Because every node walks the same order for a requester, the
// requester can tell where each peer's walk stands (RankOf) and where a
// peer's first answer lies (WalkStartOf), and ask the peer whose next run
// it knows least of. An address a connected requester told
// us of (AddFrom) is left out of its walk and its news: it knows it. What
// each of up to 64 connected peers told us is a bit per address, forgotten
// when the peer disconnects (a peer may lose its book when it restarts;
// the first source of an entry is never sent it back, whatever happens).
func (m *Book) Advertise(now time.Time, to addr.NodeID, limit int) []addr.NodeAddress {
	if limit <= 0 {
		return nil
	}
	out := make([]addr.NodeAddress, 0, min(limit, len(m.opts.SelfAddresses)+m.peers.len()))
	for _, a := range m.opts.SelfAddresses {
		if len(out) == limit {
			return out
		}
		out = append(out, a)
	}
	if m.peers.len() == 0 {
		return out
	}
	if m.opts.RandomAdvertise {
		m.settle()
		return m.sample(out, to, limit, now)
	}
	requester := m.peers.get(to)
	if requester != nil && requester.state < stateConnected {
		// Only a connected peer has a walk; a dial may still fail.
		requester = nil
	}
	want := limit - len(out)
	if want <= 0 {
		return out
	}
	var c walk.Cursor[*peerInfo]
	var toBit uint64
	if requester != nil {
		if adv := m.conns[requester].adv; adv != nil {
			c = *adv
		}
		toBit = m.tellBit(requester)
	}
	toEntry := m.peers.get(to) // p.id == to is p == toEntry, without reading the ID
	toSrc, toGroup := m.srcs.ref(to), m.askerGroup(to)
	ok := func(p *peerInfo) bool {
		return p != toEntry && !p.is(removed) && m.advertisable(p, toSrc, toGroup, toBit, now) != nil
	}
	log := walk.Log[*peerInfo]{Entries: m.log, Seq: (*peerInfo).Seq, Top: m.seq}
	m.server.Next(&c, log, m.selfKey, walk.Key(to), want, requester != nil, ok, m.opts.Rand.Uint64, func(p *peerInfo) {
		out = append(out, m.bestAddress(p).addr().of(p.id)) // ok allowed p
	})
	if requester != nil {
		rc := m.conns[requester]
		if rc.adv == nil {
			rc.adv = new(walk.Cursor[*peerInfo])
		}
		*rc.adv = c
	}
	return out
}

// WalkStartOf returns where peer id's walk for us begins in our order
// (see RankOf): its first answer is the run of its book just after it.
func (m *Book) WalkStartOf(id addr.NodeID) uint64 { return walk.Start(walk.Key(id), m.selfKey) }

// Seq is p's insertion sequence number, as walk.Log reads it.
func (p *peerInfo) Seq() uint64 { return p.seq }

// sample fills out with an independent random sample of the book, as
// Tendermint v0.35 does. The caller holds the lock and settled the order.
func (m *Book) sample(out []addr.NodeAddress, to addr.NodeID, limit int, now time.Time) []addr.NodeAddress {
	n := len(m.order)
	// Floyd's algorithm: k distinct indices of n, uniformly, in O(k).
	k := min(n, limit-len(out)+2) // +2: room for to and one unusable entry
	chosen := make(map[int]struct{}, k)
	picks := make([]int, 0, k)
	for j := n - k; j < n; j++ {
		t := m.opts.Rand.IntN(j + 1)
		if _, dup := chosen[t]; dup {
			t = j
		}
		chosen[t] = struct{}{}
		picks = append(picks, t)
	}
	m.opts.Rand.Shuffle(len(picks), func(i, j int) { picks[i], picks[j] = picks[j], picks[i] })
	for _, i := range picks {
		if len(out) == limit {
			break
		}
		// Tendermint's sample: what to told us may come back.
		if a, ok := m.advertisableTo(m.order[i], to, 0, now); ok {
			out = append(out, a)
		}
	}
	return out
}

// advertisableTo returns the address of p worth sharing with requester
// to, whose tellBit is toBit (0 for none), if any: never one that to told
// us of.
func (m *Book) advertisableTo(p *peerInfo, to addr.NodeID, toBit uint64, now time.Time) (addr.NodeAddress, bool) {
	if p.id == to {
		return addr.NodeAddress{}, false
	}
	best := m.advertisable(p, m.srcs.ref(to), m.askerGroup(to), toBit, now)
	if best == nil {
		return addr.NodeAddress{}, false
	}
	return best.addr().of(p.id), true
}

// askerGroup is the source group of requester to while it is connected
// (what its gossip counted in), addr.NoGroup otherwise.
func (m *Book) askerGroup(to addr.NodeID) uint64 {
	p := m.peers.get(to)
	if p == nil || p.state < stateConnected {
		return addr.NoGroup
	}
	return m.groupOf(p, m.conns[p])
}

// advertisable is advertisableTo for an entry p other than to's own,
// toSrc being to's srcRef (sources.ref) and toGroup its askerGroup: the
// address to send, nil if none.
//
// An entry is not sent back to its first source, unless the address we
// would send is not one that source's group told us: one we reached, or
// one another group told. A node whose first word of an ID was a spoof
// (only an attacker's address for an honest node) passes that spoof on;
// a peer that stored the ID from it and learnt the node's own address
// elsewhere must still send that address back, or neither learns better.
func (m *Book) advertisable(p *peerInfo, toSrc srcRef, toGroup uint64, toBit uint64, now time.Time) *addrInfo {
	if p.is(private) || int(p.score) <= m.opts.EvictScore || m.extra.num(p) == 0 {
		return nil
	}
	if p.is(broke) && now.Sub(m.time(m.brokeAt[p])) < m.opts.MaxRetryTime {
		// It broke the protocol with us lately: we do not dial it (see
		// Errored), and do not send others to it either.
		return nil
	}
	best := m.bestAddress(p)
	if p.src == toSrc && (toGroup == addr.NoGroup || (!best.everWorked && best.srcGroup == toGroup)) {
		return nil
	}
	if (best.failures >= 2 && !best.everWorked) || best.toldBy&toBit != 0 {
		// Failing, or to told us of it.
		return nil
	}
	return best
}

// bestAddress is the address of p worth sharing, if any is: the one that
// has worked, else one outside the groups feelers found junk (a spoof
// there would be passed on in place of the node's own address), else the
// one failing least (one that keeps failing is not passed on). p has one
// at least.
func (m *Book) bestAddress(p *peerInfo) *addrInfo {
	best := m.extra.at(p, 0)
	if !p.is(hasExtra) {
		return best
	}
	bestJunk := m.inJunkGroup(best, p.id)
	for i, ai := range m.extra.all(p) {
		if i == 0 {
			continue
		}
		junk := m.inJunkGroup(ai, p.id)
		switch {
		case ai.everWorked != best.everWorked:
			if !ai.everWorked {
				continue
			}
		case junk != bestJunk:
			if junk {
				continue
			}
		case ai.failures >= best.failures:
			continue
		}
		best, bestJunk = ai, junk
	}
	return best
}

// tellBitOf returns the tellBit of source p (nil for none), whose
// connection is c, giving it one if its connection is up and a bit is
// free; 0 if not. The caller holds the lock.
func (m *Book) tellBitOf(p *peerInfo, c *connInfo) uint64 {
	if p == nil || p.state < stateConnected {
		return 0 // a peer we are still dialling has told us nothing
	}
	if c.tell != 0 || m.tellBits == math.MaxUint64 {
		return c.tellBit()
	}
	free := ^(m.tellBits | m.staleBits)
	if free == 0 {
		m.sweepStaleBits()
		free = ^m.tellBits
	}
	bit := free & -free // the lowest free bit
	c.tell = uint8(bits.TrailingZeros64(bit)) + 1
	m.tellBits |= bit
	return bit
}

// dropTellBit frees p's tellBit as its connection closes: what it told us
// is forgotten (a peer may lose its book when it restarts). The bit stays
// on addresses, matching nobody's, until every bit has been used and
// sweepStaleBits clears the freed ones in one pass over the book, not one
// pass per disconnect. The caller holds the lock.
func (m *Book) dropTellBit(p *peerInfo) {
	c := m.conns[p]
	m.tellBits &^= c.tellBit()
	m.staleBits |= c.tellBit()
	c.tell = 0
}

// sweepStaleBits clears the freed tell bits from every address, so they
// can be given again. The caller holds the lock.
func (m *Book) sweepStaleBits() {
	for _, q := range m.peers.all() {
		for _, ai := range m.extra.all(q) {
			ai.toldBy &^= m.staleBits
		}
	}
	m.staleBits = 0
}

// ToldShare returns how much of our book connected peer id has had from us
// on this connection: the share of our order its walk has covered, 1 once
// the lap is done (see Advertise); 0 for a peer that has not asked, and
// always 0 with RandomAdvertise (a sample keeps no walk). Its answers to us
// leave all of that out (see AddFrom).
func (m *Book) ToldShare(id addr.NodeID) float64 {
	p := m.peers.get(id)
	if p == nil || m.cursor(p) == nil {
		return 0
	}
	return m.cursor(p).Share()
}

// RankOf returns where id stands in our own advertise order: the order in
// which every node walks its book for us. A requester can tell from the
// ranks of the entries a peer sent where that peer's walk stands.
func (m *Book) RankOf(id addr.NodeID) uint64 { return walk.Rank(walk.Key(id), m.selfKey) }

// KnownInRank counts the peers of the book whose rank in our own order is
// in the circular range (after, after+span].
func (m *Book) KnownInRank(after, span uint64) int {
	m.mergeRanks()
	count := func(lo, hi uint64) int { // ranks in [lo, hi]
		i, _ := slices.BinarySearch(m.ranks, lo)
		j, found := slices.BinarySearch(m.ranks, hi)
		if found {
			j++
		}
		return j - i
	}
	lo := after + 1
	hi := after + span
	if span == 0 {
		return 0
	}
	if hi >= lo {
		return count(lo, hi)
	}
	return count(lo, math.MaxUint64) + count(0, hi)
}

// mergeRanks merges the fresh ranks into the sorted index: a sort of the
// few fresh ones and one pass, not a sort of the book. The caller holds the
// lock.
func (m *Book) mergeRanks() {
	if len(m.freshRanks) == 0 {
		return
	}
	slices.Sort(m.freshRanks)
	n, f := len(m.ranks), len(m.freshRanks)
	m.ranks = grownBy(m.ranks, f, m.opts.MaxPeers)[:n+f]
	// Merge from the back, in place.
	i, j := n-1, f-1
	for k := n + f - 1; j >= 0; k-- {
		if i >= 0 && m.ranks[i] > m.freshRanks[j] {
			m.ranks[k] = m.ranks[i]
			i--
		} else {
			m.ranks[k] = m.freshRanks[j]
			j--
		}
	}
	m.freshRanks = m.freshRanks[:0]
}

// dropRank removes one occurrence of r from the rank index. The caller
// holds the lock.
func (m *Book) dropRank(r uint64) {
	if i := slices.Index(m.freshRanks, r); i >= 0 {
		m.freshRanks = slices.Delete(m.freshRanks, i, i+1)
		return
	}
	if i, ok := slices.BinarySearch(m.ranks, r); ok {
		m.ranks = slices.Delete(m.ranks, i, i+1)
	}
}
