package pex

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pexnet/pex/internal/testkit"
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

// checkInvariants verifies the book's invariants (its Check).
func checkInvariants(t testing.TB, m *PeerManager) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	require.NoError(t, m.b.Check())
}

// recv reads one update; in a synctest bubble a missing update deadlocks
// the bubble, which fails the test.
func recv(t *testing.T, s *PeerUpdates) PeerUpdate {
	t.Helper()
	u, ok := <-s.Updates()
	require.True(t, ok, "subscription closed")
	return u
}

func requireNoUpdate(t *testing.T, s *PeerUpdates) {
	t.Helper()
	synctest.Wait()
	select {
	case u, ok := <-s.Updates():
		t.Fatalf("unexpected update %+v (open %v)", u, ok)
	default:
	}
}

func TestDialNextBlocksUntilAdd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newPM(t, PeerManagerOptions{})
		type result struct {
			a   NodeAddress
			err error
		}
		done := make(chan result, 1)
		go func() {
			a, err := m.DialNext(context.Background())
			done <- result{a, err}
		}()
		synctest.Wait()
		select {
		case r := <-done:
			t.Fatalf("DialNext returned %v on an empty book", r)
		default:
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		require.Empty(t, done)

		_, err := m.Add(peerAddr(3))
		require.NoError(t, err)
		synctest.Wait()
		r := <-done
		require.NoError(t, r.err)
		require.Equal(t, peerAddr(3), r.a)
		require.True(t, m.IsConnected(nodeID(3)), "marked dialing")
	})
}

func TestDialNextWakesAfterBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newPM(t, PeerManagerOptions{MinRetryTime: 5 * time.Second})
		addPeers(t, m, 0, 1)
		m.DialFailed(peerAddr(0))
		start := time.Now()
		done := make(chan NodeAddress, 1)
		go func() {
			a, err := m.DialNext(context.Background())
			if err == nil {
				done <- a
			}
		}()
		time.Sleep(5*time.Second - time.Millisecond)
		synctest.Wait()
		require.Empty(t, done)
		a := <-done
		require.Equal(t, peerAddr(0), a)
		require.Equal(t, 5*time.Second, time.Since(start))
	})
}

func TestDialNextWakesOnDisconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newPM(t, PeerManagerOptions{MaxConnected: 1})
		addPeers(t, m, 0, 2)
		first, err := m.DialNext(context.Background())
		require.NoError(t, err)
		require.NoError(t, m.Dialed(first))
		done := make(chan NodeAddress, 1)
		go func() {
			a, err := m.DialNext(context.Background())
			if err == nil {
				done <- a
			}
		}()
		time.Sleep(time.Minute)
		synctest.Wait()
		require.Empty(t, done, "at MaxConnected")
		m.Disconnected(first.NodeID)
		a := <-done
		require.NotEqual(t, first, a, "%s just disconnected and cools down", first)
	})
}

func TestDialNextCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newPM(t, PeerManagerOptions{})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := m.DialNext(ctx)
			errc <- err
		}()
		synctest.Wait()
		require.Empty(t, errc)
		cancel()
		require.ErrorIs(t, <-errc, context.Canceled)

		ctx, cancel = context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := m.DialNext(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestSubscribeUpAndDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		m := newPM(t, PeerManagerOptions{})
		s1 := m.Subscribe(ctx)
		s2 := m.Subscribe(ctx)

		require.NoError(t, m.Accepted(nodeID(1)))
		requireNoUpdate(t, s1)
		m.Ready(nodeID(1), CapV2)
		for _, s := range []*PeerUpdates{s1, s2} {
			require.Equal(t, PeerUpdate{NodeID: nodeID(1), Status: PeerStatusUp, Caps: CapV2}, recv(t, s))
		}
		m.Ready(nodeID(1), CapV2)
		requireNoUpdate(t, s1)

		m.Disconnected(nodeID(1))
		for _, s := range []*PeerUpdates{s1, s2} {
			require.Equal(t, PeerUpdate{NodeID: nodeID(1), Status: PeerStatusDown}, recv(t, s))
		}
		m.Disconnected(nodeID(1))
		requireNoUpdate(t, s1)

		// Down only after Up: a connection that never became ready.
		require.NoError(t, m.Accepted(nodeID(2)))
		m.Disconnected(nodeID(2))
		require.NoError(t, m.Dialed(peerAddr(3)))
		m.Disconnected(nodeID(3))
		// Ready of a peer that is not connected is ignored.
		m.Ready(nodeID(3), 0)
		m.Ready(nodeID(99), 0)
		requireNoUpdate(t, s1)
		requireNoUpdate(t, s2)

		require.NoError(t, m.Dialed(peerAddr(3)))
		m.Ready(nodeID(3), 0)
		require.Equal(t, PeerUpdate{NodeID: nodeID(3), Status: PeerStatusUp}, recv(t, s1))
		require.Equal(t, PeerUpdate{NodeID: nodeID(3), Status: PeerStatusUp}, recv(t, s2))
	})
}

func TestSubscribeReplaysReadyPeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		m := newPM(t, PeerManagerOptions{})
		for _, i := range []int{5, 2, 7} {
			require.NoError(t, m.Accepted(nodeID(i)))
		}
		m.Ready(nodeID(5), CapV2)
		m.Ready(nodeID(2), 0)
		// 7 connected but not ready: no replay.

		s := m.Subscribe(ctx)
		require.Equal(t, PeerUpdate{NodeID: nodeID(2), Status: PeerStatusUp}, recv(t, s))
		require.Equal(t, PeerUpdate{NodeID: nodeID(5), Status: PeerStatusUp, Caps: CapV2}, recv(t, s))
		requireNoUpdate(t, s)
		m.Ready(nodeID(7), CapV2)
		require.Equal(t, PeerUpdate{NodeID: nodeID(7), Status: PeerStatusUp, Caps: CapV2}, recv(t, s))
	})
}

func TestSubscribeClosesOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newPM(t, PeerManagerOptions{})
		ctx, cancel := context.WithCancel(context.Background())
		s := m.Subscribe(ctx)
		require.NoError(t, m.Accepted(nodeID(1)))
		m.Ready(nodeID(1), 0) // queued, never read
		synctest.Wait()
		cancel()
		for range s.Updates() {
		}
		synctest.Wait()
		m.mu.Lock()
		subs := len(m.subs)
		m.mu.Unlock()
		require.Zero(t, subs, "unsubscribed")
		m.Disconnected(nodeID(1)) // no one to tell; must not block

		// A context that is already done gives a closed subscription.
		s = m.Subscribe(ctx)
		_, ok := <-s.Updates()
		require.False(t, ok)
	})
}

func TestSubscribeSlowReaderNeverBlocksManager(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		m := newPM(t, PeerManagerOptions{MaxConnected: 1000})
		slow := m.Subscribe(ctx)
		const peers, rounds = 50, 20
		var want []PeerUpdate
		for r := range rounds {
			for i := range peers {
				require.NoError(t, m.Accepted(nodeID(i)))
				m.Ready(nodeID(i), PeerCaps(r%2))
				want = append(want, PeerUpdate{NodeID: nodeID(i), Status: PeerStatusUp, Caps: PeerCaps(r % 2)})
			}
			for i := range peers {
				m.Disconnected(nodeID(i))
				want = append(want, PeerUpdate{NodeID: nodeID(i), Status: PeerStatusDown})
			}
		}
		got := make([]PeerUpdate, 0, len(want))
		for range want {
			got = append(got, recv(t, slow))
		}
		require.Equal(t, want, got)
		requireNoUpdate(t, slow)
	})
}

// TestSubscribeRacesWithReady subscribes while other goroutines publish:
// no subscriber may block, and each must see a consistent stream (Up and
// Down alternate, starting with Up).
func TestSubscribeRacesWithReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newPM(t, PeerManagerOptions{MaxConnected: 100})
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for range 300 {
					id := nodeID(g)
					if m.Accepted(id) == nil {
						m.Ready(id, 0)
						m.Disconnected(id)
					}
				}
			})
		}
		var subs []*PeerUpdates
		for range 300 {
			subs = append(subs, m.Subscribe(ctx))
		}
		wg.Wait()
		synctest.Wait()
		cancel()
		for _, s := range subs {
			up := map[NodeID]bool{}
			for u := range s.Updates() {
				switch u.Status {
				case PeerStatusUp:
					require.False(t, up[u.NodeID], "Up twice for %s", u.NodeID)
					up[u.NodeID] = true
				case PeerStatusDown:
					require.True(t, up[u.NodeID], "Down before Up for %s", u.NodeID)
					up[u.NodeID] = false
				}
			}
		}
	})
}

func TestPeerManagerConcurrency(t *testing.T) {
	clock := newFakeClock()
	const ids = 120
	m := newPM(t, PeerManagerOptions{
		MaxPeers:            64,
		MaxConnected:        8,
		MaxOutbound:         4,
		MaxAddressesPerPeer: 2,
		MaxDialFailures:     3,
		Now:                 clock.Now,
		SelfAddresses:       []NodeAddress{selfAddr("11.0.0.200", 26656)},
		PersistentPeers:     []NodeAddress{peerAddr(0)},
		PrivatePeers:        []NodeID{nodeID(1)},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 99))
			for range 3000 {
				i := r.IntN(ids)
				id := nodeID(i)
				switch r.IntN(13) {
				case 0, 1:
					_, _ = m.Add(peerAddrPort(i, uint16(26656+r.IntN(3))))
				case 2:
					out := m.Advertise(id, 10)
					if len(out) > 10 {
						panic("over limit")
					}
				case 3:
					if a, ok := m.TryDialNext(); ok {
						if r.IntN(2) == 0 {
							m.DialFailed(a)
						} else if m.Dialed(a) == nil {
							m.Ready(a.NodeID, CapV2)
						}
					}
				case 4:
					m.DialFailed(peerAddr(i))
				case 5:
					_ = m.Dialed(peerAddr(i))
				case 6:
					m.Disconnected(id)
				case 7:
					m.Errored(PeerError{NodeID: id, Fatal: r.IntN(2) == 0})
				case 8:
					if m.Accepted(id) == nil {
						m.Ready(id, 0)
					}
				case 9:
					m.Good(id)
				case 10:
					if id, ok := m.EvictNext(); ok {
						m.Disconnected(id)
					}
				case 11:
					_ = m.PeerRatio()
					_ = m.Known()
					_ = m.Connected()
					_ = m.NextDialTime()
				case 12:
					clock.Advance(time.Second)
					sctx, scancel := context.WithCancel(ctx)
					s := m.Subscribe(sctx)
					scancel()
					for range s.Updates() {
					}
				}
			}
		})
	}
	wg.Wait()

	checkInvariants(t, m)
	// Connected peers (at most MaxConnected) may hold the book over
	// MaxPeers until they leave; so may the persistent one.
	require.LessOrEqual(t, m.Len(), 64+8+1)
	known := m.Known()
	require.NotContains(t, known, selfID)
	require.True(t, slices.IsSorted(known))
	require.Len(t, slices.Compact(slices.Clone(known)), len(known))
	require.True(t, m.Has(nodeID(0)), "persistent peer kept")
	for _, a := range m.Advertise(nodeID(2), 1000) {
		require.NotEqual(t, nodeID(1), a.NodeID, "private peer advertised")
	}

	// Disconnecting everyone frees every connection slot.
	for _, id := range known {
		m.Disconnected(id)
	}
	checkInvariants(t, m)
	m.mu.Lock()
	require.Zero(t, m.b.Active())
	m.mu.Unlock()
	require.Empty(t, m.Connected())
}

func TestSubscriptionQueueStaysBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newPM(t, PeerManagerOptions{MaxConnected: 4})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		sub := m.Subscribe(ctx)
		// Peer 1 is up before the reader stalls; 2 and 3 churn while it
		// stalls; 4 ends up.
		require.NoError(t, m.Accepted(nodeID(1)))
		m.Ready(nodeID(1), CapV2)
		first := <-sub.Updates()
		require.Equal(t, PeerUpdate{NodeID: nodeID(1), Status: PeerStatusUp, Caps: CapV2}, first)
		for range 5000 {
			for _, i := range []int{1, 2, 3} {
				m.Disconnected(nodeID(i))
				require.NoError(t, m.Accepted(nodeID(i)))
				m.Ready(nodeID(i), 0)
			}
			m.Disconnected(nodeID(2))
			m.Disconnected(nodeID(3))
		}
		require.NoError(t, m.Accepted(nodeID(4)))
		m.Ready(nodeID(4), CapV2)
		sub.mu.Lock()
		queued := len(sub.queue)
		sub.mu.Unlock()
		require.Positive(t, queued)
		require.Less(t, queued, 2*(4+subQueueSlack)+4, "bounded by peers, not churn")
		// What the reader then sees is consistent: 1 went down and came back
		// up (with its latest caps), 4 came up, 2 and 3 are not reported up.
		state := map[NodeID]PeerStatus{nodeID(1): PeerStatusUp}
		for drained := false; !drained; {
			synctest.Wait() // the pump is now blocked sending, or idle
			select {
			case u := <-sub.Updates():
				require.NotEqual(t, state[u.NodeID], u.Status, "updates of a peer alternate")
				state[u.NodeID] = u.Status
			default:
				drained = true
			}
		}
		require.Equal(t, PeerStatusUp, state[nodeID(1)])
		require.Equal(t, PeerStatusUp, state[nodeID(4)])
		require.NotEqual(t, PeerStatusUp, state[nodeID(2)])
		require.NotEqual(t, PeerStatusUp, state[nodeID(3)])
	})
}

// sybilAddr is the i-th address of the sybil subnet 66.66.0.0/16.
func sybilAddr(i int) NodeAddress {
	a, err := NodeAddressFromIP(nodeID(1_000_000+i), netip.AddrFrom4([4]byte{66, 66, byte(i >> 8), byte(i)}), 26656)
	if err != nil {
		panic(err)
	}
	return a
}
