// Command pexsim simulates a PEX network on virtual time and reports how
// fast it discovers itself and what that costs.
//
//	go run ./cmd/pexsim                          # 1,000-node cold start
//	go run ./cmd/pexsim -scenario join -nodes 10000 -compare
//	go run ./cmd/pexsim -compare -plot curve.png -csv curve.csv
//	go run ./cmd/pexsim -json
//
// Every simulated node is a real pex.PeerManager plus the pex.Core that
// makes the Reactor's decisions; see package github.com/pexnet/pex/sim.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/pexnet/pex/sim"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pexsim:", err)
		os.Exit(1)
	}
}

type flags struct {
	opts    sim.Options
	compare bool
	json    bool
	plot    string
	csv     string
	quiet   bool
	junk    bool
	// oneMachine is -one-machine's value, if given
	oneMachine bool
}

func parse(args []string, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("pexsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&f.opts.Nodes, "nodes", 1000, "number of nodes")
	fs.StringVar(&f.opts.Scenario, "scenario", sim.ScenarioCold, "scenario: "+strings.Join(sim.Scenarios, ", "))
	fs.Uint64Var(&f.opts.Seed, "seed", 1, "random seed; a run is deterministic for a seed")
	fs.StringVar(&f.opts.Topology, "topology", "", "cold scenario as pexrace builds it: star (all know node 0) or chain (node i knows node i-1), every node started at once, on pexrace's switches' transport (one machine, loopback latency, limits 2N and N) unless flags say otherwise")
	fs.DurationVar(&f.opts.MinInterval, "min-interval", 0, "pex's MinInterval (pexrace sets it to its period below 30 s); 0: pex's default")
	fs.DurationVar(&f.opts.Latency, "latency", 50*time.Millisecond, "mean one-way link latency (with -topology: default sim.LoopbackLatency)")
	fs.DurationVar(&f.opts.Flush, "flush", sim.DefaultFlush, "how long a connection holds a message before it leaves (CometBFT's flush throttle; negative: none)")
	fs.DurationVar(&f.opts.Handshake, "handshake", sim.DefaultHandshake, "a dial's computing on top of its round trips (negative: none)")
	fs.DurationVar(&f.opts.Accept, "accept", 0, "on one machine, the time a switch takes to add an inbound peer, one at a time (0: sim.DefaultAccept on one machine, else none; negative: none)")
	fs.IntVar(&f.opts.Dialers, "dialers", sim.DefaultDialers, "dials a node runs at once")
	fs.BoolVar(&f.oneMachine, "one-machine", false, "the nodes' handshakes share one machine's processors, as switches on loopback do (default true with -topology)")
	fs.Float64Var(&f.opts.Loss, "loss", 0, "message loss probability (a lost message breaks its connection)")
	fs.IntVar(&f.opts.MaxConnected, "max-connected", 50, "connections per node (with -topology: default 2 x nodes)")
	fs.IntVar(&f.opts.MaxOutbound, "max-outbound", 10, "outbound connections per node (with -topology: default nodes)")
	fs.Float64Var(&f.opts.Attackers, "attackers", 0.1, "share of the nodes that attack (sybil and flood scenarios)")
	fs.IntVar(&f.opts.Groups, "groups", 1, "attack: the /16s the attackers spread over (1 to 256)")
	fs.BoolVar(&f.opts.CycleIdentities, "cycle", false, "attack: every 30 s each attacker reconnects with a fresh node ID, claiming a listen address in another /16 from its one real host")
	fs.BoolVar(&f.opts.Spoof, "spoof", false, "attack: sybil answers announce attacker addresses for honest node IDs")
	fs.BoolVar(&f.junk, "junk", true, "attack: sybil answers carry addresses nobody listens on (-junk=false for none)")
	fs.DurationVar(&f.opts.Heal, "heal", 2*time.Minute, "partition: when the halves are joined at the latest (earlier once each knows its half)")
	fs.DurationVar(&f.opts.Limit, "limit", 2*time.Hour, "most virtual time to simulate")
	fs.BoolVar(&f.compare, "compare", false, "also run the Tendermint v0.35 baseline and print ratios")
	fs.BoolVar(&f.json, "json", false, "print one JSON object instead of the table")
	fs.StringVar(&f.plot, "plot", "", "write the coverage curve to this .png or .svg file")
	fs.StringVar(&f.csv, "csv", "", "write the coverage curve to this CSV file")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress lines")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: pexsim [flags]\n\n"+
			"Simulates a PEX network on virtual time and prints how fast its nodes\n"+
			"discover it and what that costs, with a legend and a one-line verdict\n"+
			"against pex's targets for the scenario.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	f.opts.Junk = sim.Off
	if f.junk {
		f.opts.Junk = sim.On
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if set["one-machine"] {
		f.opts.OneMachine = sim.Off
		if f.oneMachine {
			f.opts.OneMachine = sim.On
		}
	}
	if f.opts.Topology != "" {
		// The flags' own defaults are the cold scenario's: a topology
		// takes the simulator's, pexrace's switches on loopback, as
		// pexcalib runs it.
		if !set["latency"] {
			f.opts.Latency = 0
		}
		if !set["max-connected"] {
			f.opts.MaxConnected = 0
		}
		if !set["max-outbound"] {
			f.opts.MaxOutbound = 0
		}
	}
	return f, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	f, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h or -help: the usage is printed, and that is success
	}
	if err != nil {
		return err
	}
	runOne := func(p sim.Policy) (*sim.Result, error) {
		o := f.opts
		o.Policy = p
		if !f.quiet && !f.json {
			o.Progress = progressPrinter(stderr, p)
		}
		r, err := sim.Run(o)
		if err == nil && o.Progress != nil {
			fmt.Fprintf(stderr, "[%s] finished at t=%.0fs (virtual) in %.1fs wall\n", p, r.SimSeconds, r.WallSeconds)
		}
		return r, err
	}
	ours, err := runOne(sim.PolicyPex)
	if err != nil {
		return err
	}
	var base *sim.Result
	if f.compare {
		if base, err = runOne(sim.PolicyBaseline); err != nil {
			return err
		}
	}
	if f.json {
		out := ours.Summary(true)
		if base != nil {
			out["baseline"] = base.Summary(true)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		printTable(stdout, ours, base)
	}
	if f.csv != "" {
		if err := writeCSV(f.csv, ours, base); err != nil {
			return err
		}
	}
	if f.plot != "" {
		if err := writePlot(f.plot, ours, base); err != nil {
			return err
		}
	}
	return nil
}

// progressPrinter prints a line each time the average or the worst node
// passes another tenth of the network, and at least every ten virtual
// minutes.
func progressPrinter(w io.Writer, p sim.Policy) func(sim.Progress) {
	lastAvg, lastMin := -1, -1
	var lastAt time.Duration
	return func(pr sim.Progress) {
		avg, lo := int(pr.AvgCoverage*10), int(pr.MinCoverage*10)
		if avg == lastAvg && lo == lastMin && pr.Elapsed-lastAt < 10*time.Minute {
			return
		}
		lastAvg, lastMin, lastAt = avg, lo, pr.Elapsed
		fmt.Fprintf(w, "[%s] t=%6.0fs  average node knows %5.1f%%  worst node %5.1f%%  messages %d\n",
			p, pr.Elapsed.Seconds(), 100*pr.AvgCoverage, 100*pr.MinCoverage, pr.Messages)
	}
}
