package sim

import (
	"net/netip"
	"testing"
	"time"

	"github.com/pexnet/pex"
	"github.com/pexnet/pex/pb"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// small runs a scenario on a network small enough for CI.
func small(t *testing.T, o Options) *Result {
	t.Helper()
	if o.Nodes == 0 {
		o.Nodes = 60
	}
	if o.Limit == 0 {
		o.Limit = 30 * time.Minute
		if adversarial(o.Scenario) {
			o.Limit = 2 * time.Minute // enough to see what the attack does
		}
	}
	r, err := Run(o)
	require.NoError(t, err)
	return r
}

// The golden runs pin every scenario across processes; this checks, within
// one process, the whole Result (the coverage curve too) on the plain path
// and on the attackers' path.
func TestSameSeedSameRun(t *testing.T) {
	for _, scenario := range []string{ScenarioCold, ScenarioSybil} {
		t.Run(scenario, func(t *testing.T) {
			a := small(t, Options{Scenario: scenario, Seed: 7})
			b := small(t, Options{Scenario: scenario, Seed: 7})
			for _, r := range []*Result{a, b, a.Reference, b.Reference} {
				if r != nil {
					r.WallSeconds, r.PeakHeapMB = 0, 0
				}
			}
			require.Equal(t, a, b, "a run is a function of its options")
		})
	}
	a := small(t, Options{Seed: 7})
	c := small(t, Options{Seed: 8})
	require.NotEqual(t, a.Curve, c.Curve, "the seed matters")
}

func TestColdStartEveryoneLearnsEveryone(t *testing.T) {
	for _, p := range []Policy{PolicyPex, PolicyBaseline} {
		r := small(t, Options{Policy: p, Nodes: 120})
		require.Equal(t, 120, r.Measured)
		for i := range Thresholds {
			require.Positive(t, r.Worst[i].Rounds, "%s: threshold %v reached", p, Thresholds[i])
			require.LessOrEqual(t, r.Avg[i].Rounds, r.Worst[i].Rounds)
			require.LessOrEqual(t, r.P99[i].Rounds, r.Worst[i].Rounds)
			require.LessOrEqual(t, r.P99[i].SimSeconds, r.Worst[i].SimSeconds)
			require.LessOrEqual(t, r.P99[i].Addresses, r.Worst[i].Addresses)
			if i > 0 {
				require.LessOrEqual(t, r.Worst[i-1].Rounds, r.Worst[i].Rounds, "milestones are ordered")
				require.LessOrEqual(t, r.Avg[i-1].Addresses, r.Avg[i].Addresses, "milestones are ordered")
			}
		}
		require.GreaterOrEqual(t, r.AddressesPerNode, float64(r.MinAddressesPerNode), "nobody learns more than it was told")
		require.InDelta(t, r.AddressesPerNode, r.Avg[3].Addresses, 1e-6, "the count stops when a node knows everyone")
		require.Positive(t, r.Avg[0].Addresses)
		require.Equal(t, 119, r.TrueSize)
		require.InDelta(t, 119, r.SizeEstimate, 119*0.3)
		last := r.Curve[len(r.Curve)-1]
		require.Equal(t, 1.0, last.Min)
	}
}

// The baseline writes URLs as Tendermint v0.35 does, with mconn://; pex
// leaves the scheme out (pex.Config.V2Scheme): 8 bytes less per address.
func TestBaselineWritesTheScheme(t *testing.T) {
	perAddress := func(p Policy) float64 {
		r := small(t, Options{Policy: p})
		return r.BytesPerNode / r.AddressesPerNode
	}
	require.InDelta(t, 8, perAddress(PolicyBaseline)-perAddress(PolicyPex), 0.5)
}

func TestJoinMeasuresTheNewcomer(t *testing.T) {
	r := small(t, Options{Scenario: ScenarioJoin, Nodes: 2000})
	require.Equal(t, 1, r.Measured)
	require.Equal(t, 2000, r.TrueSize)
	require.Positive(t, r.Worst[2].Rounds, "the newcomer reaches 99%")
	// It cannot do better than MaxAddresses new addresses per request.
	require.GreaterOrEqual(t, r.Worst[2].Rounds, 0.99*2000/100)
	require.InDelta(t, 2000, r.SizeEstimate, 2000*0.2)
}

func TestGrowthAndChurnConverge(t *testing.T) {
	for _, scenario := range []string{ScenarioGrowth, ScenarioChurn} {
		r := small(t, Options{Scenario: scenario, Nodes: 80, Limit: time.Hour})
		require.Positive(t, r.Worst[2].Rounds, "%s: everyone knows 99%% in the end", scenario)
	}
}

func TestPartitionHealsAndRemerges(t *testing.T) {
	o := Options{Scenario: ScenarioPartition, Nodes: 80}
	_ = o.defaults()
	s, err := newSimulation(o)
	require.NoError(t, err)
	// Run until the heal: no node may know anyone on the other side.
	for len(s.queue) > 0 && s.split {
		s.step()
	}
	require.False(t, s.split, "the partition heals")
	for _, n := range s.nodes {
		for _, m := range s.nodes {
			if n.group != m.group && m.idx != 0 && m.idx != int32(o.Nodes/partitionSides) {
				require.False(t, n.book.Has(m.id), "node %d knew %d across the partition", n.idx, m.idx)
			}
		}
	}
	r := small(t, o)
	require.Positive(t, r.HealSimSeconds)
	require.Positive(t, r.Worst[3].Rounds, "the halves re-merge")
	require.Greater(t, r.Worst[3].SimSeconds, r.HealSimSeconds)
}

func TestPartitionHealsWhenTold(t *testing.T) {
	// Healed at Options.Heal at the latest, here before either half can
	// know itself; the halves still re-merge.
	r := small(t, Options{Scenario: ScenarioPartition, Nodes: 80, Heal: 3 * time.Second})
	require.Positive(t, r.HealSimSeconds)
	require.LessOrEqual(t, r.HealSimSeconds, 3.0)
	require.Positive(t, r.Worst[3].Rounds, "the halves re-merge")
}

// attackRun runs an adversarial scenario on 100 nodes for 2 minutes and
// returns the simulation, to look into honest books.
func attackRun(t *testing.T, scenario string) (*simulation, *Result) {
	t.Helper()
	o := Options{Scenario: scenario, Nodes: 100, Limit: 2 * time.Minute}
	require.NoError(t, o.defaults())
	s, err := newSimulation(o)
	require.NoError(t, err)
	s.loop()
	r := s.result()
	r.Reference, err = Run(s.reference())
	require.NoError(t, err)
	return s, r
}

// checkAttackBounds checks what the attack may reach: attacker entries in
// each honest book at most one network group's cap (1/16 of the 1,000-entry
// book) plus the attackers connected to it (an inbound peer is in the book
// while connected), and no honest node eclipsed at the end.
func checkAttackBounds(t *testing.T, s *simulation, r *Result) {
	t.Helper()
	require.Equal(t, 10, r.Attackers)
	require.Equal(t, 90, r.Measured)
	for _, n := range s.nodes[:s.honest] {
		linked := 0
		for to := range n.links {
			if int(to) >= s.honest {
				linked++
			}
		}
		attackers := n.book.Len() - s.honestKnown(n)
		require.LessOrEqual(t, attackers, 64+linked, "node %d", n.idx) // 2 buckets of 32
	}
	require.Positive(t, r.AttackerShareInBooks, "the attack got somewhere: the bound is tested")
	require.Zero(t, r.EclipsedNodes)
	require.Positive(t, r.Worst[3].Rounds, "every honest node knows every honest node")
	require.NotNil(t, r.Reference)
	require.Equal(t, ScenarioCold, r.Reference.Scenario)
	require.Equal(t, 90, r.Reference.Nodes)
}

func TestSybilsHoldOneGroupsShare(t *testing.T) {
	s, r := attackRun(t, ScenarioSybil)
	checkAttackBounds(t, s, r)
	require.Zero(t, r.PeerErrorsPerNode, "sybils ask exactly as fast as allowed")
	for _, n := range s.nodes[s.honest:] {
		require.Equal(t, s.honest, s.honestKnown(n), "sybils learn the network by asking")
	}
}

func TestFloodersAreCaughtAndDiscoveryGoesOn(t *testing.T) {
	s, r := attackRun(t, ScenarioFlood)
	checkAttackBounds(t, s, r)
	require.Greater(t, r.PeerErrorsPerNode, 1.0, "every flooder connection ends in a peer error")
	// Slower than without the flood, as requests go to flooders too, but
	// within a small factor.
	require.Less(t, r.Avg[2].SimSeconds, 3*r.Reference.Avg[2].SimSeconds)
}

func TestOptionsValidated(t *testing.T) {
	for _, o := range []Options{
		{Nodes: 2},
		{Scenario: "nope"},
		{Loss: 1},
		{MaxConnected: 5, MaxOutbound: 6},
		{Scenario: ScenarioSybil, Attackers: 1},
		{Scenario: ScenarioFlood, Nodes: 4, Attackers: 0.5},
		{Scenario: ScenarioPartition, Heal: -time.Second},
	} {
		_, err := Run(o)
		require.Error(t, err, "%+v", o)
	}
}

func TestLossyLinksStillConverge(t *testing.T) {
	r := small(t, Options{Nodes: 60, Loss: 0.1})
	require.Positive(t, r.Worst[2].Rounds)
}

// attackSim runs o (an attack on 100 nodes for 2 minutes by default) and
// returns the simulation, to look into books, and its Result.
func attackSim(t *testing.T, o Options) (*simulation, *Result) {
	t.Helper()
	if o.Nodes == 0 {
		o.Nodes = 80
	}
	if o.Attackers == 0 {
		o.Attackers = 0.2 // 16 of 80: enough to spread over 8 /16s
	}
	if o.Limit == 0 {
		o.Limit = time.Minute
	}
	if o.Scenario == "" {
		o.Scenario = ScenarioSybil
	}
	require.NoError(t, o.defaults())
	s, err := newSimulation(o)
	require.NoError(t, err)
	s.loop()
	return s, s.result()
}

// group16 is the /16 of an IPv4 address, as "a.b".
func group16(t *testing.T, host string) [2]byte {
	t.Helper()
	ip, err := netip.ParseAddr(host)
	require.NoError(t, err)
	b := ip.As4()
	return [2]byte{b[0], b[1]}
}

// attackerHosts is the /16s of attacker addresses (an attacker's ID or an
// address in 66.0.0.0/8) in honest books.
func attackerGroups(t *testing.T, s *simulation) map[[2]byte]int {
	t.Helper()
	groups := make(map[[2]byte]int)
	for _, n := range s.nodes[:s.honest] {
		for _, id := range n.book.Known() {
			if i, ok := s.byID[id]; ok && int(i) < s.honest {
				continue
			}
			for _, a := range n.book.Addresses(id) {
				groups[group16(t, a.Hostname)]++
			}
		}
	}
	return groups
}

func TestAttackersSpreadOverGroups(t *testing.T) {
	for _, groups := range []int{8} { // one group is every golden sybil run
		s, r := attackSim(t, Options{Groups: groups})
		got := attackerGroups(t, s)
		require.Len(t, got, groups, "attacker addresses span %d /16s", groups)
		for g := range got {
			require.Equal(t, byte(66), g[0])
			require.Less(t, int(g[1]), groups)
		}
		hosts := make(map[[2]byte]bool)
		for _, a := range s.nodes[s.honest:] {
			hosts[group16(t, a.real.Hostname)] = true
		}
		require.Len(t, hosts, groups, "the attackers themselves live in %d /16s", groups)
		require.Equal(t, groups, r.Groups)
		require.NotEmpty(t, r.Series)
	}
}

func TestCyclingAttackersComeBackAsOthers(t *testing.T) {
	s, r := attackSim(t, Options{CycleIdentities: true, Groups: 8})
	require.Equal(t, 2, s.cycles, "a new identity every 30 s (at 30 and 60 s of a one-minute run)")
	ids := make(map[pex.NodeID]bool)
	claimed := make(map[[2]byte]bool)
	for _, n := range s.nodes[:s.honest] {
		for _, id := range n.book.Known() {
			if i, ok := s.byID[id]; ok && int(i) >= s.honest {
				ids[id] = true
				for _, a := range n.book.Addresses(id) {
					claimed[group16(t, a.Hostname)] = true
				}
			}
		}
	}
	require.Greater(t, len(ids), r.Attackers, "more attacker IDs than attackers in honest books")
	// Honest books store where an identity connected from, not the /16
	// it claimed: every one is in the attackers' own /16s.
	for g := range claimed {
		require.Equal(t, byte(66), g[0], "a claimed /16 stored: %v", g)
	}
	for _, a := range s.nodes[s.honest:] {
		require.Equal(t, a.id, a.addr.NodeID)
		require.Equal(t, a.id, a.real.NodeID)
		require.NotEqual(t, group16(t, a.addr.Hostname), group16(t, a.real.Hostname),
			"what it announces is not where it connects from")
		require.Equal(t, byte(66), group16(t, a.real.Hostname)[0], "one real host, in the attackers' /16s")
		to, ok := s.listen[endpointOf(a.real)]
		require.True(t, ok)
		require.Equal(t, a.idx, to, "it listens on its real host")
		_, ok = s.listen[endpointOf(a.addr)]
		require.False(t, ok, "nobody listens at the claimed address")
	}
}

func TestSpoofsAppearInHonestBooks(t *testing.T) {
	s, r := attackSim(t, Options{Spoof: true, Groups: 8})
	spoofs := 0
	for _, n := range s.nodes[:s.honest] {
		for _, m := range s.nodes[:s.honest] {
			for _, a := range n.book.Addresses(m.id) {
				if endpointOf(a) != endpointOf(m.real) {
					spoofs++
					require.True(t, s.spoofed(a))
					to, ok := s.listen[endpointOf(a)]
					require.True(t, ok, "an attacker listens there")
					require.GreaterOrEqual(t, int(to), s.honest)
				}
			}
		}
	}
	require.Positive(t, spoofs, "honest IDs at attacker addresses in honest books")
	require.Positive(t, r.SpoofDialShare+r.FeelerSpoofShare, "honest dials, feelers included, reach spoofs")
	require.LessOrEqual(t, r.SpoofDialShare, 1.0)

	// A node that holds only a spoof for another honest node censors it,
	// and does not know it.
	o := Options{Scenario: ScenarioSybil, Nodes: 80, Attackers: 0.2, Groups: 8, Spoof: true}
	require.NoError(t, o.defaults())
	fresh, err := newSimulation(o)
	require.NoError(t, err)
	n, m := fresh.nodes[1], fresh.nodes[2]
	spoof := m.addr
	host := fresh.attackAddr(0)
	spoof.Hostname, spoof.Port = host.Hostname, host.Port
	_, err = n.book.Add(spoof)
	require.NoError(t, err)
	require.True(t, fresh.spoofed(spoof))
	truth, spoofed := fresh.holdsTrue(n, m)
	require.False(t, truth, "a spoof is not knowing the node")
	require.True(t, spoofed)
	require.Equal(t, 1, fresh.censored())

	_, plain := attackSim(t, Options{})
	require.Zero(t, plain.SpoofDialShare)
	require.Zero(t, plain.CensoredNodes)
	require.Equal(t, 1.0, plain.HonestWorstKnown)
}

// TestJunkIsASwitch: the attackers' answers hold addresses nobody
// listens on unless Options.Junk is off. (Whether honest books keep any
// is the defences' business, and they drop it within the minute of
// attackSim.)
func TestJunkIsASwitch(t *testing.T) {
	junk := func(o Options) int {
		o.Nodes, o.Attackers, o.Scenario = 80, 0.2, ScenarioSybil
		require.NoError(t, o.defaults())
		s, err := newSimulation(o)
		require.NoError(t, err)
		k := 0
		for range 2 * sybilAnswers {
			var m pb.PexMessage
			require.NoError(t, proto.Unmarshal(s.sybilResponse(), &m))
			for _, x := range m.GetPexResponseV2().GetAddresses() {
				a, err := pex.ParseNodeAddress(x.GetUrl())
				require.NoError(t, err)
				if _, ok := s.listen[endpointOf(a)]; !ok {
					k++
				}
			}
		}
		return k
	}
	require.Positive(t, junk(Options{Groups: 8}), "junk by default")
	require.Positive(t, junk(Options{Groups: 8, Junk: On}))
	require.Zero(t, junk(Options{Groups: 8, Junk: Off}), "no address nobody listens on")
}

func TestAttackSeries(t *testing.T) {
	_, r := attackSim(t, Options{Groups: 4, Limit: 2 * time.Minute})
	require.Len(t, r.Series, 5, "samples at 0, 30, 60, 90 and 120 s")
	for i, x := range r.Series {
		require.InDelta(t, 30*float64(i), x.SimSeconds, 1e-9)
		require.LessOrEqual(t, x.Eclipsed, r.MaxEclipsedNodes)
		require.LessOrEqual(t, x.FullyEclipsed, r.MaxFullyEclipsedNodes)
		if x.SimSeconds >= 60 {
			require.LessOrEqual(t, x.AttackerShareInBooks, r.MaxAttackerShareInBooks)
		}
	}
	require.Positive(t, r.MaxAttackerShareInBooks, "the sybils' addresses are counted")
}

// pexrace's topologies: at start a chain node's book holds only the node
// before it, a star node's only node 0; both runs end with every book
// full, and the full-discovery figures say when and after how many
// requests.
func TestTopologies(t *testing.T) {
	for _, topo := range []string{TopologyStar, TopologyChain} {
		t.Run(topo, func(t *testing.T) {
			o := Options{Nodes: 20, Topology: topo, MaxConnected: 40, MaxOutbound: 20, MinInterval: 250 * time.Millisecond}
			require.NoError(t, o.defaults())
			s, err := newSimulation(o)
			require.NoError(t, err)
			for i, n := range s.nodes {
				want := 0
				if i > 0 {
					want = 1
					prev := s.nodes[0]
					if topo == TopologyChain {
						prev = s.nodes[i-1]
					}
					require.True(t, n.book.Has(prev.id), "node %d", i)
				}
				require.Equal(t, want, n.book.Len(), "node %d", i)
			}
			s.loop()
			r := s.result()
			require.Greater(t, r.FullDiscoverySeconds, 0.0)
			require.Equal(t, r.Worst[3].SimSeconds, r.FullDiscoverySeconds, "every node started at 0")
			require.Positive(t, r.FullDiscoveryRequests)
		})
	}
	_, err := Run(Options{Nodes: 20, Topology: "ring"})
	require.Error(t, err)
	_, err = Run(Options{Nodes: 20, Topology: TopologyChain, Scenario: ScenarioJoin})
	require.Error(t, err)
}

// On one machine the handshakes under way share it: the 9 leaves of a
// star dial node 0 at once, and their handshakes all end together when the
// machine has done the 9 handshakes' work, not one after another; node 0
// then adds them one at a time, taking Accept for each. A dial that
// starts on an idle machine takes one handshake's time.
func TestOneMachineSharesHandshakes(t *testing.T) {
	for _, accept := range []time.Duration{-1, 500 * time.Microsecond} {
		o := Options{Nodes: 10, Topology: TopologyStar, Handshake: time.Millisecond, Accept: accept}
		require.NoError(t, o.defaults())
		s, err := newSimulation(o)
		require.NoError(t, err)
		var ups []time.Duration
		seen := map[int32]bool{}
		for len(ups) < 9 && len(s.queue) > 0 {
			s.step()
			for p := range s.nodes[0].links {
				if !seen[p] {
					seen[p] = true
					ups = append(ups, s.now)
				}
			}
		}
		require.Len(t, ups, 9)
		for i, at := range ups {
			want := 9 * time.Millisecond
			if accept > 0 {
				want += time.Duration(i+1) * accept
			}
			require.InDelta(t, want, at, float64(time.Microsecond), "accept %s, peer %d", accept, i)
		}
		require.Empty(t, s.handshakes)
	}

	// A lone dial on an idle machine: its round trips, 600 µs, end before
	// its millisecond of computing, which it has to itself.
	o := Options{Nodes: 10, Topology: TopologyStar, Handshake: time.Millisecond, Accept: -1}
	require.NoError(t, o.defaults())
	s, err := newSimulation(o)
	require.NoError(t, err)
	s.queue = nil // no node starts
	e := &event{kind: evConnect, node: 1, peer: 0, addr: s.nodes[0].addr}
	s.handshake(e, 600*time.Microsecond)
	s.step()
	require.Empty(t, s.handshakes)
	require.Equal(t, time.Millisecond, e.at)
}

// The requests received count V1 and V2 requests and nothing else, and a
// run's full discovery counts those received by then, no more than those
// sent: the last requests may still wait on a flush.
func TestRequestsReceived(t *testing.T) {
	for msg, want := range map[proto.Message]bool{
		&pb.PexMessage{Sum: &pb.PexMessage_PexRequest{PexRequest: &pb.PexRequest{}}}:          true,
		&pb.PexMessage{Sum: &pb.PexMessage_PexRequestV2{PexRequestV2: &pb.PexRequestV2{}}}:    true,
		&pb.PexMessage{Sum: &pb.PexMessage_PexResponse{PexResponse: &pb.PexResponse{}}}:       false,
		&pb.PexMessage{Sum: &pb.PexMessage_PexResponseV2{PexResponseV2: &pb.PexResponseV2{}}}: false,
	} {
		b, err := proto.Marshal(msg)
		require.NoError(t, err)
		require.Equal(t, want, isRequest(b), "%T", msg)
	}
	r, err := Run(Options{Nodes: 30, Topology: TopologyStar})
	require.NoError(t, err)
	require.Positive(t, r.FullDiscoveryRequestsReceived)
	require.LessOrEqual(t, r.FullDiscoveryRequestsReceived, r.FullDiscoveryRequests)
}
