package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/pexnet/pex/sim"
)

// The discovery and attack targets pex is held to (README, DESIGN.md), for the verdict.
const (
	coldNodes       = 1000 // the cold start's targets are set for this size
	coldRounds      = 30   // every node knows 99% within this many requests
	coldBytes       = 1.5  // bytes at most this many times the minimum
	joinNodes       = 10000
	joinRounds      = 150 // a newcomer knows 99% within about this many
	joinBound       = 106 // the capacity bound at joinNodes
	attackSeconds   = 600 // every honest node knows 99% within 10 virtual minutes
	tailFactor      = 5   // a worst node this many times slower to 100% than the average is explained
	tailMinSeconds  = 30  // and only a tail this long
	percentile99Idx = 2   // index of 0.99 in sim.Thresholds
	fullIdx         = 3   // index of 1 in sim.Thresholds
)

// printLegend says what the table's terms mean.
func printLegend(w io.Writer, r *sim.Result) {
	fmt.Fprintln(w, "\nlegend:")
	lines := [][2]string{
		{"round", "one request for addresses that a node sent; a node's rounds are its own requests"},
		{"sim seconds", "simulated (virtual) time since the node started, not wall-clock time"},
		{"average node", "the mean over the measured nodes"},
		{"99th-percentile node", "99% of the measured nodes did at least as well: the tail without its slowest 1%"},
		{"worst node", "the slowest measured node"},
		{"against the minimum", "the figure divided by the least a node must receive to know everyone: each other node's address once, at 60 bytes"},
	}
	if r.Measured == 1 {
		lines[2][1] = "the one measured node (here average, 99th-percentile and worst are the same node)"
	}
	if r.Reference != nil {
		lines = append(lines, [2]string{"no attack", "the same honest nodes, same seed, without the attackers"})
	}
	for _, l := range lines {
		fmt.Fprintf(w, "  %-21s %s\n", l[0], l[1])
	}
}

// verdict is one line that weighs r against those targets,
// where the scenario has one, or states the plain facts where it has not.
func verdict(r *sim.Result) string {
	worst, avg := r.Worst[percentile99Idx], r.Avg[percentile99Idx]
	bytes := r.BytesPerNode / float64(max(r.MinBytesPerNode, 1))
	switch r.Scenario {
	case sim.ScenarioJoin:
		at := ""
		if r.Nodes != joinNodes {
			at = fmt.Sprintf(" at %d nodes", joinNodes)
		}
		return fmt.Sprintf("verdict: the newcomer knew 99%% of the network after %s requests, %s sim seconds (target about %d%s; the capacity bound is about %d); bytes %.2fx the minimum",
			rounds(worst.Rounds), secs(worst.SimSeconds), joinRounds, at, joinBound, bytes)
	case sim.ScenarioSybil, sim.ScenarioFlood:
		share := float64(r.Attackers) / float64(max(r.Nodes, 1))
		at := ""
		if r.Nodes != coldNodes {
			at = fmt.Sprintf(" (targets set at %d nodes)", coldNodes)
		}
		return fmt.Sprintf("verdict: attackers held %.1f%% of honest books (target at most their %.1f%% of the nodes); %d honest nodes eclipsed at worst (target 0); every honest node knew 99%% of the honest network after %s sim seconds (target %d)%s",
			100*r.AttackerShareInBooks, 100*share, r.EclipsedNodesMax, secs(worst.SimSeconds), attackSeconds, at)
	case sim.ScenarioCold:
		at := ""
		if r.Nodes != coldNodes {
			at = fmt.Sprintf(" at %d nodes", coldNodes)
		}
		return fmt.Sprintf("verdict: every node knew 99%% of the network after at most %s requests (target %d%s); the average node after %s; bytes %.2fx the minimum (target %.1fx)",
			rounds(worst.Rounds), coldRounds, at, rounds(avg.Rounds), bytes, coldBytes)
	}
	return fmt.Sprintf("verdict: every node knew 99%% of the network after at most %s requests, %s sim seconds; the average node after %s, %s sim seconds; bytes %.2fx the minimum (no target for %s)",
		rounds(worst.Rounds), secs(worst.SimSeconds), rounds(avg.Rounds), secs(avg.SimSeconds), bytes, r.Scenario)
}

// tail explains, when the worst node took far longer to know 100% than
// the average one, what that tail is; "" when there is nothing to explain.
func tail(r *sim.Result) string {
	worst, avg := r.Worst[fullIdx].SimSeconds, r.Avg[fullIdx].SimSeconds
	if worst < tailMinSeconds || avg < 0 || worst < tailFactor*avg {
		return ""
	}
	return fmt.Sprintf("the worst node's %ss to 100%% (average %ss; every node had 99%% by %ss) is not a stall: the last node or two to be known are heard of only when a peer that has since learnt them is asked again",
		secs(worst), secs(avg), secs(r.Worst[percentile99Idx].SimSeconds))
}

// printVerdict prints the verdict for the first column, and the tail line
// if there is one.
func printVerdict(w io.Writer, r *sim.Result) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, verdict(r))
	if t := tail(r); t != "" {
		fmt.Fprintln(w, t)
	}
}

func rounds(v float64) string {
	if v < 0 {
		return "never (within -limit)"
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", v), ".0")
}

func secs(v float64) string {
	if v < 0 {
		return "never (within -limit)"
	}
	return fmt.Sprintf("%.1f", v)
}
