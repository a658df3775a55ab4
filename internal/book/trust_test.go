package book

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/errs"
	"github.com/pexnet/pex/internal/testkit"
)

// remoteIP is the observed remote address of a connection from 203.0.113.x.
func remoteIP(x byte) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, x}), 40000)
}

// A host that comes back under new node IDs, each claiming a listen
// address in a new /16, places all its claims in the one group its
// connections come from, and its gossip counts there too.
func TestIdentityCyclingFromOneRemotePlacesOneGroupsShare(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: 1000, MaxConnected: 400}})
	for i := range 300 {
		id := nodeID(1000 + i)
		claim := testkit.PeerAddr(1000+i, 26656) // a /16 of its own
		claim.NodeID = id
		require.NoError(t, m.AcceptedFrom(id, remoteIP(7), claim))
		m.Disconnected(id)
	}
	g := addr.RemoteGroup(remoteIP(7))
	require.LessOrEqual(t, m.sourceLoad(g), m.sourceCap)
	require.Len(t, m.loadsOf(func(l groupLoad) int32 { return l.source }), 1, "every claim counts in the remote's group")
	require.LessOrEqual(t, m.Len(), m.sourceCap)
	checkInvariants(t, m)
}

// A handshake shows which node ID is at a host and port: when a host comes
// back under a new ID, what the book holds there under other IDs goes (an
// entry with another address keeps that one), and nothing elsewhere does.
func TestANewIDAtAHostTakesItsAddress(t *testing.T) {
	m := newPM(t, PeerManagerOptions{})
	host := netip.AddrPortFrom(testkit.PublicIP(700), 40000)
	at := func(id int) NodeAddress { // where the host listens, under id
		a, err := addr.NodeAddressFromIP(nodeID(id), host.Addr(), 26656)
		require.NoError(t, err)
		return a
	}
	claim := func(id int) NodeAddress { // the listen address it claims
		a := testkit.PeerAddr(1000+id, 26656)
		a.NodeID = nodeID(id)
		return a
	}
	require.NoError(t, m.AcceptedFrom(nodeID(1), host, claim(1)))
	m.Disconnected(nodeID(1))
	require.Equal(t, []NodeAddress{at(1)}, m.Addresses(nodeID(1)))
	// Gossip names node 3 at its own address and at the host's.
	require.NoError(t, m.AcceptedFrom(nodeID(2), remoteIP(9)))
	for _, a := range []NodeAddress{peerAddr(3), at(3), peerAddr(4)} {
		_, err := m.AddFrom(a, nodeID(2))
		require.NoError(t, err)
	}
	require.NoError(t, m.AcceptedFrom(nodeID(5), host, claim(5)))
	require.False(t, m.Has(nodeID(1)), "the host's old ID")
	require.Equal(t, []NodeAddress{peerAddr(3)}, m.Addresses(nodeID(3)))
	require.Equal(t, []NodeAddress{peerAddr(4)}, m.Addresses(nodeID(4)))
	require.Equal(t, []NodeAddress{at(5)}, m.Addresses(nodeID(5)))
	require.True(t, m.Has(nodeID(2)), "connected peers stay")
	checkInvariants(t, m)
}

// An address we reached proves its node ID: gossip cannot add a spoof
// beside it, and a dial failure of it does not lower the node's score.
func TestSpoofNeverJoinsAVerifiedAddress(t *testing.T) {
	m := newPM(t, PeerManagerOptions{})
	real := peerAddr(1)
	_, err := m.Add(real)
	require.NoError(t, err)
	a, ok := m.TryDialNext()
	require.True(t, ok)
	require.NoError(t, m.Dialed(a))
	m.Disconnected(real.NodeID)

	require.NoError(t, m.AcceptedFrom(nodeID(2), remoteIP(9)))
	spoof := peerAddrPort(3, 9999)
	spoof.NodeID = real.NodeID
	added, err := m.AddFrom(spoof, nodeID(2))
	require.NoError(t, err)
	require.False(t, added)
	require.Equal(t, []NodeAddress{real}, m.Addresses(real.NodeID))

	before, _ := m.Score(real.NodeID)
	m.DialFailed(real)
	after, _ := m.Score(real.NodeID)
	require.Equal(t, before, after)
	checkInvariants(t, m)
}

// A dial that reaches another node ID drops that address at once and
// charges its source; the node ID keeps its other addresses.
func TestMismatchDropsTheAddressOnly(t *testing.T) {
	m := newPM(t, PeerManagerOptions{})
	require.NoError(t, m.AcceptedFrom(nodeID(2), remoteIP(9)))
	id := nodeID(1)
	good, spoof := peerAddr(1), peerAddrPort(3, 9999)
	spoof.NodeID = id
	for _, a := range []NodeAddress{good, spoof} {
		_, err := m.AddFrom(a, nodeID(2))
		require.NoError(t, err)
	}
	m.DialMismatch(spoof)
	require.Equal(t, []NodeAddress{good}, m.Addresses(id))
	require.Equal(t, 1, m.trust[addr.RemoteGroup(remoteIP(9))].strikes)
	checkInvariants(t, m)
}

// A source group whose addresses keep proving other node IDs, and never
// prove live, is distrusted: what it alone told us leaves the book, it
// places nothing new, and an entry another group vouched for stays. A
// dial nobody answers is not held against the source.
func TestSpoofingSourceIsPurged(t *testing.T) {
	m := twoSources(t, 50, 0)
	// Another group tells of entry 49 too.
	_, err := m.AddFrom(peerAddr(49), nodeID(901))
	require.NoError(t, err)
	for i := range 10 {
		m.DialFailed(peerAddr(i))
	}
	require.False(t, m.distrusted(addr.RemoteGroup(remoteIP(9))), "junk is not a lie")
	for i := 10; i < 10+strikeSlack+1; i++ {
		m.DialMismatch(peerAddr(i))
		checkInvariants(t, m)
	}
	require.True(t, m.distrusted(addr.RemoteGroup(remoteIP(9))))
	// 10-14 proved lies and went; the rest it alone told us of, 0-9
	// (which failed once each) too, were purged; 49 was vouched for.
	require.Equal(t, []NodeID{nodeID(49), nodeID(900), nodeID(901)}, m.Known())
	_, err = m.AddFrom(peerAddr(100), nodeID(900))
	require.ErrorIs(t, err, errs.ErrDistrustedSource)
	checkInvariants(t, m)
}

// A node that proves its ID and then refuses the connection is live: its
// source is credited, and the address is kept for another try.
func TestDialRefusedIsLive(t *testing.T) {
	m := newPM(t, PeerManagerOptions{})
	require.NoError(t, m.AcceptedFrom(nodeID(2), remoteIP(9)))
	_, err := m.AddFrom(peerAddr(1), nodeID(2))
	require.NoError(t, err)
	a, ok := m.TryDialNext()
	for ok && a != peerAddr(1) {
		a, ok = m.TryDialNext()
	}
	require.True(t, ok)
	m.DialRefused(a)
	m.DialRefused(a)
	require.Equal(t, []NodeAddress{peerAddr(1)}, m.Addresses(nodeID(1)))
	require.Equal(t, 1, m.trust[addr.RemoteGroup(remoteIP(9))].lives)
	checkInvariants(t, m)
}

// A flood from 2, 4 and 32 source groups into a full book of honest
// entries leaves every one of them, verified or not: gossip displaces
// only entries that have failed. Room comes back as entries fail.
func TestFloodIntoAFullBookLeavesTheHonestEntries(t *testing.T) {
	for _, groups := range []int{2, 4, 32} {
		t.Run(fmt.Sprint(groups), func(t *testing.T) {
			const size = 200
			m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: size, MaxConnected: 100, MaxOutbound: 20}})
			// Four honest sources fill the book; the first 20 entries
			// are verified (we dialled them).
			for s := range 4 {
				require.NoError(t, m.AcceptedFrom(nodeID(10000+s), remoteIP(byte(s+1))))
			}
			for i := m.peers.len(); m.peers.len() < size; i++ {
				_, err := m.AddFrom(peerAddr(i), nodeID(10000+i%4))
				require.NoError(t, err)
			}
			for i := range 20 {
				require.NoError(t, m.Dialed(peerAddr(i)))
			}
			honest := m.Known()
			// The flood: attackers in groups /16s, 1,000 addresses each.
			for g := range groups {
				id := nodeID(20000 + g)
				remote := netip.AddrPortFrom(netip.AddrFrom4([4]byte{66, byte(g), 0, 1}), 40000)
				require.NoError(t, m.AcceptedFrom(id, remote))
				for k := range 1000 {
					junk := testkit.PeerAddr(30000+g*1000+k, 26656)
					_, _ = m.AddFrom(junk, id)
				}
			}
			checkInvariants(t, m)
			for _, id := range honest {
				require.True(t, m.Has(id), "honest %s displaced", id)
			}
			// The attackers' connections ran the book over capacity;
			// when they close, their entries (never reached) go.
			for g := range groups {
				m.Disconnected(nodeID(20000 + g))
			}
			require.LessOrEqual(t, m.Len(), size+4) // the honest sources stay connected
			// An honest entry that fails twice leaves, and its room
			// goes to whoever tells next.
			for i := 50; m.Len() >= size; i++ {
				m.DialFailed(peerAddr(i))
				m.DialFailed(peerAddr(i))
				require.False(t, m.Has(nodeID(i)))
			}
			added, err := m.AddFrom(testkit.PeerAddr(99999, 26656), nodeID(10000))
			require.NoError(t, err)
			require.True(t, added)
			checkInvariants(t, m)
		})
	}
}

// An inbound peer's announced public address is stored with the host its
// connection came from: a host cycling identities leaves addresses where
// the handshake shows its new ID, not junk in subnets it claimed.
func TestAnnouncedAddressTakesTheObservedHost(t *testing.T) {
	m := newPM(t, PeerManagerOptions{})
	id := nodeID(7)
	claim := testkit.PeerAddr(500, 26700)
	claim.NodeID = id
	seen := netip.AddrPortFrom(testkit.PublicIP(900), 40000)
	require.NoError(t, m.AcceptedFrom(id, seen, claim))
	got := m.Addresses(id)
	require.Len(t, got, 1)
	ip, ok := got[0].IP()
	require.True(t, ok)
	require.Equal(t, seen.Addr(), ip)
	require.Equal(t, uint16(26700), got[0].Port)

	// Unroutable hosts (one machine, several loopback IPs) stay as
	// announced.
	local := mustAddr(t, "mconn://"+string(nodeID(8))+"@127.0.0.2:26656")
	require.NoError(t, m.AcceptedFrom(nodeID(8), netip.MustParseAddrPort("127.0.0.1:50000"), local))
	require.Equal(t, []NodeAddress{local}, m.Addresses(nodeID(8)))
	checkInvariants(t, m)
}

// An ID whose address slots gossip filled with addresses in a crowded
// group (spoofs at an attacker's hosts) still takes its address in an
// uncrowded group, in place of one of them; more of the crowded group
// do not displace each other, and while the group is not crowded the
// slots are first come, first kept.
func TestSpoofsInACrowdedGroupMakeRoomForTheTruth(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: 1000, MaxAddressesPerPeer: 4}})
	for i := 10; i < 50; i++ { // lone honest groups: the typical load is 1
		_, err := m.Add(peerAddr(i))
		require.NoError(t, err)
	}
	require.NoError(t, m.AcceptedFrom(sybilAddr(0).NodeID, netip.AddrPortFrom(netip.AddrFrom4([4]byte{66, 66, 0, 0}), 40000)))
	victim := peerAddr(500)
	spoof := func(k int) NodeAddress {
		a := sybilAddr(100 + k)
		a.NodeID = victim.NodeID
		return a
	}
	for k := range 4 {
		ok, err := m.AddFrom(spoof(k), sybilAddr(0).NodeID)
		require.NoError(t, err)
		require.True(t, ok)
	}
	require.NoError(t, m.AcceptedFrom(nodeID(1), remoteIP(1)))
	ok, err := m.AddFrom(victim, nodeID(1))
	require.NoError(t, err)
	require.False(t, ok, "the spoofs' group is not crowded yet: first come, first kept")

	for i := 1; !m.crowded(addr.Group(sybilAddr(0))); i++ {
		_, _ = m.AddFrom(sybilAddr(i), sybilAddr(0).NodeID)
		require.Less(t, i, 100)
	}
	ok, err = m.AddFrom(spoof(4), sybilAddr(0).NodeID)
	require.NoError(t, err)
	require.False(t, ok, "a crowded group's address displaces no other")
	ok, err = m.AddFrom(victim, nodeID(1))
	require.NoError(t, err)
	require.True(t, ok)
	addrs := m.Addresses(victim.NodeID)
	require.Len(t, addrs, 4)
	require.Contains(t, addrs, victim)
	checkInvariants(t, m)
}

// TestGossipOfAnotherIDAtAConnectedPeersAddressIsRefused: while a peer
// that proved its ID at a host and port is connected, gossip naming
// another ID there is a spoof, refused without blame; once it is gone,
// the evidence is too.
func TestGossipOfAnotherIDAtAConnectedPeersAddressIsRefused(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: 1000}})
	peer, src := sybilAddr(0), nodeID(9)
	require.NoError(t, m.AcceptedFrom(src, remoteIP(9)))
	require.NoError(t, m.AcceptedFrom(peer.NodeID, netip.AddrPortFrom(netip.MustParseAddr(peer.Hostname), 40000), peer))
	spoof := peerAddr(3)
	spoof.Hostname, spoof.Port = peer.Hostname, peer.Port
	_, err := m.AddFrom(spoof, src)
	require.ErrorIs(t, err, ErrAnotherNodesAddress, "another ID where a connected peer proved its own")
	require.False(t, m.Has(spoof.NodeID))
	checkInvariants(t, m)

	// A peer we dialled proved its ID at the address we dialled.
	out := peerAddr(4)
	_, err = m.Add(out)
	require.NoError(t, err)
	a, ok := m.TryDialNext()
	require.True(t, ok)
	require.Equal(t, out, a)
	require.NoError(t, m.Dialed(a))
	spoof2 := peerAddr(5)
	spoof2.Hostname, spoof2.Port = out.Hostname, out.Port
	_, err = m.AddFrom(spoof2, src)
	require.ErrorIs(t, err, ErrAnotherNodesAddress)
	checkInvariants(t, m)

	m.Disconnected(peer.NodeID)
	ok, err = m.AddFrom(spoof, src)
	require.NoError(t, err, "no peer there now: no evidence")
	require.True(t, ok)
	checkInvariants(t, m)
}

// TestAnEntryGoesBackToItsSourceWithAnAddressOthersToldUs: an entry is not
// sent back to its first source while the address we would send is the
// one that source's group told us; once another group told us the node's
// own address, that address goes back to the source too (a spoof told
// first does not keep the truth from the node that passed the spoof on).
func TestAnEntryGoesBackToItsSourceWithAnAddressOthersToldUs(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: 1000}})
	first, other := nodeID(8), nodeID(9)
	require.NoError(t, m.AcceptedFrom(first, netip.MustParseAddrPort("20.1.0.1:40000")))
	require.NoError(t, m.AcceptedFrom(other, netip.MustParseAddrPort("20.2.0.1:40000")))
	truth := peerAddr(3)
	spoof := sybilAddr(0)
	spoof.NodeID = truth.NodeID
	ok, err := m.AddFrom(spoof, first)
	require.NoError(t, err)
	require.True(t, ok)
	require.NotContains(t, m.Advertise(first, 100), spoof, "its own word is not sent back")

	ok, err = m.AddFrom(truth, other)
	require.NoError(t, err)
	require.True(t, ok)
	for _, ai := range m.extra.all(m.peers.get(truth.NodeID)) {
		if ai.addr().is(spoof) {
			ai.failures = 1 // the spoof failed once: the node's own address is the one to pass on
		}
	}
	m.Disconnected(first) // a walk passes each entry once a connection
	require.NoError(t, m.AcceptedFrom(first, netip.MustParseAddrPort("20.1.0.1:40000")))
	require.Contains(t, m.Advertise(first, 100), truth, "what another group told goes back to the first source")
	checkInvariants(t, m)
}

// What a source told us that proved junk lowers the worth of its news
// (NewsLasts), not its room or its trust: junk leaves at its dials.
func TestNewsLastsReadsTheJunkASourceTold(t *testing.T) {
	m := twoSources(t, 4, 4)
	require.Equal(t, 1.0, m.NewsLasts(nodeID(900)), "nothing of it dialled yet")
	for i := range 3 {
		for range junkTries {
			m.DialFailed(peerAddr(i))
		}
		require.False(t, m.Has(nodeID(i)), "junk leaves at its junkTries-th failed dial")
	}
	m.DialRefused(peerAddr(3))   // live
	m.DialRefused(peerAddr(100)) // live
	require.Equal(t, 2.0/5, m.NewsLasts(nodeID(900)), "one of four lived")
	require.Equal(t, 1.0, m.NewsLasts(nodeID(901)))
	require.False(t, m.distrusted(addr.RemoteGroup(remoteIP(9))), "junk is not a lie")
	checkInvariants(t, m)
}

// twoSources returns a book of 1,000 with two connected sources in two
// groups: 900 (remote group 9), which told us of peers 0 to a-1, and 901
// (group 10), which told us of peers 100 to 100+b-1.
func twoSources(t *testing.T, a, b int) *PeerManager {
	t.Helper()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: 1000}})
	require.NoError(t, m.AcceptedFrom(nodeID(900), remoteIP(9)))
	require.NoError(t, m.AcceptedFrom(nodeID(901), remoteIP(10)))
	for k, n := range []int{a, b} {
		for i := range n {
			_, err := m.AddFrom(peerAddr(k*100+i), nodeID(900+k))
			require.NoError(t, err)
		}
	}
	return m
}
