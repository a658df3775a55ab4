package book

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/testkit"
)

// TestFeelersMarkAJunkGroup: with outbound slots full, the book tests an
// address we never reached in a group of several entries, never a lone
// node's. When nobody answers there, what gossip alone placed in the
// group leaves, and the group takes no more hearsay until MaxRetryTime
// has passed. A feeler that reaches its node proves it and is closed.
func TestFeelersMarkAJunkGroup(t *testing.T) {
	m, clk, src := outboundFull(t)
	for i := 10; i < 20; i++ { // lone nodes, each in its own /16
		_, err := m.AddFrom(peerAddr(i), src)
		require.NoError(t, err)
	}
	for k := range 3 { // one /16, nobody listening
		_, err := m.AddFrom(sybilAddr(k), src)
		require.NoError(t, err)
	}
	checkInvariants(t, m)

	a, ok := m.TryDialNext()
	require.True(t, ok, "outbound slots are full: a feeler")
	require.True(t, isSybil(a), "the group of several entries is tested, not a lone node")
	require.True(t, m.Feeler(a.NodeID))
	checkInvariants(t, m)
	m.DialFailed(a)
	checkInvariants(t, m)
	for k := range 3 {
		require.False(t, m.Has(sybilAddr(k).NodeID), "the junk group's hearsay leaves")
	}
	require.True(t, m.Has(peerAddr(10).NodeID))
	_, err := m.AddFrom(sybilAddr(5), src)
	require.ErrorIs(t, err, ErrNetworkGroupFull, "a junk group takes no hearsay")
	clk.Advance(feelEvery)
	_, ok = m.TryDialNext()
	require.False(t, ok, "lone nodes are not felt")

	clk.Advance(m.Options().MaxRetryTime)
	_, _ = m.TryDialNext()
	for k := 5; k < 8; k++ {
		ok, err := m.AddFrom(sybilAddr(k), src)
		require.NoError(t, err, "the mark is forgotten")
		require.True(t, ok)
	}
	a, ok = m.TryDialNext()
	require.True(t, ok)
	require.True(t, isSybil(a))
	require.NoError(t, m.Dialed(a))
	require.True(t, m.Feeler(a.NodeID))
	require.Equal(t, 2, m.slots.Outbound(), "a feeler takes no outbound slot")
	id, ok := m.EvictNext()
	require.True(t, ok, "a feeler that reached its node is closed")
	require.Equal(t, a.NodeID, id)
	checkInvariants(t, m)
	m.Disconnected(id)
	require.Zero(t, m.peers.get(id).hangUps)
	require.True(t, m.peers.get(id).is(proven), "what a feeler reached is proven")
	checkInvariants(t, m)
}

// TestFeelersWaitLongerWhileNothingIsLeftToTest: a book whose groups of
// several entries are all proven draws for a feeler after 1 s, then 2 s,
// 4 s ..., not every second for ever.
func TestFeelersWaitLongerWhileNothingIsLeftToTest(t *testing.T) {
	clk := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: 1000, MaxConnected: 10, MaxOutbound: 2, MaxOutboundPerGroup: 2}, Now: clk.Now})
	for k := range 2 {
		_, err := m.Add(sybilAddr(k))
		require.NoError(t, err)
	}
	for range 2 {
		a, ok := m.TryDialNext()
		require.True(t, ok)
		require.False(t, m.Feeler(a.NodeID))
		require.NoError(t, m.Dialed(a))
	}
	addPeers(t, m, 10, 20) // lone nodes: never felt
	wait := feelEvery
	for range 4 {
		_, ok := m.TryDialNext()
		require.False(t, ok, "nothing to test")
		require.Equal(t, clk.Now().Add(wait), m.NextDialTime())
		clk.Advance(wait)
		wait *= 2
	}
	checkInvariants(t, m)
}

// TestAJunkGroupKeepsAnIDsAddressElsewhere: marking a group junk takes
// the addresses gossip placed there, whichever entry holds them, not the
// other addresses of the same IDs (a spoof does not take the node's own
// address with it); the group takes no more of them; and an ID's address
// there that stays (the node told us its own) is not the one passed on.
func TestAJunkGroupKeepsAnIDsAddressElsewhere(t *testing.T) {
	clk := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: 1000}, Now: clk.Now})
	src := nodeID(9)
	require.NoError(t, m.AcceptedFrom(src, remoteIP(9)))
	spoofOf := func(a NodeAddress, k int) NodeAddress {
		s := sybilAddr(k)
		s.NodeID = a.NodeID
		return s
	}
	first, second, own := peerAddr(30), peerAddr(31), peerAddr(32)
	require.NoError(t, m.AcceptedFrom(own.NodeID, remoteIP(32)))
	ok, err := m.AddFrom(own, own.NodeID)
	require.NoError(t, err)
	require.True(t, ok)
	m.Disconnected(own.NodeID)
	for _, a := range []NodeAddress{sybilAddr(0), spoofOf(first, 10), first, second, spoofOf(second, 11), spoofOf(own, 12)} {
		ok, err := m.AddFrom(a, src)
		require.NoError(t, err)
		require.True(t, ok, a.String())
	}
	g := addr.Group(sybilAddr(0))
	m.feltNothing(m.stamp(clk.Now()), g)
	checkInvariants(t, m)
	require.False(t, m.Has(sybilAddr(0).NodeID), "hearsay of the junk group leaves")
	require.Equal(t, []NodeAddress{first}, m.Addresses(first.NodeID), "placed by its spoof, it keeps its own address")
	require.Equal(t, []NodeAddress{second}, m.Addresses(second.NodeID), "placed by its own address, it loses the spoof")
	_, err = m.AddFrom(spoofOf(second, 13), src)
	require.ErrorIs(t, err, ErrNetworkGroupFull, "a junk group takes no more addresses of IDs we hold")
	require.Len(t, m.Addresses(own.NodeID), 2, "the node's own word is not hearsay: its entry is not touched")

	// Its own address failed once, the spoof never: the spoof, in a
	// junk group, is still not what is passed on.
	for _, ai := range m.extra.all(m.peers.get(own.NodeID)) {
		if ai.addr().is(own) {
			ai.failures = 1
		}
	}
	require.True(t, m.bestAddress(m.peers.get(own.NodeID)).addr().is(own))
}

// TestFeelersKeepPaceWithTheGroupsToTest: with many groups of several
// entries, feelers go feelSpan over their number apart, several in
// flight, but never more than MaxOutbound at once.
func TestFeelersKeepPaceWithTheGroupsToTest(t *testing.T) {
	m, clk, src := outboundFull(t)
	const groups = 60
	for g := range groups {
		for k := range 2 {
			a, err := NodeAddressFromIP(nodeID(2_000_000+2*g+k), netip.AddrFrom4([4]byte{67, byte(g), 0, byte(k + 1)}), 26656)
			require.NoError(t, err)
			ok, err := m.AddFrom(a, src)
			require.NoError(t, err)
			require.True(t, ok)
		}
	}
	gap := feelSpan / groups
	require.Less(t, gap, feelEvery)

	first, ok := m.TryDialNext()
	require.True(t, ok)
	require.True(t, m.Feeler(first.NodeID))
	_, ok = m.TryDialNext()
	require.False(t, ok, "the next feeler waits its gap")
	require.Equal(t, clk.Now().Add(gap), m.NextDialTime())
	clk.Advance(gap)
	second, ok := m.TryDialNext()
	require.True(t, ok, "a second feeler beside the first")
	require.True(t, m.Feeler(second.NodeID))
	clk.Advance(gap)
	checkInvariants(t, m)
	_, ok = m.TryDialNext()
	require.False(t, ok, "MaxOutbound feelers in flight")
	require.True(t, m.NextDialTime().IsZero(), "nothing to wait for while they are")
	m.DialFailed(first)
	a, ok := m.TryDialNext()
	require.True(t, ok, "one came back: the next goes")
	require.True(t, m.Feeler(a.NodeID))
	checkInvariants(t, m)
}

// TestFeelersGoWhilePeersThatDialledUsHoldEverySlot: with every slot
// taken by inbound peers, no ordinary dial goes, and feelers still test
// the groups of several entries: they go beside the slots.
func TestFeelersGoWhilePeersThatDialledUsHoldEverySlot(t *testing.T) {
	clk := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: 1000, MaxConnected: 3, MaxOutbound: 1}, Now: clk.Now})
	for i := range 3 {
		require.NoError(t, m.AcceptedFrom(nodeID(i), remoteIP(byte(i+1))))
	}
	for k := range 3 {
		_, err := m.AddFrom(sybilAddr(k), nodeID(0))
		require.NoError(t, err)
	}
	a, ok := m.TryDialNext()
	require.True(t, ok, "a feeler, though every slot is taken")
	require.True(t, m.Feeler(a.NodeID))
	require.Equal(t, 3, m.slots.Active(), "it takes no slot while it dials")
	checkInvariants(t, m)
	require.NoError(t, m.Dialed(a))
	id, ok := m.EvictNext()
	require.True(t, ok)
	require.Equal(t, a.NodeID, id, "once made, it goes; nobody else does")
	m.Disconnected(id)
	require.Equal(t, 3, m.slots.Active())
	checkInvariants(t, m)
}

// outboundFull returns a book of 1,000 whose two outbound slots (of ten
// connections) are taken, its clock, and a connected inbound source.
func outboundFull(t *testing.T) (*PeerManager, *testkit.Clock, NodeID) {
	t.Helper()
	return outboundFullOf(t, 1000)
}

// outboundFullOf is outboundFull for a book of maxPeers.
func outboundFullOf(t *testing.T, maxPeers int) (*PeerManager, *testkit.Clock, NodeID) {
	t.Helper()
	clk := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: maxPeers, MaxConnected: 10, MaxOutbound: 2}, Now: clk.Now})
	addPeers(t, m, 0, 2)
	for range 2 {
		a, ok := m.TryDialNext()
		require.True(t, ok)
		require.NoError(t, m.Dialed(a))
	}
	src := nodeID(9)
	require.NoError(t, m.AcceptedFrom(src, remoteIP(9)))
	return m, clk, src
}

// TestFeelersFindTheLastUntestedEntryOfALargeBook: in a book of
// thousands of lone nodes, the two entries of a group of several that we
// never reached are felt within a lap of the log, feelLook entries a
// draw at feelEvery apart, not left to chance draws that wait ever longer
// after each miss.
func TestFeelersFindTheLastUntestedEntryOfALargeBook(t *testing.T) {
	m, clk, src := outboundFullOf(t, 5000)
	addPeers(t, m, 10, 4000) // the operator's lone nodes: never felt
	for k := range 2 {
		_, err := m.AddFrom(sybilAddr(k), src)
		require.NoError(t, err)
	}
	checkInvariants(t, m)
	start, draws := clk.Now(), 4000/feelLook+1 // a lap of the log
	for range draws {
		if a, ok := m.TryDialNext(); ok {
			require.True(t, isSybil(a), "only the group of several is felt")
			require.True(t, m.Feeler(a.NodeID))
			require.LessOrEqual(t, clk.Now().Sub(start), time.Duration(draws)*feelEvery)
			return
		}
		clk.Advance(m.NextDialTime().Sub(clk.Now()))
	}
	t.Fatal("no feeler within a lap of the log")
}

// TestFeelersTestAnEntryLeftAloneInAJunkGroup: an entry placed by a
// spoof in a group feelers then mark junk keeps its other address (a
// spoof too, in a group of several) and stays counted where it was
// placed, alone there now: it is felt at the address it holds.
func TestFeelersTestAnEntryLeftAloneInAJunkGroup(t *testing.T) {
	m, clk, src := outboundFull(t)
	at := func(id NodeID, b, d byte) NodeAddress {
		a, err := NodeAddressFromIP(id, netip.AddrFrom4([4]byte{67, b, 0, d}), 26656)
		require.NoError(t, err)
		return a
	}
	x := nodeID(500)
	spoof := sybilAddr(10)
	spoof.NodeID = x
	for _, a := range []NodeAddress{sybilAddr(0), spoof, at(x, 1, 9)} {
		ok, err := m.AddFrom(a, src)
		require.NoError(t, err)
		require.True(t, ok, a.String())
	}
	for k := range 2 { // the operator's: counted in 67.1, never felt
		_, err := m.Add(at(nodeID(600+k), 1, byte(k+1)))
		require.NoError(t, err)
	}
	m.feltNothing(m.stamp(clk.Now()), addr.Group(sybilAddr(0)))
	checkInvariants(t, m)
	require.Equal(t, []NodeAddress{at(x, 1, 9)}, m.Addresses(x))
	require.Equal(t, 1, m.groupLoad(m.peers.get(x).slotGroup), "alone where it was placed")
	a, ok := m.TryDialNext()
	require.True(t, ok)
	require.Equal(t, at(x, 1, 9), a)
	require.True(t, m.Feeler(x))
}

// TestAnOutboundPeerInAJunkGroupGivesWay: a connection we dialled into a
// network group where feelers then found nobody (an attacker's /16, whose
// junk came with it) gives way to a dial of an entry elsewhere, also
// while peers that dialled us hold every other slot; the dial takes the
// slot it frees. A connection into a group where nothing failed stays.
func TestAnOutboundPeerInAJunkGroupGivesWay(t *testing.T) {
	clk := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: 1000, MaxConnected: 4, MaxOutbound: 3}, Now: clk.Now})
	for _, a := range []NodeAddress{sybilAddr(0), peerAddr(0)} {
		ok, err := m.Add(a)
		require.NoError(t, err)
		require.True(t, ok)
	}
	for range 2 {
		a, ok := m.TryDialNext()
		require.True(t, ok)
		require.NoError(t, m.Dialed(a))
	}
	src := nodeID(20)
	require.NoError(t, m.AcceptedFrom(src, remoteIP(1)))
	require.NoError(t, m.AcceptedFrom(nodeID(21), remoteIP(2)))
	require.True(t, m.slots.Full(), "one outbound slot short, every slot taken")
	for _, a := range []NodeAddress{sybilAddr(1), peerAddr(10)} {
		_, err := m.AddFrom(a, src)
		require.NoError(t, err)
	}
	require.False(t, m.crowded(addr.Group(sybilAddr(0))), "two entries crowd no group")
	checkInvariants(t, m)

	// Twice a feeler finds nobody in the sybil /16: more failures than
	// the one entry we reached there make it junk.
	for range 2 {
		a, ok := m.TryDialNext()
		require.True(t, ok)
		require.True(t, m.Feeler(a.NodeID))
		require.Equal(t, sybilAddr(1), a)
		m.DialFailed(a)
		clk.Advance(time.Minute)
	}
	require.True(t, m.junkGroup(addr.Group(sybilAddr(0))))
	checkInvariants(t, m)

	a, ok := m.TryDialNext()
	require.False(t, ok, "the junk group's connection is queued to go first")
	a, ok = m.TryDialNext()
	require.True(t, ok, "the slot it frees is ours to dial")
	require.Equal(t, peerAddr(10), a)
	require.False(t, m.Feeler(a.NodeID))
	require.NoError(t, m.Dialed(a))
	id, ok := m.EvictNext()
	require.True(t, ok)
	require.Equal(t, sybilAddr(0).NodeID, id)
	m.Disconnected(id)
	_, ok = m.EvictNext()
	require.False(t, ok, "the lone node's connection stays")
	require.Equal(t, 2, m.slots.Outbound())
	checkInvariants(t, m)
}
