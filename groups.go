package pex

import (
	"net/netip"
	"strings"
)

// Eclipse resistance (SPEC section 6, "sybils from one subnet").
//
// An attacker usually controls many addresses in few networks. So every
// address the book learns from gossip is counted against two network
// groups: the group of the peer that told us (its source) and the group
// of the address. A source group holds at most sourceBuckets*bucketCap
// entries, 1/2 of MaxPeers (512 of a 1,000-peer book), whatever it sends
// and however many node IDs it uses to send it; and addresses of a single
// group from it at most bucketCap (a bucket: the entries of one address
// group from one source group), 1/32 of MaxPeers (32 of 1,000). The 1/2 is
// what lets a node learn the network from the few peers that know it best:
// what a source sends past its share is refused, and as its walk
// (PeerManager.Advertise) does not come back to it, another source must
// send it. With 1/8, the simulator's join of a 10,000-node network stalled
// at 85%. With 1/4 (504 of the simulator's 2,000-entry books), each node
// of the 1,000-node cold start refused 47 addresses on average (46,652,
// sent by 414 different peers), which cost 14% more rounds (26.0 against
// 22.7 for the average node to know 99%) and 27% more bytes (3.10x against
// 2.44x the minimum); after a partition healed, 58% more rounds (52.5
// against 33.2); the attackers' share of honest books in the sybil and
// flood scenarios is no higher with 1/2. The 1/32 is what holds a sybil
// subnet that advertises its own addresses, the common attack, to 3% of
// the book from any one source, and the group cap below what it plants
// through honest relays.
//
// The 1/2 is counted per source group, not spread over a few buckets
// picked by a hash: hashed buckets fill unevenly, and a source sending a
// little less than its share lost a few percent of it to full buckets
// while others stayed part empty. After a partition, the bridge node's
// only source for the other side lost 22 of its 500 nodes that way, and
// as no other source held them, no node of its side ever learnt them
// (the simulator's partition never reached 99%).
//
// What a sybil subnet plants in honest books travels on through honest
// nodes, each a source group of its own, so per-source caps alone let its
// addresses fill every book in the end (in a 200-node run of the
// simulator's sybil scenario, 10% attackers put their addresses at 62% of
// honest books).
// So, whatever the sources, the book holds at most groupBuckets*bucketCap
// gossiped entries of one network group: 1/16 of MaxPeers (64 of 1,000).
// A network of honest nodes crowded into one /16 is unusual; those past
// the cap still connect to us and stay known through their connections.
//
// Buckets are named by a keyed hash of their two groups; the key is
// secret (drawn from PeerManagerOptions.Rand), so a source cannot aim at
// the bucket of another. Loads are not shared between source groups: a
// flood from one source never costs another source its room.
//
// A full source group or bucket takes no more entries: the address is
// refused with ErrSourceGroupFull, and will be stored when another source
// sends it. A full network group is refused with ErrNetworkGroupFull.
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
// A source is grouped by the address we last reached it at, else the
// first we hold for it (for an inbound peer, the one it announced: a
// transport should announce the connection's remote IP). A source we hold
// no address for is in one group with every other such source. An address
// added with no source (Add: the operator's, or one announced in a
// handshake through Accepted) is its own source. Persistent peers are
// outside the buckets, and so are inbound peers until they announce an
// address.
const (
	sourceBuckets = 16 // a source group holds at most this many buckets' worth
	bucketShare   = 32 // a bucket holds 1/bucketShare of MaxPeers
	minBucketCap  = 8  // so that small books keep room per source
	groupBuckets  = 2  // a network group holds at most this many buckets' worth
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

// Group kinds, in the top bits of a group value so kinds never collide.
const (
	groupUnknown uint64 = iota << 60 // a source we hold no address for
	groupIPv4
	groupIPv6
	groupDNS
	groupLocal
	groupMemory
	groupKindMask        = 0xf << 60
	noGroup       uint64 = groupKindMask // no group at all (no newcomer in inboundVictim)
)

// netGroup returns the network group of an address as a 64-bit value:
// exact for IP groups, a hash for names and local endpoints.
func netGroup(a NodeAddress) uint64 {
	if ip, ok := a.IP(); ok {
		return ipGroup(ip.WithZone(""), a.Port)
	}
	if a.Hostname == "" {
		return groupMemory | fnv1a(fnvBasis, a.NodeID)&^groupKindMask
	}
	host := strings.ToLower(strings.TrimSuffix(a.Hostname, "."))
	if i := strings.LastIndexByte(host, '.'); i > 0 {
		if j := strings.LastIndexByte(host[:i], '.'); j >= 0 {
			host = host[j+1:]
		}
	}
	return groupDNS | fnv1a(fnvBasis, host)&^groupKindMask
}

// diverseGroup reports whether outbound connections into group g are
// bounded (PeerManagerOptions.MaxOutboundPerGroup): public IP groups only,
// since a DNS domain or a private network may well hold every node.
func diverseGroup(g uint64) bool {
	k := g & groupKindMask
	return k == groupIPv4 || k == groupIPv6
}

func ipGroup(ip netip.Addr, port uint16) uint64 {
	ip = ip.Unmap()
	if v4, ok := embeddedIPv4(ip); ok {
		ip = v4
	}
	switch {
	case !isRoutableIP(ip):
		b := ip.As16()
		h := fnv1a(fnvBasis, b[:])
		h = fnv1a(h, []byte{byte(port >> 8), byte(port)})
		return groupLocal | h&^groupKindMask
	case ip.Is4():
		b := ip.As4()
		return groupIPv4 | uint64(b[0])<<8 | uint64(b[1])
	default:
		b := ip.As16()
		return groupIPv6 | uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	}
}

var (
	sixToFour = netip.MustParsePrefix("2002::/16")
	teredo    = netip.MustParsePrefix("2001::/32")
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
)

// embeddedIPv4 returns the IPv4 address an IPv6 transition form carries.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	b := ip.As16()
	switch {
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	case teredo.Contains(ip):
		// The client's address is stored inverted in the last 32 bits.
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}), true
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	}
	return netip.Addr{}, false
}

// fnvBasis starts an FNV-1a hash; fnv1a continues one over b.
const fnvBasis uint64 = 14695981039346656037

func fnv1a[T ~string | ~[]byte](h uint64, b T) uint64 {
	for i := 0; i < len(b); i++ {
		h ^= uint64(b[i])
		h *= 1099511628211
	}
	return h
}

// bucketKey is the secret that names buckets.
type bucketKey [2]uint64

// bucket returns the bucket of an address in group addr learnt from a
// source in group src: a keyed hash of both groups, so that a source
// cannot tell which name its bucket has. mix is a bijective 64-bit
// finaliser.
func (k bucketKey) bucket(addr, src uint64) uint64 {
	return mix(k[0] ^ mix(addr^mix(src^k[1])))
}

func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
