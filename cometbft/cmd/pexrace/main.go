// Command pexrace races pex against CometBFT's own PEX reactor on real
// CometBFT switches over loopback TCP: the same switches, topology,
// connection limits and seed, once with every node on CometBFT's PEX and
// once with every node on pex through the adapter. For each configuration
// it measures the time until every node's address book holds every other
// node, the PEX requests sent and the PEX bytes received, and prints them
// side by side with ratios (CometBFT / pex: above 1, pex did better).
//
//	go run ./cometbft/cmd/pexrace                              # N=10,40,80, star and chain, 30 s and 250 ms
//	go run ./cometbft/cmd/pexrace -n 10 -topology star -period 250ms
//	go run ./cometbft/cmd/pexrace -runs 3                      # medians over seeds 1, 2, 3
//
// The period is CometBFT's ensure-peers period: 30 s is its default, what
// operators run; at 250 ms both sides are matched (pex's MinInterval is set
// to it too). At 30 s pex runs its defaults.
//
// Each configuration runs in a process of its own (the command re-executes
// itself): CometBFT's reactors leave goroutines behind that nothing waits
// for, and one run must not slow the next.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pexnet/pex/cometbft/internal/race"
	"github.com/pexnet/pex/cometbft/internal/testnet"
)

// result is one side of one configuration, as a child process reports it.
type result = race.Result

func main() {
	var (
		ns       = flag.String("n", "10,40,80", "network sizes, comma-separated")
		topos    = flag.String("topology", "star,chain", "topologies: star (all know node 0), chain (node i knows node i-1)")
		periods  = flag.String("period", "30s,250ms", "CometBFT ensure-peers periods, comma-separated")
		seed     = flag.Uint64("seed", 1, "seed for node keys and pex's random sources")
		timeout  = flag.Duration("timeout", 15*time.Minute, "give up on one side of a configuration after this long")
		runs     = flag.Int("runs", 1, "runs per side and configuration (seeds seed, seed+1, ...); the table gives each figure's median")
		jsonOut  = flag.Bool("json", false, "print the results as JSON lines, not a table")
		child    = flag.String("child", "", "internal: run one side of one configuration, as side:period:topology:n")
		progress = flag.Duration("progress", 10*time.Second, "how often a run reports progress on stderr (0: never)")
	)
	flag.Parse()
	if *child != "" {
		r, err := runChild(*child, *seed, *timeout, *progress)
		race.Report("pexrace", r, err)
		return
	}
	if *runs < 1 {
		fmt.Fprintln(os.Stderr, "pexrace: -runs must be at least 1")
		os.Exit(2)
	}
	if err := drive(*ns, *topos, *periods, *seed, *runs, *timeout, *progress, *jsonOut); err != nil {
		fmt.Fprintln(os.Stderr, "pexrace:", err)
		os.Exit(1)
	}
}

// drive runs every configuration, both sides, each in a child process.
func drive(nsFlag, toposFlag, periodsFlag string, seed uint64, runs int, timeout, progress time.Duration, jsonOut bool) error {
	var ns []int
	for _, s := range strings.Split(nsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 || n > 254 {
			return fmt.Errorf("bad -n %q: sizes from 2 to 254", s)
		}
		ns = append(ns, n)
	}
	var periods []time.Duration
	for _, s := range strings.Split(periodsFlag, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d <= 0 {
			return fmt.Errorf("bad -period %q", s)
		}
		periods = append(periods, d)
	}
	var topos []string
	for _, s := range strings.Split(toposFlag, ",") {
		s = strings.TrimSpace(s)
		if s != string(testnet.Star) && s != string(testnet.Chain) {
			return fmt.Errorf("bad -topology %q: star or chain", s)
		}
		topos = append(topos, s)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var rows [][2]result
	for _, period := range periods {
		for _, topo := range topos {
			for _, n := range ns {
				var row [2]result
				for i, side := range []string{testnet.CometBFT.String(), testnet.Pex.String()} {
					var rs []result
					for k := range runs {
						spec := fmt.Sprintf("%s:%s:%s:%d", side, period, topo, n)
						s := seed + uint64(k)
						fmt.Fprintf(os.Stderr, "pexrace: %s seed %d ...\n", spec, s)
						r, err := runProcess(self, spec, s, timeout, progress)
						if err != nil {
							return fmt.Errorf("%s: %w", spec, err)
						}
						fmt.Fprintf(os.Stderr, "pexrace: %s seed %d: %s\n", spec, s, describe(r))
						if jsonOut {
							if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
								return err
							}
						}
						rs = append(rs, r)
					}
					row[i] = median(rs)
				}
				rows = append(rows, row)
			}
		}
	}
	if !jsonOut {
		printTable(os.Stdout, rows, seed, runs)
	}
	return nil
}

// median returns the median of each figure over rs (the lower middle for
// an even count); it has converged only if every run did, and Missing is
// the largest.
func median(rs []result) result {
	m := rs[0]
	mid := (len(rs) - 1) / 2
	pick := func(f func(result) int64) int64 {
		v := make([]int64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[mid]
	}
	m.Time = time.Duration(pick(func(r result) int64 { return int64(r.Time) }))
	m.Requests = pick(func(r result) int64 { return r.Requests })
	m.Bytes = pick(func(r result) int64 { return r.Bytes })
	for _, r := range rs {
		m.Converged = m.Converged && r.Converged
		m.Missing = max(m.Missing, r.Missing)
	}
	return m
}

func describe(r result) string {
	if !r.Converged {
		return fmt.Sprintf("not converged after %s (%d book entries missing), %d requests, %d bytes", r.Time.Round(time.Millisecond), r.Missing, r.Requests, r.Bytes)
	}
	return fmt.Sprintf("converged in %s, %d requests, %d bytes", r.Time.Round(time.Millisecond), r.Requests, r.Bytes)
}

// runProcess runs one side of one configuration in a child process.
func runProcess(self, spec string, seed uint64, timeout, progress time.Duration) (result, error) {
	var r result
	err := race.Child(self, []string{"-child", spec, "-seed", strconv.FormatUint(seed, 10),
		"-timeout", timeout.String(), "-progress", progress.String()}, &r)
	return r, err
}

// runChild runs one side of one configuration in this process.
func runChild(spec string, seed uint64, timeout, progress time.Duration) (result, error) {
	parts := strings.Split(spec, ":")
	if len(parts) != 4 {
		return result{}, fmt.Errorf("bad -child %q", spec)
	}
	side, topo := parts[0], testnet.Topology(parts[2])
	period, err := time.ParseDuration(parts[1])
	if err != nil {
		return result{}, err
	}
	n, err := strconv.Atoi(parts[3])
	if err != nil {
		return result{}, err
	}
	kind := testnet.CometBFT
	switch side {
	case testnet.CometBFT.String():
	case testnet.Pex.String():
		kind = testnet.Pex
	default:
		return result{}, fmt.Errorf("bad side %q", side)
	}
	return race.Run(race.Config{Kind: kind, Period: period, Topology: topo, N: n, Seed: seed, Timeout: timeout, Progress: progress})
}

func printTable(w io.Writer, rows [][2]result, seed uint64, runs int) {
	seeds := fmt.Sprintf("seed %d", seed)
	if runs > 1 {
		seeds = fmt.Sprintf("median of %d runs, seeds %d to %d", runs, seed, seed+uint64(runs)-1)
	}
	fmt.Fprintf(w, "Time until every book holds every node, PEX requests sent and PEX bytes received (whole network), %s.\n", seeds)
	fmt.Fprintln(w, "Ratios are CometBFT / pex: above 1, pex did better.")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "period\ttopology\tN\ttime CometBFT\ttime pex\tratio\trequests CometBFT\trequests pex\tratio\tbytes CometBFT\tbytes pex\tratio\t")
	for _, row := range rows {
		c, p := row[0], row[1]
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\t%d\t%d\t%s\t\n",
			c.Period, c.Topology, c.N,
			timeCell(c), timeCell(p), ratio(c.Time.Seconds(), p.Time.Seconds(), c.Converged && p.Converged),
			c.Requests, p.Requests, ratio(float64(c.Requests), float64(p.Requests), c.Converged && p.Converged),
			c.Bytes, p.Bytes, ratio(float64(c.Bytes), float64(p.Bytes), c.Converged && p.Converged))
	}
	tw.Flush()
	for _, row := range rows {
		for _, r := range row {
			if !r.Converged {
				fmt.Fprintf(w, "\n> %s: %s %s N=%d did not converge within %s: %d of %d book entries still missing.",
					r.Side, r.Period, r.Topology, r.N, r.Time.Round(time.Second), r.Missing, r.N*(r.N-1))
			}
		}
	}
	fmt.Fprintln(w)
}

func timeCell(r result) string {
	s := r.Time.Round(time.Millisecond).String()
	if !r.Converged {
		s = ">" + s
	}
	return s
}

// ratio formats a/b; when a side did not converge the figures are what it
// had reached by the timeout, and the ratio is marked as a bound.
func ratio(a, b float64, both bool) string {
	if b == 0 {
		return "-"
	}
	s := strconv.FormatFloat(a/b, 'f', 1, 64) + "x"
	if !both {
		s = "~" + s
	}
	return s
}
