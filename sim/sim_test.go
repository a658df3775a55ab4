package sim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
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
	}
	r, err := Run(o)
	require.NoError(t, err)
	return r
}

func TestSameSeedSameRun(t *testing.T) {
	for _, scenario := range Scenarios {
		t.Run(scenario, func(t *testing.T) {
			a := small(t, Options{Scenario: scenario, Seed: 7})
			b := small(t, Options{Scenario: scenario, Seed: 7})
			a.WallSeconds, b.WallSeconds = 0, 0
			a.PeakHeapMB, b.PeakHeapMB = 0, 0
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
			if i > 0 {
				require.LessOrEqual(t, r.Worst[i-1].Rounds, r.Worst[i].Rounds, "milestones are ordered")
			}
		}
		require.GreaterOrEqual(t, r.AddressesPerNode, float64(r.MinAddressesPerNode), "nobody learns more than it was told")
		require.Equal(t, 119, r.TrueSize)
		require.InDelta(t, 119, r.SizeEstimate, 119*0.3)
		last := r.Curve[len(r.Curve)-1]
		require.Equal(t, 1.0, last.Min)
	}
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
				require.False(t, n.pm.Has(m.id), "node %d knew %d across the partition", n.idx, m.idx)
			}
		}
	}
	r := small(t, o)
	require.Positive(t, r.HealSimSeconds)
	require.Positive(t, r.Worst[3].Rounds, "the halves re-merge")
	require.Greater(t, r.Worst[3].SimSeconds, r.HealSimSeconds)
}

func TestOptionsValidated(t *testing.T) {
	for _, o := range []Options{
		{Nodes: 2},
		{Scenario: "nope"},
		{Loss: 1},
		{MaxConnected: 5, MaxOutbound: 6},
	} {
		_, err := Run(o)
		require.Error(t, err, "%+v", o)
	}
}

func TestLossyLinksStillConverge(t *testing.T) {
	r := small(t, Options{Nodes: 60, Loss: 0.1})
	require.Positive(t, r.Worst[2].Rounds)
}
