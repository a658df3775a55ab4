package book

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/lifecycle"

	"github.com/stretchr/testify/require"
)

func TestNetGroup(t *testing.T) {
	at := func(host string) NodeAddress {
		return NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: host, Port: 26656}
	}
	same := [][2]string{
		{"1.2.3.4", "1.2.200.9"},                      // one /16
		{"1.2.3.4", "::ffff:1.2.9.9"},                 // IPv4-mapped
		{"1.2.3.4", "2002:0102:0909::1"},              // 6to4 carries 1.2.9.9
		{"1.2.3.4", "2001:0:4136:e378:0:0:fefd:f6f6"}, // Teredo: client 1.2.9.9, inverted
		{"1.2.3.4", "64:ff9b::102:909"},               // NAT64
		{"2600:1f18::1", "2600:1f18:ffff::2"},         // one IPv6 /32
		{"a.node.example.com", "b.example.com"},       // one domain
		{"example.com", "EXAMPLE.com."},
	}
	for _, c := range same {
		require.Equal(t, addr.Group(at(c[0])), addr.Group(at(c[1])), "%s and %s", c[0], c[1])
	}
	differ := [][2]string{
		{"1.2.3.4", "1.3.3.4"},
		{"2600:1f18::1", "2600:1f19::1"},
		{"a.example.com", "a.example.org"},
		{"10.0.0.1", "10.0.0.2"}, // unroutable: each address its own group
		{"1.2.3.4", "example.com"},
	}
	for _, c := range differ {
		require.NotEqual(t, addr.Group(at(c[0])), addr.Group(at(c[1])), "%s and %s", c[0], c[1])
	}
	loop := at("127.0.0.1")
	other := loop
	other.Port++
	require.NotEqual(t, addr.Group(loop), addr.Group(other), "local endpoints are groups of their own")
}

// floodPM returns a book with fixed keys and an attacking source in
// 66.66.0.0/16 that the book holds (as a dialled or announced peer).
func floodPM(t *testing.T, maxPeers int) (*PeerManager, []NodeID) {
	t.Helper()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: maxPeers, Rand: rand.New(rand.NewPCG(7, 7))}})
	var sybils []NodeID
	for i := range 20 { // 20 node IDs of one /16; self-announced, they fit one bucket
		id := nodeID(900_000 + i)
		a, err := NodeAddressFromIP(id, netip.AddrFrom4([4]byte{66, 66, byte(i), 1}), 26656)
		require.NoError(t, err)
		_, err = m.Add(a)
		require.NoError(t, err)
		sybils = append(sybils, id)
	}
	return m, sybils
}

// sybilAddr is the i-th address of the sybil subnet 66.66.0.0/16.
func sybilAddr(i int) NodeAddress {
	a, err := NodeAddressFromIP(nodeID(1_000_000+i), netip.AddrFrom4([4]byte{66, 66, byte(i >> 8), byte(i)}), 26656)
	if err != nil {
		panic(err)
	}
	return a
}

func isSybil(a NodeAddress) bool { return strings.HasPrefix(a.Hostname, "66.66.") }

func countFrom(m *PeerManager, srcs []NodeID) int {
	n := 0
	for _, p := range m.peers.all() {
		for _, s := range srcs {
			if m.srcs.id(p.src) == s {
				n++
			}
		}
	}
	return n
}

func TestSourceGroupFloodIsCapped(t *testing.T) {
	const maxPeers = 1000
	capPerBucket := bucketCap(maxPeers)
	require.Equal(t, 32, capPerBucket)
	for _, tc := range []struct {
		name  string
		addr  func(r *rand.Rand, i int) netip.Addr
		limit int // documented share
	}{
		// Addresses all over the internet: at most 1/2 of the book.
		{"any groups", func(r *rand.Rand, i int) netip.Addr {
			return netip.AddrFrom4([4]byte{byte(11 + r.IntN(50)), byte(r.IntN(256)), byte(i >> 8), byte(i)})
		}, sourceBuckets * capPerBucket},
		// The sybil subnet's own addresses: what a crowded group holds
		// beside 200 groups of one honest entry each, crowdFactor times
		// the typical load, at least crowdFloor.
		{"own subnet", func(r *rand.Rand, i int) netip.Addr {
			return netip.AddrFrom4([4]byte{66, 66, byte(i >> 8), byte(i)})
		}, max(crowdFloor, crowdFactor)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, sybils := floodPM(t, maxPeers)
			addHonest := func(from, to int) {
				for i := from; i < to; i++ {
					_, err := m.AddFrom(peerAddr(i), nodeID(i-1))
					require.NoError(t, err)
				}
			}
			addHonest(1, 200)
			before := m.Known()
			r := rand.New(rand.NewPCG(1, 1))
			refused, taken := 0, 0
			// 10,000 addresses, sent by 20 node IDs of one /16.
			for i := range 10_000 {
				a, err := NodeAddressFromIP(nodeID(1_000_000+i), tc.addr(r, i), 26656)
				require.NoError(t, err)
				ok, err := m.AddFrom(a, sybils[i%len(sybils)])
				if ok {
					taken++
				}
				if err != nil {
					if !errors.Is(err, ErrNetworkGroupFull) {
						require.ErrorIs(t, err, ErrSourceGroupFull)
					}
					refused++
				}
			}
			got := countFrom(m, sybils)
			require.LessOrEqual(t, got, tc.limit)
			if tc.name == "any groups" {
				require.Positive(t, got)
			}
			// What was not taken was refused; what the full share took
			// of a lone group displaced its own hearsay of a group of
			// several (makeRoomInSource).
			require.Equal(t, 10_000-taken, refused)
			require.LessOrEqual(t, got, taken)
			require.Subset(t, m.Known(), before, "the flood evicted nothing")
			// Honest sources keep their own room.
			addHonest(200, 400)
			checkInvariants(t, m)
			t.Logf("%s: %d of 10,000 stored (%.1f%% of MaxPeers)", tc.name, got, 100*float64(got)/maxPeers)
		})
	}
}

func TestSourceGroupFloodNeverReplacesProvenPeers(t *testing.T) {
	clk := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: 40, MaxConnected: 40, MaxOutbound: 40}, Now: clk.Now})
	addPeers(t, m, 0, 40)
	for range 40 { // connect to all of them once: proven
		a, ok := m.TryDialNext()
		require.True(t, ok)
		require.NoError(t, m.Dialed(a))
		m.Disconnected(a.NodeID)
	}
	before := m.Known()
	for i := range 1000 {
		_, err := m.AddFrom(sybilAddr(i), nodeID(3))
		require.Error(t, err)
	}
	require.ElementsMatch(t, before, m.Known())
	checkInvariants(t, m)
}

func TestBucketKeyNamesBucketsApart(t *testing.T) {
	// With one key the buckets of a source are fixed and distinct for
	// distinct address groups; another key renames them, so a source
	// cannot aim at another's buckets.
	k1, k2 := bucketKey{1, 2}, bucketKey{3, 4}
	src := addr.Group(peerAddr(1))
	seen := map[uint64]bool{}
	for i := range 2000 {
		seen[k1.bucket(addr.Group(peerAddr(100+i)), src)] = true
	}
	require.Len(t, seen, 2000)
	require.NotEqual(t, k1.bucket(1, src), k2.bucket(1, src))
	require.NotEqual(t, k1.bucket(1, src), k1.bucket(src, 1))
	require.Equal(t, k1.bucket(1, src), k1.bucket(1, src))
}

func TestSourceGroupShareIsUsedInFull(t *testing.T) {
	// One source sends addresses of many groups, up to its whole share:
	// all are stored, and only the next is refused. (Spread over hashed
	// buckets, a share filled unevenly and some 5% of it was refused
	// early: after a partition, the bridge node's one source for the
	// other side lost those nodes for its whole side.)
	const maxPeers = 2000
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: maxPeers}})
	src := peerAddr(0)
	_, err := m.Add(src)
	require.NoError(t, err)
	share := sourceCap(maxPeers)
	require.Equal(t, 1008, share)
	for i := 1; i < share; i++ { // the source's own entry counts too
		_, err := m.AddFrom(peerAddr(i), src.NodeID)
		require.NoError(t, err, "address %d of a share of %d", i, share)
	}
	_, err = m.AddFrom(peerAddr(share), src.NodeID)
	require.ErrorIs(t, err, ErrSourceGroupFull)
	checkInvariants(t, m)
}

func TestTwoSourcesThatKnowTheNetworkCanTellAllOfIt(t *testing.T) {
	// A node that asked two peers that know the whole network (the seed
	// and one more, say) has been sent all of it twice over, each peer
	// walking its book once: it keeps all of it. Whatever a source sends
	// past its share is lost for good from that source, as its walk does
	// not come back; with a share of 1/4, the node kept 512 of these
	// 1,000, and had to find the rest elsewhere.
	const maxPeers = 1000
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: maxPeers}})
	a, b := peerAddr(0), peerAddr(1)
	for _, s := range []NodeAddress{a, b} {
		_, err := m.Add(s)
		require.NoError(t, err)
	}
	refused := 0
	for _, src := range []NodeID{a.NodeID, b.NodeID} {
		for i := 2; i < maxPeers; i++ {
			if _, err := m.AddFrom(peerAddr(i), src); err != nil {
				require.ErrorIs(t, err, ErrSourceGroupFull)
				refused++
			}
		}
	}
	require.Equal(t, maxPeers, m.Len(), "every node is known")
	require.Equal(t, maxPeers-2-(sourceCap(maxPeers)-1), refused, "only the first source's excess, which the second sends")
	checkInvariants(t, m)
}

func TestNetworkGroupCapHoldsAcrossSources(t *testing.T) {
	// A sybil subnet's addresses relayed by many honest sources, each of
	// its own group: the subnet holds what a crowded group may beside
	// groups of one entry each, crowdFactor times that typical load, at least
	// crowdFloor (TestOneGroupNetworkIsItsOwnMedian: groupCap bounds a
	// group that is the typical one).
	const maxPeers = 1000
	limit := max(crowdFloor, crowdFactor)
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: maxPeers, Rand: rand.New(rand.NewPCG(7, 7))}})
	var sources []NodeID
	for i := range 100 {
		a, err := NodeAddressFromIP(nodeID(i), netip.AddrFrom4([4]byte{byte(11 + i/200), byte(i), 0, 1}), 26656)
		require.NoError(t, err)
		_, err = m.Add(a)
		require.NoError(t, err)
		sources = append(sources, a.NodeID)
	}
	before := m.Known()
	stored, groupFull := 0, 0
	for i := range 2000 { // 20 subnet addresses from each source
		ok, err := m.AddFrom(sybilAddr(i), sources[i%len(sources)])
		switch {
		case ok:
			stored++
		case errors.Is(err, ErrNetworkGroupFull):
			groupFull++
		default:
			t.Fatalf("address %d: %v", i, err)
		}
	}
	require.Equal(t, limit, stored, "the group fills to its share, no further")
	require.Equal(t, 2000-limit, groupFull)
	require.Subset(t, m.Known(), before, "nothing was evicted for it")
	// Other groups, from the same sources, still have room.
	for i := range 100 {
		_, err := m.AddFrom(peerAddr(5000+i), sources[i])
		require.NoError(t, err)
	}
	checkInvariants(t, m)
}

func TestInboundSybilsDisplaceEachOther(t *testing.T) {
	// Connections full of inbound peers: 6 sybils of one /16 and 4 honest
	// peers each of its own. A newcomer, honest or sybil, displaces a
	// sybil: the subnet with the most inbound connections gives up one.
	clk := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 10, MaxOutbound: 2}, Now: clk.Now})
	for i := range 4 {
		require.NoError(t, m.Accepted(nodeID(i), peerAddr(i)))
		clk.Advance(time.Second)
	}
	for i := range 6 {
		require.NoError(t, m.Accepted(sybilAddr(i).NodeID, sybilAddr(i)))
		clk.Advance(time.Second)
	}
	// Each newcomer has had its grace for a first answer when the next comes.
	clk.Advance(lifecycle.FirstAnswerGrace)
	sybils := func() int {
		n := 0
		for _, id := range m.Connected() {
			if isSybil(m.Addresses(id)[0]) {
				n++
			}
		}
		return n
	}
	for i := range 20 {
		a := peerAddr(10 + i)
		if i%2 == 1 {
			a = sybilAddr(10 + i)
		}
		before := sybils()
		require.NoError(t, m.Accepted(a.NodeID, a))
		id, ok := m.EvictNext()
		require.True(t, ok)
		if before > 0 {
			require.True(t, isSybil(m.Addresses(id)[0]), "newcomer %d displaced %s while %d sybils were connected", i, id, before)
		}
		m.Disconnected(id)
		clk.Advance(lifecycle.FirstAnswerGrace)
		checkInvariants(t, m)
	}
	require.LessOrEqual(t, sybils(), 1, "sybils take turns in one slot at most")
	for i := range 4 {
		require.True(t, m.IsConnected(nodeID(i)), "the first honest peers kept their slots")
	}
}

func TestOutboundSpreadsOverGroups(t *testing.T) {
	// A book of 30 sybils from one /16 and 5 honest peers, each in a /16
	// of its own: of 10 outbound slots, the sybils get 2 (MaxOutbound/5),
	// and the honest peers are all dialled.
	addSybils := func(m *PeerManager) {
		for i := range 30 {
			_, err := m.Add(sybilAddr(i))
			require.NoError(t, err)
		}
	}
	m := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 50, MaxOutbound: 10, Rand: rand.New(rand.NewPCG(3, 3))}})
	addSybils(m)
	addPeers(t, m, 0, 5)
	sybils, honest := 0, 0
	for {
		a, ok := m.TryDialNext()
		if !ok {
			break
		}
		require.NoError(t, m.Dialed(a))
		if isSybil(a) {
			sybils++
		} else {
			honest++
		}
	}
	require.Equal(t, 2, sybils)
	require.Equal(t, 5, honest)
	checkInvariants(t, m)

	// Without the limit, the sybils take what is left.
	m = newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 50, MaxOutbound: 10, MaxOutboundPerGroup: -1}})
	addSybils(m)
	dialled := 0
	for {
		a, ok := m.TryDialNext()
		if !ok {
			break
		}
		require.NoError(t, m.Dialed(a))
		dialled++
	}
	require.Equal(t, 10, dialled)
	checkInvariants(t, m)
}

func TestSubnetThatBrokeTheProtocolIsNotAskedFirst(t *testing.T) {
	clk := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxRetryTime: 10 * time.Minute}, Now: clk.Now})
	require.NoError(t, m.Accepted(sybilAddr(1).NodeID, sybilAddr(1)))
	require.False(t, m.CrowdedInbound(sybilAddr(1).NodeID), "the first of its subnet")
	require.NoError(t, m.Accepted(sybilAddr(2).NodeID, sybilAddr(2)))
	require.True(t, m.CrowdedInbound(sybilAddr(2).NodeID), "a second of the same subnet")
	require.NoError(t, m.Accepted(nodeID(7), peerAddr(7)))
	require.False(t, m.CrowdedInbound(nodeID(7)), "another subnet")

	// Both sybils go, one after a fatal error: the next of their subnet is
	// not asked first either, until MaxRetryTime has passed.
	m.Errored(PeerError{NodeID: sybilAddr(1).NodeID, Err: ErrMessageTooLarge, Fatal: true})
	m.Disconnected(sybilAddr(1).NodeID)
	m.Disconnected(sybilAddr(2).NodeID)
	require.NoError(t, m.Accepted(sybilAddr(3).NodeID, sybilAddr(3)))
	require.True(t, m.CrowdedInbound(sybilAddr(3).NodeID))
	clk.Advance(10 * time.Minute)
	require.False(t, m.CrowdedInbound(sybilAddr(3).NodeID))
	checkInvariants(t, m)
}

func TestSubnetThatBrokeTheProtocolDisplacesNobody(t *testing.T) {
	// Connections full of honest inbound peers, each of its own /16. A
	// sybil of a subnet that just broke the protocol is turned away, not
	// let in at an honest peer's expense, until MaxRetryTime has passed;
	// an honest newcomer still gets in.
	clk := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 4, MaxOutbound: 1, MaxRetryTime: 10 * time.Minute}, Now: clk.Now})
	require.NoError(t, m.Accepted(sybilAddr(0).NodeID, sybilAddr(0)))
	m.Errored(PeerError{NodeID: sybilAddr(0).NodeID, Err: ErrUnsolicitedResponse, Fatal: true})
	m.Disconnected(sybilAddr(0).NodeID)
	for i := range 4 {
		require.NoError(t, m.Accepted(nodeID(i), peerAddr(i)))
	}
	clk.Advance(lifecycle.FirstAnswerGrace)
	require.ErrorIs(t, m.Accepted(sybilAddr(1).NodeID, sybilAddr(1)), ErrTooManyPeers)
	_, ok := m.EvictNext()
	require.False(t, ok, "nobody displaced")
	require.NoError(t, m.Accepted(nodeID(9), peerAddr(9)))
	id, ok := m.EvictNext()
	require.True(t, ok, "an honest newcomer displaces as before")
	m.Disconnected(id)
	clk.Advance(10 * time.Minute)
	require.NoError(t, m.Accepted(sybilAddr(2).NodeID, sybilAddr(2)), "after MaxRetryTime the subnet is like any other")
	_, ok = m.EvictNext()
	require.True(t, ok)
	checkInvariants(t, m)
}

// A network whose nodes all live in one /16 is the book's typical group:
// the crowd rule never refuses its gossip (one source fills its bucket).
func TestOneGroupNetworkIsItsOwnMedian(t *testing.T) {
	const maxPeers = 1000
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: maxPeers, Rand: rand.New(rand.NewPCG(3, 3))}})
	src, err := NodeAddressFromIP(nodeID(0), netip.AddrFrom4([4]byte{66, 1, 0, 1}), 26656)
	require.NoError(t, err)
	_, err = m.Add(src)
	require.NoError(t, err)
	stored := 1
	for i := 1; i < 200; i++ {
		a, err := NodeAddressFromIP(nodeID(i), netip.AddrFrom4([4]byte{66, 1, byte(i >> 8), byte(i)}), 26656)
		require.NoError(t, err)
		if ok, _ := m.AddFrom(a, src.NodeID); ok {
			stored++
		}
	}
	require.Equal(t, bucketCap(maxPeers), stored)
	checkInvariants(t, m)
}

// A book that an attacker's groups filled before it heard of the honest
// network (a newcomer attackers dialled first: its groups were then the
// typical groups) takes the honest network in as it comes: news of a less
// crowded group displaces the late entries of the most crowded ones, and
// once honest groups are typical, further additions trim the crowded
// groups back to their share. The first crowdFloor entries of each group
// stay.
func TestCrowdedBookMakesRoomForNews(t *testing.T) {
	const maxPeers, groups = 200, 16
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: maxPeers, MaxConnected: 50, MaxOutbound: 10, Rand: rand.New(rand.NewPCG(5, 5))}})
	for g := range groups {
		require.NoError(t, m.AcceptedFrom(nodeID(90_000+g), netip.AddrPortFrom(netip.AddrFrom4([4]byte{66, byte(g), 0, 1}), 40000)))
	}
	for k := 0; m.Len() < maxPeers; k++ {
		g := k % groups
		a, err := NodeAddressFromIP(nodeID(100_000+k), netip.AddrFrom4([4]byte{66, byte(g), byte(k >> 8), byte(k)}), 26656)
		require.NoError(t, err)
		_, _ = m.AddFrom(a, nodeID(90_000+(k/groups)%groups))
		require.Less(t, k, 10*maxPeers, "the attackers' groups fill the book")
	}
	// Each source holds an entry of its own, the two honest ones too
	// once connected.
	attackers := func() int { return m.Len() - honestIn(m) - groups - honestSources(m) }
	require.Equal(t, maxPeers-groups, attackers())
	checkInvariants(t, m)
	// Two honest peers connect and tell of 130 nodes, each in its own
	// /16: every one is stored (room for all but the first crowdFloor
	// entries of each crowded group and the peers' own).
	require.NoError(t, m.AcceptedFrom(nodeID(1), remoteIP(200)))
	require.NoError(t, m.AcceptedFrom(nodeID(2), remoteIP(201)))
	for i := 10; i < 140; i++ {
		ok, err := m.AddFrom(peerAddr(i), nodeID(1+i%2))
		require.NoError(t, err)
		require.True(t, ok)
	}
	checkInvariants(t, m)
	require.Equal(t, 130, honestIn(m))
	// The honest groups are typical now: each crowded group is back
	// within crowdFactor times it, and keeps its first crowdFloor.
	limit := max(crowdFloor, crowdFactor*m.crowd.typical())
	require.Equal(t, crowdFloor, limit)
	require.LessOrEqual(t, attackers(), groups*limit)
	require.GreaterOrEqual(t, attackers(), groups*crowdFloor)
	t.Logf("%d attacker entries left of %d", attackers(), maxPeers)
}

// honestSources counts the honest sources of TestCrowdedBookMakesRoomForNews
// that m holds.
func honestSources(m *PeerManager) int {
	n := 0
	for _, id := range []NodeID{nodeID(1), nodeID(2)} {
		if m.Has(id) {
			n++
		}
	}
	return n
}

// honestIn counts the entries of m for the nodes of peerAddr.
func honestIn(m *PeerManager) int {
	n := 0
	for _, id := range m.Known() {
		if id < nodeID(1000) && id > nodeID(9) {
			n++
		}
	}
	return n
}

// TestAFullSourceMakesRoomForALoneNodeWeLack: a source whose share is
// full of lone nodes and of what it relayed of groups of several entries
// still tells us of a node of a group we lack: its youngest hearsay of
// such a group, which we never reached, makes room; a lone node of its
// does not, nor does it make room for an address of a group we hold.
func TestAFullSourceMakesRoomForALoneNodeWeLack(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: 1000}})
	src := nodeID(9)
	require.NoError(t, m.AcceptedFrom(src, remoteIP(9)))
	relayed := func(g, k int) NodeAddress {
		a, err := NodeAddressFromIP(nodeID(2_000_000+2*g+k), netip.AddrFrom4([4]byte{67, byte(g), 0, byte(k + 1)}), 26656)
		require.NoError(t, err)
		return a
	}
	full := sourceCap(1000)
	for g := range 16 {
		for k := range 2 {
			ok, err := m.AddFrom(relayed(g, k), src)
			require.NoError(t, err)
			require.True(t, ok)
		}
	}
	for i := 10; m.sourceLoad(m.group(m.peers.get(src))) < full; i++ {
		ok, err := m.AddFrom(peerAddr(i), src)
		require.NoError(t, err)
		require.True(t, ok)
	}
	before := m.Known()
	ok, err := m.AddFrom(peerAddr(900), src)
	require.NoError(t, err)
	require.True(t, ok, "a node of a group we lack is stored")
	require.Equal(t, full, m.sourceLoad(m.group(m.peers.get(src))))
	gone := 0
	for _, id := range before {
		if !m.Has(id) {
			gone++
			require.True(t, isRelayed(m, id), "what left is hearsay of a group of several")
		}
	}
	require.Equal(t, 1, gone)
	held := relayed(0, 5)
	held.NodeID = nodeID(3_000_000)
	_, err = m.AddFrom(held, src)
	require.ErrorIs(t, err, ErrSourceGroupFull, "no room made for a group we hold")
	checkInvariants(t, m)
}

// isRelayed reports whether id is one of TestAFullSourceMakesRoom's
// relayed entries.
func isRelayed(_ *PeerManager, id NodeID) bool {
	for g := range 16 {
		for k := range 2 {
			if id == nodeID(2_000_000+2*g+k) {
				return true
			}
		}
	}
	return false
}
