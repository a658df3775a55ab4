// Command pexcalib checks the simulator's transport model against real
// CometBFT switches (SPEC section 7, "Calibrated"): for each of pexrace's
// configurations, an all-pex network of N nodes in a star or a chain at a
// CometBFT period, it runs the simulator (package sim, the same topology,
// limits and pex Config, loopback latency) and the switches on loopback
// (pexrace's runner), and prints the time until every book holds every
// node and the requests sent, side by side, with the ratio sim / switches
// (the requests received by then, as the switches' meters count them).
// The model agrees when every ratio is within 0.75 to 1.25.
//
//	go run ./cmd/pexcalib                    # 40 and 80 nodes, chain and star, 250 ms and 30 s, 3 switch runs each
//	go run ./cmd/pexcalib -runs 5 -sim-seeds 20
//	go run ./cmd/pexcalib -n 40 -topology chain -period 250ms
//	go run ./cmd/pexcalib -probe             # the transport's constants: dial time, one-way message delay
//
// Switch times on the wall clock are noisy on a loaded machine: the
// figures are medians over -runs seeds, and the load average is printed
// with them. Each switch run is a process of its own, as in pexrace.
// Before each, a child process measures what the machine gives the
// switches now, its time per handshake (disjoint pairs dialling at once)
// and per inbound peer a switch adds (many dialling one at once), and the
// simulator runs with the medians of those (sim.Options.Handshake and
// Accept): under load they are several times the idle figures, and the
// 80-node networks, whose full mesh is 3,160 handshakes, slow down with
// them. -handshake and -accept fix them instead.
package main

import (
	"errors"
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
	"github.com/pexnet/pex/sim"
)

func main() {
	var (
		ns        = flag.String("n", "40,80", "network sizes, comma-separated")
		topos     = flag.String("topology", "chain,star", "topologies: star (all know node 0), chain (node i knows node i-1)")
		periods   = flag.String("period", "250ms,30s", "CometBFT ensure-peers periods (pex's MinInterval is the period below 30 s)")
		seed      = flag.Uint64("seed", 1, "first seed of the switch runs and of the simulator's runs")
		runs      = flag.Int("runs", 3, "switch runs per configuration (seeds seed, seed+1, ...); the table gives medians")
		simSeeds  = flag.Int("sim-seeds", 9, "simulator runs per configuration; the table gives medians")
		timeout   = flag.Duration("timeout", 5*time.Minute, "give up on one switch run after this long")
		latency   = flag.Duration("latency", sim.LoopbackLatency, "the simulator's one-way link latency")
		flush     = flag.Duration("flush", 0, "the simulator's flush delay (0: its default; negative: none)")
		handshake = flag.Duration("handshake", 0, "the simulator's handshake time (0: measured before each switch run, or the simulator's default with -sim-only; negative: none)")
		accept    = flag.Duration("accept", 0, "the simulator's time to add an inbound peer (0: measured before each switch run, or the simulator's default with -sim-only; negative: none)")
		dialers   = flag.Int("dialers", 0, "the simulator's dials at once per node (0: its default)")
		separate  = flag.Bool("separate-machines", false, "the simulator computes each node's handshakes apart, not on one shared machine")
		probe     = flag.Bool("probe", false, "measure the switches' transport constants instead (see probe.go)")
		probes    = flag.Int("probes", 30, "-probe: dials to measure")
		probeStar = flag.Int("probe-star", 0, "measure instead how a star of this many pex nodes starts and connects (see probe.go)")
		probePair = flag.Int("probe-pairs", 0, "measure instead how long this many disjoint pairs take to dial at once (see probe.go)")
		simOnly   = flag.Bool("sim-only", false, "run the simulator only (quick, to try a model)")
		child     = flag.String("child", "", "internal: run one switch configuration, as period:topology:n")
		childHs   = flag.Int("child-machine", 0, "internal: measure the machine's times per handshake and per inbound peer added, with this many dials")
	)
	flag.Parse()
	if *childHs > 0 {
		var m machine
		ds, err := pairDials(*childHs)
		if err == nil {
			m.Handshake = perDial(ds)
			m.Accept, err = acceptSpacing(*childHs)
		}
		race.Report("pexcalib", m, err)
		return
	}
	if *child != "" {
		r, err := runChild(*child, *seed, *timeout)
		race.Report("pexcalib", r, err)
		return
	}
	if *probePair > 0 {
		if err := runPairsProbe(os.Stdout, *probePair); err != nil {
			fmt.Fprintln(os.Stderr, "pexcalib:", err)
			os.Exit(1)
		}
		return
	}
	if *probeStar > 0 {
		if err := runStarProbe(os.Stdout, *probeStar); err != nil {
			fmt.Fprintln(os.Stderr, "pexcalib:", err)
			os.Exit(1)
		}
		return
	}
	if *probe {
		if err := runProbe(os.Stdout, *probes); err != nil {
			fmt.Fprintln(os.Stderr, "pexcalib:", err)
			os.Exit(1)
		}
		return
	}
	model := sim.Options{Latency: *latency, Flush: *flush, Handshake: *handshake, Accept: *accept, Dialers: *dialers, OneMachine: sim.On}
	if *separate {
		model.OneMachine = sim.Off
	}
	if *simOnly {
		*runs = 0
	}
	if err := drive(*ns, *topos, *periods, *seed, *runs, *simSeeds, *timeout, model); err != nil {
		fmt.Fprintln(os.Stderr, "pexcalib:", err)
		os.Exit(1)
	}
}

type config struct {
	period time.Duration
	topo   string
	n      int
}

type row struct {
	config
	sim, sw         []float64 // seconds, one per run; -1 did not converge
	simReq, swReq   []float64
	loadBefore, end string
	// the simulator's handshake and accept times (0: its defaults)
	handshake, accept time.Duration
}

func parseConfigs(nsFlag, toposFlag, periodsFlag string) ([]config, error) {
	var ns []int
	for _, s := range strings.Split(nsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 3 || n > 254 {
			return nil, fmt.Errorf("bad -n %q: sizes from 3 to 254", s)
		}
		ns = append(ns, n)
	}
	var topos []string
	for _, s := range strings.Split(toposFlag, ",") {
		s = strings.TrimSpace(s)
		if s != string(testnet.Star) && s != string(testnet.Chain) {
			return nil, fmt.Errorf("bad -topology %q: star or chain", s)
		}
		topos = append(topos, s)
	}
	var cs []config
	for _, s := range strings.Split(periodsFlag, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("bad -period %q", s)
		}
		for _, t := range topos {
			for _, n := range ns {
				cs = append(cs, config{d, t, n})
			}
		}
	}
	return cs, nil
}

// simOptions is the simulator's copy of a pexrace configuration: the
// topology, whose defaults in package sim are the switches' limits as
// testnet sets them (MaxNumInboundPeers and MaxNumOutboundPeers both N,
// so the PeerManager has MaxConnected 2N and MaxOutbound N), and pex's
// Config as race.PexConfig sets it.
func simOptions(c config, seed uint64, model sim.Options) sim.Options {
	o := model
	o.Nodes, o.Seed, o.Topology = c.n, seed, c.topo
	o.MinInterval = race.PexConfig(c.period).MinInterval
	o.Limit = time.Hour
	return o
}

func drive(nsFlag, toposFlag, periodsFlag string, seed uint64, runs, simSeeds int, timeout time.Duration, model sim.Options) error {
	if runs < 0 || simSeeds < 1 {
		return errors.New("-runs and -sim-seeds must be at least 1")
	}
	cs, err := parseConfigs(nsFlag, toposFlag, periodsFlag)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var rows []row
	for _, c := range cs {
		r := row{config: c, loadBefore: loadAvg()}
		// The switches first, each run after a measure of the machine's
		// time per handshake and per inbound peer added: on a machine
		// shared with other work they are what the load leaves, and the
		// simulator takes the medians of those measures unless
		// -handshake and -accept give them.
		var hs, as []float64
		for k := range runs {
			s := seed + uint64(k)
			if model.Handshake == 0 || model.Accept == 0 {
				m, err := measureMachine(self)
				if err != nil {
					return err
				}
				hs, as = append(hs, float64(m.Handshake)), append(as, float64(m.Accept))
			}
			spec := fmt.Sprintf("%s:%s:%d", c.period, c.topo, c.n)
			res, err := runProcess(self, spec, s, timeout)
			if err != nil {
				return fmt.Errorf("%s: %w", spec, err)
			}
			t := res.Time.Seconds()
			if !res.Converged {
				t = -1
			}
			fmt.Fprintf(os.Stderr, "pexcalib: switches %s seed %d: %.3fs, %d requests (load %s)\n", spec, s, t, res.Requests, loadAvg())
			r.sw = append(r.sw, t)
			r.swReq = append(r.swReq, float64(res.Requests))
		}
		m := model
		if len(hs) > 0 {
			if m.Handshake == 0 {
				m.Handshake = time.Duration(median(hs))
			}
			if m.Accept == 0 {
				m.Accept = time.Duration(median(as))
			}
		}
		r.handshake, r.accept = m.Handshake, m.Accept
		for k := range simSeeds {
			res, err := sim.Run(simOptions(c, seed+uint64(k), m))
			if err != nil {
				return err
			}
			r.sim = append(r.sim, res.FullDiscoverySeconds)
			r.simReq = append(r.simReq, float64(res.FullDiscoveryRequestsReceived))
		}
		r.end = loadAvg()
		fmt.Fprintf(os.Stderr, "pexcalib: %s %s N=%d: sim %.3fs, switches %.3fs\n", c.period, c.topo, c.n, median(r.sim), median(r.sw))
		rows = append(rows, r)
	}
	printTable(os.Stdout, rows, seed, runs, simSeeds, model)
	return nil
}

// median of xs, the lower middle for an even count; a run that did not
// converge (-1) counts as the slowest.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return -1
	}
	v := slices.Clone(xs)
	for i, x := range v {
		if x < 0 {
			v[i] = 1e18
		}
	}
	slices.Sort(v)
	m := v[(len(v)-1)/2]
	if m == 1e18 {
		return -1
	}
	return m
}

func spread(xs []float64) string {
	if len(xs) == 0 {
		return "-"
	}
	lo, hi := slices.Min(xs), slices.Max(xs)
	return fmt.Sprintf("%.2f-%.2f", lo, hi)
}

func printTable(w io.Writer, rows []row, seed uint64, runs, simSeeds int, model sim.Options) {
	fmt.Fprintf(w, "Time until every book holds every node, and PEX requests received by then, all-pex networks:\n")
	hs, as := model.Handshake.String(), model.Accept.String()
	if runs > 0 {
		if model.Handshake == 0 {
			hs = "measured (column hs)"
		}
		if model.Accept == 0 {
			as = "measured (column acc)"
		}
	}
	fmt.Fprintf(w, "simulator (median of seeds %d-%d; latency %s, flush %s, handshake %s, accept %s, dialers %d (0 = defaults), one machine %v)\n",
		seed, seed+uint64(simSeeds)-1, model.Latency, model.Flush, hs, as, model.Dialers, model.OneMachine == sim.On)
	if runs > 0 {
		fmt.Fprintf(w, "against CometBFT v0.38 switches on loopback (median of seeds %d-%d). Ratios sim / switches; agreement is 0.75-1.25 on both.\n", seed, seed+uint64(runs)-1)
		fmt.Fprintf(w, "hs, acc: the machine's time per handshake and per inbound peer added, medians of measures before each switch run;\nload: 1-minute load average before and after.\n\n")
	} else {
		fmt.Fprintf(w, "(-sim-only: no switches)\n\n")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "period\ttopology\tN\tsim s\tswitches s\tratio\tsim range\tswitch range\tsim req\tswitch req\tratio\t\ths\tacc\tload\t")
	agree := 0
	for _, r := range rows {
		s, sw := median(r.sim), median(r.sw)
		sq, swq := median(r.simReq), median(r.swReq)
		ratio, rq, ok := "-", "-", ""
		if s > 0 && sw > 0 && swq > 0 {
			x, y := s/sw, sq/swq
			ratio, rq = fmt.Sprintf("%.2f", x), fmt.Sprintf("%.2f", y)
			ok = "OFF"
			if x >= 0.75 && x <= 1.25 && y >= 0.75 && y <= 1.25 {
				ok = "ok"
				agree++
			}
		}
		dur := func(d time.Duration) string {
			if d <= 0 {
				return "-"
			}
			return d.Round(10 * time.Microsecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.3f\t%.3f\t%s\t%s\t%s\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%s-%s\t\n",
			r.period, r.topo, r.n, s, sw, ratio, spread(r.sim), spread(r.sw), sq, swq, rq, ok, dur(r.handshake), dur(r.accept), r.loadBefore, r.end)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d of %d configurations agree within 25%% on time and requests.\n", agree, len(rows))
}

// loadAvg is the machine's 1-minute load average, if it can tell.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// machineDials is how many dials measureMachine has the switches make at
// once.
const machineDials = 40

// machine is what a loopback machine gives the switches now: its time per
// handshake and per inbound peer a switch adds (the simulator's Handshake
// and Accept).
type machine struct {
	Handshake, Accept time.Duration
}

// measureMachine measures the machine, in a child process: machineDials
// disjoint pairs of switches dial at once, and the last dial ends when the
// machine has done them all (see pairDials); then machineDials switches
// dial one more at once, which adds them one at a time (see
// acceptSpacing).
func measureMachine(self string) (machine, error) {
	var m machine
	if err := race.Child(self, []string{"-child-machine", strconv.Itoa(machineDials)}, &m); err != nil {
		return machine{}, fmt.Errorf("machine probe: %w", err)
	}
	return m, nil
}

// runProcess runs one switch configuration in a child process.
func runProcess(self, spec string, seed uint64, timeout time.Duration) (race.Result, error) {
	var r race.Result
	err := race.Child(self, []string{"-child", spec, "-seed", strconv.FormatUint(seed, 10), "-timeout", timeout.String()}, &r)
	return r, err
}

func runChild(spec string, seed uint64, timeout time.Duration) (race.Result, error) {
	parts := strings.Split(spec, ":")
	if len(parts) != 3 {
		return race.Result{}, fmt.Errorf("bad -child %q", spec)
	}
	period, err := time.ParseDuration(parts[0])
	if err != nil {
		return race.Result{}, err
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil {
		return race.Result{}, err
	}
	return race.Run(race.Config{Kind: testnet.Pex, Period: period, Topology: testnet.Topology(parts[1]), N: n, Seed: seed, Timeout: timeout})
}
