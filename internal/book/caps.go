package book

import (
	"errors"
	"slices"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/errs"
)

// Eclipse resistance (DESIGN.md, "The caps").
//
// An attacker usually controls many addresses in few networks. So every
// address the book learns from gossip is counted against two network
// groups: the group of the peer that told us (its source) and the group
// of the address.
//
//   - A bucket is the entries of one address group from one source group.
//     It holds bucketCap entries, 1/bucketShare of MaxPeers (32 of 1,000).
//   - A source group holds at most sourceBuckets*bucketCap entries, 1/2 of
//     MaxPeers (512 of 1,000), whatever it sends and however many node IDs
//     it sends it with. This is counted per source group, not over a few
//     buckets picked by a hash: hashed buckets fill unevenly, and a source
//     would lose part of its share to full buckets while others stay part
//     empty.
//   - A network group holds at most groupBuckets*bucketCap gossiped
//     entries from all sources together, 1/16 of MaxPeers (64 of 1,000).
//     A network of honest nodes crowded into one /16 is unusual; those
//     past the cap still connect to us and stay known through their
//     connections.
//
// Buckets are named by a keyed hash of their two groups; the key is
// secret (drawn from PeerManagerOptions.Rand), so a source cannot aim at
// the bucket of another. Loads are not shared between source groups: a
// flood from one source never costs another source its room.
//
// A full source group or bucket takes no more entries: the address is
// refused with errs.ErrSourceGroupFull, and will be stored when another source
// sends it. A full network group is refused with errs.ErrNetworkGroupFull.
// Room comes back as entries leave the book (failed dials drop them), and
// an entry that has connected (proven) is never replaced by one that has
// not, whatever its source.
//
// Network groups: an IPv4 address by its /16; an IPv6 address by its /32;
// the IPv4-mapped (::ffff:a.b.c.d), 6to4 (2002::/16), Teredo (2001::/32)
// and NAT64 (64:ff9b::/96) forms by the /16 of the IPv4 address they
// carry; a DNS name by its last two labels (so every name under one domain
// is one group). Addresses that are not publicly routable (loopback,
// private ranges; only stored outside strict mode) are each a group of
// their own, IP and port, so that private networks and local tests are
// not squeezed into one bucket; their sources still are.
//
// Groups also bound connections. We dial at most
// PeerManagerOptions.MaxOutboundPerGroup peers of one public IP group (2
// of 10 outbound slots by default), so a subnet holding even its whole
// share of the book gets at most that many of our outbound connections.
// And when connections are full, a newcomer displaces an inbound peer of
// the group with the most inbound connections (the newcomer counted in
// its own), so sybils that keep dialling displace each other rather than
// honest peers.
//
// A connected source is grouped by its connection's observed remote
// address (peerInfo.group: the address we dialled, or the remote passed to
// AcceptedFrom; without one, the address it announced); one that is not
// connected by the address we last reached it at, else the first we hold
// for it. A source we hold no address for is in one group with every
// other such source. An address added with no source (Add: the
// operator's) is its own source; an address a peer announces for itself
// in its handshake has that peer as its source. Persistent peers are
// outside the buckets, and so are inbound peers until they announce an
// address.
const (
	// sourceBuckets: a source group holds at most this many buckets'
	// worth, half the book.
	// Why: what a source sends past its share is refused, and its walk
	// does not come back to it, so another source must send it; a node
	// learns most of the network from its first few sources, so the share
	// must be large.
	// Guards: TestSourceGroupShareIsUsedInFull,
	// TestTwoSourcesThatKnowTheNetworkCanTellAllOfIt (at 12); at 4,
	// every golden run.
	sourceBuckets = 16

	// bucketShare: a bucket holds 1/bucketShare of MaxPeers.
	// Why: a sybil subnet that advertises its own addresses, the common
	// attack, gets no more than a small share of the book from any one
	// source.
	// Guards: (at 24) sybil-200-seed1, sybil-150-seed2-attackers30,
	// flood-200-seed2-attackers30; TestSourceGroupFloodIsCapped,
	// TestNetworkGroupCapHoldsAcrossSources.
	bucketShare = 32

	// minBucketCap is the least a bucket holds, whatever MaxPeers.
	// Why: a small book keeps room for each source.
	// Guards: the simulator's books are large enough that lowering it
	// moves nothing; at 64, sybil-200-seed1,
	// sybil-150-seed2-attackers30, flood-200-seed2-attackers30 and
	// TestSourceGroupFloodIsCapped.
	minBucketCap = 8

	// groupBuckets: a network group holds at most this many buckets'
	// worth, from all sources together.
	// Why: what a sybil subnet plants in honest books travels on through
	// honest nodes, each a source group of its own, so per-source caps
	// alone would let its addresses fill every book in the end.
	// Guards: TestNetworkGroupCapHoldsAcrossSources (at 3); at 1,
	// sybil-200-seed1, sybil-150-seed2-attackers30,
	// flood-200-seed2-attackers30.
	groupBuckets = 2

	// crowdFactor, crowdFloor: a network group holds hearsay (addresses
	// of other nodes that gossip tells) up to crowdFactor times what the
	// typical group of the book holds (see typical), and crowdFloor
	// whatever that is.
	// Why: an attacker spread over many /16s still crowds each of them
	// (it has more addresses than groups), while the typical group of a
	// network holds a node or a few; a crowded group's nodes enter the
	// book still by connecting, by the operator or through their own
	// word, and a network crowded into a few groups is its own typical
	// group.
	// Guards: the attack rows of SPEC 8 (32 /16s), TestCrowdedGroup*.
	crowdFactor = 2
	crowdFloor  = 3

	// crowdSample is how many entries a full book draws to find hearsay
	// of a crowded group to make room for news (crowdVictim), and a
	// book draws to trim groups past their share (trimCrowds).
	// Why: a book that crowded groups have filled yields them in a few
	// draws; a bound keeps adding cheap when they have not.
	// Guards: the attack rows of SPEC 8 (32 and 256 /16s).
	crowdSample = 32
)

// bucketCap is how many entries one bucket holds in a book of maxPeers.
func bucketCap(maxPeers int) int {
	return max(minBucketCap, (maxPeers+bucketShare-1)/bucketShare)
}

// sourceCap is how many gossiped entries from one source group a book of
// maxPeers holds: sourceBuckets buckets' worth.
func sourceCap(maxPeers int) int {
	return sourceBuckets * bucketCap(maxPeers)
}

// groupCap is how many gossiped entries of one network group a book of
// maxPeers holds, from all sources together: two buckets' worth.
func groupCap(maxPeers int) int {
	return groupBuckets * bucketCap(maxPeers)
}

// crowded reports whether network group g holds as much as it may of
// hearsay: crowdFactor times what the typical group holds, and at least
// crowdFloor.
func (m *Book) crowded(g uint64) bool {
	return m.crowdedAt(m.groupLoad(g))
}

// crowdedAt reports whether a network group that holds load entries is
// crowded. A load below crowdFloor never is, whatever the typical
// group holds: most groups of a book hold a few entries, and the
// typical load, which every entry placed or taken out moves, is not
// worked out for them.
func (m *Book) crowdedAt(load int) bool {
	return load >= crowdFloor && load >= m.CrowdShare()
}

// trimCrowds drops, of crowdSample entries drawn at random, hearsay we
// never reached (idle, not the peer's own word) of groups crowded past
// what they may hold now: the typical load falls as honest groups come in, so
// what an attacker placed while its groups were most of the book leaves,
// a few at each addition, once they are not. The caller holds the lock.
func (m *Book) trimCrowds() {
	top := m.crowd.top()
	if top <= crowdFloor {
		return // within any group's share (see crowdedAt)
	}
	limit := m.CrowdShare()
	if top <= limit {
		return
	}
	for range crowdSample {
		if len(m.log) == 0 {
			return
		}
		p := m.log[m.opts.Rand.IntN(len(m.log))].E
		if !p.is(removed) && p.is(placed) && int(p.crowdRank) > limit && m.groupLoad(p.slotGroup) > limit && m.lateHearsay(p) {
			m.remove(p)
			m.wake = true
		}
	}
}

// crowdVictim returns an idle hearsay entry of a crowded network group
// that holds at least least entries: the youngest of those found among
// crowdSample entries drawn at random, so that what we learnt first
// stays, as on admission; nil if none. A book that crowded groups fill
// yields one at once; in one where they are few, news may be refused,
// as in any full book.
func (m *Book) crowdVictim(least int) *peerInfo {
	least = max(least, crowdFloor+1)
	if m.crowd.top() < least || len(m.log) == 0 {
		return nil
	}
	return m.youngestDrawn(func(p *peerInfo) bool { return m.groupLoad(p.slotGroup) >= least && m.lateHearsay(p) })
}

// youngestDrawn returns the youngest placed entry that ok allows of
// crowdSample entries drawn at random from the log, nil if none: what
// makes room goes young, so that what we learnt first stays.
func (m *Book) youngestDrawn(ok func(*peerInfo) bool) *peerInfo {
	if len(m.log) == 0 {
		return nil
	}
	var v *peerInfo
	for range crowdSample {
		p := m.log[m.opts.Rand.IntN(len(m.log))].E
		if p.is(removed) || !p.is(placed) || (v != nil && p.seq < v.seq) || !ok(p) {
			continue
		}
		v = p
	}
	return v
}

// makeRoomInSource makes room in source group sl.source, whose share is
// full (admit refused sl with err), for an entry of a network group the
// book does not hold: it drops the youngest, of crowdSample entries drawn
// at random, that the source placed as hearsay in a group of feelGroup
// entries or more and that we never reached. An honest node passes on
// what an attacker's groups told it; its share is not spent on that while
// it tells us of a lone node we lack, which its walk will not send again.
// It reports whether it dropped one. The caller holds the lock.
func (m *Book) makeRoomInSource(sl slot, err error) bool {
	if !errors.Is(err, errs.ErrSourceGroupFull) || m.sourceLoad(sl.source) < m.sourceCap || m.groupLoad(sl.group) > 0 {
		return false
	}
	v := m.youngestDrawn(func(p *peerInfo) bool {
		return p.slotSource == sl.source && m.groupLoad(p.slotGroup) >= feelGroup && m.untestedHearsay(p)
	})
	if v == nil {
		return false
	}
	m.remove(v)
	return true
}

// lateHearsay reports whether p is an idle entry that only gossip vouches
// for and that came into a crowded group late: placed on another peer's
// word past crowdFloor entries of its group, never reached, not
// configured, with one address (an ID with several may have a true one
// among them: a spoof does not take the real address with it). The first
// entries of a group, an honest node's among them however an attacker
// crowds its /16 after, are not.
func (m *Book) lateHearsay(p *peerInfo) bool {
	if int(p.crowdRank) <= crowdFloor || p.persistent || p.connected() || p.is(proven) || p.src == noSrc || m.srcs.id(p.src) == p.id || m.extra.num(p) != 1 {
		return false
	}
	return !m.extra.at(p, 0).everWorked
}

// CrowdShare is the most hearsay a network group may hold now, unless it
// is the book's typical group (see crowded).
func (m *Book) CrowdShare() int {
	return max(crowdFloor, crowdFactor*m.crowd.typical())
}

// loadCounts counts the network groups of the book by load: n[l] groups
// hold l entries (l >= 1); groups is their number.
type loadCounts struct {
	n      []int
	groups int
	// typ caches typical(), valid while fresh: moves are many (every
	// entry placed or taken out), reads more (every hearsay admitted,
	// every candidate dialled), and a move seldom changes the answer.
	typ   int
	fresh bool
}

// move records that a group holding l entries now holds l+d (d is +1 or
// -1).
func (c *loadCounts) move(l, d int) {
	c.fresh = false
	if l > 0 {
		c.n[l]--
	} else {
		c.groups++
	}
	if l+d > 0 {
		for len(c.n) <= l+d {
			c.n = append(c.n, 0)
		}
		c.n[l+d]++
	} else {
		c.groups--
	}
}

// counts reports whether c counts the groups of loads, and caches the
// typical load right, as Check verifies.
func (c *loadCounts) counts(loads map[uint64]int) bool {
	if len(c.n) == 0 {
		return c.groups == 0 && len(loads) == 0
	}
	n := make([]int, len(c.n))
	for _, l := range loads {
		if l < 1 || l >= len(n) {
			return false
		}
		n[l]++
	}
	return c.groups == len(loads) && slices.Equal(n[1:], c.n[1:]) && (!c.fresh || c.typ == c.quarter())
}

// top is the load of the most loaded group (0 for none).
func (c *loadCounts) top() int {
	for l := len(c.n) - 1; l > 0; l-- {
		if c.n[l] > 0 {
			return l
		}
	}
	return 0
}

// atLeast is how many groups hold l entries or more.
func (c *loadCounts) atLeast(l int) int {
	k := 0
	for ; l < len(c.n); l++ {
		k += c.n[l]
	}
	return k
}

// typical is the least load such that a quarter of the book's entries
// sit in groups that hold no more (0 for an empty book): a network
// crowded into a few groups is its own typical group, however many lone
// entries sit beside it, while an attacker's groups are typical only if
// they hold three quarters of the book.
func (c *loadCounts) typical() int {
	if !c.fresh {
		c.typ, c.fresh = c.quarter(), true
	}
	return c.typ
}

// quarter computes typical.
func (c *loadCounts) quarter() int {
	total := 0
	for l, k := range c.n {
		total += l * k
	}
	seen := 0
	for l, k := range c.n {
		if seen += l * k; 4*seen >= total && total > 0 {
			return l
		}
	}
	return 0
}

// bucketKey is the secret that names buckets.
type bucketKey [2]uint64

// bucket returns the bucket of an address in group g learnt from a
// source in group src: a keyed hash of both groups, so that a source
// cannot tell which name its bucket has.
func (k bucketKey) bucket(g, src uint64) uint64 {
	return addr.Mix(k[0] ^ addr.Mix(g^addr.Mix(src^k[1])))
}

// BucketCap is how many entries one bucket holds in a book of maxPeers:
// the most one source group places of one network group.
func BucketCap(maxPeers int) int { return bucketCap(maxPeers) }
