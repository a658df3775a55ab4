package cometbft_test

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/cometbft/cometbft/p2p"
	"github.com/stretchr/testify/require"

	"github.com/pexnet/pex"
	"github.com/pexnet/pex/cometbft/internal/testnet"
)

// The tests of this file run real CometBFT switches over loopback TCP,
// which testing/synctest cannot fake: they wait on the wall clock, polling
// on a deadline (require.Eventually, require.Never, WaitGoroutines),
// never sleeping.

// startNetwork builds, bootstraps and starts a network, stopped by the
// test's cleanup, which also waits for CometBFT's stray goroutines to end.
func startNetwork(t *testing.T, kinds []testnet.Kind, topo testnet.Topology, opts testnet.Options, setup ...func(*testnet.Network)) *testnet.Network {
	t.Helper()
	base := runtime.NumGoroutine()
	opts.Dir = t.TempDir()
	nw, err := testnet.New(kinds, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		nw.Stop()
		require.True(t, testnet.WaitGoroutines(base, 10*time.Second), "goroutines still running after the network stopped")
	})
	require.NoError(t, nw.Bootstrap(topo))
	for _, f := range setup {
		f(nw)
	}
	require.NoError(t, nw.Start())
	return nw
}

// startParallelNetwork is startNetwork for a test that runs in parallel
// with the full-node tests (parallelNodeTest), which look for leaks once
// all of them have stopped, rather than by counting goroutines.
func startParallelNetwork(t *testing.T, kinds []testnet.Kind, topo testnet.Topology, opts testnet.Options) *testnet.Network {
	t.Helper()
	checkLeaks := parallelNodeTest(t)
	opts.Dir = t.TempDir()
	nw, err := testnet.New(kinds, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		nw.Stop()
		checkLeaks()
	})
	require.NoError(t, nw.Bootstrap(topo))
	require.NoError(t, nw.Start())
	return nw
}

// requireWellBehaved fails if any CometBFT book banned a node, any node
// stopped a peer for a PEX violation, or a pex node reported a peer error.
func requireWellBehaved(t *testing.T, nw *testnet.Network) {
	t.Helper()
	require.Empty(t, nw.Banned())
	require.Empty(t, nw.Misbehaviour())
	for _, n := range nw.Nodes {
		if n.Kind == testnet.Pex {
			require.Zero(t, n.Adapter.Stats().PeerErrors, "node %d reported peer errors", n.Index)
		}
	}
}

// TestMixedNetwork runs CometBFT's PEX reactor and pex side by side on
// real switches, half the nodes each: every book must end up holding
// every node, and no node may be banned or stopped for a PEX violation,
// then or in the seconds after, while CometBFT keeps asking every 250 ms.
func TestMixedNetwork(t *testing.T) {
	for _, topo := range []testnet.Topology{testnet.Chain, testnet.Star} {
		t.Run(string(topo), func(t *testing.T) {
			const n = 10
			kinds := make([]testnet.Kind, n)
			for i := range kinds {
				kinds[i] = testnet.Kind(i % 2) // CometBFT (the star's hub), pex, CometBFT, ...
			}
			start := time.Now()
			nw := startNetwork(t, kinds, topo, testnet.Options{Period: 250 * time.Millisecond, Seed: 1})
			require.Eventually(t, nw.Converged, 60*time.Second, 20*time.Millisecond, "books still miss %d entries", nw.Missing())
			t.Logf("%s of %d nodes (half CometBFT, half pex): every book holds every node after %s", topo, n, time.Since(start).Round(time.Millisecond))
			requireWellBehaved(t, nw)
			require.Never(t, func() bool { return len(nw.Banned())+len(nw.Misbehaviour()) > 0 }, 2*time.Second, 50*time.Millisecond)
			requireWellBehaved(t, nw)

			var v2 int64
			for _, node := range nw.Nodes {
				c := node.Meter.Counts()
				if node.Kind == testnet.CometBFT {
					require.Zero(t, c.RequestsV2, "CometBFT node %d received V2 requests", node.Index)
				}
				v2 += c.RequestsV2
			}
			// pex nodes know each other by the capability channel.
			require.NotZero(t, v2, "no pex node asked another in V2")
		})
	}
}

// TestV1SpacingTowardCometBFT has a pex node that would ask every 200 ms
// if it could poll a CometBFT node at CometBFT's default 30 s period, which
// bans a peer asking more than once per 10 s. pex asks once per 11 s
// (Config.V1RequestInterval): CometBFT lets the first two requests pass
// and checks from the third on, so the test runs until it has had three
// (22 s, in parallel with the full-node tests).
func TestV1SpacingTowardCometBFT(t *testing.T) {
	eager := pex.Config{MinInterval: 200 * time.Millisecond, SaturatedInterval: 200 * time.Millisecond, MaxInterval: 200 * time.Millisecond}
	nw := startParallelNetwork(t, []testnet.Kind{testnet.CometBFT, testnet.Pex}, testnet.Chain,
		testnet.Options{Period: 30 * time.Second, Pex: eager, Seed: 2})
	comet, px := nw.Nodes[0], nw.Nodes[1]
	require.Eventually(t, func() bool { return comet.Meter.Counts().Requests >= 3 }, 40*time.Second, 50*time.Millisecond)
	requireWellBehaved(t, nw)
	require.Zero(t, comet.Meter.Counts().RequestsV2)
	require.Equal(t, 1, comet.Watch.Connections(), "the pex node was disconnected and came back")
	require.Equal(t, []pex.NodeID{comet.ID}, px.PM.Connected())
	require.Zero(t, px.Adapter.Stats().Timeouts)
}

// TestLargeCometBFTBook: a CometBFT node whose book holds 500 addresses
// answers with 115 (23% of its book), more than the 100 pex accepts from
// a peer. The adapter keeps the first 100 of a CometBFT node's answer, so
// the honest node is not disconnected.
func TestLargeCometBFTBook(t *testing.T) {
	fill := func(nw *testnet.Network) {
		book := nw.Nodes[0].Book
		for i := range 500 {
			// Loopback addresses nobody listens on: CometBFT dials some.
			a := p2p.NewNetAddressIPPort(net.IPv4(127, byte(200+i%50), byte(i/50+1), 7), 9)
			a.ID = p2p.ID(fmt.Sprintf("%040x", 0xf00000+i))
			require.NoError(t, book.AddAddress(a, nw.Nodes[0].Addr))
		}
		require.Greater(t, book.Size()*23/100, pex.MaxAddresses)
	}
	// One outbound connection each: the pex node dials the CometBFT node
	// and nothing else, the CometBFT node dials one address at a time.
	nw := startNetwork(t, []testnet.Kind{testnet.CometBFT, testnet.Pex}, testnet.Chain,
		testnet.Options{Period: 30 * time.Second, MaxOutbound: 1, Seed: 3}, fill)
	px := nw.Nodes[1]
	require.Eventually(t, func() bool { return px.Adapter.Stats().Responses >= 1 }, 20*time.Second, 20*time.Millisecond)
	st := px.Adapter.Stats()
	require.Equal(t, 1, st.Responses)
	require.Zero(t, st.InvalidEntries)
	require.LessOrEqual(t, st.AddressesReceived, pex.MaxAddresses)
	require.Greater(t, st.AddressesReceived, pex.MaxAddresses*9/10) // at most our own address is left out
	requireWellBehaved(t, nw)
	require.Equal(t, []pex.NodeID{nw.Nodes[0].ID}, px.PM.Connected())
}
