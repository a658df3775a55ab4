package poller

import (
	"cmp"
	"container/list"
	"fmt"
	"slices"
	"time"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/book"
	"github.com/pexnet/pex/internal/errs"
	"github.com/pexnet/pex/internal/event"
	"github.com/pexnet/pex/internal/walk"
)

// Core holds every PEX decision (whom to ask next and when, what to
// answer, what a response means for the address book and the interval) and
// no I/O: each method takes the current time and an event and returns the
// Actions to carry out. The Reactor is a goroutine shell around a Core;
// the simulator drives Cores on virtual time. A Core is not safe for
// concurrent use; its PeerManager is.
type Core struct {
	cfg Config
	bk  *book.Book // the address book, called under whatever serialises calls to the Core

	peers map[addr.NodeID]*corePeer
	// early holds request buckets of peers whose requests arrived before
	// their Up; swept when they are no longer connected.
	early map[addr.NodeID]*bucket
	// rotation holds the connected peers not waiting on a request, in the
	// order they will be asked: asked at the front, re-appended at the
	// back when they answer (or time out).
	rotation *list.List

	nextRequest    time.Time // no request before this
	lastRequest    time.Time
	interval       time.Duration // wait after the last response
	newShare       float64       // smoothed share of new addresses per response (see adapt)
	refusedPending float64       // refused addresses not yet made up for (see adapt)
	idle           int           // answers in a row that brought nothing new
	// inboundIdle: answers from peers that dialled us that brought nothing
	// new since the last answer that did (see askBest)
	inboundIdle int
	// stallTried: since the last answer with news, a peer we dialled and
	// had not heard from was asked first for a stall (see stallBreaker)
	stallTried  bool
	sources     int           // connected peers that are sources (see corePeer.source)
	noPeersWait time.Duration // current back-off while nobody is connected

	started      bool
	noPeersSince time.Time // zero while someone is connected
	restartedAt  time.Time

	estimate sizeEstimator
	reader   walk.Reader // reads peers' walks in our order
	stats    Stats
	entries  []entryOf     // handleResponse's scratch
	groups   []uint64      // handleResponse's scratch
	ids      []addr.NodeID // handleResponse's scratch
	kinds    []walk.Kind   // handleResponse's scratch
	wire     []WireEntry   // Receive's scratch
	answer   []byte        // serve's scratch
}

type corePeer struct {
	id      addr.NodeID
	caps    event.PeerCaps
	shownV2 bool // sent us a V2 message
	elem    *list.Element
	pending bool
	// late: the last request timed out and the peer was not asked again
	// since, so a response from it is late, not unsolicited.
	late     bool
	sentAt   time.Time
	lastSent time.Time
	// answeredSent is when we sent the last request it answered; zero
	// before its first answer.
	answeredSent time.Time
	// newsRate: once its walk's lap is done (a peer that has walked: see
	// walkSeen), how fast its news came (entries per second between the
	// last two requests it answered); negative until an answer after the
	// lap's end shows it.
	newsRate float64
	// yield is the share of new addresses in the peer's last answer (1
	// until it answers).
	yield float64
	// doubtedUntil: it dialled us from a crowded subnet (see
	// PeerManager.crowdedInbound) and has not yet sent a valid request,
	// so it is not asked before then (see doubtFor).
	doubtedUntil time.Time
	// Where the peer's walk through our order stands (see expectedYield).
	answered bool
	// source: it has sent an answer that shows us part of the network,
	// valid addresses other than its own and ours, not mostly garbage and
	// not of one subnet (a sybil's): it is counted in Core.sources while
	// connected.
	source bool
	// empties: its answers in a row that brought nothing new (see
	// newsFloor).
	empties int
	// crowded: it dialled us from a crowded subnet when it came up (see
	// PeerManager.crowdedInbound), so its requests earn it no mutualBonus
	// or toldBonus.
	crowded bool
	// w is where its walk through our order stands (see expectedYield).
	w walk.Reading
	// storable is the share of the news in its last answer that the book
	// could keep: below 1 once its source group's share of the book is
	// full (groups.go), and then its walk brings us less.
	storable float64
	lastN    int // entries in its last answer

	bucket // what the peer asks of us
}

// Actions is what a Core asks its caller to do.
type Actions struct {
	// Send are encoded messages to send, in order.
	Send []event.Envelope
	// Resolve are V1 answers whose host names must be resolved before
	// they can be encoded; see ResolveV1Answer.
	Resolve []V1Answer
	// Errors are peer errors to report to the transport.
	Errors []event.PeerError
	// Restart asks for the self-remediation signal.
	Restart bool
	// NoPeers is set when a request was due and nobody could be asked.
	NoPeers *errs.NoPeersAvailableError
}

func (a *Actions) peerError(id addr.NodeID, err error, fatal bool) {
	a.Errors = append(a.Errors, event.PeerError{NodeID: id, Err: err, Fatal: fatal})
}

// V1Answer is a V1 response waiting on name resolution.
type V1Answer struct {
	To    addr.NodeID
	Addrs []addr.NodeAddress
}

// Stats are a Core's running counters.
type Stats struct {
	RequestsSent      int
	RequestsServed    int
	Responses         int
	AddressesReceived int // valid entries in responses
	AddressesNew      int // entries that were new to the book
	InvalidEntries    int
	BytesReceived     int // PEX message bytes, all kinds
	BytesSent         int
	PeerErrors        int
	Timeouts          int
	// Interval is the current wait between requests: while nobody is
	// connected, the no-peers back-off.
	Interval time.Duration
	// NoPeers is set while nobody is connected and the Core is backing off
	// (see NoPeersAvailableError).
	NoPeers *errs.NoPeersAvailableError
	// NetworkSize is the running estimate of how many nodes the network
	// has (see Core.NetworkSizeEstimate).
	NetworkSize int
}

// New returns a Core for the node whose address book is bk. The Core
// calls bk from its own methods: whoever serialises calls to bk must
// serialise calls to the Core with them.
func New(cfg Config, bk *book.Book) (*Core, error) {
	if bk == nil {
		return nil, fmt.Errorf("%w: nil address book", errs.ErrInvalidConfig)
	}
	c, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	return &Core{
		cfg:      c,
		bk:       bk,
		peers:    make(map[addr.NodeID]*corePeer),
		early:    make(map[addr.NodeID]*bucket),
		rotation: list.New(),
		interval: c.MinInterval,
		newShare: 1,
		reader:   walk.Reader{Self: bk.SelfKey(), Known: bk.KnownInRank},
	}, nil
}

// Config returns the validated configuration, defaults filled in.
func (c *Core) Config() Config { return c.cfg }

// Stats returns the counters.
func (c *Core) Stats() Stats {
	s := c.stats
	s.Interval = c.interval
	if len(c.peers) == 0 && c.noPeersWait > 0 {
		s.Interval = c.noPeersWait
		s.NoPeers = &errs.NoPeersAvailableError{Backoff: c.noPeersWait}
	}
	s.NetworkSize = c.NetworkSizeEstimate()
	return s
}

// PeerUpdate takes a peer going up or down.
func (c *Core) PeerUpdate(now time.Time, u event.PeerUpdate) Actions {
	c.start(now)
	var first Actions // a request to the new peer outside the pace, if any
	switch u.Status {
	case event.PeerStatusUp:
		p := c.peers[u.NodeID]
		if p == nil {
			p = &corePeer{id: u.NodeID, yield: 1, w: walk.NewReading(), storable: 1, newsRate: -1, bucket: bucket{tokens: float64(c.cfg.RequestBurst), at: now}}
			if b, ok := c.early[u.NodeID]; ok {
				// Requests it made before its Up count.
				p.bucket = *b
				delete(c.early, u.NodeID)
			}
			c.peers[u.NodeID] = p
		}
		p.caps = u.Caps
		// A new peer may know what nobody else told us: it is asked
		// first, and soon. Not one that dialled us from a subnet we are
		// already connected to: anyone may dial us as often as they
		// like, and flooders of one subnet would be asked first on
		// every connection.
		crowded := c.bk.CrowdedInbound(now, u.NodeID)
		p.crowded = crowded
		chosen := c.cfg.Policy == PolicyAdaptive && !crowded
		// Nor is it asked at all for a while: flooders that dial in again
		// and again, and break the protocol with their first message,
		// would be asked in turn, as the newest peers are the most
		// promising. An honest one asks us as soon as it connects, as a
		// new peer should, and is a peer like any other from then on.
		if crowded && !p.answered {
			p.doubtedUntil = now.Add(doubtFor)
		}
		if p.elem == nil && !p.pending {
			if chosen {
				p.elem = c.rotation.PushFront(p)
			} else {
				p.elem = c.rotation.PushBack(p)
			}
		}
		c.noPeersSince = time.Time{}
		switch {
		case chosen && c.askOnArrival(p):
			c.requestBesidePace(now, p, &first)
		case chosen:
			c.askSoon(now)
		}
		if c.noPeersWait > 0 {
			// We were backing off for want of peers: this is the peer we
			// waited for, so ask it now rather than when the back-off ends.
			c.nextRequest = now
			c.noPeersWait = 0
		}
	case event.PeerStatusDown:
		delete(c.early, u.NodeID)
		if p := c.peers[u.NodeID]; p != nil {
			if p.elem != nil {
				c.rotation.Remove(p.elem)
			}
			if p.source {
				c.sources--
			}
			delete(c.peers, u.NodeID)
		}
		if len(c.peers) == 0 {
			c.noPeersSince = now
		}
	}
	acts := c.Tick(now)
	acts.Send = append(first.Send, acts.Send...)
	return acts
}

// askOnArrival reports whether p, a peer that just came up, is asked at
// once, beside the pace: we dialled it, have not asked it on this
// connection, and the network we know of (our book, or the larger one
// our peers' walks show, once a source has answered) is smaller than our
// outbound slots. Such a network is one we dial node by node, so this
// costs a request per connection we make, as CometBFT's reactor spends
// on every outbound peer: at most MaxOutbound peers at a time, each again
// only when we redial it, after the book's back-off. The pace, which
// spreads requests over a network too large to ask each node, would make
// news cross such a network one interval per hop (a chain of 40 at 250
// ms: 5.7 s on real switches, 1.6 s asking on arrival). An attacker
// cannot widen the rule: what it tells us only grows our book.
func (c *Core) askOnArrival(p *corePeer) bool {
	slots := c.bk.Options().MaxOutbound
	// Our book first: walkedSize reads every peer, and peers come up
	// often in a large network, where the book alone says no.
	return c.chosenUnasked(p) && c.sources > 0 && c.bk.Len() < slots && c.walkedSize() < slots
}

// requestBesidePace asks p without moving the pace: until p answers, the
// next paced request comes when it would have; its answer then counts as
// any other (the wait, the idle count, the size estimate).
func (c *Core) requestBesidePace(now time.Time, p *corePeer, acts *Actions) {
	next, last := c.nextRequest, c.lastRequest
	c.request(now, p, acts)
	c.nextRequest, c.lastRequest = next, last
}

// askSoon brings the next request forward to MinInterval from now, for a
// new peer: it may know what nobody else told us, however saturated the
// interval.
func (c *Core) askSoon(now time.Time) {
	if c.nextRequest.After(now.Add(c.cfg.MinInterval)) {
		c.nextRequest = now.Add(c.cfg.MinInterval)
	}
}

func (c *Core) start(now time.Time) {
	if !c.started {
		c.started = true
		c.nextRequest = now
		if len(c.peers) == 0 {
			c.noPeersSince = now
		}
	}
}

// NextWake returns when Tick should next run: the next request, the
// earliest response timeout, or the restart deadline. Zero means nothing
// is scheduled.
func (c *Core) NextWake() time.Time {
	var t time.Time
	earliest := func(x time.Time) {
		if !x.IsZero() && (t.IsZero() || x.Before(t)) {
			t = x
		}
	}
	if c.rotation.Len() > 0 || len(c.peers) == 0 {
		earliest(c.nextRequest)
	}
	for _, p := range c.peers {
		if p.pending {
			earliest(p.sentAt.Add(c.cfg.ResponseTimeout))
		}
	}
	if c.cfg.NoPeersRestartWindow > 0 && !c.noPeersSince.IsZero() {
		earliest(c.restartDue())
	}
	return t
}

func (c *Core) restartDue() time.Time {
	due := c.noPeersSince.Add(c.cfg.NoPeersRestartWindow)
	if !c.restartedAt.IsZero() {
		if cool := c.restartedAt.Add(c.cfg.RestartCooldown); cool.After(due) {
			due = cool
		}
	}
	return due
}

// Tick does what is due at now: expire unanswered requests, signal a
// restart, send the next request.
func (c *Core) Tick(now time.Time) Actions {
	c.start(now)
	var acts Actions
	c.sweepEarly()
	c.expireRequests(now, &acts)
	if c.cfg.NoPeersRestartWindow > 0 && !c.noPeersSince.IsZero() && !now.Before(c.restartDue()) {
		acts.Restart = true
		c.restartedAt = now
	}
	if now.Before(c.nextRequest) {
		return acts
	}
	if len(c.peers) == 0 {
		c.backOff(now, &acts)
		return acts
	}
	if c.cfg.Policy == PolicyAdaptive {
		c.askBest(now, &acts)
	} else {
		c.askInTurn(now, &acts)
	}
	return acts
}

// sweepEarly drops the request buckets of peers that asked before their
// Up and are no longer connected.
func (c *Core) sweepEarly() {
	for id := range c.early {
		if !c.bk.IsConnected(id) {
			delete(c.early, id) // gone before it was ever up
		}
	}
}

// expireRequests puts the peers whose request went unanswered for
// ResponseTimeout back into rotation, each with a missed response
// reported (non-fatal).
func (c *Core) expireRequests(now time.Time, acts *Actions) {
	var expired []*corePeer
	for _, p := range c.peers {
		if p.pending && !now.Before(p.sentAt.Add(c.cfg.ResponseTimeout)) {
			expired = append(expired, p)
		}
	}
	// In the order they were asked, not the map's, so that runs repeat.
	slices.SortFunc(expired, func(a, b *corePeer) int {
		return cmp.Or(a.sentAt.Compare(b.sentAt), cmp.Compare(a.id, b.id))
	})
	for _, p := range expired {
		p.pending = false
		p.late = true
		p.elem = c.rotation.PushBack(p)
		c.stats.Timeouts++
		c.stats.PeerErrors++
		acts.peerError(p.id, errs.ErrResponseTimeout, false)
	}
}

// backOff is a due request with nobody to ask: wait noPeersFirstWait,
// doubling each time up to NoPeersMaxBackoff, and report it.
func (c *Core) backOff(now time.Time, acts *Actions) {
	c.noPeersWait = min(max(2*c.noPeersWait, noPeersFirstWait), c.cfg.NoPeersMaxBackoff)
	c.nextRequest = now.Add(c.noPeersWait)
	acts.NoPeers = &errs.NoPeersAvailableError{Backoff: c.noPeersWait}
}

// askableAt is when p may next be asked: its spacing after the last
// request, and not while it is doubted (see doubtFor).
func (c *Core) askableAt(p *corePeer) time.Time {
	ok := p.lastSent.Add(c.spacing(p))
	if p.doubtedUntil.After(ok) {
		ok = p.doubtedUntil
	}
	return ok
}

// askInTurn is PolicyTendermint's choice: the first peer in rotation
// whose own spacing allows it is asked. If nobody is due, Tick wakes when
// the first one is.
func (c *Core) askInTurn(now time.Time, acts *Actions) {
	var due time.Time
	for e := c.rotation.Front(); e != nil; e = e.Next() {
		p := e.Value.(*corePeer)
		ok := c.askableAt(p)
		if !now.Before(ok) {
			c.request(now, p, acts)
			return
		}
		if due.IsZero() || ok.Before(due) {
			due = ok
		}
	}
	if !due.IsZero() {
		c.nextRequest = due
	}
}

// askBest is PolicyAdaptive's choice: among the peers in rotation whose
// spacing allows it, the one expected to bring the most news is asked,
// unless one worth betterBy more is due within V2RequestInterval: then
// Tick waits for it. If nobody is due, Tick wakes when the first one is.
// Ties go to the earlier in rotation, where a new peer stands first; but
// while fewer than two peers we dialled have answered (see untried), or
// once more than idleAnswers answers from peers that dialled us brought
// nothing new (since the last that did), to a peer we dialled and never
// asked before others. Attackers dialling in from many groups are each the
// newest peer in turn and answer with what we hold, or with a trickle of
// their own, and would otherwise keep the peers our book chose unasked.
// Not in every tie: in an honest network, news often comes through the
// peers that dial us (a chain's far side reaches a node so).
func (c *Core) askBest(now time.Time, acts *Actions) {
	if p := c.stallBreaker(now); p != nil {
		c.stallTried = c.stallTried || c.idle > stallAnswers
		c.request(now, p, acts)
		return
	}
	var pick, best *corePeer
	pickY, bestY := -1.0, -1.0
	var due, bestDue time.Time
	walked := c.walkedSize() // the walking peers' book size, for expectedYield
	miss := c.missingAtMost(walked)
	chosenFirst := c.inboundIdle > idleAnswers || c.untried()
	for e := c.rotation.Front(); e != nil; e = e.Next() {
		p := e.Value.(*corePeer)
		ok := c.askableAt(p)
		eligible := !now.Before(ok)
		y := max(c.expectedYield(now, p, walked), newsFloor(now, p, miss))
		if eligible && (y > pickY || (y == pickY && chosenFirst && c.chosenUnasked(p) && !c.chosenUnasked(pick))) {
			pick, pickY = p, y
		}
		if y > bestY {
			best, bestY, bestDue = p, y, ok
		}
		if !eligible && (due.IsZero() || ok.Before(due)) {
			due = ok
		}
	}
	if best != nil && best != pick && bestY > pickY+betterBy && bestDue.Sub(now) <= c.cfg.V2RequestInterval {
		c.nextRequest = bestDue
		return
	}
	if pick != nil {
		c.request(now, pick, acts)
		return
	}
	if !due.IsZero() {
		c.nextRequest = due
	}
}

// stallBreaker returns a peer to ask before any other, or nil:
//   - once answers keep bringing nothing (past stallAnswers), the first
//     peer in rotation that we dialled, have not heard from and may ask
//     now, one per stall: the peers we asked have shown what they hold,
//     and one our book chose to dial may hold what they lack (books that
//     copied each other's read the same network size from each other's
//     walks, and by the estimate a new peer is worth nothing); if it
//     brings nothing either, the stall is real;
//   - once answers are taken for a saturated network (past
//     idleAnswers) while fewer than two peers we dialled have
//     answered, one we dialled and never asked (see untried): the
//     answers came from peers that dialled us, new on every connection
//     and so asked first, which may be attackers showing us their own few addresses
//     again and again; the network they show is theirs;
//   - in a full book, any peer never asked: junk that a few peers
//     filled the book with would otherwise keep us from the one that
//     knows the network, and a full book waits MaxInterval only once
//     every peer has been asked (see adapt).
func (c *Core) stallBreaker(now time.Time) *corePeer {
	full := c.bk.PeerRatio() >= bookFull
	stalled := c.idle > stallAnswers && !c.stallTried
	saturated := c.idle > idleAnswers && c.untried()
	if !full && !stalled && !saturated {
		return nil
	}
	for e := c.rotation.Front(); e != nil; e = e.Next() {
		p := e.Value.(*corePeer)
		if now.Before(c.askableAt(p)) {
			continue
		}
		if (full && p.lastSent.IsZero()) || (saturated && c.chosenUnasked(p)) || (stalled && !p.answered && !c.bk.Inbound(p.id)) {
			return p
		}
	}
	return nil
}

func (c *Core) speaksV2(p *corePeer) bool {
	return c.cfg.NetworkV2 || p.shownV2 || p.caps&event.CapV2 != 0
}

func (c *Core) spacing(p *corePeer) time.Duration {
	if c.speaksV2(p) {
		return c.cfg.V2RequestInterval
	}
	return c.cfg.V1RequestInterval
}

func (c *Core) request(now time.Time, p *corePeer, acts *Actions) {
	c.rotation.Remove(p.elem)
	p.elem = nil
	p.pending = true
	p.late = false
	p.sentAt = now
	p.lastSent = now
	msg := v1Request
	if c.speaksV2(p) {
		msg = v2Request
	}
	acts.Send = append(acts.Send, event.Envelope{To: p.id, Message: msg})
	c.stats.RequestsSent++
	c.stats.BytesSent += len(msg)
	c.lastRequest = now
	c.nextRequest = now.Add(c.interval)
}

// chosenUnasked: we dialled p and never asked it (see askBest).
func (c *Core) chosenUnasked(p *corePeer) bool {
	return p.lastSent.IsZero() && !c.bk.Inbound(p.id)
}
