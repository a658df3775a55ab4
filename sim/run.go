package sim

import (
	"container/heap"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/pexnet/pex"
	"github.com/pexnet/pex/internal/book"
	"github.com/pexnet/pex/internal/poller"
)

type node struct {
	idx    int32
	id     pex.NodeID
	addr   pex.NodeAddress
	book   *book.Book // its address book and connections
	core   *poller.Core
	online bool
	lazy   bool // join scenario: materialised on first contact
	noDial bool // an established node of join: its own mesh is not simulated
	links  map[int32]struct{}
	out    map[int32]struct{} // the links it dialled
	// flushAt is, per link, when the messages n has written to it and
	// not yet sent leave (see departure)
	flushAt map[int32]time.Duration
	dialing int // dials in flight, at most Options.Dialers
	// acceptFree is when its switch has added the inbound peers whose
	// handshakes are done so far (Options.Accept)
	acceptFree time.Duration
	// real is where it listens: addr, but for an attacker cycling its
	// identities (addr is then the listen address it claims, real the
	// host its connections come from, under its current ID)
	real    pex.NodeAddress
	group   int // partition side
	started time.Duration

	wake   timer // the next Tick
	redial timer // the next look at back-offs

	role   role
	floods int              // flooder: connections flooded so far
	quiet  map[int32]bool   // sybil: the peer's last answer brought nothing
	conns  map[int32]uint32 // sybil: connections made to each peer so far
	// honest nodes it dialled at an attacker's address (honest nodes)
	spoofDialled map[int32]bool
	// honest nodes in the book, counted at book size countedLen
	honestKnown, countedLen int
	countedIns              uint64        // and book.Inserted
	countedAt               time.Duration // when (attackers recount at most every second)

	measured bool // among simulation.measured
	reached  [4]bool
	ms       [4]Milestone
	// counters frozen when the node first knew everyone
	done     bool
	requests int
	addrs    int
	bytes    int
}

type simulation struct {
	opts  Options
	rng   *rand.Rand
	now   time.Duration
	queue eventQueue
	seq   uint64
	nodes []*node
	byID  map[pex.NodeID]int32
	// listen is who listens on each host and port
	listen map[endpoint]int32
	// shared holds each node's ID and host, one copy that every book
	// keeps (book.Options.Intern), where each book would hold its own:
	// nearly every book holds nearly every node.
	shared map[string]string
	// measured nodes and the network size they should learn
	measured []*node
	netSize  int
	split    bool // partition in force
	healAt   time.Duration
	messages int
	// the handshakes the one machine computes (Options.OneMachine), since
	// handshakesAt; handshakesGen tells its live evHandshake
	handshakes    []*pendingHandshake
	handshakesAt  time.Duration
	handshakesGen uint32
	// measured nodes that know the whole network; when the last of them
	// got there, and the requests the network had sent and received by
	// then
	doneCount                  int
	fullAt                     time.Duration
	fullRequests, fullReceived int
	received                   int // requests received so far
	curve                      []CurvePoint
	peakHeap                   uint64
	cfg                        pex.Config
	finished                   bool
	// adversarial scenarios: nodes [0, honest) are honest, the rest attack
	attackers, honest int
	eclipsedMax       int
	eclipsedMaxAt     time.Duration
	answers           [][]byte // sybil answers, built on first use
	cycles            int      // identity cycles so far (CycleIdentities)
	// dials by honest nodes, and those to spoofed addresses
	honestDials, spoofDials int
	// linkGen numbers the connections between two nodes (linkOf), so
	// that a message sent on one is not delivered on the next
	linkGen map[[2]int32]uint32
	// test dials by honest nodes (the book's feelers), and those to
	// spoofed addresses: not counted above
	feelerDials, feelerSpoofs int
	series                    []AttackSample
	nextAttackSample          time.Duration
	// next coverage sample and progress report
	nextSample, nextProgress time.Duration
}

// Run simulates opts and returns what it measured.
func Run(opts Options) (*Result, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	wallStart := time.Now()
	s, err := newSimulation(opts)
	if err != nil {
		return nil, err
	}
	s.loop()
	res := s.result()
	res.WallSeconds = time.Since(wallStart).Seconds()
	if s.attackers > 0 {
		if res.Reference, err = Run(s.reference()); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// reference is the run to compare an attack with: the same honest nodes,
// a cold start with no attackers.
func (s *simulation) reference() Options {
	ref := s.opts
	ref.Scenario, ref.Nodes, ref.Attackers, ref.Progress, ref.Limit = ScenarioCold, s.honest, 0, nil, 0
	return ref
}

func newSimulation(opts Options) (*simulation, error) {
	s := &simulation{
		opts:    opts,
		rng:     rand.New(rand.NewPCG(opts.Seed, 0x9e3779b97f4a7c15)),
		byID:    make(map[pex.NodeID]int32),
		linkGen: make(map[[2]int32]uint32),
		listen:  make(map[endpoint]int32),
		shared:  make(map[string]string),
		cfg:     pex.Config{NetworkV2: true, MinInterval: opts.MinInterval},
		// progress reports start after a first interval
		nextProgress: opts.Every,
	}
	if opts.Policy == PolicyBaseline {
		s.cfg.Policy = pex.PolicyTendermint
		s.cfg.V2Scheme = true // Tendermint writes mconn://
	}
	if err := s.setup(); err != nil {
		return nil, err
	}
	for _, n := range s.measured {
		n.measured = true
	}
	return s, nil
}

func (s *simulation) at() time.Time { return epoch.Add(s.now) }

func simNodeID(i int) pex.NodeID {
	// Spread IDs over the whole space, as key hashes are.
	x := uint64(i+1) * 0x9e3779b97f4a7c15
	return pex.NodeID(fmt.Sprintf("%016x%024x", x, i+1))
}

// simHost is node i's IP: each of the first 52,000 or so nodes in a /16 of
// its own (as nodes spread over hosting networks), skipping the
// unroutable first octets and 66, which the sybil scenario uses.
func simHost(i int) string {
	o := 11 + i/256
	for _, skip := range []int{66, 100, 127, 169, 172, 192, 198, 203} {
		if o >= skip {
			o++
		}
	}
	return fmt.Sprintf("%d.%d.%d.1", o%224, i%256, i/(256*212)%256)
}

// newNode creates node i (not yet started).
func (s *simulation) newNode(i int) *node {
	id := simNodeID(i)
	addr := pex.NodeAddress{
		Protocol: pex.ProtocolMConn,
		NodeID:   id,
		Hostname: simHost(i),
		Port:     26656,
	}
	n := &node{idx: int32(i), id: id, addr: addr, real: addr, links: make(map[int32]struct{}), out: make(map[int32]struct{}), flushAt: make(map[int32]time.Duration)}
	s.byID[id] = int32(i)
	s.listen[endpointOf(addr)] = int32(i)
	s.shared[string(id)] = string(id)
	s.shared[addr.Hostname] = addr.Hostname
	s.nodes = append(s.nodes, n)
	return n
}

// endpoint is a host and port something may listen on.
type endpoint struct {
	host string
	port uint16
}

func endpointOf(a pex.NodeAddress) endpoint { return endpoint{a.Hostname, a.Port} }

// intern returns the shared copy of x, a node ID or host a book stores,
// if it is a node's (shared); else x.
func (s *simulation) intern(x string) string {
	if y, ok := s.shared[x]; ok {
		return y
	}
	return x
}

// current is the node whose node ID id is now, if any: an attacker that
// cycles its identities is no longer its earlier ones.
func (s *simulation) current(id pex.NodeID) (int32, bool) {
	i, ok := s.byID[id]
	if !ok || s.nodes[i].id != id {
		return 0, false
	}
	return i, true
}

// spoofed reports whether a names an honest node at an address that is
// not its own.
func (s *simulation) spoofed(a pex.NodeAddress) bool {
	i, ok := s.current(a.NodeID)
	return ok && int(i) < s.honest && endpointOf(a) != endpointOf(s.nodes[i].real)
}

// materialise gives n its address book and Core.
func (s *simulation) materialise(n *node) {
	o := book.Options{
		SelfAddresses:   []pex.NodeAddress{n.addr},
		MaxPeers:        max(2*s.opts.Nodes, 1000), // a book that is not "95% full" once it knows everyone
		MaxConnected:    s.opts.MaxConnected,
		MaxOutbound:     s.opts.MaxOutbound,
		Rand:            rand.New(rand.NewPCG(s.opts.Seed, uint64(n.idx)+1)),
		RandomAdvertise: s.opts.Policy == PolicyBaseline,
		Intern:          s.intern,
	}
	if n.role != honest {
		s.attackerOptions(&o)
	}
	bk, err := book.New(n.id, o)
	if err != nil {
		panic(err) // options are built here; an error is a bug
	}
	core, err := poller.New(s.cfg, bk)
	if err != nil {
		panic(err)
	}
	n.book, n.core = bk, core
	n.lazy = false
}

// start brings n online now.
func (s *simulation) start(n *node) {
	if n.book == nil {
		s.materialise(n)
	}
	n.online = true
	n.started = s.now
	s.touch(n, n.core.Tick(s.at()))
}

func (s *simulation) schedule(e *event) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.queue, e)
}

func (s *simulation) script(at time.Duration, fn func()) {
	s.schedule(&event{at: at, kind: evScript, fn: fn})
}

// latency is the fixed one-way delay of the link a-b.
func (s *simulation) latency(a, b int32) time.Duration {
	if a > b {
		a, b = b, a
	}
	x := uint64(a)<<32 | uint64(b)
	x ^= s.opts.Seed * 0xbf58476d1ce4e5b9
	x ^= x >> 31
	x *= 0x94d049bb133111eb
	x ^= x >> 29
	u := float64(x%1_000_000) / 1_000_000
	return time.Duration(float64(s.opts.Latency) * (0.5 + u))
}

// departure is when a message n writes now on its link to peer leaves n:
// with the link's pending flush if there is one, else Options.Flush from
// now, when CometBFT's flush timer, set by this first write, fires.
func (s *simulation) departure(n *node, to int32) time.Duration {
	if s.opts.Flush == 0 {
		return s.now
	}
	if at, ok := n.flushAt[to]; ok && at > s.now {
		return at
	}
	at := s.now + s.opts.Flush
	n.flushAt[to] = at
	return at
}

// pendingHandshake is a dial whose handshake the one machine is computing
// (Options.OneMachine).
type pendingHandshake struct {
	left     float64       // machine time it still needs, in nanoseconds
	earliest time.Duration // its round trips end no sooner
	connect  *event        // the evConnect to schedule when it is done
}

// handshake starts computing, on the one machine, the handshake of the
// dial whose evConnect is e, and whose round trips take rtt. The switches
// of a loopback network compute every handshake under way at once, each in
// goroutines of its own that the Go scheduler shares among the machine's
// processors: a burst of dials all finish near the burst's end, not one
// after another. Each needs Options.Handshake of the machine's time.
func (s *simulation) handshake(e *event, rtt time.Duration) {
	s.advanceHandshakes()
	s.handshakes = append(s.handshakes, &pendingHandshake{left: float64(s.opts.Handshake), earliest: s.now + rtt, connect: e})
	s.rearmHandshakes()
}

// advanceHandshakes credits the handshakes under way with the machine
// time shared among them since the last look.
func (s *simulation) advanceHandshakes() {
	if k := len(s.handshakes); k > 0 {
		share := float64(s.now-s.handshakesAt) / float64(k)
		for _, h := range s.handshakes {
			h.left -= share
		}
	}
	s.handshakesAt = s.now
}

// rearmHandshakes schedules the machine's next look: when the handshake
// with the least left is done, all sharing the machine till then.
func (s *simulation) rearmHandshakes() {
	if len(s.handshakes) == 0 {
		return
	}
	least := s.handshakes[0].left
	for _, h := range s.handshakes[1:] {
		least = min(least, h.left)
	}
	s.handshakesGen++
	at := s.now + time.Duration(math.Ceil(max(least, 0)*float64(len(s.handshakes))))
	s.schedule(&event{at: at, kind: evHandshake, gen: s.handshakesGen})
}

// handshakesDone completes the handshakes the machine has computed, in
// the order they began: each dial connects now, or when its round trips
// end.
func (s *simulation) handshakesDone(e *event) {
	if e.gen != s.handshakesGen {
		return // stale: a handshake began since
	}
	s.advanceHandshakes()
	kept := s.handshakes[:0]
	for _, h := range s.handshakes {
		if h.left > 0.5 { // half a nanosecond: rounding
			kept = append(kept, h)
			continue
		}
		s.accept(h.connect, max(s.now, h.earliest))
	}
	clear(s.handshakes[len(kept):])
	s.handshakes = kept
	s.rearmHandshakes()
}

// accept schedules the connect event e of a dial whose handshake is done
// at done: the acceptor's switch adds it when it has added the inbound
// peers whose handshakes were done before, taking Options.Accept for each
// (CometBFT's accept routine takes them one at a time). On the switches
// the dialer's end is up at done, and what it sends first waits at the
// acceptor until the acceptor adds it; the model brings both ends up
// when the acceptor adds it.
func (s *simulation) accept(e *event, done time.Duration) {
	e.at = done
	if s.opts.Accept > 0 && e.peer >= 0 {
		to := s.nodes[e.peer]
		e.at = max(done, to.acceptFree) + s.opts.Accept
		to.acceptFree = e.at
	}
	s.schedule(e)
}

func (s *simulation) reachable(a, b *node) bool {
	return b.online && !(s.split && a.group != b.group)
}

// touch carries out a node's actions and reschedules its wake-up.
func (s *simulation) touch(n *node, acts poller.Actions) {
	for _, pe := range acts.Errors {
		n.book.Errored(s.at(), pe)
		if to, ok := s.current(pe.NodeID); ok && pe.Fatal {
			s.disconnect(n, to)
		}
	}
	s.closeEvicted(n)
	var broken []int32 // links that lost a message
	for _, e := range acts.Send {
		to, ok := s.current(e.To)
		if !ok {
			continue
		}
		if _, linked := n.links[to]; !linked {
			continue
		}
		s.messages++
		if s.opts.Loss > 0 && s.rng.Float64() < s.opts.Loss {
			broken = append(broken, to)
			continue
		}
		s.schedule(&event{at: s.departure(n, to) + s.latency(n.idx, to), kind: evDeliver, node: to, peer: n.idx, msg: e.Message, gen: s.linkGen[linkOf(n.idx, to)]})
	}
	for _, to := range broken {
		s.disconnect(n, to)
	}
	// Simulated nodes have IP addresses and speak V2: nothing waits on
	// DNS, so acts.Resolve is always empty.
	s.rewake(n)
	s.dial(n)
}

// closeEvicted closes the connections n's PeerManager names for eviction.
func (s *simulation) closeEvicted(n *node) {
	for {
		id, ok := n.book.EvictNext()
		if !ok {
			return
		}
		to, ok := s.current(id)
		if !ok {
			continue
		}
		if n.book.Visitor(id) {
			// The answer it was sent goes first, as a transport's
			// graceful close flushes what was written.
			s.schedule(&event{at: s.departure(n, to) + s.latency(n.idx, to) + time.Nanosecond, kind: evScript, fn: func() {
				if n.book.Visitor(id) {
					s.disconnect(n, to)
				}
			}})
			continue
		}
		s.disconnect(n, to)
	}
}

func (s *simulation) rewake(n *node) {
	w := n.core.NextWake()
	if w.IsZero() || !n.online {
		return
	}
	s.arm(n, &n.wake, evWake, max(w.Sub(epoch), s.now))
}

// timer is a node's pending wake-up of one kind: only the latest one
// armed counts, earlier events become stale by their generation.
type timer struct {
	at  time.Duration
	gen uint32
	set bool
}

// arm schedules an event of kind for n at at, unless one is set no later.
func (s *simulation) arm(n *node, t *timer, kind eventKind, at time.Duration) {
	if t.set && t.at <= at {
		return
	}
	t.gen++
	t.at = at
	t.set = true
	s.schedule(&event{at: at, kind: kind, node: n.idx, gen: t.gen})
}

// fire reports whether e is the live event of t, and disarms it.
func fire(t *timer, e *event) bool {
	if !t.set || e.gen != t.gen {
		return false
	}
	t.set = false
	return true
}

// dial starts the dials n's PeerManager wants now, and schedules the next
// look when back-offs expire.
func (s *simulation) dial(n *node) {
	if !n.online || n.noDial {
		return
	}
	for n.dialing < s.opts.Dialers {
		a, ok := n.book.TryDialNext(s.at())
		if !ok {
			break
		}
		if n.role == honest && n.book.Feeler(a.NodeID) {
			s.feelerDials++
			if s.spoofed(a) {
				s.feelerSpoofs++
			}
		} else if n.role == honest {
			s.honestDials++
			if s.spoofed(a) {
				s.spoofDials++
				if n.spoofDialled == nil {
					n.spoofDialled = make(map[int32]bool)
				}
				n.spoofDialled[s.byID[a.NodeID]] = true
			}
		}
		n.dialing++
		to, ok := s.listen[endpointOf(a)]
		if !ok {
			// an address nobody listens on: the dial times out
			s.schedule(&event{at: s.now + 2*s.opts.Latency, kind: evConnect, node: n.idx, peer: -1, addr: a})
			continue
		}
		// Both ends are connected after the TCP connect's round trip,
		// the secret connection's two exchanges (ephemeral keys,
		// signatures) and the NodeInfo exchange, which leave the dialer
		// with the acceptor's NodeInfo a second round trip later (four
		// one-way latencies in all), and after the handshake's computing,
		// Options.Handshake: on one machine (Options.OneMachine), its
		// share of the machine's.
		e := &event{kind: evConnect, node: n.idx, peer: to, addr: a}
		rtt := 4 * s.latency(n.idx, to)
		if s.opts.OneMachine.on(s.opts.Topology != "") {
			s.handshake(e, rtt)
			continue
		}
		s.accept(e, s.now+rtt+s.opts.Handshake)
	}
	s.closeEvicted(n) // a dial to a persistent peer may have displaced an inbound one
	next := n.book.NextDialTime(s.at())
	if next.IsZero() {
		return
	}
	s.arm(n, &n.redial, evDial, max(next.Sub(epoch), s.now+time.Millisecond))
}

func (s *simulation) connect(n *node, to int32, a pex.NodeAddress) {
	n.dialing--
	defer s.dial(n) // a dialer is free
	if !n.online {
		n.book.DialFailed(s.at(), a)
		return
	}
	if to < 0 {
		n.book.DialFailed(s.at(), a)
		s.dial(n)
		return
	}
	peer := s.nodes[to]
	if to == n.idx || peer.id != a.NodeID {
		// Someone else listens there (a spoofed address, an identity an
		// attacker has left): the handshake shows another node ID.
		n.book.DialMismatch(s.at(), a)
		s.dial(n)
		return
	}
	if !s.reachable(n, peer) {
		n.book.DialFailed(s.at(), a)
		s.dial(n)
		return
	}
	if peer.lazy {
		s.materialiseConverged(peer)
	}
	// From here the handshake has proved the ID: a refusal is not junk.
	if _, ok := n.links[to]; ok {
		n.book.DialRefused(s.at(), a)
		return
	}
	if err := peer.book.AcceptedFrom(s.at(), n.id, remote(n), n.addr); err != nil {
		n.book.DialRefused(s.at(), a)
		s.dial(n)
		return
	}
	if err := n.book.Dialed(s.at(), a); err != nil {
		peer.book.Disconnected(s.at(), n.id)
		n.book.DialRefused(s.at(), a)
		return
	}
	// A feeler (a test dial, closed once made) is neither asked nor
	// counted among n's outbound connections.
	feeler := n.book.Feeler(peer.id)
	s.linkGen[linkOf(n.idx, to)]++
	n.links[to] = struct{}{}
	if !feeler {
		n.out[to] = struct{}{}
	}
	peer.links[n.idx] = struct{}{}
	n.book.Ready(peer.id, pex.CapV2)
	peer.book.Ready(n.id, pex.CapV2)
	// Displaced inbound peers of the target go first.
	s.touch(peer, poller.Actions{})
	if !feeler {
		s.peerUpdate(n, peer, pex.PeerStatusUp)
	}
	s.peerUpdate(peer, n, pex.PeerStatusUp)
	// The acceptor's book took the dialer's listen address: a node can
	// complete its book without a PEX message.
	s.observe(peer)
	s.observe(n)
}

// remote is the address n's connections come from, as the peer's
// transport sees it: where n really is, whatever it claims.
func remote(n *node) netip.AddrPort {
	ip, err := netip.ParseAddr(n.real.Hostname)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ip, n.real.Port)
}

func (s *simulation) disconnect(n *node, to int32) {
	if _, ok := n.links[to]; !ok {
		return
	}
	peer := s.nodes[to]
	delete(n.links, to)
	delete(peer.links, n.idx)
	delete(n.out, to)
	delete(peer.out, n.idx)
	delete(n.flushAt, to)
	delete(peer.flushAt, n.idx)
	// A feeler's side never had its Up.
	nUp, peerUp := !n.book.Feeler(peer.id), !peer.book.Feeler(n.id)
	n.book.Disconnected(s.at(), peer.id)
	peer.book.Disconnected(s.at(), n.id)
	if nUp {
		s.peerUpdate(n, peer, pex.PeerStatusDown)
	}
	if peerUp {
		s.peerUpdate(peer, n, pex.PeerStatusDown)
	}
}

// peerUpdate tells n that its connection to peer went up or down: an
// honest node's Core hears of it, an attacker starts its work.
func (s *simulation) peerUpdate(n, peer *node, status pex.PeerStatus) {
	if n.role != honest {
		if status == pex.PeerStatusUp {
			s.linkUp(n, peer.idx)
		}
		s.touch(n, poller.Actions{})
		return
	}
	caps := pex.CapV2
	if status != pex.PeerStatusUp {
		caps = 0
	}
	s.touch(n, n.core.PeerUpdate(s.at(), pex.PeerUpdate{NodeID: peer.id, Status: status, Caps: caps}))
}

// stop takes n offline, dropping its connections; its book survives.
func (s *simulation) stop(n *node) {
	for _, to := range slices.Sorted(maps.Keys(n.links)) {
		s.disconnect(n, to)
	}
	n.online = false
	n.wake.set = false
	n.redial.set = false
}

func (s *simulation) loop() {
	for len(s.queue) > 0 && !s.finished {
		s.step()
	}
	s.sample()
}

// step carries out the next event, sampling the coverage curve and
// reporting progress on the way; it sets finished when the run is over.
func (s *simulation) step() {
	e := heap.Pop(&s.queue).(*event)
	if e.at > s.opts.Limit {
		s.now = s.opts.Limit
		s.finished = true
		return
	}
	for e.at >= s.nextSample {
		s.now = s.nextSample
		s.sample()
		s.nextSample += s.opts.Sample
		if s.finished {
			return
		}
	}
	s.now = e.at
	for s.now >= s.nextProgress {
		if s.opts.Progress != nil {
			s.opts.Progress(s.progress())
		}
		s.nextProgress += s.opts.Every
	}
	n := s.nodes[e.node]
	switch e.kind {
	case evScript:
		e.fn()
	case evWake:
		if !fire(&n.wake, e) || !n.online {
			return
		}
		s.touch(n, n.core.Tick(s.at()))
	case evDial:
		if !fire(&n.redial, e) || !n.online {
			return
		}
		s.dial(n)
	case evConnect:
		s.connect(n, e.peer, e.addr)
	case evHandshake:
		s.handshakesDone(e)
	case evAttack:
		s.attack(n, e.peer, e.gen)
	case evDeliver:
		if _, ok := n.links[e.peer]; !ok || !n.online || e.gen != s.linkGen[linkOf(n.idx, e.peer)] {
			return // the connection it was sent on is gone
		}
		if isRequest(e.msg) {
			s.received++
		}
		if n.role != honest {
			s.receiveAttack(n, e.peer, e.msg)
			return
		}
		s.touch(n, n.core.Receive(s.at(), pex.Envelope{From: s.nodes[e.peer].id, Message: e.msg}))
		s.observe(n)
	}
}

// linkOf names the link between nodes a and b, either way round.
func linkOf(a, b int32) [2]int32 {
	if a > b {
		a, b = b, a
	}
	return [2]int32{a, b}
}
