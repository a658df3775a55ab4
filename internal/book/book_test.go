package book

import (
	"bytes"
	"cmp"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pexnet/pex/internal/lifecycle"
	"github.com/pexnet/pex/internal/testkit"
	"github.com/pexnet/pex/internal/walk"

	"github.com/stretchr/testify/require"
)

var (
	selfID   = testkit.SelfID
	selfAddr = testkit.SelfAddr
)

// peerAddr returns a routable mconn address for nodeID(i), with an IP
// unique to i.
func peerAddr(i int) NodeAddress { return testkit.PeerAddr(i, 26656) }

func peerAddrPort(i int, port uint16) NodeAddress { return testkit.PeerAddr(i, port) }

func newFakeClock() *testkit.Clock { return testkit.NewClock() }

func newPM(t testing.TB, opts PeerManagerOptions) *PeerManager {
	t.Helper()
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewPCG(1, 2))
	}
	m, err := NewPeerManager(selfID, opts)
	require.NoError(t, err)
	return m
}

func addPeers(t testing.TB, m *PeerManager, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		ok, err := m.Add(peerAddr(i))
		require.NoError(t, err)
		require.True(t, ok)
	}
}

// checkInvariants verifies the book's invariants (Book.Check).
func checkInvariants(t testing.TB, m *PeerManager) {
	t.Helper()
	require.NoError(t, m.Check())
}

func TestNewPeerManagerValidation(t *testing.T) {
	for _, self := range []NodeID{"abc", testIDUpper, ""} {
		m, err := NewPeerManager(self, PeerManagerOptions{})
		require.ErrorIs(t, err, ErrInvalidNodeID)
		require.ErrorIs(t, err, ErrInvalidConfig)
		require.Nil(t, m)
	}

	bad := map[string]Options{
		"self address with another id":  {SelfAddresses: []NodeAddress{peerAddr(1)}},
		"self address not canonical":    {SelfAddresses: []NodeAddress{selfAddr("Example.com", 1)}},
		"self address without port":     {SelfAddresses: []NodeAddress{selfAddr("1.2.3.4", 0)}},
		"negative MaxPeers":             {MaxPeers: -1},
		"negative MaxConnected":         {MaxConnected: -1},
		"negative MaxOutbound":          {MaxOutbound: -1},
		"MaxOutbound over MaxConnected": {MaxConnected: 2, MaxOutbound: 3},
		"negative MaxAddressesPerPeer":  {MaxAddressesPerPeer: -1},
		"negative MaxDialFailures":      {MaxDialFailures: -1},
		"negative MinRetryTime":         {MinRetryTime: -time.Second},
		"MaxRetryTime below Min":        {MinRetryTime: time.Minute, MaxRetryTime: time.Second},
		"MaxRetryTime below default":    {MaxRetryTime: time.Millisecond},
		"positive EvictScore":           {EvictScore: 1},
		"EvictScore at MinScore":        {EvictScore: MinScore},
		"EvictScore below MinScore":     {EvictScore: MinScore - 1},
		"more persistent than MaxPeers": {MaxPeers: 1,
			PersistentPeers: []NodeAddress{peerAddr(1), peerAddr(2)}},
		"persistent peer is self":    {PersistentPeers: []NodeAddress{selfAddr("1.2.3.4", 1)}},
		"persistent peer is invalid": {PersistentPeers: []NodeAddress{{Protocol: ProtocolMConn, NodeID: nodeID(1)}}},
		"persistent peer at self endpoint": {
			SelfAddresses:   []NodeAddress{selfAddr("1.2.3.4", 1)},
			PersistentPeers: []NodeAddress{{Protocol: ProtocolTCP, NodeID: nodeID(1), Hostname: "1.2.3.4", Port: 1}}},
		"strict refuses private persistent": {Strict: true,
			PersistentPeers: []NodeAddress{{Protocol: ProtocolMConn, NodeID: nodeID(1), Hostname: "10.0.0.1", Port: 1}}},
		"private peer invalid":   {PrivatePeers: []NodeID{"xyz"}},
		"private peer uppercase": {PrivatePeers: []NodeID{NodeID(strings.ToUpper(string(nodeID(10))))}},
	}
	for name, opts := range bad {
		t.Run(name, func(t *testing.T) {
			m, err := NewPeerManager(selfID, PeerManagerOptions{Options: opts})
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.Nil(t, m)
			require.True(t, strings.HasPrefix(err.Error(), "pex: "), err.Error())
		})
	}

	m, err := NewPeerManager(selfID, PeerManagerOptions{Options: Options{
		SelfAddresses:   []NodeAddress{selfAddr("1.2.3.4", 26656), {Protocol: ProtocolMemory, NodeID: selfID}},
		PersistentPeers: []NodeAddress{peerAddr(1), peerAddrPort(1, 2), peerAddr(2)},
		PrivatePeers:    []NodeID{nodeID(3)},
	}})
	require.NoError(t, err)
	require.Equal(t, selfID, m.SelfID())
	require.Equal(t, 1000, m.MaxPeers())
	require.Equal(t, []NodeID{nodeID(1), nodeID(2)}, m.Known())
	require.Len(t, m.Addresses(nodeID(1)), 2)
	s, ok := m.Score(nodeID(1))
	require.True(t, ok)
	require.Equal(t, MaxScore, s)
	checkInvariants(t, m)
}

func TestPeerManagerAdd(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxAddressesPerPeer: 2}})

	_, err := m.Add(NodeAddress{Protocol: ProtocolMConn, NodeID: nodeID(1), Hostname: "Example.com", Port: 1})
	require.ErrorIs(t, err, ErrInvalidAddress)
	_, err = m.Add(NodeAddress{})
	require.ErrorIs(t, err, ErrInvalidAddress)
	require.Zero(t, m.Len())

	ok, err := m.Add(peerAddr(1))
	require.NoError(t, err)
	require.True(t, ok, "new")
	ok, err = m.Add(peerAddr(1))
	require.NoError(t, err)
	require.False(t, ok, "duplicate")
	require.Equal(t, 1, m.Len())
	require.True(t, m.Has(nodeID(1)))
	require.False(t, m.Has(nodeID(2)))
	require.Nil(t, m.Addresses(nodeID(2)))

	// A second address for the same ID is stored, up to the per-peer cap.
	ok, err = m.Add(peerAddrPort(1, 2))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []NodeAddress{peerAddr(1), peerAddrPort(1, 2)}, m.Addresses(nodeID(1)))
	ok, err = m.Add(peerAddrPort(1, 3))
	require.NoError(t, err)
	require.False(t, ok, "over MaxAddressesPerPeer while none fails")
	require.Len(t, m.Addresses(nodeID(1)), 2)
	require.Equal(t, 1, m.Len(), "one peer, however many addresses")

	// Once an address fails, a new one replaces it.
	m.DialFailed(peerAddrPort(1, 2))
	ok, err = m.Add(peerAddrPort(1, 3))
	require.NoError(t, err)
	require.True(t, ok)
	require.ElementsMatch(t, []NodeAddress{peerAddr(1), peerAddrPort(1, 3)}, m.Addresses(nodeID(1)))

	// Other schemes of the same endpoint are other addresses.
	tcp := peerAddr(2)
	tcp.Protocol = ProtocolTCP
	addPeers(t, m, 2, 3)
	ok, err = m.Add(tcp)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = m.Add(NodeAddress{Protocol: ProtocolMemory, NodeID: nodeID(4)})
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []NodeID{nodeID(1), nodeID(2), nodeID(4)}, m.Known())
	checkInvariants(t, m)
}

func TestPeerManagerAddRefusesSelf(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{SelfAddresses: []NodeAddress{
		selfAddr("1.2.3.4", 26656),
		selfAddr("2001:db8::1", 26656),
		selfAddr("node.example.com", 26656),
	}}})
	self := []NodeAddress{
		selfAddr("1.2.3.4", 26656),
		{Protocol: ProtocolTCP, NodeID: selfID, Hostname: "1.2.3.4", Port: 26656},
		selfAddr("5.6.7.8", 1), // our ID anywhere
		selfAddr("other.example.com", 80),
		{Protocol: ProtocolMemory, NodeID: selfID},
		// Our endpoints with another ID.
		{Protocol: ProtocolMConn, NodeID: nodeID(1), Hostname: "1.2.3.4", Port: 26656},
		{Protocol: ProtocolTCP, NodeID: nodeID(2), Hostname: "1.2.3.4", Port: 26656},
		{Protocol: ProtocolMConn, NodeID: nodeID(3), Hostname: "2001:db8::1", Port: 26656},
		{Protocol: ProtocolMConn, NodeID: nodeID(4), Hostname: "node.example.com", Port: 26656},
	}
	for _, a := range self {
		ok, err := m.Add(a)
		require.ErrorIs(t, err, ErrSelfAddress, a.String())
		require.False(t, ok)
		require.True(t, strings.HasPrefix(err.Error(), "pex: "))
		require.ErrorIs(t, m.CheckAddress(a), ErrSelfAddress)
	}
	// Parsed forms of our address in any spelling are ours too.
	for _, s := range []string{
		"MCONN://" + strings.ToUpper(string(selfID)) + "@1.2.3.4:26656",
		string(selfID) + "@[::ffff:1.2.3.4]:26656",
		"mconn://" + string(nodeID(5)) + "@[::ffff:1.2.3.4]:26656",
		"mconn://" + string(nodeID(6)) + "@[2001:DB8:0::1]:26656",
		"tcp://" + string(nodeID(7)) + "@NODE.example.com:26656",
	} {
		_, err := m.Add(mustAddr(t, s))
		require.ErrorIs(t, err, ErrSelfAddress, s)
	}
	require.Zero(t, m.Len())

	// Same host, another port, another ID: not us.
	ok, err := m.Add(NodeAddress{Protocol: ProtocolMConn, NodeID: nodeID(1), Hostname: "1.2.3.4", Port: 26657})
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 1, m.Len())
}

func TestPeerManagerStrict(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	m := newPM(t, PeerManagerOptions{Options: Options{Strict: true, Logger: logger}})

	unroutable := []NodeAddress{
		{Protocol: ProtocolMConn, NodeID: nodeID(1), Hostname: "10.0.0.1", Port: 1},
		{Protocol: ProtocolMConn, NodeID: nodeID(2), Hostname: "127.0.0.1", Port: 1},
		{Protocol: ProtocolMConn, NodeID: nodeID(3), Hostname: "fe80::1", Port: 1},
		{Protocol: ProtocolMConn, NodeID: nodeID(4), Hostname: "localhost", Port: 1},
		{Protocol: ProtocolMemory, NodeID: nodeID(5)},
	}
	for i, a := range unroutable {
		ok, err := m.Add(a)
		require.ErrorIs(t, err, ErrUnroutableAddress, a.String())
		require.False(t, ok)
		require.True(t, strings.HasPrefix(err.Error(), "pex: "))
		lines := strings.Count(buf.String(), "\n")
		require.Equal(t, 1, lines, "after %d refusals the log is %q", i+1, buf.String())
	}
	require.Contains(t, buf.String(), "level=WARN")
	require.Contains(t, buf.String(), "10.0.0.1", "the first refusal names its address")
	require.Zero(t, m.Len())

	ok, err := m.Add(peerAddr(1))
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = m.Add(mustAddr(t, "mconn://"+string(nodeID(9))+"@seed.example.com:26656"))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 1, strings.Count(buf.String(), "\n"))

	// Non-strict accepts them all, silently.
	buf.Reset()
	m = newPM(t, PeerManagerOptions{Options: Options{Logger: logger}})
	for _, a := range unroutable {
		ok, err := m.Add(a)
		require.NoError(t, err)
		require.True(t, ok)
	}
	require.Equal(t, len(unroutable), m.Len())
	require.Empty(t, buf.String())
}

func TestPeerManagerCapacityDropsLowestRanked(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: 4}})
	require.Zero(t, m.PeerRatio())
	addPeers(t, m, 0, 1)
	require.InDelta(t, 0.25, m.PeerRatio(), 1e-9)
	addPeers(t, m, 1, 4)
	require.InDelta(t, 1.0, m.PeerRatio(), 1e-9)

	// All equal: the oldest goes first.
	addPeers(t, m, 4, 5)
	require.Equal(t, []NodeID{nodeID(1), nodeID(2), nodeID(3), nodeID(4)}, m.Known())

	// A failing peer ranks lowest, whatever its age.
	m.DialFailed(peerAddr(3))
	addPeers(t, m, 5, 6)
	require.Equal(t, []NodeID{nodeID(1), nodeID(2), nodeID(4), nodeID(5)}, m.Known())
	require.InDelta(t, 1.0, m.PeerRatio(), 1e-9)
	checkInvariants(t, m)
}

func TestPeerManagerCapacityKeepsConnectedAndPersistent(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: 4, PersistentPeers: []NodeAddress{peerAddr(0)}}})
	addPeers(t, m, 1, 4)
	require.NoError(t, m.Dialed(peerAddr(1)))
	require.NoError(t, m.Accepted(nodeID(2)))
	// Make the connected ones rank as low as possible.
	for range 20 {
		m.Errored(PeerError{NodeID: nodeID(1), Fatal: true})
		m.Errored(PeerError{NodeID: nodeID(2), Fatal: true})
		m.Errored(PeerError{NodeID: nodeID(0), Fatal: true})
	}
	// Only peer 3 is idle and not persistent: it makes room, then its
	// replacement does, and so on.
	for i := 10; i < 20; i++ {
		addPeers(t, m, i, i+1)
		require.Equal(t, []NodeID{nodeID(0), nodeID(1), nodeID(2), nodeID(i)}, m.Known())
	}
	require.NoError(t, m.Dialed(peerAddr(19)))
	_, err := m.Add(peerAddr(30))
	require.ErrorIs(t, err, ErrAddressBookFull, "everything left is connected or persistent")
	require.True(t, strings.HasPrefix(err.Error(), "pex: "))
	require.Equal(t, 4, m.Len())
	s, _ := m.Score(nodeID(0))
	require.Equal(t, MaxScore, s)
	checkInvariants(t, m)

	// Once the inbound peer without an address disconnects, it is
	// forgotten and there is room again.
	m.Disconnected(nodeID(2))
	ok, err := m.Add(peerAddr(30))
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, m.Has(nodeID(2)))
	checkInvariants(t, m)
}

func TestPeerManagerCapacityKeepsProvenPeers(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: 3, MaxDialFailures: 5}})
	addPeers(t, m, 0, 3)
	for i := range 3 {
		require.NoError(t, m.Dialed(peerAddr(i)))
		m.Disconnected(nodeID(i))
		s, _ := m.Score(nodeID(i))
		require.Positive(t, s)
	}
	_, err := m.Add(peerAddr(10))
	require.ErrorIs(t, err, ErrAddressBookFull, "a peer that connected outranks an unknown one")
	require.Equal(t, []NodeID{nodeID(0), nodeID(1), nodeID(2)}, m.Known())

	// A failed dial does not make it give way to an unknown address...
	m.DialFailed(peerAddr(1))
	_, err = m.Add(peerAddr(10))
	require.ErrorIs(t, err, ErrAddressBookFull)
	// ...but an address that keeps failing is dropped, and frees the slot.
	for range 5 - 1 {
		m.DialFailed(peerAddr(1))
	}
	require.False(t, m.Has(nodeID(1)))
	ok, err := m.Add(peerAddr(10))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []NodeID{nodeID(0), nodeID(2), nodeID(10)}, m.Known())
	checkInvariants(t, m)
}

// peersOf strips our own addresses from an Advertise result and returns the
// peer IDs, checking that each appears at most once.
func peersOf(t *testing.T, out []NodeAddress, self int) []NodeID {
	t.Helper()
	ids := make([]NodeID, 0, len(out))
	for _, a := range out[self:] {
		require.NotEqual(t, selfID, a.NodeID)
		ids = append(ids, a.NodeID)
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	require.Len(t, slices.Compact(sorted), len(ids), "one address per peer")
	return ids
}

func TestAdvertiseBasics(t *testing.T) {
	selfAddrs := []NodeAddress{selfAddr("1.2.3.4", 26656), selfAddr("node.example.com", 26656)}
	m := newPM(t, PeerManagerOptions{Options: Options{SelfAddresses: selfAddrs, PrivatePeers: []NodeID{nodeID(3), nodeID(4)}, MaxAddressesPerPeer: 3}})
	require.Nil(t, m.Advertise(nodeID(1), 0))
	require.Nil(t, m.Advertise(nodeID(1), -1))
	require.Equal(t, selfAddrs, m.Advertise(nodeID(1), 10), "an empty book still advertises us")
	require.Equal(t, selfAddrs[:1], m.Advertise(nodeID(1), 1))

	addPeers(t, m, 0, 10)
	for i := range 10 {
		_, err := m.Add(peerAddrPort(i, 2))
		require.NoError(t, err)
		_, err = m.Add(peerAddrPort(i, 3))
		require.NoError(t, err)
	}
	for _, to := range []NodeID{nodeID(5), nodeID(100)} {
		for range 5 {
			out := m.Advertise(to, 100)
			require.Equal(t, selfAddrs, out[:2], "our addresses come first")
			ids := peersOf(t, out, 2)
			require.NotContains(t, ids, to)
			require.NotContains(t, ids, nodeID(3), "private")
			require.NotContains(t, ids, nodeID(4), "private")
			wantLen := 8
			if to == nodeID(5) {
				wantLen = 7
			}
			require.Len(t, ids, wantLen)
		}
	}
	for limit := 1; limit <= 12; limit++ {
		out := m.Advertise(nodeID(5), limit)
		require.Len(t, out, min(limit, 9))
		require.Equal(t, selfAddrs[:min(limit, 2)], out[:min(limit, 2)])
	}
}

func TestAdvertiseSuccessiveCallsCoverTheBook(t *testing.T) {
	const n, limit = 250, 100
	self := selfAddr("1.2.3.4", 26656)
	m := newPM(t, PeerManagerOptions{Options: Options{SelfAddresses: []NodeAddress{self}}})
	addPeers(t, m, 0, n)
	to := nodeID(0)
	require.NoError(t, m.Dialed(peerAddr(0)))

	// The first lap: 249 others in runs of 99 (plus our own address), the
	// last run short.
	var seen []NodeID
	for _, want := range []int{limit, limit, 1 + (n - 1 - 2*(limit-1))} {
		out := m.Advertise(to, limit)
		require.Len(t, out, want)
		require.Equal(t, self, out[0])
		ids := peersOf(t, out, 1)
		require.NotContains(t, ids, to)
		seen = append(seen, ids...)
	}
	slices.Sort(seen)
	require.Len(t, slices.Compact(seen), n-1, "no repeats within a lap")
	require.Equal(t, m.Known()[1:], seen, "the lap covers the book")

	// Later laps send only what is new since the previous lap began.
	require.Equal(t, []NodeAddress{self}, m.Advertise(to, limit))
	addPeers(t, m, n, n+3)
	out := m.Advertise(to, limit)
	require.ElementsMatch(t, []NodeID{nodeID(n), nodeID(n + 1), nodeID(n + 2)}, peersOf(t, out, 1))
	require.Equal(t, []NodeAddress{self}, m.Advertise(to, limit))

	// Another peer is still sent everything.
	require.NoError(t, m.Dialed(peerAddr(1)))
	require.Len(t, m.Advertise(nodeID(1), 1000), n+3-1+1)
}

// TestAnEntryIsNewsAgainWhenWhatWePassOnChanges: a requester whose walk
// passed an entry was sent the address we passed on then (a spoof, say);
// once that address fails and the entry's other address is the one we
// would pass on, the entry is news again, sent once more with it, and
// once only.
func TestAnEntryIsNewsAgainWhenWhatWePassOnChanges(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: 1000}})
	addPeers(t, m, 0, 30)
	src, other := nodeID(90), nodeID(91)
	require.NoError(t, m.AcceptedFrom(src, remoteIP(90)))
	require.NoError(t, m.AcceptedFrom(other, remoteIP(91)))
	x := peerAddr(50)
	spoof := sybilAddr(0)
	spoof.NodeID = x.NodeID
	for _, told := range []struct {
		a   NodeAddress
		src NodeID
	}{{spoof, src}, {x, other}} {
		ok, err := m.AddFrom(told.a, told.src)
		require.NoError(t, err)
		require.True(t, ok)
	}
	to := nodeID(0)
	require.NoError(t, m.Dialed(peerAddr(0)))
	out := m.Advertise(to, 1000)
	require.Contains(t, out, spoof, "the first address is passed on while neither failed")
	require.Empty(t, m.Advertise(to, 1000), "the lap is done")

	m.DialFailed(spoof)
	require.Equal(t, []NodeAddress{x}, m.Advertise(to, 1000), "news again, with the address we pass on now")
	require.Empty(t, m.Advertise(to, 1000))
	checkInvariants(t, m)
}

func TestAdvertiseForgetsCursorOnDisconnect(t *testing.T) {
	const n = 250
	m := newPM(t, PeerManagerOptions{})
	addPeers(t, m, 0, n)
	to := nodeID(0)
	// The fixed walk for this requester: the book without it, in its order.
	order := m.Known()[1:]
	slices.SortFunc(order, func(x, y NodeID) int {
		return cmp.Compare(walk.Rank(walk.Key(x), walk.Key(to)), walk.Rank(walk.Key(y), walk.Key(to)))
	})
	pos := func(id NodeID) int { return slices.Index(order, id) }

	// The walk begins just after walkStart, where the requester knows it
	// begins (WalkStartOf, on its side).
	start := walk.Start(walk.Key(m.self), walk.Key(to))
	first, _ := slices.BinarySearchFunc(order, start, func(id NodeID, r uint64) int {
		return cmp.Compare(walk.Rank(walk.Key(id), walk.Key(to)), r+1)
	})
	first %= len(order)
	for range 3 {
		require.NoError(t, m.Dialed(peerAddr(0)))
		a := m.Advertise(to, 10)
		require.Equal(t, first, pos(a[0].NodeID), "the walk begins after its start")
		b := m.Advertise(to, 10)
		require.Equal(t, (pos(a[len(a)-1].NodeID)+1)%len(order), pos(b[0].NodeID), "connected: b continues a")
		m.Disconnected(to)
		require.NoError(t, m.Dialed(peerAddr(0)))
		require.Equal(t, a, m.Advertise(to, 10), "after a disconnect the walk begins again at its start")
		m.Disconnected(to)
	}
}

func TestToldShareFollowsTheWalk(t *testing.T) {
	// toldShare is how much of our order a connected requester's walk has
	// covered: nothing before it asks, about the share of the book each run
	// sent, 1 once the lap is done, and nothing again after a disconnect;
	// nothing at all when we sample (RandomAdvertise).
	const n = 1000
	m := newPM(t, PeerManagerOptions{})
	addPeers(t, m, 0, n)
	to := nodeID(0)
	require.NoError(t, m.Dialed(peerAddr(0)))
	require.Zero(t, m.ToldShare(to))
	var sent int
	for range 9 {
		sent += len(m.Advertise(to, 100))
		require.InDelta(t, float64(sent)/(n-1), m.ToldShare(to), 0.05, "after %d sent", sent)
	}
	for i := 0; len(m.Advertise(to, 100)) == 100; i++ {
		require.Less(t, i, 3, "a lap of 999")
	}
	require.Equal(t, 1.0, m.ToldShare(to), "the lap is done")
	m.Disconnected(to)
	require.Zero(t, m.ToldShare(to), "a new connection begins a new walk")

	r := newPM(t, PeerManagerOptions{Options: Options{RandomAdvertise: true}})
	addPeers(t, r, 0, n)
	require.NoError(t, r.Dialed(peerAddr(0)))
	require.Len(t, r.Advertise(to, 100), 100)
	require.Zero(t, r.ToldShare(to), "a sample keeps no walk")
}

func TestAdvertiseSkipsBadPeers(t *testing.T) {
	clock := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{EvictScore: -3, MaxAddressesPerPeer: 2}, Now: clock.Now})
	addPeers(t, m, 0, 6)

	// 1: at EvictScore.
	m.Errored(PeerError{NodeID: nodeID(1)})
	m.Errored(PeerError{NodeID: nodeID(1)})
	m.Errored(PeerError{NodeID: nodeID(1)})
	// 2: two failures, never worked.
	m.DialFailed(peerAddr(2))
	m.DialFailed(peerAddr(2))
	// 3: one failure only: still shared.
	m.DialFailed(peerAddr(3))
	// 4: worked once, then failed twice: still shared.
	require.NoError(t, m.Dialed(peerAddr(4)))
	m.Disconnected(nodeID(4))
	m.DialFailed(peerAddr(4))
	m.DialFailed(peerAddr(4))
	// 5: its first address failed twice, a second is fresh: share the fresh.
	m.DialFailed(peerAddr(5))
	m.DialFailed(peerAddr(5))
	_, err := m.Add(peerAddrPort(5, 2))
	require.NoError(t, err)

	out := m.Advertise(nodeID(100), 100)
	require.ElementsMatch(t, []NodeAddress{peerAddr(0), peerAddr(3), peerAddr(4), peerAddrPort(5, 2)}, out)

	// A score above EvictScore is advertised again.
	m.Good(nodeID(1))
	require.Contains(t, m.Advertise(nodeID(100), 100), peerAddr(1))
}

func TestDialRespectsMaxConnected(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 3, MaxOutbound: 3}})
	_, ok := m.TryDialNext()
	require.False(t, ok, "empty book")
	addPeers(t, m, 0, 10)

	a1, ok := m.TryDialNext()
	require.True(t, ok)
	a2, ok := m.TryDialNext()
	require.True(t, ok)
	require.NotEqual(t, a1, a2)
	require.True(t, m.IsConnected(a1.NodeID), "dialing counts as connected")
	require.NoError(t, m.Accepted(nodeID(20)))
	_, ok = m.TryDialNext()
	require.False(t, ok, "2 dialing + 1 inbound = MaxConnected")
	require.True(t, m.NextDialTime().IsZero())

	require.NoError(t, m.Dialed(a1))
	_, ok = m.TryDialNext()
	require.False(t, ok, "connected still counts")
	require.ErrorIs(t, m.Dialed(peerAddr(9)), ErrTooManyPeers)

	m.DialFailed(a2)
	a3, ok := m.TryDialNext()
	require.True(t, ok)
	require.NotEqual(t, a2, a3, "the failed one waits out its back-off")
	_, ok = m.TryDialNext()
	require.False(t, ok)

	m.Disconnected(nodeID(20))
	_, ok = m.TryDialNext()
	require.True(t, ok)
	checkInvariants(t, m)
}

func TestDialNeverPicksConnectedOrSelf(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 100, MaxOutbound: 100}})
	addPeers(t, m, 0, 20)
	got := map[NodeID]bool{}
	for range 20 {
		a, ok := m.TryDialNext()
		require.True(t, ok)
		require.False(t, got[a.NodeID], "dialled twice: %s", a)
		got[a.NodeID] = true
	}
	_, ok := m.TryDialNext()
	require.False(t, ok, "everyone is dialing")
	checkInvariants(t, m)
}

func TestDialPersistentFirst(t *testing.T) {
	for seed := range uint64(10) {
		m := newPM(t, PeerManagerOptions{Options: Options{PersistentPeers: []NodeAddress{peerAddr(50), peerAddr(7)}, Rand: rand.New(rand.NewPCG(seed, seed))}})
		addPeers(t, m, 0, 5)
		addPeers(t, m, 8, 40)
		var first []NodeAddress
		for range 2 {
			a, ok := m.TryDialNext()
			require.True(t, ok)
			first = append(first, a)
		}
		require.ElementsMatch(t, []NodeAddress{peerAddr(50), peerAddr(7)}, first)
	}
}

func TestDialBackoff(t *testing.T) {
	clock := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MinRetryTime: time.Second, MaxRetryTime: 10 * time.Second, MaxDialFailures: 100}, Now: clock.Now})
	addPeers(t, m, 0, 1)
	a := peerAddr(0)
	require.True(t, m.NextDialTime().IsZero(), "due now")
	for _, want := range []time.Duration{1, 2, 4, 8, 10, 10, 10} {
		got, ok := m.TryDialNext()
		require.True(t, ok)
		require.Equal(t, a, got)
		m.DialFailed(a)
		want *= time.Second
		_, ok = m.TryDialNext()
		require.False(t, ok, "in back-off")
		require.Equal(t, clock.Now().Add(want), m.NextDialTime())
		clock.Advance(want - time.Millisecond)
		_, ok = m.TryDialNext()
		require.False(t, ok, "%s is not over yet", want)
		clock.Advance(time.Millisecond)
		require.True(t, m.NextDialTime().IsZero())
	}

	// Dialed resets failures: the next back-off starts from MinRetryTime.
	got, ok := m.TryDialNext()
	require.True(t, ok)
	require.NoError(t, m.Dialed(got))
	m.Disconnected(got.NodeID)
	clock.Advance(time.Second) // the cool-down after a disconnect
	got, ok = m.TryDialNext()
	require.True(t, ok)
	m.DialFailed(got)
	require.Equal(t, clock.Now().Add(time.Second), m.NextDialTime())
}

func TestNextDialTimeIsEarliest(t *testing.T) {
	clock := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MinRetryTime: time.Second, MaxRetryTime: time.Hour}, Now: clock.Now})
	addPeers(t, m, 0, 3)
	require.True(t, m.NextDialTime().IsZero())
	m.DialFailed(peerAddr(0))
	m.DialFailed(peerAddr(0)) // 2 s
	m.DialFailed(peerAddr(1)) // 1 s
	m.DialFailed(peerAddr(2))
	m.DialFailed(peerAddr(2))
	m.DialFailed(peerAddr(2)) // 4 s
	require.Equal(t, clock.Now().Add(time.Second), m.NextDialTime())
	clock.Advance(time.Second)
	require.True(t, m.NextDialTime().IsZero(), "one is due")
	a, ok := m.TryDialNext()
	require.True(t, ok)
	require.Equal(t, peerAddr(1), a)
	require.Equal(t, clock.Now().Add(time.Second), m.NextDialTime(), "peer 0 at 2 s")
	clock.Advance(time.Second)
	a, ok = m.TryDialNext()
	require.True(t, ok)
	require.Equal(t, peerAddr(0), a)
	require.Equal(t, clock.Now().Add(2*time.Second), m.NextDialTime(), "peer 2 at 4 s")
}

func TestDialFailuresDropAddress(t *testing.T) {
	clock := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxDialFailures: 3, PersistentPeers: []NodeAddress{peerAddr(9)}}, Now: clock.Now})
	addPeers(t, m, 0, 2)
	_, err := m.Add(peerAddrPort(1, 2))
	require.NoError(t, err)

	for i := range 3 {
		require.True(t, m.Has(nodeID(0)), "after %d failures", i)
		m.DialFailed(peerAddr(0))
		m.DialFailed(peerAddr(1))
		m.DialFailed(peerAddr(9))
		clock.Advance(time.Hour)
	}
	require.False(t, m.Has(nodeID(0)), "its only address failed MaxDialFailures times")
	require.True(t, m.Has(nodeID(1)))
	require.Equal(t, []NodeAddress{peerAddrPort(1, 2)}, m.Addresses(nodeID(1)))

	for range 20 {
		m.DialFailed(peerAddr(9))
	}
	require.True(t, m.Has(nodeID(9)), "persistent peers are never dropped")
	require.Equal(t, []NodeAddress{peerAddr(9)}, m.Addresses(nodeID(9)))
	s, _ := m.Score(nodeID(9))
	require.Equal(t, MaxScore, s)
	clock.Advance(10 * time.Minute)
	a, ok := m.TryDialNext()
	require.True(t, ok)
	require.Equal(t, peerAddr(9), a, "still dialled first")
	checkInvariants(t, m)

	// A persistent peer's back-off stays capped at MaxRetryTime however
	// often it fails.
	m1 := newPM(t, PeerManagerOptions{Options: Options{MaxDialFailures: 2, PersistentPeers: []NodeAddress{peerAddr(9)}}, Now: clock.Now})
	for range 100 {
		m1.DialFailed(peerAddr(9))
		wait := m1.NextDialTime().Sub(clock.Now())
		require.Positive(t, wait)
		require.LessOrEqual(t, wait, 10*time.Minute)
	}
	require.Equal(t, clock.Now().Add(10*time.Minute), m1.NextDialTime(), "capped at MaxRetryTime")

	// Dialed resets the failure count: MaxDialFailures-1 more do not drop.
	m2 := newPM(t, PeerManagerOptions{Options: Options{MaxDialFailures: 3}, Now: clock.Now})
	addPeers(t, m2, 0, 1)
	m2.DialFailed(peerAddr(0))
	m2.DialFailed(peerAddr(0))
	require.NoError(t, m2.Dialed(peerAddr(0)))
	m2.Disconnected(nodeID(0))
	m2.DialFailed(peerAddr(0))
	m2.DialFailed(peerAddr(0))
	require.True(t, m2.Has(nodeID(0)))
	m2.DialFailed(peerAddr(0))
	require.False(t, m2.Has(nodeID(0)))
}

func TestDialFailedWhileConnectedKeepsPeer(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxDialFailures: 1}})
	addPeers(t, m, 0, 1)
	require.NoError(t, m.Accepted(nodeID(0)))
	// A dial that fails while the peer is connected the other way says
	// nothing against its address.
	m.DialFailed(peerAddr(0))
	require.True(t, m.IsConnected(nodeID(0)))
	require.Equal(t, []NodeAddress{peerAddr(0)}, m.Addresses(nodeID(0)))
	m.Disconnected(nodeID(0))
	require.True(t, m.Has(nodeID(0)))
	checkInvariants(t, m)
}

func TestSimultaneousDialInboundWins(t *testing.T) {
	clock := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxOutbound: 1, MaxDialFailures: 1}, Now: clock.Now})
	addPeers(t, m, 0, 2)
	a, ok := m.TryDialNext()
	require.True(t, ok)
	// The peer we are dialling dials us first.
	require.NoError(t, m.Accepted(a.NodeID))
	require.ErrorIs(t, m.Dialed(a), ErrDuplicateConnection)
	m.DialFailed(a) // the transport closes our duplicate
	require.True(t, m.IsConnected(a.NodeID))
	require.Equal(t, []NodeAddress{a}, m.Addresses(a.NodeID), "no failure counted")
	// The outbound slot is free again: the connection is inbound.
	b, ok := m.TryDialNext()
	require.True(t, ok)
	require.NotEqual(t, a.NodeID, b.NodeID)
	checkInvariants(t, m)
}

func TestPeerManagerLifecycleDialed(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 2}})
	require.ErrorIs(t, m.Dialed(selfAddr("1.2.3.4", 1)), ErrSelfAddress)

	// Dialled outside TryDialNext: adopted.
	require.NoError(t, m.Dialed(peerAddr(1)))
	require.True(t, m.Has(nodeID(1)))
	require.True(t, m.IsConnected(nodeID(1)))
	require.Equal(t, []NodeAddress{peerAddr(1)}, m.Addresses(nodeID(1)))
	require.Empty(t, m.Connected(), "not ready yet")
	require.ErrorIs(t, m.Dialed(peerAddr(1)), ErrDuplicateConnection, "already connected")
	require.ErrorIs(t, m.Accepted(nodeID(1)), ErrDuplicateConnection, "already connected")

	m.Ready(nodeID(1), CapV2)
	require.Equal(t, []NodeID{nodeID(1)}, m.Connected())
	m.Disconnected(nodeID(1))
	require.Empty(t, m.Connected())
	require.False(t, m.IsConnected(nodeID(1)))
	require.True(t, m.Has(nodeID(1)), "it has an address")
	checkInvariants(t, m)
}

func TestPeerManagerLifecycleAccepted(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 3}})
	require.ErrorIs(t, m.Accepted(selfID), ErrSelfAddress)
	require.ErrorIs(t, m.Accepted("nope"), ErrInvalidNodeID)
	require.NoError(t, m.Accepted(nodeID(1)))
	require.True(t, m.IsConnected(nodeID(1)))
	require.True(t, m.Has(nodeID(1)))
	err := m.Accepted(nodeID(1))
	require.ErrorIs(t, err, ErrDuplicateConnection, "duplicate")
	require.True(t, strings.HasPrefix(err.Error(), "pex: "))
	require.NoError(t, m.Accepted(nodeID(2)))

	// Inbound-only peers are forgotten on disconnect; those with an
	// address are kept.
	_, err = m.Add(peerAddr(2))
	require.NoError(t, err)
	m.Disconnected(nodeID(1))
	m.Disconnected(nodeID(2))
	require.Equal(t, []NodeID{nodeID(2)}, m.Known())
	checkInvariants(t, m)

	// Disconnected of an unknown or idle peer is a no-op.
	m.Disconnected(nodeID(40))
	m.Disconnected(nodeID(2))
	checkInvariants(t, m)
}

func TestPeerManagerAcceptedOverCapacity(t *testing.T) {
	clock := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 3, MaxOutbound: 1}, Now: clock.Now})
	addPeers(t, m, 0, 1)
	a, ok := m.TryDialNext()
	require.True(t, ok)
	require.NoError(t, m.Dialed(a)) // outbound, score 1
	clock.Advance(time.Second)
	require.NoError(t, m.Accepted(nodeID(1)))
	clock.Advance(time.Second)
	require.NoError(t, m.Accepted(nodeID(2))) // youngest
	_, ok = m.EvictNext()
	require.False(t, ok)
	// Past the grace of a first answer (see TestDisplacedNewcomerStaysForItsAnswer).
	clock.Advance(lifecycle.FirstAnswerGrace)

	// Full: a new inbound peer displaces the youngest inbound one.
	require.NoError(t, m.Accepted(nodeID(3)))
	id, ok := m.EvictNext()
	require.True(t, ok)
	require.Equal(t, nodeID(2), id)
	_, ok = m.EvictNext()
	require.False(t, ok)
	m.Disconnected(nodeID(2))

	// A lower score loses before age does.
	m.Errored(PeerError{NodeID: nodeID(1)})
	require.NoError(t, m.Accepted(nodeID(4)))
	id, ok = m.EvictNext()
	require.True(t, ok)
	require.Equal(t, nodeID(1), id)
	m.Disconnected(nodeID(1))
	checkInvariants(t, m)

	// Outbound and persistent peers are never displaced: with only those
	// connected, a new inbound one is refused.
	m2 := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 2, MaxOutbound: 1, PersistentPeers: []NodeAddress{peerAddr(9)}}})
	addPeers(t, m2, 0, 1)
	require.NoError(t, m2.Accepted(nodeID(9)))
	a, ok = m2.TryDialNext()
	require.True(t, ok)
	require.NoError(t, m2.Dialed(a))
	err := m2.Accepted(nodeID(5))
	require.ErrorIs(t, err, ErrTooManyPeers)
	require.False(t, m2.Has(nodeID(5)))
	_, ok = m2.EvictNext()
	require.False(t, ok)
	checkInvariants(t, m2)
}

// TestPeerManagerAcceptedBookFullDisplacesNobody: a newcomer refused because the
// book has no room must not cost a connected peer its slot.
func TestPeerManagerAcceptedWhenBookFull(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: 2, MaxConnected: 2}})
	require.NoError(t, m.Accepted(nodeID(1)))
	require.NoError(t, m.Accepted(nodeID(2)))
	m.Served(nodeID(1))
	m.Served(nodeID(2))
	// Book and connections full: the newcomer is still admitted, over the
	// book's capacity, and displaces the youngest inbound peer.
	require.NoError(t, m.Accepted(nodeID(3)))
	require.True(t, m.Has(nodeID(3)))
	require.Equal(t, 3, m.Len())
	id, ok := m.EvictNext()
	require.True(t, ok)
	require.Equal(t, nodeID(2), id)
	checkInvariants(t, m)
	m.Disconnected(id)
	require.Equal(t, 2, m.Len(), "back under capacity once it leaves")
	checkInvariants(t, m)
}

func TestDialRespectsMaxOutbound(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 10, MaxOutbound: 2}})
	addPeers(t, m, 0, 10)
	a1, ok := m.TryDialNext()
	require.True(t, ok)
	_, ok = m.TryDialNext()
	require.True(t, ok)
	_, ok = m.TryDialNext()
	require.False(t, ok, "MaxOutbound dialing")
	require.NoError(t, m.Accepted(nodeID(50)), "inbound slots are still free")
	require.NoError(t, m.Dialed(a1))
	_, ok = m.TryDialNext()
	require.False(t, ok, "connected outbound still counts")
	m.Disconnected(a1.NodeID)
	_, ok = m.TryDialNext()
	require.True(t, ok)
	checkInvariants(t, m)
}

func TestPeerScores(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{PersistentPeers: []NodeAddress{peerAddr(9)}}})
	addPeers(t, m, 0, 1)
	score := func(id NodeID) int {
		t.Helper()
		s, ok := m.Score(id)
		require.True(t, ok)
		return s
	}
	_, ok := m.Score(nodeID(50))
	require.False(t, ok)

	require.Zero(t, score(nodeID(0)))
	require.NoError(t, m.Dialed(peerAddr(0)))
	require.Equal(t, 1, score(nodeID(0)), "Dialed +1")
	m.Good(nodeID(0))
	require.Equal(t, 2, score(nodeID(0)), "Good +1")
	m.Errored(PeerError{NodeID: nodeID(0), Err: ErrMostlyInvalid})
	require.Equal(t, 1, score(nodeID(0)), "Errored -1")
	m.Errored(PeerError{NodeID: nodeID(0), Err: ErrMalformedMessage, Fatal: true})
	require.Equal(t, -4, score(nodeID(0)), "fatal -5")
	m.Disconnected(nodeID(0))
	require.NoError(t, m.Accepted(nodeID(0)))
	require.Equal(t, -4, score(nodeID(0)), "Accepted: a peer that dials us earns nothing by it")
	m.Disconnected(nodeID(0))
	m.DialFailed(peerAddr(0))
	require.Equal(t, -4, score(nodeID(0)), "DialFailed counts against the address, not the node")

	// Clamped at both ends.
	for range 100 {
		m.Errored(PeerError{NodeID: nodeID(0), Fatal: true})
	}
	require.Equal(t, MinScore, score(nodeID(0)))
	for range 300 {
		m.Good(nodeID(0))
	}
	require.Equal(t, MaxScore-1, score(nodeID(0)), "only persistent peers reach MaxScore")

	// Persistent peers stay at MaxScore.
	require.Equal(t, MaxScore, score(nodeID(9)))
	m.Errored(PeerError{NodeID: nodeID(9), Fatal: true})
	m.DialFailed(peerAddr(9))
	m.Good(nodeID(9))
	require.NoError(t, m.Dialed(peerAddr(9)))
	require.Equal(t, MaxScore, score(nodeID(9)))

	// Unknown peers are ignored.
	m.Good(nodeID(50))
	m.Errored(PeerError{NodeID: nodeID(50)})
	require.False(t, m.Has(nodeID(50)))
	checkInvariants(t, m)
}

func TestFatalErrorHoldsOffRedial(t *testing.T) {
	clk := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxRetryTime: 10 * time.Minute}, Now: clk.Now})
	addPeers(t, m, 1, 3)
	for range 2 {
		a, ok := m.TryDialNext()
		require.True(t, ok)
		require.NoError(t, m.Dialed(a))
	}
	// Peer 1 breaks the protocol, peer 2 only errs; both disconnect.
	m.Errored(PeerError{NodeID: nodeID(1), Err: ErrMessageTooLarge, Fatal: true})
	m.Errored(PeerError{NodeID: nodeID(2), Err: ErrResponseTimeout})
	m.Disconnected(nodeID(1))
	m.Disconnected(nodeID(2))
	clk.Advance(time.Minute)
	a, ok := m.TryDialNext()
	require.True(t, ok)
	require.Equal(t, nodeID(2), a.NodeID, "an honest error costs the usual back-off")
	_, ok = m.TryDialNext()
	require.False(t, ok, "the peer that broke the protocol waits MaxRetryTime")
	clk.Advance(9 * time.Minute)
	a, ok = m.TryDialNext()
	require.True(t, ok)
	require.Equal(t, nodeID(1), a.NodeID)
	checkInvariants(t, m)
}

func TestPeerThatBrokeTheProtocolIsNotAdvertised(t *testing.T) {
	clk := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxRetryTime: 10 * time.Minute}, Now: clk.Now})
	addPeers(t, m, 1, 3)
	// Peer 20 dials in and breaks the protocol at once; peer 2 only errs.
	require.NoError(t, m.Accepted(nodeID(20), peerAddr(20)))
	m.Errored(PeerError{NodeID: nodeID(20), Err: ErrUnsolicitedResponse, Fatal: true})
	m.Errored(PeerError{NodeID: nodeID(2), Err: ErrResponseTimeout})
	m.Disconnected(nodeID(20))
	ids := func(to NodeID) []NodeID {
		var out []NodeID
		for _, a := range m.Advertise(to, MaxAddresses) {
			out = append(out, a.NodeID)
		}
		slices.Sort(out)
		return out
	}
	require.Equal(t, []NodeID{nodeID(1), nodeID(2)}, ids(nodeID(30)), "not passed on while held off")
	clk.Advance(10 * time.Minute)
	require.Equal(t, []NodeID{nodeID(1), nodeID(2), nodeID(20)}, ids(nodeID(31)), "passed on again after MaxRetryTime")
	checkInvariants(t, m)
}

func TestScoreEviction(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{EvictScore: -3, PersistentPeers: []NodeAddress{peerAddr(9)}}})
	addPeers(t, m, 0, 3)
	_, ok := m.EvictNext()
	require.False(t, ok)

	require.NoError(t, m.Dialed(peerAddr(0)))  // score 1
	require.NoError(t, m.Dialed(peerAddr(9)))  // persistent
	require.NoError(t, m.Accepted(nodeID(20))) // inbound, score 1
	for range 3 {
		m.Errored(PeerError{NodeID: nodeID(0)})
		m.Errored(PeerError{NodeID: nodeID(9), Fatal: true})
		m.Errored(PeerError{NodeID: nodeID(1), Fatal: true}) // idle
	}
	_, ok = m.EvictNext()
	require.False(t, ok, "score -2 is above EvictScore; idle and persistent peers are not queued")

	m.Errored(PeerError{NodeID: nodeID(0)}) // -3
	m.Errored(PeerError{NodeID: nodeID(20), Fatal: true})
	m.Errored(PeerError{NodeID: nodeID(0)}) // -4: still queued once
	id, ok := m.EvictNext()
	require.True(t, ok)
	require.Equal(t, nodeID(0), id)
	id, ok = m.EvictNext()
	require.True(t, ok)
	require.Equal(t, nodeID(20), id)
	_, ok = m.EvictNext()
	require.False(t, ok, "each returned once")
	m.Errored(PeerError{NodeID: nodeID(0), Fatal: true})
	_, ok = m.EvictNext()
	require.False(t, ok, "not queued again while still connected")

	// An evictable peer is not dialled again while its score is that low.
	m.Disconnected(nodeID(0))
	m.Disconnected(nodeID(20))
	for range 10 {
		a, ok := m.TryDialNext()
		if !ok {
			break
		}
		require.NotEqual(t, nodeID(0), a.NodeID)
		require.NotEqual(t, nodeID(1), a.NodeID)
	}

	// Disconnected before EvictNext removes it from the queue.
	require.NoError(t, m.Accepted(nodeID(21)))
	for range 2 {
		m.Errored(PeerError{NodeID: nodeID(21), Fatal: true})
	}
	m.Disconnected(nodeID(21))
	_, ok = m.EvictNext()
	require.False(t, ok)
	checkInvariants(t, m)
}

// TestScoreEvictionAfterFailedDial: a peer that fell to EvictScore while
// we were dialling it, then failed, must be evictable again the next time
// it is connected and misbehaves.
func TestScoreEvictionAfterFailedDial(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{EvictScore: -3}})
	addPeers(t, m, 0, 1)
	a, ok := m.TryDialNext()
	require.True(t, ok)
	m.Errored(PeerError{NodeID: a.NodeID, Fatal: true})
	m.DialFailed(a)
	for {
		if _, ok := m.EvictNext(); !ok {
			break
		}
	}
	for range 10 {
		m.Good(a.NodeID)
	}
	require.NoError(t, m.Dialed(a))
	for range 3 {
		m.Errored(PeerError{NodeID: a.NodeID, Fatal: true})
	}
	id, ok := m.EvictNext()
	require.True(t, ok, "connected peer at EvictScore must be queued")
	require.Equal(t, a.NodeID, id)
	checkInvariants(t, m)
}

func BenchmarkPeerManagerAdd(b *testing.B) {
	addrs := make([]NodeAddress, 1<<16)
	for i := range addrs {
		addrs[i] = peerAddr(i)
	}
	m := newPM(b, PeerManagerOptions{})
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Add(addrs[i%len(addrs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkAdvertise(b *testing.B) {
	const n = 10_000
	m := newPM(b, PeerManagerOptions{Options: Options{MaxPeers: n + 1, SelfAddresses: []NodeAddress{selfAddr("1.2.3.4", 26656)}}})
	addPeers(b, m, 0, n)
	require.NoError(b, m.Dialed(peerAddr(0)))
	for _, bc := range []struct {
		name string
		to   NodeID
	}{{"connected", nodeID(0)}, {"unknown", nodeID(n + 5)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if len(m.Advertise(bc.to, 100)) == 100 {
					continue
				}
				// The walk went round (a hundred answers): begin another.
				if bc.to != nodeID(0) {
					b.Fatal("short")
				}
				m.Disconnected(bc.to)
				require.NoError(b, m.Dialed(peerAddr(0)))
			}
		})
	}
}

func BenchmarkAddressBookMemory(b *testing.B) {
	const n = 100_000
	var perAddr float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m, err := NewPeerManager(selfID, PeerManagerOptions{Options: Options{MaxPeers: n}})
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			ip := testkit.PublicIP(i)
			a, err := NodeAddressFromIP(NodeID(fmt.Sprintf("%040x", i+1)), ip, 26656)
			if err != nil {
				b.Fatal(err)
			}
			if ok, err := m.Add(a); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
		m.Advertise(nodeID(0), 1) // settle the sorted order
		runtime.GC()
		runtime.ReadMemStats(&after)
		if m.Len() != n {
			b.Fatal(m.Len())
		}
		perAddr = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
		runtime.KeepAlive(m)
	}
	b.ReportMetric(perAddr, "bytes/addr")
}

func TestPeerManagerAcceptedLearnsAnnouncedAddress(t *testing.T) {
	m := newPM(t, PeerManagerOptions{})
	other := NodeAddress{Protocol: ProtocolMConn, NodeID: nodeID(9), Hostname: "198.51.100.9", Port: 26656}
	bad := NodeAddress{Protocol: ProtocolMConn, NodeID: nodeID(1), Hostname: "198.51.100.1", Port: 0}
	require.NoError(t, m.Accepted(nodeID(1), peerAddr(1), other, bad))
	require.Equal(t, []NodeAddress{peerAddr(1)}, m.Addresses(nodeID(1)), "only the peer's own, valid address")
	require.False(t, m.Has(nodeID(9)), "a peer cannot announce someone else")
	// The address outlives the connection, so the peer can be dialled back.
	m.Disconnected(nodeID(1))
	require.True(t, m.Has(nodeID(1)))
	checkInvariants(t, m)
}

func TestAddPersistentAtRunTime(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: 3, MaxOutbound: 1, MaxConnected: 4}})
	addPeers(t, m, 0, 3)
	a, ok := m.TryDialNext()
	require.True(t, ok)
	require.NoError(t, m.Dialed(a))
	_, ok = m.TryDialNext()
	require.False(t, ok, "outbound slots full")
	// Proven peers fill the book, so an ordinary Add is refused...
	for i := range 3 {
		if peerAddr(i) != a {
			require.NoError(t, m.Dialed(peerAddr(i)))
			m.Disconnected(peerAddr(i).NodeID)
		}
	}
	_, err := m.Add(peerAddr(9))
	require.ErrorIs(t, err, ErrAddressBookFull)
	// ...but a persistent peer is kept, and dialled past MaxOutbound.
	require.NoError(t, m.AddPersistent(peerAddr(9)))
	s, _ := m.Score(nodeID(9))
	require.Equal(t, MaxScore, s)
	b, ok := m.TryDialNext()
	require.True(t, ok)
	require.Equal(t, peerAddr(9), b)
	require.NoError(t, m.Dialed(b))
	// It survives failures.
	m.Disconnected(nodeID(9))
	for range 20 {
		m.DialFailed(peerAddr(9))
	}
	require.True(t, m.Has(nodeID(9)))
	require.Error(t, m.AddPersistent(NodeAddress{Protocol: ProtocolMConn, NodeID: nodeID(10)}), "validated")
}

func TestAdvertiseDeliversAllNewsInOrder(t *testing.T) {
	const limit = 10
	m := newPM(t, PeerManagerOptions{})
	addPeers(t, m, 0, 31) // the requester and 30 others
	to := nodeID(0)
	require.NoError(t, m.Dialed(peerAddr(0)))
	got := map[NodeID]int{}
	walkingLaps := 0 // news laps seen open while the walk went on
	take := func() int {
		out := m.Advertise(to, limit)
		for _, a := range out {
			got[a.NodeID]++
		}
		if adv := m.cursor(m.peers.get(to)); !adv.LapDone() {
			require.LessOrEqual(t, adv.OpenLaps(), 1, "while the walk goes on, one lap of news at a time")
			walkingLaps += adv.OpenLaps()
		}
		return len(out)
	}
	// Part of the first walk, then floods of news bigger than an answer
	// while the walk still fills answers.
	take()
	for i := range 5 {
		addPeers(t, m, 100+50*i, 150+50*i)
		take()
	}
	for n := 0; take() > 0; n++ {
		require.Less(t, n, 100, "answers never run dry")
	}
	require.Positive(t, walkingLaps, "news came while the walk went on")
	for i := 1; i < 31; i++ {
		require.Equal(t, 1, got[nodeID(i)], "walked entry %d sent once", i)
	}
	for i := 100; i < 350; i++ {
		require.Equal(t, 1, got[nodeID(i)], "news %d sent once: %v", i, got)
	}
	require.Zero(t, got[to])
}

func TestAdvertiseNewsInAnOrderPerRequester(t *testing.T) {
	// Two peers whose walks are done ask for the same backlog of 200. Each
	// gets all of it once, in answers of 10, but each another 10 first,
	// so that they can pass their parts on to each other. (In one order
	// common to them, oldest or newest first, both got the same part first;
	// after a partition healed, every neighbour of the bridge node had that
	// part from the others by the time it asked, took the bridge for
	// exhausted, and the rest of the other side waited.)
	const limit = 10
	m := newPM(t, PeerManagerOptions{})
	addPeers(t, m, 0, 6) // two requesters and 4 others: one short lap
	reqs := []NodeID{nodeID(0), nodeID(1)}
	require.NoError(t, m.Dialed(peerAddr(0)))
	require.NoError(t, m.Dialed(peerAddr(1)))
	for _, to := range reqs {
		require.Len(t, m.Advertise(to, limit), 4+1, "the lap: the other requester and the 4")
		require.Empty(t, m.Advertise(to, limit), "lap done, no news")
	}
	addPeers(t, m, 100, 300)
	ids := func(out []NodeAddress) []NodeID {
		var r []NodeID
		for _, a := range out {
			r = append(r, a.NodeID)
		}
		return r
	}
	first := [2][]NodeID{ids(m.Advertise(reqs[0], limit)), ids(m.Advertise(reqs[1], limit))}
	require.Len(t, first[0], limit)
	require.Len(t, first[1], limit)
	require.Less(t, len(intersect(first[0], first[1])), limit/2, "first answers %v and %v", first[0], first[1])
	addPeers(t, m, 300, 305) // news during a lap (in a lap of its own)
	for i, to := range reqs {
		got := map[NodeID]int{}
		for _, id := range first[i] {
			got[id]++
		}
		for {
			out := m.Advertise(to, limit)
			if len(out) == 0 {
				break
			}
			require.LessOrEqual(t, len(out), limit)
			for _, id := range ids(out) {
				got[id]++
			}
		}
		for _, j := range span(100, 305) {
			require.Equal(t, 1, got[nodeID(j)], "news %d sent once to %s", j, to)
		}
		require.Len(t, got, 205)
	}
	checkInvariants(t, m)
}

func TestAdvertiseNewestNewsFirstOnceTheWalkIsDone(t *testing.T) {
	// A peer whose walk is done took 10 of a backlog of 200; 5 more
	// entries come in. Its next answer holds those 5 (what the network
	// learnt last, which it most likely misses), and 5 of the backlog,
	// whose rest follows; and so on while news keeps coming, more laps of
	// it than walk.MaxNewsLaps: in the end it was sent everything once.
	// (Oldest lap first, the 5 waited behind the backlog.)
	const limit = 10
	m, to := doneRequester(t, PeerManagerOptions{}, limit)
	got := map[NodeID]int{}
	take := func() []NodeID {
		var ids []NodeID
		for _, a := range m.Advertise(to, limit) {
			got[a.NodeID]++
			ids = append(ids, a.NodeID)
		}
		return ids
	}
	backlog := peerIDs(100, 300)
	addPeers(t, m, 100, 300)
	require.Len(t, take(), limit)
	addPeers(t, m, 300, 305)
	ids := take()
	require.Len(t, ids, limit)
	require.Equal(t, peerIDs(300, 305), sorted(ids[:5]), "the newest lap first")
	for i := range 2 * walk.MaxNewsLaps {
		addPeers(t, m, 400+3*i, 403+3*i)
		ids := take()
		require.Len(t, ids, limit)
		require.Equal(t, peerIDs(400+3*i, 403+3*i), sorted(ids[:3]), "the newest lap first")
	}
	// News faster than answers: each lap of 15 keeps 5 open, until
	// walk.MaxNewsLaps are (the backlog's among them); then the newest entries
	// wait, and the open laps go first. From the next answer on, the
	// newest lap fills every answer, and the backlog has no room.
	require.GreaterOrEqual(t, walk.LapPatience, walk.MaxNewsLaps, "the test's premise")
	for i := range walk.LapPatience {
		added := peerIDs(1000+15*i, 1015+15*i)
		addPeers(t, m, 1000+15*i, 1015+15*i)
		ids := take()
		require.Len(t, ids, limit)
		switch {
		case i < walk.MaxNewsLaps-1:
			require.Subset(t, added, ids, "the newest lap first")
		case i == walk.MaxNewsLaps-1:
			require.Empty(t, intersect(added, ids), "%d laps open: the newest wait", walk.MaxNewsLaps)
		default:
			require.Empty(t, intersect(backlog, ids), "the newest lap first")
		}
	}
	// The backlog has now had no room in walk.LapPatience answers in a row: it
	// goes first.
	end := 1000 + 15*(walk.LapPatience+1)
	addPeers(t, m, end-15, end)
	require.Subset(t, backlog, take(), "a lap that waited walk.LapPatience answers first")
	for n := 0; len(take()) > 0; n++ {
		require.Less(t, n, 100, "answers never run dry")
	}
	all := append(span(100, 305), span(400, 400+6*walk.MaxNewsLaps)...)
	all = append(all, span(1000, end)...)
	for _, j := range all {
		require.Equal(t, 1, got[nodeID(j)], "news %d sent once", j)
	}
	require.Len(t, got, len(all))
	checkInvariants(t, m)
}

func TestAdvertiseOldNewsGoesOutWhileNewsKeepsComing(t *testing.T) {
	// A peer whose walk is done has a backlog of 200, and from then on
	// more news comes between two of its requests than an answer holds.
	// The newest news goes first, but the backlog still goes out: every
	// lap that waits walk.LapPatience answers has the next one.
	const limit = 10
	m, to := doneRequester(t, PeerManagerOptions{Options: Options{MaxPeers: 20_000}}, limit)
	addPeers(t, m, 100, 300)
	got := map[NodeID]int{}
	next := 1000
	answers := 200 / limit * (walk.LapPatience + 1)
	for range answers {
		out := m.Advertise(to, limit)
		require.Len(t, out, limit)
		for _, a := range out {
			got[a.NodeID]++
		}
		addPeers(t, m, next, next+limit+5)
		next += limit + 5
	}
	for _, i := range span(100, 300) {
		require.Equal(t, 1, got[nodeID(i)], "backlog entry %d sent once in %d answers", i, answers)
	}
	for id, n := range got {
		require.Equal(t, 1, n, "%s sent once", id)
	}
}

// Random inserts (new, and re-added after eviction) between answers of
// random sizes to three connected requesters, some reconnecting: no entry
// goes twice to a connected requester (unless removed and added again
// since), no answer holds more than its limit, and once the inserts stop
// and the answers run dry, each requester was sent every entry of the book.
func TestAdvertiseRandomNewsToReconnectingPeers(t *testing.T) {
	for seed := uint64(1); seed <= 100; seed++ {
		r := rand.New(rand.NewPCG(seed, 5))
		maxPeers := 30 + r.IntN(400)
		m := newPM(t, PeerManagerOptions{Options: Options{MaxPeers: maxPeers + 8, Rand: rand.New(rand.NewPCG(seed, 6))}})
		const nreq = 3
		for i := range nreq {
			_, _ = m.Add(peerAddr(i))
			require.NoError(t, m.Dialed(peerAddr(i)))
		}
		sent := make([]map[NodeID]uint64, nreq)
		for i := range sent {
			sent[i] = map[NodeID]uint64{}
		}
		next := 100
		ask := func(i, limit int) int {
			to := nodeID(i)
			out := m.Advertise(to, limit)
			require.LessOrEqual(t, len(out), limit)
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, a := range out {
				p := m.peers.get(a.NodeID)
				require.NotNil(t, p)
				if s, ok := sent[i][a.NodeID]; ok && s == p.seq {
					t.Fatalf("seed %d: %s twice to %d (seq %d)", seed, a.NodeID, i, s)
				}
				sent[i][a.NodeID] = p.seq
			}
			return len(out)
		}
		steps := 50 + r.IntN(400)
		for range steps {
			switch k := r.IntN(10); {
			case k < 4:
				n := 1 + r.IntN(1+r.IntN(60))
				for range n { // a full book refuses some: that is part of the test
					if r.IntN(5) == 0 && next > 100 {
						_, _ = m.Add(peerAddr(100 + r.IntN(next-100)))
					} else {
						_, _ = m.Add(peerAddr(next))
						next++
					}
				}
			case k == 4 && r.IntN(6) == 0:
				i := r.IntN(nreq)
				m.Disconnected(nodeID(i))
				require.NoError(t, m.Dialed(peerAddr(i)))
				sent[i] = map[NodeID]uint64{}
			default:
				ask(r.IntN(nreq), 1+r.IntN(20))
			}
		}
		for i := range nreq {
			limit := 1 + r.IntN(20)
			for n := 0; ask(i, limit) == limit; n++ {
				require.Less(t, n, 100000)
			}
			m.mu.Lock()
			for id, p := range m.peers.all() {
				if id == nodeID(i) {
					continue
				}
				s, ok := sent[i][id]
				if !ok || s != p.seq {
					t.Errorf("seed %d: requester %d never sent %s (seq %d, sent %v %d)", seed, i, id, p.seq, ok, s)
				}
			}
			m.mu.Unlock()
			if t.Failed() {
				t.FailNow()
			}
		}
	}
}

// doneRequester returns a PeerManager with a connected requester, peer 0,
// whose walk is done: it was sent the 4 other peers of a short book.
func doneRequester(t *testing.T, opts PeerManagerOptions, limit int) (*PeerManager, NodeID) {
	m := newPM(t, opts)
	addPeers(t, m, 0, 5)
	to := nodeID(0)
	require.NoError(t, m.Dialed(peerAddr(0)))
	require.Len(t, m.Advertise(to, limit), 4)
	require.Empty(t, m.Advertise(to, limit), "lap done, no news")
	return m, to
}

func sorted(ids []NodeID) []NodeID {
	return slices.Sorted(slices.Values(ids))
}

func peerIDs(lo, hi int) []NodeID {
	var r []NodeID
	for _, i := range span(lo, hi) {
		r = append(r, nodeID(i))
	}
	return r
}

func span(lo, hi int) []int {
	var r []int
	for i := lo; i < hi; i++ {
		r = append(r, i)
	}
	return r
}

func intersect(a, b []NodeID) []NodeID {
	var r []NodeID
	for _, x := range a {
		if slices.Contains(b, x) {
			r = append(r, x)
		}
	}
	return r
}

// bucketsErr checks the group bookkeeping (groups.go): source, bucket and
// group loads counted right, none over its cap, no persistent peer in a
// bucket, outbound connections per group counted right. The caller holds
// the lock.
func bucketsErr(m *PeerManager) error { return m.checkLoads() }

func TestAdvertiseDoesNotSendBackWhatThePeerToldUs(t *testing.T) {
	m := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 100, MaxOutbound: 100}})
	addPeers(t, m, 0, 60)
	a, b := nodeID(0), nodeID(1)
	require.NoError(t, m.Dialed(peerAddr(0)))
	require.NoError(t, m.Dialed(peerAddr(1)))
	// a tells us of ten entries we knew and five we did not.
	var told []NodeID
	for i := 10; i < 20; i++ {
		isNew, err := m.AddFrom(peerAddr(i), a)
		require.NoError(t, err)
		require.False(t, isNew)
		told = append(told, nodeID(i))
	}
	for i := 100; i < 105; i++ {
		isNew, err := m.AddFrom(peerAddr(i), a)
		require.NoError(t, err)
		require.True(t, isNew)
		told = append(told, nodeID(i))
	}
	lap := func(to NodeID) []NodeID { return peersOf(t, m.Advertise(to, 1000), 0) }
	toA := lap(a)
	require.Len(t, toA, 65-1-len(told), "a's lap: the book but a and what it told us")
	for _, id := range told {
		require.NotContains(t, toA, id)
	}
	require.Len(t, lap(b), 65-1, "b is sent what a told us")

	// Once a disconnects, what it told us is forgotten (it may have lost
	// its book since), but for the five it was the first to tell us of;
	// and c, which now holds a bit of its own, is sent all of it.
	m.Disconnected(a)
	c := nodeID(2)
	require.NoError(t, m.Dialed(peerAddr(2)))
	_, err := m.AddFrom(peerAddr(30), c)
	require.NoError(t, err)
	toC := lap(c)
	require.Subset(t, toC, told)
	require.NotContains(t, toC, nodeID(30))
	require.NoError(t, m.Dialed(peerAddr(0)))
	toA = lap(a)
	require.Len(t, toA, 65-1-5)
	require.Subset(t, toA, told[:10])
	checkInvariants(t, m)
}

func TestAdvertiseToldBitsAreSweptBeforeReuse(t *testing.T) {
	// a tells us of 150 and leaves. 64 peers then connect and each tells
	// us of one entry: the last of them gets a's old bit, once freed bits
	// are swept from the book, and is sent 150.
	m := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 100, MaxOutbound: 100}})
	addPeers(t, m, 0, 200)
	require.NoError(t, m.Dialed(peerAddr(0)))
	_, err := m.AddFrom(peerAddr(150), nodeID(0))
	require.NoError(t, err)
	m.Disconnected(nodeID(0))
	for i := 1; i <= 64; i++ {
		require.NoError(t, m.Dialed(peerAddr(i)))
		_, err := m.AddFrom(peerAddr(100+i), nodeID(i))
		require.NoError(t, err)
	}
	checkInvariants(t, m)
	last := peersOf(t, m.Advertise(nodeID(64), 1000), 0)
	require.Contains(t, last, nodeID(150))
	require.NotContains(t, last, nodeID(164))
}

func TestAdvertiseSendsATellerABetterAddress(t *testing.T) {
	// a tells us of 5's address on port 2, which fails; we reached 5 on
	// its usual port: a is sent the address that works. Of 6 it tells us
	// an address we do not keep (6 has as many as it may, none failing):
	// a is sent 6 too.
	m := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 10, MaxOutbound: 10, MaxAddressesPerPeer: 1}})
	addPeers(t, m, 0, 10)
	a := nodeID(0)
	require.NoError(t, m.Dialed(peerAddr(0)))
	require.NoError(t, m.Dialed(peerAddr(5)))
	m.Disconnected(nodeID(5))
	_, err := m.AddFrom(peerAddrPort(6, 2), a)
	require.NoError(t, err)
	require.Equal(t, []NodeAddress{peerAddr(6)}, m.Addresses(nodeID(6)))
	require.Contains(t, m.Advertise(a, 100), peerAddr(6))
	m2 := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 10, MaxOutbound: 10, MaxAddressesPerPeer: 2}})
	addPeers(t, m2, 0, 10)
	require.NoError(t, m2.Dialed(peerAddr(0)))
	require.NoError(t, m2.Dialed(peerAddr(5)))
	m2.Disconnected(nodeID(5))
	_, err = m2.AddFrom(peerAddrPort(5, 2), a)
	require.NoError(t, err)
	m2.DialFailed(peerAddrPort(5, 2))
	require.Contains(t, m2.Advertise(a, 100), peerAddr(5), "the working address, not the one a told us")
	checkInvariants(t, m2)
}

func TestRandomAdvertiseMaySendBackWhatThePeerToldUs(t *testing.T) {
	// The Tendermint baseline samples the book as Tendermint does.
	m := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 10, MaxOutbound: 10, RandomAdvertise: true}})
	addPeers(t, m, 0, 20)
	a := nodeID(0)
	require.NoError(t, m.Dialed(peerAddr(0)))
	for i := 1; i < 20; i++ {
		_, err := m.AddFrom(peerAddr(i), a)
		require.NoError(t, err)
	}
	require.Len(t, m.Advertise(a, 100), 19)
}

func TestAdvertiseToldBitsAreReused(t *testing.T) {
	// Far more peers than there are bits connect, each tells us of one
	// entry, and leave: each is never sent back its own entry while a bit
	// is free, and a peer without a bit is sent everything.
	m := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 200, MaxOutbound: 200}})
	addPeers(t, m, 0, 300)
	for round := range 3 {
		var skipped int
		for i := range 100 {
			to := nodeID(i)
			require.NoError(t, m.Dialed(peerAddr(i)))
			_, err := m.AddFrom(peerAddr(200+i), to)
			require.NoError(t, err)
			if !slices.Contains(peersOf(t, m.Advertise(to, 1000), 0), nodeID(200+i)) {
				skipped++
			}
		}
		require.Equal(t, 64, skipped, "round %d: one bit for each of the first 64", round)
		for i := range 100 {
			m.Disconnected(nodeID(i))
		}
	}
}

func TestPersistentPeerStaysOnceItNeedNotGo(t *testing.T) {
	// Two inbound peers fill the connections; a persistent dial needs
	// room. Both inbound peers are then made persistent, so one of them is
	// queued to go. The dial fails: nobody needs to go any more, and a
	// newcomer finds the connections full of persistent peers.
	m := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 2, MaxOutbound: 2, PersistentPeers: []NodeAddress{peerAddr(1)}}})
	require.NoError(t, m.Accepted(nodeID(2)))
	require.NoError(t, m.Accepted(nodeID(3)))
	a, ok := m.TryDialNext()
	require.True(t, ok)
	require.NoError(t, m.AddPersistent(peerAddr(2)))
	require.NoError(t, m.AddPersistent(peerAddr(3)))
	m.DialFailed(a)
	checkInvariants(t, m)
	require.ErrorIs(t, m.Accepted(nodeID(4)), ErrTooManyPeers)
	_, ok = m.EvictNext()
	require.False(t, ok, "no persistent peer goes for nothing")
}
