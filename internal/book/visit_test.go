package book

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pexnet/pex/internal/lifecycle"
	"github.com/pexnet/pex/internal/testkit"
)

// TestDisplacedNewcomerStaysForItsAnswer: when a newcomer displaces an
// inbound peer that connected within lifecycle.FirstAnswerGrace and has
// not been answered, that peer stays, beside the slots, until it has its
// answer, and goes then; one already answered goes at once.
func TestDisplacedNewcomerStaysForItsAnswer(t *testing.T) {
	m, clk := fullOfInbound(t)
	clk.Advance(time.Millisecond)

	// Peer 1, the youngest, is displaced before we answered it: it stays.
	require.NoError(t, m.Accepted(nodeID(2), peerAddr(2)))
	_, ok := m.EvictNext()
	require.False(t, ok, "a displaced peer waiting for its first answer is not closed")
	require.True(t, m.Visitor(nodeID(1)))
	require.True(t, m.IsConnected(nodeID(2)))
	checkInvariants(t, m)

	// Answered, it goes; it is our doing, not its hang-up.
	m.Served(nodeID(1))
	id, ok := m.EvictNext()
	require.True(t, ok)
	require.Equal(t, nodeID(1), id)
	m.Disconnected(id)
	require.Zero(t, m.peers.get(id).hangUps)
	checkInvariants(t, m)

	// Peer 2, answered already, is displaced at once by the next.
	m.Served(nodeID(2))
	require.NoError(t, m.Accepted(nodeID(3), peerAddr(3)))
	id, ok = m.EvictNext()
	require.True(t, ok)
	require.Equal(t, nodeID(2), id)
	m.Disconnected(id)
	checkInvariants(t, m)
}

// TestVisitorLeavesAfterItsGrace: a displaced peer that does not ask goes
// once lifecycle.FirstAnswerGrace has passed since it connected, and the
// dial schedule wakes for it.
func TestVisitorLeavesAfterItsGrace(t *testing.T) {
	m, clk := fullOfInbound(t)
	clk.Advance(time.Second)
	require.NoError(t, m.Accepted(nodeID(2), peerAddr(2)))
	require.True(t, m.Visitor(nodeID(1)))
	require.Equal(t, clk.Now().Add(lifecycle.FirstAnswerGrace-time.Second), m.NextDialTime())
	clk.Advance(lifecycle.FirstAnswerGrace - time.Second - time.Millisecond)
	_, _ = m.TryDialNext()
	_, ok := m.EvictNext()
	require.False(t, ok, "within its grace")
	clk.Advance(time.Millisecond)
	_, _ = m.TryDialNext()
	id, ok := m.EvictNext()
	require.True(t, ok)
	require.Equal(t, nodeID(1), id)
	m.Disconnected(id)
	require.Zero(t, m.slots.Visiting())
	checkInvariants(t, m)
}

// TestVisitorsAreBounded: at most lifecycle.Slots.MaxVisitors displaced
// peers stay for their answer; past that, the displaced go at once.
func TestVisitorsAreBounded(t *testing.T) {
	m, clk := fullOfInbound(t)
	stayed, gone := 0, 0
	for i := 2; i < 20; i++ {
		clk.Advance(time.Millisecond)
		require.NoError(t, m.Accepted(nodeID(i), peerAddr(i)))
		if id, ok := m.EvictNext(); ok {
			m.Disconnected(id)
			gone++
		} else {
			stayed++
		}
		checkInvariants(t, m)
	}
	require.Equal(t, 8, m.slots.MaxVisitors(), "4 x MaxConnected")
	require.Equal(t, 8, stayed)
	require.Equal(t, 10, gone)
	require.Equal(t, 8, m.slots.Visiting())
	require.Equal(t, 2+8, m.slots.Active())
}

// fullOfInbound returns a book whose two connections (one may be
// outbound) are taken by inbound peers 0 and 1, connected at the clock's
// start, and its clock.
func fullOfInbound(t *testing.T) (*PeerManager, *testkit.Clock) {
	t.Helper()
	clk := newFakeClock()
	m := newPM(t, PeerManagerOptions{Options: Options{MaxConnected: 2, MaxOutbound: 1}, Now: clk.Now})
	require.NoError(t, m.Accepted(nodeID(0), peerAddr(0)))
	require.NoError(t, m.Accepted(nodeID(1), peerAddr(1)))
	return m, clk
}
