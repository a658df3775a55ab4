package cometbft_test

import (
	"testing"
	"time"

	"github.com/cometbft/cometbft/p2p"
	"github.com/stretchr/testify/require"

	"github.com/pexnet/pex"
	"github.com/pexnet/pex/cometbft/internal/testnet"
)

// seedWindow is the time after a pex node's first connection to the seed
// over which its connections are counted.
const seedWindow = time.Minute

// TestSeedModeHangUps runs a stock CometBFT v0.38 full node with
// seed_mode = true as the only seed (the config's seeds) of 3 pex full
// nodes, and counts, at the seed, each pex node's connections to it. A
// CometBFT seed answers an inbound peer's request and hangs up; pex
// redials a peer that hung up after answering on a growing back-off
// (lifecycle.HangUpWait, 10 s, then 20 s, ...), so each pex node may
// connect at most 3 times in the minute after its first connection
// (without the back-off it reconnected every 1.1-1.3 s, 15 to 24 times).
// The seed is the only validator and creates no empty blocks: the nodes
// are full nodes, and nothing else needs the CPU.
//
// It waits out that minute on the wall clock, polling (require.Eventually,
// require.Never): the nodes talk over real sockets, which testing/synctest
// cannot fake. It runs in parallel with TestV1SpacingTowardCometBFT.
func TestSeedModeHangUps(t *testing.T) {
	const n = 4
	checkLeaks := parallelNodeTest(t)
	nodes := newFullNodes(t, n, 1, func(i int) bool { return i > 0 })
	seed := nodes[0]
	seed.cfg.P2P.SeedMode = true
	seed.cfg.P2P.PexReactor = true
	for _, fn := range nodes {
		fn.cfg.Consensus.CreateEmptyBlocks = false
		if fn != seed {
			fn.cfg.P2P.PersistentPeers = ""
			fn.cfg.P2P.Seeds = p2p.IDAddressString(seed.id, seed.addr)
		}
	}
	for _, fn := range nodes {
		fn.build(t, 0) // the seed keeps CometBFT's defaults
	}
	for _, fn := range nodes[1:] {
		require.Equal(t, []pex.NodeAddress{mustParse(t, "mconn://"+string(seed.id)+"@"+seed.addr)}, fn.px.Seeds())
	}
	stopAll := startNodes(t, nodes)

	// dials returns when each pex node dialled the seed (the seed's
	// inbound connections), by node index.
	dials := func() map[int][]time.Time {
		byID := make(map[p2p.ID]int)
		for _, fn := range nodes[1:] {
			byID[fn.id] = fn.index
		}
		out := make(map[int][]time.Time)
		for _, c := range seed.watch.Added() {
			if i, ok := byID[c.Peer]; ok && !c.Outbound {
				out[i] = append(out[i], c.At)
			}
		}
		return out
	}
	// inWindow counts the dials within seedWindow of the first.
	inWindow := func(at []time.Time) int {
		k := 0
		for _, a := range at {
			if a.Sub(at[0]) <= seedWindow {
				k++
			}
		}
		return k
	}
	require.Eventually(t, func() bool { return len(dials()) == n-1 }, 20*time.Second, 20*time.Millisecond,
		"not every pex node dialled the seed")
	var last time.Time
	for _, at := range dials() {
		if at[0].After(last) {
			last = at[0]
		}
	}
	require.Never(t, func() bool {
		for _, at := range dials() {
			if inWindow(at) > 3 {
				return true
			}
		}
		return false
	}, time.Until(last.Add(seedWindow)), 100*time.Millisecond, "a pex node dialled the seed more than 3 times in a minute")

	got := dials()
	for _, fn := range nodes[1:] {
		at := got[fn.index]
		offsets := make([]time.Duration, len(at))
		for k, a := range at {
			offsets[k] = a.Sub(at[0]).Round(100 * time.Millisecond)
		}
		t.Logf("pex node %d dialled the seed %d times in the minute after its first dial (at %v)", fn.index, inWindow(at), offsets)
		require.LessOrEqual(t, inWindow(at), 3, "pex node %d", fn.index)
	}
	crawled := 0
	for _, c := range seed.watch.Added() {
		if c.Outbound {
			crawled++
		}
	}
	t.Logf("the seed dialled pex nodes %d times (its crawl)", crawled)

	// The seed is of use: every pex node learns the others.
	for _, fn := range nodes[1:] {
		for _, o := range nodes[1:] {
			require.True(t, o == fn || fn.px.PeerManager().Has(pex.NodeID(o.id)), "pex node %d does not know pex node %d", fn.index, o.index)
		}
	}
	for _, fn := range nodes {
		for _, r := range fn.watch.Removals() {
			require.False(t, testnet.IsMisbehaviour(r.Reason), "node %d stopped peer %s: %v", fn.index, r.Peer, r.Reason)
		}
		if fn.pex {
			require.Zero(t, fn.px.Reactor().Stats().PeerErrors, "pex node %d reported peer errors", fn.index)
		}
	}

	stopAll()
	checkLeaks()
}

func mustParse(t *testing.T, s string) pex.NodeAddress {
	t.Helper()
	a, err := pex.ParseNodeAddress(s)
	require.NoError(t, err)
	return a
}
