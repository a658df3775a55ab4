package sim

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/pexnet/pex"
	"github.com/pexnet/pex/internal/book"
	"github.com/pexnet/pex/pb"
)

// Adversarial scenarios. The attackers are the last nodes of the network,
// spread over Options.Groups /16s of 66.0.0.0/8, which no honest node
// uses (one, 66.0.0.0/16, by default). Honest
// nodes run the library as in the other scenarios; attackers run a
// PeerManager (to dial whoever they learn of, with no connection limit
// of their own) but answer and ask as the scenario says, not through a
// Core.
const (
	// attackFor is how long the attack runs: the sybil run lasts this
	// long, so that it measures a network the attackers have worked on
	// well after honest nodes converged.
	attackFor = 10 * time.Minute
	// sybilAnswer is how many addresses of their subnet sybils put in
	// every answer.
	sybilAnswer = pex.MaxAddresses
	// sybilReal is how many of a sybil answer's addresses are real
	// attackers (all of them if fewer); the rest are other addresses of
	// the /16, where nobody listens.
	sybilReal = sybilAnswer / 2
	// sybilAnswers is how many different answers the sybils draw from.
	sybilAnswers = 256
	// sybilQuiet is the pace of a sybil's requests to a peer whose last
	// answer brought it nothing: a request costs the honest node only
	// CPU, which the simulation does not model, so asking faster would
	// only slow the run. While answers bring something new it asks as
	// fast as the peer allows.
	sybilQuiet = time.Minute
	// attackWait is how often an attacker looks whether node 0, the only
	// node it knows at first, listens yet.
	attackWait = 10 * time.Millisecond
	// attackRedial is how soon an attacker dials a node again.
	attackRedial = 2 * time.Minute
	// attackDials is how many times a node's MaxConnected an attacker
	// dials.
	attackDials = 2
	// defaultAttackers is the attackers' share when Options leaves it 0.
	defaultAttackers = 0.1
	// cycleEvery is how often an attacker cycling its identities comes
	// back as a new one: 20 identities in the 10 minutes of the attack.
	cycleEvery = 30 * time.Second
	// claimGroups is how many /16s (64.0.0.0/16 to 65.255.0.0/16, where
	// no honest node of fewer than about 13,000 lives) the listen
	// addresses claimed by cycling attackers are drawn from, one /16 per
	// identity in turn.
	claimGroups = 512
	// seriesEvery is the step of the attack's sampled series.
	seriesEvery = 30 * time.Second
	// seriesAfter: the largest attacker share is taken over the samples
	// from this time on (the book fills in the first seconds).
	seriesAfter = time.Minute
)

type role uint8

const (
	honest  role = iota
	sybil        // answers with its subnet, asks as fast as allowed
	flooder      // unsolicited and oversized responses, request floods
)

// flood behaviours, taken in turn on each new connection of a flooder
const (
	floodUnsolicited = iota // a response nobody asked for
	floodOversized          // a message over MaxMessageSize
	floodRequests           // requests back to back, past the burst
	floodKinds
)

func adversarial(scenario string) bool {
	return scenario == ScenarioSybil || scenario == ScenarioFlood
}

// attackers is how many of n nodes attack.
func attackers(n int, share float64) int {
	return max(1, int(float64(n)*share+0.5))
}

// attackHost is the IP of the k-th attacker address (real attackers
// first, then addresses nobody listens on): in 66.g.0.0/16 with g = k mod
// Groups, the k/Groups-th address there. With one group, 66.0.0.0/16 in
// order.
func (s *simulation) attackHost(k int) string {
	g, j := k%s.opts.Groups, k/s.opts.Groups
	return fmt.Sprintf("66.%d.%d.%d", g, j/256%256, j%256)
}

// attackSpace is how many addresses each of the attackers' /16s holds.
const attackSpace = 1 << 16

// attackAddr is the k-th attacker address: for a real attacker where it
// listens, under its current node ID.
func (s *simulation) attackAddr(k int) pex.NodeAddress {
	if k < s.attackers {
		return s.nodes[s.honest+k].real
	}
	return pex.NodeAddress{Protocol: pex.ProtocolMConn, NodeID: simNodeID(1<<24 + k), Hostname: s.attackHost(k), Port: 26656}
}

// claimHost is the listen address claimed by the c-th identity of
// cycling attackers: a /16 of claimGroups in turn.
func claimHost(c int) string {
	g, j := c%claimGroups, c/claimGroups
	return fmt.Sprintf("%d.%d.%d.%d", 64+g/256, g%256, j/256%256, j%256)
}

// setupAttack creates the honest network (a cold start from node 0) and
// the attackers, who know node 0 too (a flooder knows every honest node)
// and start in the same second.
func (s *simulation) setupAttack(r role) {
	n := s.opts.Nodes
	s.attackers = attackers(n, s.opts.Attackers)
	s.honest = n - s.attackers
	s.coldStart(0, s.honest, 0)
	s.measured = s.nodes
	s.netSize = s.honest
	for k := range s.attackers {
		nd := s.newNode(s.honest + k)
		nd.role = r
		delete(s.listen, endpointOf(nd.addr))
		nd.addr.Hostname = s.attackHost(k)
		nd.real = nd.addr
		s.listen[endpointOf(nd.addr)] = nd.idx
		s.materialise(nd)
		if r == flooder {
			for _, h := range s.nodes[:s.honest] {
				_, _ = nd.book.Add(h.addr)
			}
		} else {
			_, _ = nd.book.Add(s.nodes[0].addr)
		}
		at := time.Duration(s.rng.Int64N(int64(startSpread)))
		var begin func()
		begin = func() {
			if r != flooder && !s.nodes[0].online {
				// It knows node 0 alone: it starts once node 0 listens,
				// as an attacker would retry at once, not attackRedial
				// after a failed first dial.
				s.script(s.now+attackWait, begin)
				return
			}
			nd.online = true
			nd.started = s.now
			s.dial(nd)
		}
		s.script(at, begin)
	}
	if s.opts.CycleIdentities {
		s.script(cycleEvery, s.cycle)
	}
}

// cycle gives every attacker a new identity, as one that reconnects from
// its one real host with a fresh node ID and a listen address it claims
// in another /16 each time: it drops its connections, takes the new ID,
// announces the claimed address in its handshakes (addr, which honest
// books take for where it is), and goes on listening and dialling from
// its real host (real: the source a transport observes, under the new
// ID; nobody listens at the claimed address), with a fresh book that
// holds what it knew, so it dials everyone again at once. Its earlier
// identities are gone: a dial to one fails. Its answers name the attackers' current
// identities at their real hosts.
func (s *simulation) cycle() {
	s.cycles++
	s.answers = nil
	for k, a := range s.nodes[s.honest:] {
		s.stop(a)
		c := s.cycles*s.attackers + k
		id := simNodeID(2<<24 + c)
		a.id = id
		s.byID[id] = a.idx
		a.addr = pex.NodeAddress{Protocol: pex.ProtocolMConn, NodeID: id, Hostname: claimHost(c), Port: 26656}
		a.real.NodeID = id
		// A new identity has no back-offs: a fresh book, holding what the
		// last one knew.
		old := a.book
		s.materialise(a)
		for _, known := range old.Known() {
			for _, addr := range old.Addresses(known) {
				_, _ = a.book.Add(addr)
			}
		}
		a.quiet = nil
		a.online = true
		s.dial(a)
	}
	s.script(s.now+cycleEvery, s.cycle)
}

// attackerOptions are an attacker's PeerManager options: it accepts
// every connection, dials attackDials times a node's connection limit
// (with 10% attackers, about 11 attackers per honest node; with 30%, more
// than its inbound slots), whatever their groups, and dials again
// attackRedial after losing a connection (sooner would only cost the run
// time: a displaced sybil displaces another sybil).
func (s *simulation) attackerOptions(o *book.Options) {
	o.MaxConnected = s.opts.Nodes
	o.MaxOutbound = min(s.opts.Nodes, attackDials*s.opts.MaxConnected)
	o.MaxOutboundPerGroup = -1
	o.MinRetryTime, o.MaxRetryTime = attackRedial, attackRedial
}

// linkUp starts an attacker's work on a new connection.
func (s *simulation) linkUp(a *node, to int32) {
	switch a.role {
	case sybil:
		// As fast as allowed: the burst first, then the sustained rate.
		for range pex.DefaultConfig().RequestBurst {
			s.send(a, to, sybilRequest)
		}
		if a.conns == nil {
			a.conns = make(map[int32]uint32)
		}
		a.conns[to]++ // requests planned for an earlier connection lapse
		s.schedule(&event{at: s.now + s.attackPace(), kind: evAttack, node: a.idx, peer: to, gen: a.conns[to]})
	case flooder:
		kind := a.floods % floodKinds
		a.floods++
		switch kind {
		case floodUnsolicited:
			s.send(a, to, s.sybilResponse())
		case floodOversized:
			s.send(a, to, oversized)
		case floodRequests:
			for range pex.DefaultConfig().RequestBurst + 2 {
				s.send(a, to, sybilRequest)
			}
		}
	}
}

// attackPace is the sustained request rate a peer allows, with a
// millisecond of margin.
func (s *simulation) attackPace() time.Duration {
	return pex.DefaultConfig().MinReceiveInterval + time.Millisecond
}

// attack is a sybil's next request on a connection, if it still exists.
func (s *simulation) attack(a *node, to int32, conn uint32) {
	if _, ok := a.links[to]; !ok || !a.online || a.conns[to] != conn {
		return
	}
	s.send(a, to, sybilRequest)
	next := s.attackPace()
	if a.quiet[to] {
		next = sybilQuiet
	}
	s.schedule(&event{at: s.now + next, kind: evAttack, node: a.idx, peer: to, gen: conn})
}

// oversized is a message over the size limit, shared by every send (the
// simulation never writes to a message).
var oversized = make([]byte, pex.DefaultMaxMessageSize+1)

var sybilRequest = mustMarshal(&pb.PexMessage{Sum: &pb.PexMessage_PexRequestV2{PexRequestV2: &pb.PexRequestV2{}}})

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err) // messages built here
	}
	return b
}

// sybilResponse is sybilAnswer addresses of the attackers' /16s: sybilReal
// real attackers (all of them if fewer), and the rest addresses of the
// /16s nobody listens on (Options.Junk, by default). With Options.Spoof,
// half of that rest (all of it without junk) is spoofs: honest node IDs,
// drawn at random, at real attackers' addresses, where the dialler finds
// an attacker's node ID instead. Without junk or spoofs, an answer is
// only real attackers, as many as there are up to sybilAnswer. All are
// drawn at random. The sybils draw from sybilAnswers answers built once
// (again after each identity cycle), to spare the run the encoding.
func (s *simulation) sybilResponse() []byte {
	i := s.rng.IntN(sybilAnswers)
	if s.answers == nil {
		s.answers = make([][]byte, sybilAnswers)
	}
	if s.answers[i] != nil {
		return s.answers[i]
	}
	resp := &pb.PexResponseV2{}
	junk := s.opts.Junk.on(true)
	real := min(sybilReal, s.attackers)
	if !junk && !s.opts.Spoof {
		real = min(sybilAnswer, s.attackers)
	}
	for _, k := range s.rng.Perm(s.attackers)[:real] {
		resp.Addresses = append(resp.Addresses, &pb.PexAddressV2{Url: s.attackAddr(k).String()})
	}
	if s.opts.Spoof {
		spoofs := sybilAnswer - len(resp.Addresses)
		if junk {
			spoofs /= 2
		}
		for range spoofs {
			a := s.nodes[s.rng.IntN(s.honest)].addr
			host := s.attackAddr(s.rng.IntN(s.attackers))
			a.Hostname, a.Port = host.Hostname, host.Port
			resp.Addresses = append(resp.Addresses, &pb.PexAddressV2{Url: a.String()})
		}
	}
	for junk && len(resp.Addresses) < sybilAnswer {
		k := s.attackers + s.rng.IntN(s.opts.Groups*attackSpace-s.attackers)
		resp.Addresses = append(resp.Addresses, &pb.PexAddressV2{Url: s.attackAddr(k).String()})
	}
	s.answers[i] = mustMarshal(&pb.PexMessage{Sum: &pb.PexMessage_PexResponseV2{PexResponseV2: resp}})
	return s.answers[i]
}

// send puts a message from an attacker on the wire at once: an attacker
// runs its own sender, with no flush timer to hold its messages back or
// bunch its requests.
func (s *simulation) send(a *node, to int32, msg []byte) {
	s.messages++
	s.schedule(&event{at: s.now + s.latency(a.idx, to), kind: evDeliver, node: to, peer: a.idx, msg: msg, gen: s.linkGen[linkOf(a.idx, to)]})
}

// receiveAttack is an attacker's handling of a message: a sybil answers
// requests with its subnet and learns from answers; a flooder answers
// requests with an oversized message.
func (s *simulation) receiveAttack(a *node, from int32, msg []byte) {
	var m pb.PexMessage
	if proto.Unmarshal(msg, &m) != nil {
		return
	}
	switch m := m.Sum.(type) {
	case *pb.PexMessage_PexRequest, *pb.PexMessage_PexRequestV2:
		if a.role == flooder {
			s.send(a, from, oversized)
			return
		}
		s.send(a, from, s.sybilResponse())
	case *pb.PexMessage_PexResponseV2:
		if a.quiet == nil {
			a.quiet = make(map[int32]bool)
		}
		if s.honestKnown(a) == s.honest {
			a.quiet[from] = true // it knows everyone: nothing to learn
			return
		}
		src := s.nodes[from].id
		added := 0
		for _, e := range m.PexResponseV2.GetAddresses() {
			addr, err := pex.ParseNodeAddress(e.GetUrl())
			if err != nil {
				continue
			}
			if i, ok := s.byID[addr.NodeID]; !ok || int(i) >= s.honest {
				// Its own addresses, junk and spoofs: an attacker knows
				// them, and wants to reach the honest nodes.
				continue
			}
			if ok, _ := a.book.AddFrom(addr, src); ok {
				added++
			}
		}
		a.quiet[from] = added == 0
		s.dial(a)
	}
}

// attackFigures fills r's attack figures from the honest nodes as they
// are now, and from the series sampled on the way.
func (s *simulation) attackFigures(r *Result) {
	r.Attackers = s.attackers
	r.Groups, r.CycleIdentities, r.Spoof, r.Junk = s.opts.Groups, s.opts.CycleIdentities, s.opts.Spoof, s.opts.Junk.on(true)
	var errs int
	for _, n := range s.nodes[:s.honest] {
		errs += n.core.Stats().PeerErrors
	}
	end := s.attackSample()
	r.AttackerShareInBooks = end.AttackerShareInBooks
	r.OutboundEclipsedNodes, r.EclipsedNodes = end.Eclipsed, end.FullyEclipsed
	r.EclipsedNodesMax = s.eclipsedMax
	r.EclipsedMaxSimSeconds = s.eclipsedMaxAt.Seconds()
	r.PeerErrorsPerNode = float64(errs) / float64(s.honest)
	r.Series = s.series
	r.MaxEclipsedNodes, r.MaxFullyEclipsedNodes = end.Eclipsed, end.FullyEclipsed
	late := false
	for _, x := range s.series {
		r.MaxEclipsedNodes = max(r.MaxEclipsedNodes, x.Eclipsed)
		r.MaxFullyEclipsedNodes = max(r.MaxFullyEclipsedNodes, x.FullyEclipsed)
		if x.SimSeconds >= seriesAfter.Seconds() {
			late = true
			r.MaxAttackerShareInBooks = max(r.MaxAttackerShareInBooks, x.AttackerShareInBooks)
		}
	}
	if !late {
		// a run shorter than a minute: its end stands for the series
		r.MaxAttackerShareInBooks = end.AttackerShareInBooks
	}
	if s.honestDials > 0 {
		r.SpoofDialShare = float64(s.spoofDials) / float64(s.honestDials)
	}
	r.FeelerDialsPerNode = float64(s.feelerDials) / float64(s.honest)
	if s.feelerDials > 0 {
		r.FeelerSpoofShare = float64(s.feelerSpoofs) / float64(s.feelerDials)
	}
	r.HonestWorstKnown = s.honestWorstKnown()
	r.CensoredNodes = s.censored()
}

// attackSample is the attack as it is now.
func (s *simulation) attackSample() AttackSample {
	var share float64
	for _, n := range s.nodes[:s.honest] {
		if l := n.book.Len(); l > 0 {
			share += float64(l-s.honestKnown(n)) / float64(l)
		}
	}
	return AttackSample{
		SimSeconds:           s.now.Seconds(),
		AttackerShareInBooks: share / float64(s.honest),
		Eclipsed:             s.eclipsed(true),
		FullyEclipsed:        s.eclipsed(false),
	}
}

// honestKnown is how many honest nodes n's book holds, counted again
// only when the book's size changed.
func (s *simulation) honestKnown(n *node) int {
	l, ins := n.book.Len(), n.book.Inserted()
	if l == n.countedLen && ins == n.countedIns {
		return n.honestKnown
	}
	if n.role != honest && s.now-n.countedAt < time.Second && n.countedAt > 0 {
		// An attacker only asks whether it knows everyone yet: a count
		// a second old will do, and spares the run its recounting.
		return n.honestKnown
	}
	n.countedAt, n.countedIns = s.now, ins
	k := 0
	for _, id := range n.book.Known() {
		if i, ok := s.byID[id]; ok && int(i) < s.honest {
			k++
		}
	}
	n.countedLen, n.honestKnown = l, k
	return k
}

// holdsTrue reports whether n's book holds honest node m's own address;
// spoofs whether it holds another under m's ID.
func (s *simulation) holdsTrue(n, m *node) (truth, spoofs bool) {
	for _, a := range n.book.Addresses(m.id) {
		if endpointOf(a) == endpointOf(m.real) {
			truth = true
		} else {
			spoofs = true
		}
	}
	return truth, spoofs
}

// honestWorstKnown is the least share of the other honest nodes whose
// true address an honest node's book holds.
func (s *simulation) honestWorstKnown() float64 {
	worst := 1.0
	for _, n := range s.nodes[:s.honest] {
		k := 0
		for _, m := range s.nodes[:s.honest] {
			if m == n {
				continue
			}
			if truth, _ := s.holdsTrue(n, m); truth {
				k++
			}
		}
		worst = min(worst, float64(k)/float64(s.honest-1))
	}
	return worst
}

// censored is how many honest nodes m some honest node n stopped
// dialling or advertising because of spoofs, at the end: n's entry for m
// holds spoofs and not m's true address (n dials only spoofs, and
// advertises a spoof in m's place), or n dialled a spoof of m and now
// holds no true address of m (the failures dropped it) or scores m at or
// below its EvictScore (it neither dials nor advertises m any more).
func (s *simulation) censored() int {
	c := 0
	for _, m := range s.nodes[:s.honest] {
		for _, n := range s.nodes[:s.honest] {
			if n == m {
				continue
			}
			truth, spoofs := s.holdsTrue(n, m)
			if !truth && spoofs {
				c++
				break
			}
			if !n.spoofDialled[m.idx] {
				continue
			}
			score, ok := n.book.Score(m.id)
			if !truth || (ok && score <= n.book.Options().EvictScore) {
				c++
				break
			}
		}
	}
	return c
}

// eclipsed is how many honest nodes have connections, all to attackers;
// with outbound, outbound connections, all to attackers.
func (s *simulation) eclipsed(outbound bool) int {
	e := 0
	for _, n := range s.nodes[:s.honest] {
		links := n.links
		if outbound {
			links = n.out
		}
		if len(links) == 0 {
			continue
		}
		all := true
		for to := range links {
			if int(to) < s.honest {
				all = false
				break
			}
		}
		if all {
			e++
		}
	}
	return e
}
