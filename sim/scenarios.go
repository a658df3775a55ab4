package sim

import (
	"time"
)

// Scenario timing.
const (
	startSpread    = time.Second      // cold starts are spread over this
	growthInitial  = 10               // growth starts with nodes/growthInitial
	growthEvery    = time.Second      // then one node joins per this
	churnStart     = 30 * time.Second // churn begins
	churnEvery     = time.Second      // one node leaves per this
	churnDowntime  = time.Minute      // and returns after this
	churnDuration  = 5 * time.Minute  // churn lasts this long
	partitionHeal  = 2 * time.Minute  // latest heal by default (Options.Heal)
	partitionSides = 2
)

func (s *simulation) setup() error {
	n := s.opts.Nodes
	switch s.opts.Scenario {
	case ScenarioCold:
		if s.opts.Topology != "" {
			s.switchStart(n)
		} else {
			s.coldStart(0, n, 0)
		}
		s.measured = s.nodes
		s.netSize = n
	case ScenarioJoin:
		// n nodes that already know each other, materialised when first
		// contacted, and one newcomer that knows one of them.
		for i := range n {
			nd := s.newNode(i)
			nd.lazy = true
			nd.online = true
		}
		joiner := s.newNode(n)
		s.materialise(joiner)
		boot := s.nodes[s.rng.IntN(n)]
		if _, err := joiner.book.Add(boot.addr); err != nil {
			return err
		}
		s.measured = []*node{joiner}
		s.netSize = n + 1
		s.script(0, func() { s.start(joiner) })
	case ScenarioGrowth:
		first := max(3, n/growthInitial)
		s.coldStart(0, first, 0)
		for i := first; i < n; i++ {
			nd := s.newNode(i)
			s.materialise(nd)
			at := startSpread + time.Duration(i-first+1)*growthEvery
			s.script(at, func() {
				// It knows one node that is already up.
				boot := s.nodes[s.rng.IntN(i)]
				_, _ = nd.book.Add(boot.addr)
				s.start(nd)
			})
		}
		s.measured = s.nodes
		s.netSize = n
	case ScenarioChurn:
		s.coldStart(0, n, 0)
		s.measured = s.nodes
		s.netSize = n
		for at := churnStart; at < churnStart+churnDuration; at += churnEvery {
			s.script(at, func() {
				victim := s.nodes[1+s.rng.IntN(n-1)] // the seed stays
				if !victim.online {
					return
				}
				s.stop(victim)
				s.script(s.now+churnDowntime, func() { s.start(victim) })
			})
		}
	case ScenarioPartition:
		half := n / partitionSides
		s.split = true
		s.coldStart(0, half, 0)
		s.coldStart(half, n, 1)
		s.measured = s.nodes
		s.netSize = n
		s.script(s.opts.Heal, s.heal)
	case ScenarioSybil:
		s.setupAttack(sybil)
		s.opts.Limit = min(s.opts.Limit, attackFor)
	case ScenarioFlood:
		s.setupAttack(flooder)
		s.opts.Limit = min(s.opts.Limit, attackFor)
	}
	return nil
}

// coldStart creates nodes [from, to) of one group, all knowing only the
// first of them, starting within startSpread.
func (s *simulation) coldStart(from, to, group int) {
	for i := from; i < to; i++ {
		nd := s.newNode(i)
		nd.group = group
		s.materialise(nd)
		if i != from {
			_, _ = nd.book.Add(s.nodes[from].addr)
		}
		at := time.Duration(s.rng.Int64N(int64(startSpread)))
		s.script(at, func() { s.start(nd) })
	}
}

// switchStart creates the n nodes of a pexrace network (Options.Topology):
// node i knows node 0 (star) or node i-1 (chain) from its address book,
// and all start at 0, in index order, as testnet.Network.Start starts the
// switches one after another.
func (s *simulation) switchStart(n int) {
	for i := range n {
		nd := s.newNode(i)
		s.materialise(nd)
		switch {
		case i == 0:
		case s.opts.Topology == TopologyChain:
			_, _ = nd.book.Add(s.nodes[i-1].addr)
		default:
			_, _ = nd.book.Add(s.nodes[0].addr)
		}
		s.script(0, func() { s.start(nd) })
	}
}

// heal ends a partition: the halves can reach each other, and the first
// half's seed is given the second's as a persistent peer (an operator
// joining the two).
func (s *simulation) heal() {
	if !s.split {
		return
	}
	s.split = false
	s.healAt = s.now
	a, b := s.nodes[0], s.nodes[s.opts.Nodes/partitionSides]
	if err := a.book.AddPersistent(b.addr); err != nil {
		panic(err) // a valid address the simulation built
	}
	s.dial(a)
}

// scenarioDone reports whether the scripted part of the scenario is over,
// so the run may end once every measured node knows everyone.
func (s *simulation) scenarioDone() bool {
	switch s.opts.Scenario {
	case ScenarioGrowth:
		return s.nodes[len(s.nodes)-1].online
	case ScenarioChurn:
		return s.now >= churnStart+churnDuration+churnDowntime
	case ScenarioSybil:
		return false // it runs for attackFor
	case ScenarioPartition:
		if s.split && s.halvesConverged() {
			s.heal()
		}
		return !s.split
	}
	return true
}

func (s *simulation) halvesConverged() bool {
	half := s.opts.Nodes / partitionSides
	for _, n := range s.nodes {
		size := half
		if n.group == 1 {
			size = s.opts.Nodes - half
		}
		if n.book.Len() < size-1 {
			return false
		}
	}
	return true
}

// materialiseConverged gives a node of an established network (join) a
// book holding every other established node.
func (s *simulation) materialiseConverged(n *node) {
	s.materialise(n)
	n.noDial = true
	for i := range s.opts.Nodes {
		if int32(i) != n.idx {
			_, _ = n.book.Add(s.nodes[i].addr)
		}
	}
	s.start(n)
}
