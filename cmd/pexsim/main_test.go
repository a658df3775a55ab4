package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pexnet/pex/sim"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestJSONHasTheDocumentedKeys(t *testing.T) {
	var out, errs bytes.Buffer
	require.NoError(t, run([]string{"-nodes", "40", "-json", "-compare", "-seed", "3"}, &out, &errs))
	var got map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	keys := []string{"nodes", "scenario", "seed", "rounds_to_50", "rounds_to_90", "rounds_to_99", "rounds_to_100",
		"sim_seconds_to_99", "addresses_received_per_node", "min_addresses_per_node", "bytes_received_per_node",
		"size_estimate", "wall_seconds", "avg_addresses_to_50", "avg_addresses_to_90", "avg_addresses_to_99", "avg_addresses_to_100"}
	base, ok := got["baseline"].(map[string]any)
	require.True(t, ok, "-compare adds the baseline")
	for _, k := range keys {
		require.Contains(t, got, k)
		require.Contains(t, base, k)
	}
	require.Equal(t, float64(40), got["nodes"])
	require.Equal(t, "cold", got["scenario"])
	require.Equal(t, "baseline", base["policy"])
	// Every node of a cold start learns the whole network, and its count
	// of addresses received stops there.
	require.InDelta(t, got["addresses_received_per_node"], got["avg_addresses_to_100"], 1e-6)
	require.Less(t, got["avg_addresses_to_50"], got["avg_addresses_to_100"])
	require.Empty(t, errs.String(), "-json prints no progress")
}

func TestTablePlotAndCSV(t *testing.T) {
	dir := t.TempDir()
	png, svg, csv := filepath.Join(dir, "c.png"), filepath.Join(dir, "c.svg"), filepath.Join(dir, "c.csv")
	var out, errs bytes.Buffer
	require.NoError(t, run([]string{"-nodes", "40", "-compare", "-plot", png, "-csv", csv}, &out, &errs))
	require.Contains(t, out.String(), "worst node knows 99%: rounds")
	require.Contains(t, out.String(), "pex/baseline")
	// The legend and the verdict follow the table.
	for _, term := range []string{"legend:", "  round ", "  sim seconds ", "  99th-percentile node ", "  against the minimum "} {
		require.Contains(t, out.String(), term)
	}
	require.Regexp(t, `\nverdict: every node knew 99% of the network after at most [0-9.]+ requests \(target 30 at 1000 nodes\); the average node after [0-9.]+; bytes [0-9.]+x the minimum \(target 1\.5x\)\n`, out.String())
	require.Contains(t, errs.String(), "average node knows", "progress goes to stderr")
	info, err := os.Stat(png)
	require.NoError(t, err)
	require.Positive(t, info.Size())
	data, err := os.ReadFile(csv)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	require.Equal(t, "policy,sim_seconds,avg_coverage,min_coverage", lines[0])
	require.Contains(t, string(data), "\nbaseline,")
	require.NoError(t, run([]string{"-nodes", "30", "-quiet", "-plot", svg}, &out, &errs))
	data, err = os.ReadFile(svg)
	require.NoError(t, err)
	require.Contains(t, string(data), "<svg")
}

func TestHelpIsNotAnError(t *testing.T) {
	for _, h := range []string{"-h", "-help", "--help"} {
		var out, errs bytes.Buffer
		require.NoError(t, run([]string{h}, &out, &errs), "%s exits 0", h)
		require.Contains(t, errs.String(), "usage: pexsim [flags]")
		require.Contains(t, errs.String(), "-scenario")
		require.Empty(t, out.String(), "%s runs nothing", h)
	}
}

func TestVerdictFitsTheScenario(t *testing.T) {
	for _, tc := range []struct{ scenario, want string }{
		{"join", "verdict: the newcomer knew 99% of the network after "},
		{"churn", "(no target for churn)"},
		{"sybil", "verdict: attackers held "},
	} {
		var out, errs bytes.Buffer
		require.NoError(t, run([]string{"-scenario", tc.scenario, "-nodes", "40", "-limit", "1m", "-quiet"}, &out, &errs))
		require.Contains(t, out.String(), tc.want, tc.scenario)
		require.Contains(t, out.String(), "legend:", tc.scenario)
	}
}

func TestTailIsExplained(t *testing.T) {
	r := &sim.Result{Scenario: "cold"}
	r.Avg[3].SimSeconds, r.Worst[3].SimSeconds, r.Worst[2].SimSeconds = 11, 266.5, 33.6
	require.Contains(t, tail(r), "the worst node's 266.5s to 100% (average 11.0s; every node had 99% by 33.6s) is not a stall")
	r.Worst[3].SimSeconds = 20
	require.Empty(t, tail(r), "a short tail needs no word")
}

func TestBadFlags(t *testing.T) {
	var out, errs bytes.Buffer
	require.Error(t, run([]string{"-scenario", "nope"}, &out, &errs))
	require.Error(t, run([]string{"extra"}, &out, &errs))
	require.Error(t, run([]string{"-nodes", "x"}, &out, &errs))
}

func TestAttackScenariosReportTheAttack(t *testing.T) {
	for _, scenario := range []string{"sybil", "flood"} {
		var out, errs bytes.Buffer
		require.NoError(t, run([]string{"-scenario", scenario, "-nodes", "40", "-attackers", "0.3", "-limit", "1m", "-json"}, &out, &errs))
		var got map[string]any
		require.NoError(t, json.Unmarshal(out.Bytes(), &got))
		require.Equal(t, float64(12), got["attackers"], scenario)
		for _, k := range []string{"attacker_share_in_books", "eclipsed_nodes", "eclipsed_nodes_max",
			"max_attacker_share_in_books", "max_eclipsed_nodes", "outbound_eclipsed_nodes", "max_fully_eclipsed_nodes",
			"honest_worst_known", "spoof_dial_share", "feeler_dials_per_node", "feeler_spoof_share", "censored_nodes", "attack_series",
			"attack_groups", "cycle_identities", "spoof", "junk"} {
			require.Contains(t, got, k, scenario)
		}
		series, ok := got["attack_series"].([]any)
		require.True(t, ok, scenario)
		require.NotEmpty(t, series, "%s: sampled from 0 s on", scenario)
		ref, ok := got["without_attack"].(map[string]any)
		require.True(t, ok, "%s: the reference run", scenario)
		require.Equal(t, float64(28), ref["nodes"])

		out.Reset()
		require.NoError(t, run([]string{"-scenario", scenario, "-nodes", "40", "-limit", "1m", "-quiet"}, &out, &errs))
		require.Contains(t, out.String(), "pex/no attack")
		require.Contains(t, out.String(), "attacker share in honest books")
	}
}

func TestAttackFlags(t *testing.T) {
	var out, errs bytes.Buffer
	require.NoError(t, run([]string{"-scenario", "sybil", "-nodes", "60", "-limit", "1m", "-json",
		"-groups", "4", "-cycle", "-spoof", "-junk=false"}, &out, &errs))
	var got map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	require.Equal(t, float64(4), got["attack_groups"])
	require.Equal(t, true, got["cycle_identities"])
	require.Equal(t, true, got["spoof"])
	require.Equal(t, false, got["junk"])
	require.Error(t, run([]string{"-scenario", "sybil", "-groups", "257"}, &out, &errs))
	_, ok := got["without_attack"].(map[string]any)["max_eclipsed_nodes"]
	require.False(t, ok, "the attack's keys are for attacked runs only")
}

// -topology runs pexrace's networks as cometbft/cmd/pexcalib's simulator
// does: the switches' transport (one machine, loopback latency, limits 2N
// and N) unless a flag says otherwise.
func TestTopologyTakesTheSwitchesTransport(t *testing.T) {
	f, err := parse([]string{"-topology", "chain", "-nodes", "40", "-min-interval", "250ms"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Zero(t, f.opts.Latency)
	require.Zero(t, f.opts.MaxConnected)
	require.Zero(t, f.opts.MaxOutbound)
	require.Equal(t, sim.Default, f.opts.OneMachine)
	got, err := sim.Run(f.opts)
	require.NoError(t, err)
	want, err := sim.Run(sim.Options{Nodes: 40, Topology: sim.TopologyChain, MinInterval: 250 * time.Millisecond,
		Latency: sim.LoopbackLatency, MaxConnected: 80, MaxOutbound: 40, OneMachine: sim.On, Limit: 2 * time.Hour})
	require.NoError(t, err)
	require.Equal(t, want.FullDiscoverySeconds, got.FullDiscoverySeconds)
	require.Equal(t, want.FullDiscoveryRequests, got.FullDiscoveryRequests)

	f, err = parse([]string{"-topology", "star", "-latency", "1ms", "-max-outbound", "5", "-one-machine=false"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, time.Millisecond, f.opts.Latency)
	require.Equal(t, 5, f.opts.MaxOutbound)
	require.Zero(t, f.opts.MaxConnected)
	require.Equal(t, sim.Off, f.opts.OneMachine)

	f, err = parse(nil, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, 50*time.Millisecond, f.opts.Latency, "the cold scenario keeps its flags' defaults")
	require.Equal(t, 50, f.opts.MaxConnected)
}
