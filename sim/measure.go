// What a run measures: the milestones of each node, the coverage curve,
// and the Result they make.

package sim

import (
	"runtime"
	"slices"
)

// Thresholds are the coverage milestones reported, as shares of the
// network.
var Thresholds = [4]float64{0.5, 0.9, 0.99, 1}

// Milestone is when a node first knew a share of the network.
type Milestone struct {
	Rounds     float64 // PEX requests the node had sent; -1 if never
	SimSeconds float64 // virtual seconds since the node started; -1 if never
	// Addresses is how many addresses the node had received in PEX
	// responses by then (new or not); -1 if never.
	Addresses float64
}

// CurvePoint is one sample of the coverage curve.
type CurvePoint struct {
	SimSeconds float64
	Avg, Min   float64
}

// Result is the outcome of a run.
type Result struct {
	Nodes    int
	Scenario string
	Seed     uint64
	Policy   string
	// Measured is how many nodes the milestones cover (all, or the joiner).
	Measured int
	// Avg and Worst are the milestones of the average and the worst
	// measured node, for each of Thresholds; P99 those of the node at the
	// 99th percentile (rounds, seconds and addresses each ranked on their
	// own, as for Worst): the tail without its single slowest node.
	Avg, Worst, P99 [4]Milestone
	// Per measured node, until it knew the whole network (or the run
	// ended).
	RequestsPerNode  float64
	AddressesPerNode float64
	BytesPerNode     float64
	// MinAddressesPerNode is the least a node must receive to know
	// everyone: each other node once. MinBytesPerNode is that at 60 bytes
	// an address.
	MinAddressesPerNode int
	MinBytesPerNode     int
	// SizeEstimate is the measured nodes' mean network-size estimate at the
	// end; TrueSize the network's size as they see it (nodes - 1).
	SizeEstimate float64
	TrueSize     int
	// FullDiscoverySeconds is the virtual time from the run's start until
	// every measured node's book held every other node, as pexrace
	// measures it on real switches; -1 if never. FullDiscoveryRequests is
	// the PEX requests the whole network had sent by then.
	FullDiscoverySeconds  float64
	FullDiscoveryRequests int
	// FullDiscoveryRequestsReceived is the PEX requests the network had
	// received by then, as pexrace's meters count them on real switches:
	// requests still waiting on a connection's flush are not in it.
	FullDiscoveryRequestsReceived int
	// HealSimSeconds is when a partition healed (partition only).
	HealSimSeconds float64
	SimSeconds     float64
	WallSeconds    float64
	PeakHeapMB     float64
	Messages       int
	Curve          []CurvePoint

	// Adversarial scenarios (sybil, flood): the figures cover the honest
	// nodes, and these describe the attack at the end of the run.
	Attackers int
	// The attack's options: Options.Groups, CycleIdentities, Spoof and
	// whether answers carried junk.
	Groups                       int
	CycleIdentities, Spoof, Junk bool
	// AttackerShareInBooks is the mean share of attacker addresses in
	// honest nodes' books.
	AttackerShareInBooks float64
	// MaxAttackerShareInBooks is the largest AttackerShareInBooks of the
	// Series samples from the first minute on.
	MaxAttackerShareInBooks float64
	// OutboundEclipsedNodes is how many honest nodes had outbound
	// connections, all of them to attackers, at the end;
	// MaxEclipsedNodes the most at any sample of Series (or the end).
	OutboundEclipsedNodes, MaxEclipsedNodes int
	// EclipsedNodes is how many honest nodes had connections, every one
	// of them (inbound too) to attackers, at the end (fully eclipsed);
	// MaxFullyEclipsedNodes the most at any sample of Series (or the end).
	EclipsedNodes, MaxFullyEclipsedNodes int
	// EclipsedNodesMax is the most fully eclipsed honest nodes at any
	// sample of the coverage curve (every Options.Sample, the first
	// seconds too, when a node has one or two connections), first seen
	// at EclipsedMaxSimSeconds.
	EclipsedNodesMax      int
	EclipsedMaxSimSeconds float64
	// HonestWorstKnown is the least share of the other honest nodes any
	// honest node knows at the end, an honest node being known when the
	// book holds its true address (not only spoofs of it).
	HonestWorstKnown float64
	// SpoofDialShare is the share of honest nodes' dials that went to a
	// spoofed address: an honest node ID at an address not its own.
	// Feelers, the book's test dials of untested addresses, are not
	// counted: FeelerDialsPerNode of them per honest node, a share
	// FeelerSpoofShare of them to spoofs.
	SpoofDialShare                       float64
	FeelerDialsPerNode, FeelerSpoofShare float64
	// CensoredNodes is how many honest nodes some honest node stopped
	// dialling or advertising because of spoofs, at the end (see
	// censored in adversary.go).
	CensoredNodes int
	// Series is the attack sampled every 30 virtual seconds.
	Series []AttackSample
	// PeerErrorsPerNode is the peer errors an honest node reported.
	PeerErrorsPerNode float64
	// Reference is the same honest nodes with the same seed and no
	// attackers: a cold start, the rate the attack should not slow.
	Reference *Result
}

// AttackSample is the attack at one moment of a run.
type AttackSample struct {
	SimSeconds float64
	// AttackerShareInBooks is the mean share of attacker entries in
	// honest books.
	AttackerShareInBooks float64
	// Eclipsed: honest nodes whose outbound connections are all to
	// attackers (and at least one); FullyEclipsed: whose connections are.
	Eclipsed, FullyEclipsed int
}

// observe records milestones after n received something.
func (s *simulation) observe(n *node) {
	if n.done || n.role != honest || n.book == nil {
		return
	}
	cov := s.coverage(n)
	for i, th := range Thresholds {
		if !n.reached[i] && cov >= th-1e-9 {
			n.reached[i] = true
			st := n.core.Stats()
			n.ms[i] = Milestone{Rounds: float64(st.RequestsSent), SimSeconds: (s.now - n.started).Seconds(), Addresses: float64(st.AddressesReceived)}
		}
	}
	if n.reached[len(Thresholds)-1] {
		n.done = true
		st := n.core.Stats()
		n.requests, n.addrs, n.bytes = st.RequestsSent, st.AddressesReceived, st.BytesReceived
		if n.measured {
			s.doneCount++
			if s.doneCount == len(s.measured) {
				s.fullAt = s.now
				s.fullReceived = s.received
				for _, m := range s.nodes {
					if m.core != nil {
						s.fullRequests += m.core.Stats().RequestsSent
					}
				}
			}
		}
	}
}

// isRequest reports whether msg is a PEX request, V1 or V2: a PexMessage
// whose oneof is field 1 (PexRequest) or 3 (PexRequestV2), as the
// adapter's tests meter them.
func isRequest(msg []byte) bool {
	return len(msg) > 0 && (msg[0] == 0x0a || msg[0] == 0x1a)
}

func (s *simulation) coverage(n *node) float64 {
	if n.book == nil {
		return 0
	}
	if s.attackers > 0 {
		return float64(s.honestKnown(n)) / float64(s.netSize-1)
	}
	return float64(n.book.Len()) / float64(s.netSize-1)
}

func (s *simulation) sample() {
	var sum, lo float64
	lo = 1
	alldone := true
	for _, n := range s.measured {
		c := min(s.coverage(n), 1)
		sum += c
		lo = min(lo, c)
		if !n.done {
			alldone = false
		}
	}
	avg := sum / float64(len(s.measured))
	if s.attackers > 0 {
		if e := s.eclipsed(false); e > s.eclipsedMax {
			s.eclipsedMax, s.eclipsedMaxAt = e, s.now
		}
		if s.now >= s.nextAttackSample {
			s.series = append(s.series, s.attackSample())
			s.nextAttackSample += seriesEvery
		}
	}
	s.curve = append(s.curve, CurvePoint{SimSeconds: s.now.Seconds(), Avg: avg, Min: lo})
	var ms runtime.MemStats
	if len(s.curve)%30 == 1 {
		runtime.ReadMemStats(&ms)
		s.peakHeap = max(s.peakHeap, ms.HeapAlloc)
	}
	if alldone && s.scenarioDone() {
		s.finished = true
	}
}

func (s *simulation) progress() Progress {
	var sum, lo float64
	lo = 1
	for _, n := range s.measured {
		c := min(s.coverage(n), 1)
		sum += c
		lo = min(lo, c)
	}
	return Progress{Elapsed: s.now, AvgCoverage: sum / float64(len(s.measured)), MinCoverage: lo, Messages: s.messages}
}

func (s *simulation) result() *Result {
	r := &Result{
		Nodes:                s.opts.Nodes,
		Scenario:             s.opts.Scenario,
		Seed:                 s.opts.Seed,
		Policy:               s.opts.Policy.String(),
		Measured:             len(s.measured),
		MinAddressesPerNode:  s.netSize - 1,
		MinBytesPerNode:      (s.netSize - 1) * 60,
		TrueSize:             s.netSize - 1,
		SimSeconds:           s.now.Seconds(),
		PeakHeapMB:           float64(s.peakHeap) / (1 << 20),
		Messages:             s.messages,
		Curve:                s.curve,
		HealSimSeconds:       -1,
		FullDiscoverySeconds: -1,
	}
	if s.doneCount == len(s.measured) {
		r.FullDiscoverySeconds, r.FullDiscoveryRequests = s.fullAt.Seconds(), s.fullRequests
		r.FullDiscoveryRequestsReceived = s.fullReceived
	}
	if s.opts.Scenario == ScenarioPartition {
		r.HealSimSeconds = s.healAt.Seconds()
	}
	k := len(s.measured)
	p := (99*k+99)/100 - 1 // nearest rank
	for i := range Thresholds {
		never := Milestone{-1, -1, -1}
		r.Avg[i], r.Worst[i], r.P99[i] = never, never, never
		if !s.allReached(i) {
			continue
		}
		// Each figure is ranked on its own.
		for _, f := range []func(*Milestone) *float64{
			func(m *Milestone) *float64 { return &m.Rounds },
			func(m *Milestone) *float64 { return &m.SimSeconds },
			func(m *Milestone) *float64 { return &m.Addresses },
		} {
			vs := make([]float64, 0, k)
			var sum float64
			for _, n := range s.measured {
				v := *f(&n.ms[i])
				sum += v
				vs = append(vs, v)
			}
			slices.Sort(vs)
			*f(&r.Avg[i]), *f(&r.Worst[i]), *f(&r.P99[i]) = sum/float64(k), vs[k-1], vs[p]
		}
	}
	var req, addrs, bytes, est float64
	for _, n := range s.measured {
		if !n.done && n.core != nil {
			st := n.core.Stats()
			n.requests, n.addrs, n.bytes = st.RequestsSent, st.AddressesReceived, st.BytesReceived
		}
		req += float64(n.requests)
		addrs += float64(n.addrs)
		bytes += float64(n.bytes)
		if n.core != nil {
			est += float64(n.core.NetworkSizeEstimate())
		}
	}
	per := float64(k)
	r.RequestsPerNode, r.AddressesPerNode, r.BytesPerNode, r.SizeEstimate = req/per, addrs/per, bytes/per, est/per
	if s.attackers > 0 {
		s.attackFigures(r)
	}
	return r
}

// allReached reports whether every measured node reached Thresholds[i].
func (s *simulation) allReached(i int) bool {
	for _, n := range s.measured {
		if !n.reached[i] {
			return false
		}
	}
	return true
}
