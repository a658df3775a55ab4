package pex

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pexnet/pex/internal/testkit"
	"github.com/pexnet/pex/pb"
)

// testNode is one node of a multi-node test on a MemoryNetwork.
type testNode struct {
	id      NodeID
	addr    NodeAddress
	pm      *PeerManager
	mem     *MemoryNode
	reactor *Reactor
	sent    *sendLog
}

// sendLog is a Channel that records what its node sends.
type sendLog struct {
	Channel
	// v1Only makes the node send V1 requests only, as a CometBFT node does.
	v1Only bool
	mu     sync.Mutex
	sent   []sentMsg
}

type sentMsg struct {
	at   time.Time
	to   NodeID
	kind string // see testkit.KindOf
}

func (l *sendLog) Send(ctx context.Context, e Envelope) error {
	if l.v1Only && bytes.Equal(e.Message, v2Request) {
		e.Message = v1Request
	}
	kind := "undecodable"
	var msg pb.PexMessage
	if proto.Unmarshal(e.Message, &msg) == nil {
		kind = testkit.KindOf(&msg)
	}
	l.mu.Lock()
	l.sent = append(l.sent, sentMsg{at: time.Now(), to: e.To, kind: kind})
	l.mu.Unlock()
	return l.Channel.Send(ctx, e)
}

func (l *sendLog) to(id NodeID) []sentMsg {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []sentMsg
	for _, m := range l.sent {
		if m.to == id {
			out = append(out, m)
		}
	}
	return out
}

// nodeID returns a deterministic node ID for test node i.
func nodeID(i int) NodeID {
	return NodeID(fmt.Sprintf("%040x", i+1))
}

type testNet struct {
	t     *testing.T
	ctx   context.Context
	net   *MemoryNetwork
	nodes []*testNode
	seed  uint64
}

func newTestNet(t *testing.T) *testNet {
	return &testNet{t: t, ctx: t.Context(), net: NewMemoryNetwork()}
}

type nodeSpec struct {
	v1Only    bool // a CometBFT-like node: V1 address, no CapV2
	maxPeers  int
	bootstrap []int // nodes it knows at start
	cfg       Config
}

// add starts node i of the network: PeerManager, memory node, dialer and
// reactor, all stopped by the test's cleanup.
func (tn *testNet) add(spec nodeSpec) *testNode {
	t := tn.t
	i := len(tn.nodes)
	id := nodeID(i)
	caps := CapV2
	if spec.v1Only {
		caps = 0
	}
	// V1 answers carry IPs: give every node one so V1 peers learn them all.
	addr := NodeAddress{Protocol: ProtocolMConn, NodeID: id, Hostname: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), Port: 26656}
	tn.seed++
	pm, err := NewPeerManager(id, PeerManagerOptions{
		SelfAddresses: []NodeAddress{addr},
		MaxPeers:      spec.maxPeers,
		MaxConnected:  10,
		MaxOutbound:   3,
		Rand:          rand.New(rand.NewPCG(tn.seed, 7)),
	})
	require.NoError(t, err)
	for _, b := range spec.bootstrap {
		_, err := pm.Add(tn.nodes[b].addr)
		require.NoError(t, err)
	}
	mem, err := tn.net.AddNode(pm, MemoryNodeOptions{Caps: caps})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(tn.ctx)
	sub := pm.Subscribe(ctx)
	log := &sendLog{Channel: mem, v1Only: spec.v1Only}
	r, err := NewReactor(spec.cfg, pm, sub.Updates(), log)
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		mem.RunDialer(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		r.Stop()
		<-done
	})
	n := &testNode{id: id, addr: addr, pm: pm, mem: mem, reactor: r, sent: log}
	tn.nodes = append(tn.nodes, n)
	return n
}

// knowsAll reports whether every node's book holds every other node.
func (tn *testNet) knowsAll() bool {
	for _, n := range tn.nodes {
		for _, m := range tn.nodes {
			if n != m && !n.pm.Has(m.id) {
				return false
			}
		}
	}
	return true
}

// runUntil advances the bubble's clock in steps until cond holds or limit
// passes, and returns the virtual time it took.
func runUntil(t *testing.T, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("condition not reached within %s of virtual time", limit)
		}
		time.Sleep(100 * time.Millisecond) // virtual time, inside a synctest bubble
		synctest.Wait()
	}
	return time.Since(start)
}

func TestNetworkRingOfFourLearnsEveryone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t)
		for i := range 4 {
			spec := nodeSpec{}
			if i > 0 {
				spec.bootstrap = []int{i - 1}
			}
			tn.add(spec)
		}
		// Close the ring: node 0 knows node 3.
		_, err := tn.nodes[0].pm.Add(tn.nodes[3].addr)
		require.NoError(t, err)
		took := runUntil(t, time.Minute, tn.knowsAll)
		t.Logf("ring of 4 converged in %s virtual time", took)
		for _, n := range tn.nodes {
			require.Empty(t, n.mem.PeerErrors(), "node %s", n.id)
		}
	})
}

// requireNoPeerErrors asserts that no node reported a peer error.
func (tn *testNet) requireNoPeerErrors() {
	for _, n := range tn.nodes {
		require.Empty(tn.t, n.mem.PeerErrors(), "peer errors on node %s", n.id)
	}
}

func TestNetworkGrowsFromFiveToFifteen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t)
		tn.add(nodeSpec{})
		for i := 1; i < 5; i++ {
			tn.add(nodeSpec{bootstrap: []int{i - 1}})
		}
		runUntil(t, time.Minute, tn.knowsAll)
		// Ten newcomers, each knowing only one existing node, chosen
		// deterministically among the older ones.
		for i := 5; i < 15; i++ {
			tn.add(nodeSpec{bootstrap: []int{(i * 7) % 5}})
			time.Sleep(time.Second)
		}
		defer func() {
			if t.Failed() {
				for _, n := range tn.nodes {
					t.Logf("%s knows %d connected %v stats %+v", n.id[36:], n.pm.Len(), n.mem.Peers(), n.reactor.Stats())
				}
			}
		}()
		took := runUntil(t, 5*time.Minute, tn.knowsAll)
		t.Logf("15 nodes know each other %s after the last joined", took)
		for _, n := range tn.nodes {
			require.Equal(t, 14, n.pm.Len(), "node %s", n.id)
			require.GreaterOrEqual(t, n.reactor.NetworkSizeEstimate(), 14)
		}
		tn.requireNoPeerErrors()
	})
}

func TestNetworkSmallBookFills(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t)
		for i := range 12 {
			spec := nodeSpec{}
			if i > 0 {
				spec.bootstrap = []int{i - 1}
			}
			tn.add(spec)
		}
		small := tn.add(nodeSpec{maxPeers: 4, bootstrap: []int{0}})
		runUntil(t, 2*time.Minute, func() bool { return small.pm.PeerRatio() >= 0.9 })
		// Only connected peers may run it over capacity.
		require.LessOrEqual(t, small.pm.Len(), 4+len(small.mem.Peers()))
		// A full book polls at the long interval.
		runUntil(t, time.Minute, func() bool {
			return small.reactor.Stats().Interval == DefaultConfig().MaxInterval
		})
		tn.requireNoPeerErrors()
	})
}

func TestNetworkMixedV1AndV2Peers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tn := newTestNet(t)
		// Node 1 behaves like a CometBFT node: it announces no V2
		// capability, so pex must speak V1 to it, slowly.
		tn.add(nodeSpec{})
		tn.add(nodeSpec{v1Only: true, bootstrap: []int{0}})
		tn.add(nodeSpec{bootstrap: []int{1}})
		tn.add(nodeSpec{bootstrap: []int{2}})
		tn.add(nodeSpec{v1Only: true, bootstrap: []int{3}})
		took := runUntil(t, 10*time.Minute, tn.knowsAll)
		t.Logf("mixed network converged in %s", took)
		time.Sleep(5 * time.Minute) // keep polling, so V1 peers are asked repeatedly
		tn.requireNoPeerErrors()
		gaps := 0
		for _, v1 := range tn.nodes {
			if !v1.sent.v1Only {
				continue
			}
			for _, n := range tn.nodes {
				var last time.Time
				for _, m := range n.sent.to(v1.id) {
					require.NotContains(t, []string{"v2req", "v2resp"}, m.kind, "%s sent V2 to the V1 peer", n.id)
					if m.kind != "v1req" {
						continue
					}
					if !last.IsZero() {
						require.GreaterOrEqual(t, m.at.Sub(last), CometBFTMinReceiveInterval, "%s asked a V1 peer too soon", n.id)
						gaps++
					}
					last = m.at
				}
			}
		}
		require.Positive(t, gaps, "some V1 peer was asked more than once")
		// V2 peers still speak V2 to each other.
		var v2Requests int
		for _, from := range tn.nodes {
			for _, to := range tn.nodes {
				if from.sent.v1Only || to.sent.v1Only {
					continue
				}
				for _, m := range from.sent.to(to.id) {
					if m.kind == "v2req" {
						v2Requests++
					}
				}
			}
		}
		require.Positive(t, v2Requests)
	})
}

func TestMemoryNetworkAnnouncesListenAddress(t *testing.T) {
	// No reactors: only the handshake can tell a where b listens.
	net := NewMemoryNetwork()
	var nodes [2]*MemoryNode
	var addrs [2]NodeAddress
	for i := range nodes {
		addrs[i] = NodeAddress{Protocol: ProtocolMemory, NodeID: nodeID(i)}
		pm, err := NewPeerManager(nodeID(i), PeerManagerOptions{SelfAddresses: []NodeAddress{addrs[i]}})
		require.NoError(t, err)
		nodes[i], err = net.AddNode(pm, MemoryNodeOptions{Caps: CapV2})
		require.NoError(t, err)
	}
	require.NoError(t, nodes[1].Dial(addrs[0]))
	require.Equal(t, []NodeAddress{addrs[1]}, nodes[0].PeerManager().Addresses(nodeID(1)))
	require.ErrorIs(t, nodes[1].Send(t.Context(), Envelope{To: nodeID(5)}), ErrNotConnected)
	nodes[1].Close()
	require.Empty(t, nodes[0].Peers())
	nodes[0].Close()
}
