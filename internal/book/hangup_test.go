package book

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pexnet/pex/internal/lifecycle"
)

// dialAndDrop dials the only due address, which must be a, has it answer,
// keeps the connection for lasted and closes it; it returns when a is due
// again.
func dialAndDrop(t *testing.T, m *PeerManager, clock interface{ Advance(time.Duration) }, a NodeAddress, lasted time.Duration) time.Time {
	t.Helper()
	got, ok := m.TryDialNext()
	require.True(t, ok, "due")
	require.Equal(t, a, got)
	require.NoError(t, m.Dialed(got))
	m.Ready(got.NodeID, 0)
	m.Answered(got.NodeID)
	clock.Advance(lasted)
	m.Disconnected(got.NodeID)
	checkInvariants(t, m)
	_, ok = m.TryDialNext()
	require.False(t, ok, "redialled at once after hanging up")
	return m.NextDialTime()
}

// TestHangUpBackoff: a peer that hangs up soon after each connection (a
// CometBFT seed) is redialled after 10 s, 20 s, 40 s ... up to
// MaxRetryTime, so at most 3 times in the minute after the first; a
// connection of ShortConnection or longer starts the count again.
func TestHangUpBackoff(t *testing.T) {
	clock := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MinRetryTime: time.Second, MaxRetryTime: 10 * time.Minute}, Now: clock.Now})
	addPeers(t, m, 0, 1)
	a := peerAddr(0)
	first := clock.Now()
	var waits []time.Duration
	var inFirstMinute int
	for range 9 {
		if clock.Now().Sub(first) <= time.Minute {
			inFirstMinute++
		}
		next := dialAndDrop(t, m, clock, a, 300*time.Millisecond) // a seed answers and closes
		waits = append(waits, next.Sub(clock.Now()))
		clock.Advance(next.Sub(clock.Now()) - time.Millisecond)
		_, ok := m.TryDialNext()
		require.False(t, ok, "due only after its back-off")
		clock.Advance(time.Millisecond)
	}
	s := time.Second
	require.Equal(t, []time.Duration{10 * s, 20 * s, 40 * s, 80 * s, 160 * s, 320 * s, 600 * s, 600 * s, 600 * s}, waits)
	require.Equal(t, 3, inFirstMinute, "dials in the minute after the first")

	// A connection just short of ShortConnection is still a hang-up; one
	// that lasts it starts the count again: MinRetryTime, then 10 s.
	next := dialAndDrop(t, m, clock, a, lifecycle.ShortConnection-time.Millisecond)
	require.Equal(t, 10*time.Minute, next.Sub(clock.Now()))
	clock.Advance(10 * time.Minute)
	next = dialAndDrop(t, m, clock, a, lifecycle.ShortConnection)
	require.Equal(t, time.Second, next.Sub(clock.Now()), "a connection of use resets the count")
	clock.Advance(time.Second)
	next = dialAndDrop(t, m, clock, a, time.Millisecond)
	require.Equal(t, 10*time.Second, next.Sub(clock.Now()))

	// A failed dial after hang-ups backs off as any failed dial does.
	clock.Advance(10 * time.Second)
	got, ok := m.TryDialNext()
	require.True(t, ok)
	m.DialFailed(got)
	require.Equal(t, clock.Now().Add(time.Second), m.NextDialTime())
	checkInvariants(t, m)
}

// TestHangUpBackoffInbound: an inbound connection that ends soon after
// the peer answered is a hang-up too (the book cannot tell who closed
// it); it delays our dial of the address the peer announced.
func TestHangUpBackoffInbound(t *testing.T) {
	clock := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MinRetryTime: time.Second}, Now: clock.Now})
	require.NoError(t, m.Accepted(nodeID(0), peerAddr(0)))
	m.Answered(nodeID(0))
	clock.Advance(time.Second)
	m.Disconnected(nodeID(0))
	require.Equal(t, clock.Now().Add(lifecycle.HangUpWait), m.NextDialTime())
	checkInvariants(t, m)
}

// TestHangUpBeforeAnswering: a peer that closes before answering may have
// displaced us for a newcomer (a full node does) and still knows what we
// need: it waits MinRetryTime, and its count of hang-ups neither grows nor
// starts again.
func TestHangUpBeforeAnswering(t *testing.T) {
	clock := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MinRetryTime: time.Second}, Now: clock.Now})
	addPeers(t, m, 0, 1)
	a := peerAddr(0)
	next := dialAndDrop(t, m, clock, a, time.Second)
	require.Equal(t, lifecycle.HangUpWait, next.Sub(clock.Now()))
	clock.Advance(lifecycle.HangUpWait)
	for range 3 {
		got, ok := m.TryDialNext()
		require.True(t, ok)
		require.NoError(t, m.Dialed(got))
		clock.Advance(time.Second)
		m.Disconnected(got.NodeID)
		require.Equal(t, clock.Now().Add(time.Second), m.NextDialTime())
		clock.Advance(time.Second)
	}
	next = dialAndDrop(t, m, clock, a, time.Second)
	require.Equal(t, 2*lifecycle.HangUpWait, next.Sub(clock.Now()), "the second hang-up after answering")
	checkInvariants(t, m)
}

// TestEvictionIsNoHangUp: a connection we asked the transport to close
// (EvictNext) is not the peer's hang-up, even after it answered: the peer waits only MinRetryTime,
// and its count of hang-ups stays as it was.
func TestEvictionIsNoHangUp(t *testing.T) {
	clock := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 2, MaxOutbound: 1, MinRetryTime: time.Second}, Now: clock.Now})
	// Peer 0 dials us, answers and hangs up: one hang-up on its count.
	require.NoError(t, m.Accepted(nodeID(0), peerAddr(0)))
	m.Answered(nodeID(0))
	m.Disconnected(nodeID(0))
	require.EqualValues(t, 1, m.peers.get(nodeID(0)).hangUps)
	clock.Advance(lifecycle.HangUpWait)
	// It dials us again; peer 1, better scored, fills the other slot;
	// peer 2 displaces peer 0, which we evict at once.
	require.NoError(t, m.Accepted(nodeID(1), peerAddr(1)))
	m.Good(nodeID(1))
	m.Good(nodeID(1))
	require.NoError(t, m.Accepted(nodeID(0), peerAddr(0)))
	m.Answered(nodeID(0))
	m.Served(nodeID(0))
	require.NoError(t, m.Accepted(nodeID(2), peerAddr(2)))
	victim, ok := m.EvictNext()
	require.True(t, ok)
	require.Equal(t, nodeID(0), victim)
	m.Disconnected(victim)
	checkInvariants(t, m)
	p := m.peers.get(victim)
	require.EqualValues(t, 1, p.hangUps, "our eviction counted as its hang-up")
	for _, ai := range m.extra.all(p) {
		require.Equal(t, m.stamp(clock.Now().Add(time.Second)), ai.retryAt, "an evicted peer waits MinRetryTime")
	}
}

// TestPersistentPeerHangUpBackoff: a persistent peer that hangs up is
// retried forever, on the same growing back-off, capped at MaxRetryTime.
func TestPersistentPeerHangUpBackoff(t *testing.T) {
	clock := newFakeClock()
	a := peerAddr(0)
	m := newPM(t, PeerManagerOptions{Options: Options{PersistentPeers: []NodeAddress{a}, MinRetryTime: time.Second, MaxRetryTime: time.Minute}, Now: clock.Now})
	var waits []time.Duration
	for range 6 {
		next := dialAndDrop(t, m, clock, a, time.Second)
		waits = append(waits, next.Sub(clock.Now()))
		clock.Advance(next.Sub(clock.Now()))
	}
	s := time.Second
	require.Equal(t, []time.Duration{10 * s, 20 * s, 40 * s, 60 * s, 60 * s, 60 * s}, waits)
	require.True(t, m.Has(a.NodeID))
}

// TestHangUpAnswerReadAfterClose: the answer of a peer that answers and
// hangs up at once may be read after the transport reported the close; it
// still counts, from the close. Once the peer is connected again, a late
// answer of the old connection counts nothing.
func TestHangUpAnswerReadAfterClose(t *testing.T) {
	clock := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MinRetryTime: time.Second}, Now: clock.Now})
	addPeers(t, m, 0, 1)
	got, ok := m.TryDialNext()
	require.True(t, ok)
	require.NoError(t, m.Dialed(got))
	clock.Advance(300 * time.Millisecond)
	closed := clock.Now()
	m.Disconnected(got.NodeID)
	require.Equal(t, closed.Add(time.Second), m.NextDialTime(), "no answer yet")
	checkInvariants(t, m)
	clock.Advance(50 * time.Millisecond)
	m.Answered(got.NodeID)
	require.Equal(t, closed.Add(lifecycle.HangUpWait), m.NextDialTime())
	m.Answered(got.NodeID)
	require.Equal(t, closed.Add(lifecycle.HangUpWait), m.NextDialTime(), "one answer, one hang-up")
	checkInvariants(t, m)

	// Connected again, it closes before answering; it reconnects before
	// the late answer is read, which then counts nothing.
	clock.Advance(lifecycle.HangUpWait)
	got, ok = m.TryDialNext()
	require.True(t, ok)
	require.NoError(t, m.Dialed(got))
	m.Disconnected(got.NodeID)
	clock.Advance(time.Second)
	got, ok = m.TryDialNext()
	require.True(t, ok)
	require.NoError(t, m.Dialed(got))
	m.Answered(got.NodeID) // this connection's answer
	clock.Advance(lifecycle.ShortConnection)
	m.Disconnected(got.NodeID)
	require.Equal(t, clock.Now().Add(time.Second), m.NextDialTime(), "a connection of use")
	require.Zero(t, m.peers.get(got.NodeID).hangUps)
	checkInvariants(t, m)
}
