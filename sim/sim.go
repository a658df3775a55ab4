// Package sim simulates a PEX network on virtual time. Every simulated
// node is a real address book (internal/book) and the Reactor's real
// decision core (internal/poller), connected through a simulated
// transport with latency, optional loss and connection limits; a
// discrete-event loop drives them. Runs are deterministic for a given
// seed, and golden runs of every scenario are checked in
// (testdata/golden, TestGolden).
package sim

import (
	"fmt"
	"slices"
	"time"

	"github.com/pexnet/pex"
)

// Scenario names.
const (
	ScenarioCold      = "cold"      // every node knows only a seed node
	ScenarioJoin      = "join"      // one node joins a converged network
	ScenarioGrowth    = "growth"    // nodes keep joining, each knowing one node
	ScenarioChurn     = "churn"     // nodes leave and come back
	ScenarioPartition = "partition" // two halves split, then heal
	ScenarioSybil     = "sybil"     // attackers in one /16 push their subnet
	ScenarioFlood     = "flood"     // attackers send bad and unasked messages
)

// Scenarios lists the scenario names.
var Scenarios = []string{ScenarioCold, ScenarioJoin, ScenarioGrowth, ScenarioChurn, ScenarioPartition, ScenarioSybil, ScenarioFlood}

// Policy selects the discovery behaviour under test.
type Policy int

const (
	// PolicyPex is this library's behaviour.
	PolicyPex Policy = iota
	// PolicyBaseline reproduces published Tendermint v0.35: each response
	// an independent random sample, its interval formula, URLs with their
	// mconn:// scheme.
	PolicyBaseline
)

func (p Policy) String() string {
	if p == PolicyBaseline {
		return "baseline"
	}
	return "pex"
}

// Options configures a run. Zero values mean the defaults.
type Options struct {
	Nodes    int    // default 1000
	Scenario string // default cold
	Seed     uint64 // default 1
	Policy   Policy
	// Latency is the mean one-way delay; each link gets a fixed delay
	// between half and one and a half times it. Default 50 ms; with a
	// Topology, LoopbackLatency.
	Latency time.Duration
	// Loss is the probability that a message is lost. Its connection
	// breaks with it, as a reliable transport's does (TCP, QUIC: a
	// connection that lost a message is gone), and the nodes dial again.
	Loss float64
	// MaxConnected and MaxOutbound are every node's connection limits.
	// Defaults 50 and 10; with a Topology, pexrace's: 2 and 1 times Nodes
	// (its switches allow Nodes inbound and Nodes outbound peers, so that
	// no limit stalls discovery).
	MaxConnected int
	MaxOutbound  int
	// Attackers is the share of the nodes that attack in the sybil and
	// flood scenarios. Default 0.1.
	Attackers float64
	// Groups is how many /16s the attackers (and the addresses nobody
	// listens on that they announce) spread over, 1 to 256: attacker k
	// lives in 66.(k mod Groups).0.0/16. Default 1, 66.0.0.0/16.
	Groups int
	// CycleIdentities makes every attacker, each cycleEvery, drop its
	// connections and come back from its one real host with a fresh node
	// ID, claiming in its handshakes a listen address in a /16 of its own
	// (see cycle in adversary.go).
	CycleIdentities bool
	// Spoof makes sybil answers carry addresses of attacker hosts under
	// honest node IDs (see sybilResponse).
	Spoof bool
	// Junk is whether sybil answers carry addresses nobody listens on;
	// the zero value is today's mix (half of each answer).
	Junk Switch
	// Topology, when set, builds the cold scenario as cometbft/cmd/pexrace
	// builds its networks of real switches: every node is started at
	// once, in index order, and knows at start, from an entry in its
	// address book (not a persistent peer), node 0 (TopologyStar) or
	// node i-1 (TopologyChain). Empty: the cold scenario's own start,
	// every node knowing node 0 and starting within a second. The
	// transport's defaults are then those of pexrace's switches, all on
	// one loopback machine (see Latency, MaxConnected, OneMachine), so
	// that a run is what cometbft/cmd/pexcalib compares with them.
	Topology string
	// MinInterval is every node's pex.Config.MinInterval; zero leaves
	// pex's default.
	MinInterval time.Duration
	// Flush is how long a connection holds a message before it leaves:
	// CometBFT's MConnection writes into a buffer and flushes it
	// FlushThrottleTimeout after the first write since the last flush,
	// so messages written meanwhile leave together. Default
	// DefaultFlush; negative: none.
	Flush time.Duration
	// Handshake is the time a dial spends computing, beyond its network
	// round trips (see dial): the secret connection's key agreement
	// and signatures, the NodeInfo exchange, adding the peer. Default
	// DefaultHandshake; negative: none.
	Handshake time.Duration
	// OneMachine runs the network as on one machine, as pexcalib's
	// switches on loopback are: the handshakes under way, of all the
	// nodes, share its processors, each needing Handshake of the
	// machine's time (processor sharing: a burst of dials ends together,
	// near the burst's end). Measured: node 0 of a star of 40 adds its 39
	// inbound peers from 21 to 37 ms after the start, of 80 its 79 from
	// 33 to 65 ms (load 2.5 on 2 cores); 80 disjoint pairs dialling at
	// once take 63 ms for all (load 1.3). Off, each node computes its own
	// handshakes, all at once. Default on with a Topology, else off.
	OneMachine Switch
	// Accept is the time a node's switch takes to add an inbound peer
	// once its handshake is done: CometBFT's accept routine adds them one
	// at a time (starting the connection, every reactor's InitPeer and
	// AddPeer), so a burst of dials to one node comes up one after
	// another, and the node learns of the dialers and answers their
	// requests in that order. Default DefaultAccept on one machine
	// (OneMachine), where it is the machine's time; otherwise none, a
	// node's own processors doing it in a small share of a network's
	// latency. Negative: none.
	Accept time.Duration
	// Dialers is how many dials a node runs at once: the adapter's dialer
	// goroutines. Default DefaultDialers.
	Dialers int
	// Heal is when the partition scenario's halves are joined at the
	// latest; earlier once each node knows its whole half. Default 2 min.
	Heal time.Duration
	// Limit is the most virtual time to run. Default 2 h.
	Limit time.Duration
	// Progress, if set, is called about every Every of virtual time.
	Progress func(Progress)
	Every    time.Duration // default 10 s
	// Sample is the virtual-time step of the coverage curve. Default 1 s.
	Sample time.Duration
}

func (o *Options) defaults() error {
	if o.Nodes == 0 {
		o.Nodes = 1000
	}
	if o.Scenario == "" {
		o.Scenario = ScenarioCold
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Topology != "" {
		// pexrace's switches on loopback
		if o.Latency == 0 {
			o.Latency = LoopbackLatency
		}
		if o.MaxConnected == 0 {
			o.MaxConnected = 2 * o.Nodes
		}
		if o.MaxOutbound == 0 {
			o.MaxOutbound = o.Nodes
		}
	}
	if o.Latency == 0 {
		o.Latency = 50 * time.Millisecond
	}
	if o.MaxConnected == 0 {
		o.MaxConnected = 50
	}
	if o.MaxOutbound == 0 {
		o.MaxOutbound = 10
	}
	if o.Limit == 0 {
		o.Limit = 2 * time.Hour
	}
	if o.Every == 0 {
		o.Every = time.Second
	}
	if o.Sample == 0 {
		o.Sample = time.Second
	}
	if o.Flush == 0 {
		o.Flush = DefaultFlush
	}
	o.Flush = max(o.Flush, 0)
	if o.Handshake == 0 {
		o.Handshake = DefaultHandshake
	}
	o.Handshake = max(o.Handshake, 0)
	if o.Accept == 0 && o.OneMachine.on(o.Topology != "") {
		o.Accept = DefaultAccept
	}
	o.Accept = max(o.Accept, 0)
	if o.Dialers == 0 {
		o.Dialers = DefaultDialers
	}
	if o.Heal == 0 {
		o.Heal = partitionHeal
	}
	if o.Attackers == 0 && adversarial(o.Scenario) {
		o.Attackers = defaultAttackers
	}
	if o.Groups == 0 {
		o.Groups = 1
	}
	switch {
	case o.Nodes < 3:
		return fmt.Errorf("sim: need at least 3 nodes")
	case !slices.Contains(Scenarios, o.Scenario):
		return fmt.Errorf("sim: unknown scenario %q (have %v)", o.Scenario, Scenarios)
	case o.Loss < 0 || o.Loss >= 1:
		return fmt.Errorf("sim: loss must be in [0, 1)")
	case o.MaxOutbound > o.MaxConnected:
		return fmt.Errorf("sim: MaxOutbound above MaxConnected")
	case o.Topology != "" && o.Topology != TopologyStar && o.Topology != TopologyChain:
		return fmt.Errorf("sim: unknown topology %q (have %s, %s)", o.Topology, TopologyStar, TopologyChain)
	case o.Topology != "" && o.Scenario != ScenarioCold:
		return fmt.Errorf("sim: a topology is for the cold scenario")
	case o.MinInterval < 0:
		return fmt.Errorf("sim: MinInterval must not be negative")
	case o.Dialers < 1:
		return fmt.Errorf("sim: need at least one dialer")
	case o.Heal < 0:
		return fmt.Errorf("sim: heal must not be negative")
	case o.Attackers < 0 || o.Attackers >= 1:
		return fmt.Errorf("sim: attackers must be a share in [0, 1)")
	case o.Groups < 1 || o.Groups > maxGroups:
		return fmt.Errorf("sim: groups must be in [1, %d]", maxGroups)
	case o.Junk < Default || o.Junk > Off:
		return fmt.Errorf("sim: junk must be Default, On or Off")
	case o.OneMachine < Default || o.OneMachine > Off:
		return fmt.Errorf("sim: OneMachine must be Default, On or Off")
	case adversarial(o.Scenario) && o.Nodes-attackers(o.Nodes, o.Attackers) < 3:
		return fmt.Errorf("sim: need at least 3 honest nodes")
	}
	return nil
}

// Topologies of Options.Topology.
const (
	TopologyStar  = "star"  // every node knows node 0
	TopologyChain = "chain" // node i knows node i-1
)

// The transport's constants: CometBFT v0.38's, each checked on its
// switches over loopback by cometbft/cmd/pexcalib -probe.
const (
	// DefaultFlush is CometBFT's default FlushThrottleTimeout (100 ms):
	// each message waits for its connection's flush timer. Measured: the
	// first request on a new connection arrives 100.8 ms after the dial
	// (median of 30, 100.4 to 102.7), its answer 100.4 ms after it.
	DefaultFlush = 100 * time.Millisecond
	// DefaultHandshake is a dial's computing on top of its round trips.
	// Measured: a lone loopback dial (TCP, secret connection, NodeInfo,
	// AddPeer) takes 1.3 ms (median of 30, 0.9 to 2.4, load 2.5 on 2
	// cores), and a machine completes one every 0.8 to 1.25 ms.
	DefaultHandshake = 1200 * time.Microsecond
	// DefaultAccept is the time a switch takes to add an inbound peer on
	// one machine (see Options.Accept). Measured: node 0 of a star of 40
	// adds its 39 inbound peers 0.42 ms apart (from 21 to 37 ms), of 80
	// its 79 peers 0.41 ms apart (from 33 to 65 ms), at load 2.5 on 2
	// cores.
	DefaultAccept = 400 * time.Microsecond
	// DefaultDialers is the adapter's cometbft.DefaultDialers.
	DefaultDialers = 4
	// LoopbackLatency is the one-way latency pexcalib gives the
	// simulator for loopback: the kernel's hand-over and a goroutine's
	// wake-up, a small share of the flush and handshake times.
	LoopbackLatency = 100 * time.Microsecond
)

// Switch is an option that is on or off, with a default of its own for
// its zero value.
type Switch int8

const (
	Default Switch = iota // the option's default
	On
	Off
)

// on reports whether sw is on, def being its default.
func (sw Switch) on(def bool) bool {
	if sw == Default {
		return def
	}
	return sw == On
}

// maxGroups is the most /16s attackers may spread over: 66.0.0.0/8.
const maxGroups = 256

// Progress is a snapshot while a run goes on.
type Progress struct {
	Elapsed     time.Duration // virtual
	AvgCoverage float64       // share of the network the average node knows
	MinCoverage float64       // ... the worst node
	Messages    int
}

// epoch is the virtual clock's origin.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type eventKind uint8

const (
	evWake      eventKind = iota // run the node's Tick
	evDial                       // the node may dial
	evConnect                    // a dial reaches its target
	evDeliver                    // a message arrives
	evScript                     // a scenario step
	evAttack                     // a sybil's next request on a connection
	evHandshake                  // the one machine may have finished handshakes
)

type event struct {
	at   time.Duration
	seq  uint64
	kind eventKind
	node int32
	peer int32
	// evWake/evDial: stale when != node's; evAttack, evDeliver: the
	// connection (an attacker's count, linkGen), stale when it is gone
	gen  uint32
	msg  []byte
	addr pex.NodeAddress
	fn   func()
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}
