package book

import (
	"github.com/pexnet/pex/internal/addr"
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
