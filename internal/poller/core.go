package poller

import (
	"cmp"
	"container/list"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/errs"
	"github.com/pexnet/pex/internal/event"

	"google.golang.org/protobuf/proto"

	"github.com/pexnet/pex/internal/book"
	"github.com/pexnet/pex/internal/walk"
	"github.com/pexnet/pex/pb"
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
	sources        int           // connected peers that are sources (see corePeer.source)
	noPeersWait    time.Duration // current back-off while nobody is connected

	started      bool
	noPeersSince time.Time // zero while someone is connected
	restartedAt  time.Time

	estimate sizeEstimator
	reader   walk.Reader // reads peers' walks in our order
	stats    Stats
	entries  []entryOf   // handleResponse's scratch
	groups   []uint64    // handleResponse's scratch
	kinds    []walk.Kind // handleResponse's scratch
}

// entryOf is one entry of a response, parsed, and its network group when
// the answer's groups are counted (see oneGroup).
type entryOf struct {
	a    addr.NodeAddress
	err  error
	g    uint64
	w    bool      // its node ID is in the walk handleResponse reads
	kind walk.Kind // what came of it
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

// bucket is a token bucket for a peer's requests: RequestBurst tokens, one
// more per MinReceiveInterval; and how many of its requests we have
// answered on this connection, as far as we can tell (see mutualAsks),
// those before its Up too, and when we answered the last (see toldLately).
type bucket struct {
	tokens   float64
	at       time.Time
	served   int
	servedAt time.Time // when we last answered one of its requests, zero before
}

// take spends a token, refilling first; false means the peer asks too
// often.
func (b *bucket) take(now time.Time, cfg *Config) bool {
	if cfg.MinReceiveInterval <= 0 {
		return true
	}
	refill := float64(now.Sub(b.at)) / float64(cfg.MinReceiveInterval)
	b.tokens = math.Min(float64(cfg.RequestBurst), b.tokens+refill)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
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

// NetworkSizeEstimate returns the estimated number of nodes in the network
// (ourselves excluded), never below the size of the address book. A pex
// peer's walk through our order shows how densely its book fills that
// order, hence how many nodes it knows; pooled over the peers that walk,
// and taken at its lower bound (see walkedSize), that is the estimate.
// Without such peers (CometBFT and Tendermint peers send samples), it is
// the Schnabel mark-recapture estimate from how often recent responses
// repeated what we knew. A walk leaves out what we told the peer (see
// PeerManager.Advertise), so a peer we have answered much shows a thinner
// book than it holds: the estimate is a floor, as it never goes below our
// own book.
func (c *Core) NetworkSizeEstimate() int {
	return c.sizeFrom(c.walkedSize())
}

// sizeFrom is NetworkSizeEstimate for walked, the walking peers' book size
// (c.walkedSize()), worked out by a caller that needs it too.
func (c *Core) sizeFrom(walked int) int {
	if walked > 0 {
		return walked
	}
	return max(c.estimate.value(), c.bk.Len())
}

// walkedSize is the book size the walking peers show, never below our own;
// 0 when no peer walks. Their runs are pooled: g gaps between entries over
// a stretch r of our order (as a share of it) give g/r nodes, give or take
// a share 1/sqrt(g), and the estimate is walkSizeZ such errors below that
// (see tuning.go): a single dense run must not pass for a network larger
// than ours.
func (c *Core) walkedSize() int {
	var gaps, span float64
	for _, p := range c.peers {
		if p.w.Walking && p.w.Gaps > 0 {
			gaps += p.w.Gaps
			span += p.w.Range
		}
	}
	if gaps == 0 {
		return 0
	}
	est := gaps / span * (1 - walkSizeZ/math.Sqrt(gaps))
	return max(int(est), c.bk.Len())
}

// PeerUpdate takes a peer going up or down.
func (c *Core) PeerUpdate(now time.Time, u event.PeerUpdate) Actions {
	c.start(now)
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
		if chosen {
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
	return c.Tick(now)
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
	for id := range c.early {
		if !c.bk.IsConnected(id) {
			delete(c.early, id) // gone before it was ever up
		}
	}
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
	if c.cfg.NoPeersRestartWindow > 0 && !c.noPeersSince.IsZero() && !now.Before(c.restartDue()) {
		acts.Restart = true
		c.restartedAt = now
	}
	if now.Before(c.nextRequest) {
		return acts
	}
	if len(c.peers) == 0 {
		c.noPeersWait = min(max(2*c.noPeersWait, noPeersFirstWait), c.cfg.NoPeersMaxBackoff)
		c.nextRequest = now.Add(c.noPeersWait)
		acts.NoPeers = &errs.NoPeersAvailableError{Backoff: c.noPeersWait}
		return acts
	}
	// PolicyTendermint asks the first peer in rotation whose own spacing
	// allows it. PolicyAdaptive asks, among those, the one expected to
	// bring the most news (ties to the earlier in rotation), and waits for
	// one worth betterBy more that is due within V2RequestInterval. If
	// nobody is due, wake when the first one is.
	adaptive := c.cfg.Policy == PolicyAdaptive
	var pick, best *corePeer
	pickY, bestY := -1.0, -1.0
	var due, bestDue time.Time
	var walked int // the walking peers' book size, for expectedYield
	var miss float64
	if adaptive {
		walked = c.walkedSize()
		miss = c.missingAtMost(walked)
	}
	for e := c.rotation.Front(); e != nil; e = e.Next() {
		p := e.Value.(*corePeer)
		ok := p.lastSent.Add(c.spacing(p))
		if p.doubtedUntil.After(ok) {
			ok = p.doubtedUntil
		}
		eligible := !now.Before(ok)
		if !adaptive {
			if eligible {
				c.request(now, p, &acts)
				return acts
			}
			if due.IsZero() || ok.Before(due) {
				due = ok
			}
			continue
		}
		y := max(c.expectedYield(now, p, walked), newsFloor(now, p, miss))
		if eligible && y > pickY {
			pick, pickY = p, y
		}
		if y > bestY {
			best, bestY, bestDue = p, y, ok
		}
		if !eligible && (due.IsZero() || ok.Before(due)) {
			due = ok
		}
	}
	if adaptive {
		if best != nil && best != pick && bestY > pickY+betterBy && bestDue.Sub(now) <= c.cfg.V2RequestInterval {
			c.nextRequest = bestDue
			return acts
		}
		if pick != nil {
			c.request(now, pick, &acts)
			return acts
		}
	}
	if !due.IsZero() {
		c.nextRequest = due
	}
	return acts
}

// newsFloor is the least share of news expected from p when we may miss a
// share miss of the network (see missingAtMost): newsFloorGain times miss,
// growing to that over newsFloorRamp since we last asked it, and, while it
// grows, no faster than newsRateSlack times the pace of the peer's news
// (corePeer.newsRate, as a share of MaxAddresses), once that shows. It is
// for peers that have shown us their walk and are not in the middle of a
// fruitful one: their lap is done, or their last run brought nothing. It
// halves with each answer of the peer in a row, after the first, that
// brought nothing. What a node misses at the end is what the network
// learns last, and every peer picks that up in time, to send it as news
// when next asked. A peer in the middle of a fruitful walk is left to
// expectedYield, which reads its runs. The floor is for picking whom to
// ask, not for the pace (see peerMayTell): a peer that stays empty costs
// one request per interval, which slows as answers stay empty.
func newsFloor(now time.Time, p *corePeer, miss float64) float64 {
	if !p.answered || !p.w.Seen || (p.w.Walking && !p.w.LapDone && p.yield > 0) {
		return 0
	}
	f := newsFloorGain * miss * min(1, float64(now.Sub(p.lastSent))/float64(newsFloorRamp))
	if p.empties > 1 {
		// Its answers keep bringing nothing: it is no nearer to what we
		// miss than we are (a peer whose book we copied, say), so the
		// floor halves with each further one.
		f = math.Ldexp(f, 1-p.empties)
	}
	if since := now.Sub(p.lastSent); p.w.LapDone && p.newsRate >= 0 && since < newsFloorRamp {
		// While it ramps, the floor grows no faster than newsRateSlack
		// times the pace its news came at: a peer whose last answer
		// held a few entries of news gathers few more. At newsFloorRamp
		// it is whole at once.
		f = min(f, newsRateSlack*p.newsRate*since.Seconds()/MaxAddresses)
	}
	return f
}

// missingAtMost is the share of the network we may still miss: against
// the larger of the walking peers' book size (walked, from walkedSize)
// and the mark-recapture estimate. The latter reads high when answers are
// walks (they leave out what the peer knows we know), which is what the
// floor wants; but it reads far too high once peers ask each other (see
// mutualBonus), as their answers leave out all we told them. So it counts
// for at most estimateTrust times the larger of our book and walked.
func (c *Core) missingAtMost(walked int) float64 {
	known := c.bk.Len()
	est := min(c.estimate.value(), int(estimateTrust*float64(max(walked, known))))
	n := max(walked, est, known, 1)
	return 1 - float64(known)/float64(n)
}

// drawsOnUs reports whether p draws on us, for mutualBonus and toldBonus:
// it has had mutualAsks requests or more answered by us, did not dial us
// from a crowded subnet, and has not been asked by us on this connection.
func (p *corePeer) drawsOnUs() bool {
	return p.served >= mutualAsks && !p.crowded && p.lastSent.IsZero()
}

// expectedYield estimates the share of new addresses in p's next answer. A
// pex peer walks our order (see PeerManager.Advertise), so the ranks of the
// entries it last sent tell where its walk stands and how far its next run
// will reach; what we know in that stretch, times the share of our
// knowledge the peer turned out to hold, is what it will repeat. For a peer
// that does not walk (it samples), the share of its last answer stands in;
// for one whose lap is done (it will send only its news), that share times
// the news it is expected to have gathered since we asked it; a peer that
// has not answered yet is judged by firstAnswerYield, at unaskedYield or
// more while fewer than minSources peers are sources, and at what the size
// estimate says we miss, if over stallMiss, while answers keep bringing
// nothing (past stallAnswers), up to toldBonus more for one that has had
// our book from us and asked us lately, which is worth that share times
// the share of our book it has had as soon as one answer brought nothing;
// and, while we lack a second source, mutualBonus more if it has had
// mutualAsks requests answered by us (see there). walked is
// c.walkedSize(), worked out once by the caller for all its peers.
func (c *Core) expectedYield(now time.Time, p *corePeer, walked int) float64 {
	if !p.answered {
		y := c.firstAnswerYield(p, walked)
		// A peer that has had our book from us and still asks leaves all
		// of it out of its answer (see toldBonus).
		told := p.drawsOnUs() && now.Sub(p.servedAt) <= toldLately
		if c.idle > stallAnswers || (c.idle > 0 && told) {
			if m := c.missingAtMost(walked); m > stallMiss {
				share := 0.0
				if told {
					share = c.bk.ToldShare(p.id)
				}
				// Once an answer brought nothing, it is worth what we
				// miss in proportion to the share of our book it has had.
				y = max(y, m*share)
				if c.idle > stallAnswers {
					// Answers keep bringing nothing while the size
					// estimate says we miss much of the network: our
					// sources hold no more than we do, and the walks,
					// which show their books, cannot tell. A peer that
					// has not answered is then worth what we miss, and
					// one that has had our book up to toldBonus more.
					y = max(y, m*(1+toldBonus*share))
				}
			}
		}
		if c.sources < minSources {
			// What one peer has shown us is its book, not the network:
			// its walk ends where its book does, and a book copied
			// from it looks complete. Until a second source has
			// answered, a peer that has not answered is worth a try.
			y = max(y, unaskedYield)
			if p.drawsOnUs() {
				// Of the peers that may be that source, one that asked
				// us leaves out what we sent it (see mutualBonus).
				y *= 1 + mutualBonus
			}
		}
		return y
	}
	return c.answeredYield(now, p)
}

// firstAnswerYield is expectedYield for a peer that has not answered yet.
func (c *Core) firstAnswerYield(p *corePeer, walked int) float64 {
	// Its first answer is a run from a place in its book: about as
	// new as our book is short of the network, once walking peers have
	// shown the network's size. A fixed optimism here would
	// sample peer after peer (independent samples, the slow way)
	// instead of finishing the walks that cover the network.
	if n := walked; n > 0 {
		if float64(n) < joinAhead*float64(c.bk.Len()) {
			return 1 - float64(c.bk.Len())/float64(n)
		}
		// Peers' books are well ahead of ours: we are joining a
		// network that knows itself. Its first answer is the run of
		// about MaxAddresses of a book of n after where its walk for
		// us begins (PeerManager.WalkStartOf), and what we know there
		// it repeats: so the peer whose run lies in what we miss is
		// asked, not one whose run we hold. While books grow together
		// (a cold start) ours is no guide to a peer's run: we know
		// most where we walked others' books, which hold what a new
		// peer's partial book does not, and the share of the whole
		// network we miss is the better estimate.
		span := min(float64(MaxAddresses)/float64(n)*(1<<64), math.MaxUint64/2)
		known := c.bk.KnownInRank(c.bk.WalkStartOf(p.id), uint64(span))
		return max(0, 1-float64(known)/MaxAddresses)
	}
	// Unknown: worth a try, but not before a walk known to be good.
	return max(c.newShare, unaskedYield)
}

// answeredYield is expectedYield for a peer that has answered.
func (c *Core) answeredYield(now time.Time, p *corePeer) float64 {
	if p.w.LapDone {
		// It sends only what it learned since we last asked, which came
		// at newsRate lately: a request that brings a few addresses costs
		// a round like one that brings a hundred.
		news := float64(p.lastN)
		if p.w.Seen && p.newsRate >= 0 {
			// A pex peer (it walked): its news comes with time. A peer
			// that samples sends a sample of its book whenever asked.
			news = min(p.newsRate*now.Sub(p.lastSent).Seconds(), MaxAddresses)
		}
		return p.yield * news / MaxAddresses
	}
	if !p.w.Walking {
		return p.yield
	}
	if p.yield == 0 {
		// Its last run brought nothing: the model's estimate is noise
		// round zero, and the progress bonus below would keep asking it.
		// Others, even ones as empty, are tried first (the rotation's
		// order breaks ties): after a partition heals or newcomers join,
		// some peer learns first, and polling round finds it. Unless its
		// walk is about to reach a stretch we clearly miss (see aheadYield).
		return c.aheadYield(p)
	}
	known := c.bk.KnownInRank(p.w.At, p.w.Span)
	// The model can be wrong (books overlap unevenly); what the peer just
	// did is evidence too, so a share lastYieldFloor of its last yield is
	// a floor.
	y := max(p.yield*lastYieldFloor, p.storable*(1-p.w.Overlap*float64(known)/float64(p.w.Len)))
	// What we still miss is more likely in the part of its book a walk
	// has not shown us yet: if it holds a missing node with probability
	// q and has walked a share f of its lap without it, the node is in
	// the rest with probability q(1-f)/(1-qf), so its next run holds it
	// 1/(1-qf) times as often as a run of a fresh walk. Finishing walks
	// covers the network; sampling many (random places) does not.
	f := float64(p.w.At-p.w.From) / (1 << 64)
	return min(1, y/(1-walkHoldsMissing*f))
}

// aheadYield is the share of news per request that asking p again and
// again would bring over its next runs, up to lookAhead of them, counting
// only runs that hold a clear gap in our book (gapShare of the run or
// more, not the model's noise): the stretch a source whose share of the
// book was full walked past, say. A walk moves only forward, a run per
// answer, so when every walk is in ground we know, asking the one nearest
// a gap until it gets there beats asking each in turn, which moves them
// all as many times slower as we have peers.
func (c *Core) aheadYield(p *corePeer) float64 {
	best, sum := 0.0, 0.0
	at := p.w.At
	for j := 1; j <= lookAhead; j++ {
		known := c.bk.KnownInRank(at, p.w.Span)
		at += p.w.Span
		if y := 1 - p.w.Overlap*float64(known)/float64(p.w.Len); y >= gapShare {
			sum += y
			best = max(best, sum/float64(j))
		}
	}
	return p.storable * best
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

var (
	v1Request = mustMarshal(&pb.PexMessage{Sum: &pb.PexMessage_PexRequest{PexRequest: &pb.PexRequest{}}})
	v2Request = mustMarshal(&pb.PexMessage{Sum: &pb.PexMessage_PexRequestV2{PexRequestV2: &pb.PexRequestV2{}}})
)

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err) // only for the constant messages above
	}
	return b
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

// Receive handles one message from a peer.
func (c *Core) Receive(now time.Time, e event.Envelope) Actions {
	c.start(now)
	var acts Actions
	c.stats.BytesReceived += len(e.Message)
	if len(e.Message) > c.cfg.MaxMessageSize {
		acts.peerError(e.From, fmt.Errorf("%w: %d bytes, limit %d", errs.ErrMessageTooLarge, len(e.Message), c.cfg.MaxMessageSize), true)
		return c.counted(acts)
	}
	var msg pb.PexMessage
	if err := proto.Unmarshal(e.Message, &msg); err != nil {
		acts.peerError(e.From, fmt.Errorf("%w: %w", errs.ErrMalformedMessage, err), true)
		return c.counted(acts)
	}
	p := c.peers[e.From]
	switch m := msg.Sum.(type) {
	case *pb.PexMessage_PexRequest:
		c.serve(now, p, e.From, false, &acts)
	case *pb.PexMessage_PexRequestV2:
		if p != nil {
			p.shownV2 = true
		}
		c.serve(now, p, e.From, true, &acts)
	case *pb.PexMessage_PexResponse:
		entries := m.PexResponse.GetAddresses()
		c.handleResponse(now, p, e.From, len(entries), func(i int) (addr.NodeAddress, error) {
			a := entries[i]
			ip, err := netip.ParseAddr(a.GetIp())
			if err != nil {
				return addr.NodeAddress{}, fmt.Errorf("%w: bad IP %q", errs.ErrInvalidAddress, addr.Clip(a.GetIp()))
			}
			if a.GetPort() > math.MaxUint16 {
				return addr.NodeAddress{}, fmt.Errorf("%w: port %d", errs.ErrInvalidAddress, a.GetPort())
			}
			id, err := addr.ParseNodeID(a.GetId())
			if err != nil {
				return addr.NodeAddress{}, fmt.Errorf("%w: %w", errs.ErrInvalidAddress, err)
			}
			return addr.NodeAddressFromIP(id, ip, uint16(a.GetPort()))
		}, &acts)
	case *pb.PexMessage_PexResponseV2:
		if p != nil {
			p.shownV2 = true
		}
		entries := m.PexResponseV2.GetAddresses()
		c.handleResponse(now, p, e.From, len(entries), func(i int) (addr.NodeAddress, error) {
			return addr.ParseNodeAddress(entries[i].GetUrl())
		}, &acts)
	default:
		acts.peerError(e.From, errs.ErrUnknownMessage, true)
	}
	return c.counted(acts)
}

func (c *Core) counted(acts Actions) Actions {
	c.stats.PeerErrors += len(acts.Errors)
	for _, s := range acts.Send {
		c.stats.BytesSent += len(s.Message)
	}
	return acts
}

// serve answers a request in its own version, if the peer's request
// bucket allows it.
func (c *Core) serve(now time.Time, p *corePeer, from addr.NodeID, v2 bool, acts *Actions) {
	var b *bucket
	switch {
	case p != nil:
		b = &p.bucket
	case !c.bk.IsConnected(from):
		// Not (or no longer) connected: there is nobody to answer.
		return
	default:
		// A request can overtake its peer's Up (messages and peer events
		// travel separately): it is answered, from a bucket kept until the
		// Up arrives, at most one per connection the PeerManager allows.
		b = c.early[from]
		if b == nil {
			if len(c.early) >= c.bk.Options().MaxConnected {
				return
			}
			b = &bucket{tokens: float64(c.cfg.RequestBurst), at: now}
			c.early[from] = b
		}
	}
	if !b.take(now, &c.cfg) {
		acts.peerError(from, fmt.Errorf("%w: more than one request per %s", errs.ErrRequestTooSoon, c.cfg.MinReceiveInterval), true)
		return
	}
	c.stats.RequestsServed++
	b.served++
	b.servedAt = now
	if p != nil && !p.doubtedUntil.IsZero() {
		// It asks as an honest new peer does: a new peer like any
		// other (but for mutualBonus and toldBonus, which crowded
		// stops).
		p.doubtedUntil = time.Time{}
		c.askSoon(now)
	}
	addrs := c.bk.Advertise(now, from, MaxAddresses)
	if v2 {
		resp := &pb.PexResponseV2{Addresses: make([]*pb.PexAddressV2, len(addrs))}
		for i, a := range addrs {
			resp.Addresses[i] = &pb.PexAddressV2{Url: addr.V2URL(a, c.cfg.V2Scheme)}
		}
		acts.Send = append(acts.Send, event.Envelope{To: from, Message: mustMarshal(&pb.PexMessage{Sum: &pb.PexMessage_PexResponseV2{PexResponseV2: resp}})})
		return
	}
	for _, a := range addrs {
		if _, isIP := a.IP(); !isIP && a.Protocol != addr.ProtocolMemory {
			acts.Resolve = append(acts.Resolve, V1Answer{To: from, Addrs: addrs})
			return
		}
	}
	acts.Send = append(acts.Send, event.Envelope{To: from, Message: EncodeV1Response(endpointsOf(addrs))})
}

// V1Endpoint is one entry of a V1 response.
type V1Endpoint struct {
	ID   addr.NodeID
	Addr netip.AddrPort
}

// endpointsOf converts IP addresses to V1 entries, leaving out memory
// addresses and names (callers resolve names first).
func endpointsOf(addrs []addr.NodeAddress) []V1Endpoint {
	out := make([]V1Endpoint, 0, len(addrs))
	for _, a := range addrs {
		if ip, ok := a.IP(); ok {
			out = append(out, V1Endpoint{ID: a.NodeID, Addr: netip.AddrPortFrom(ip, a.Port)})
		}
	}
	return out
}

// EncodeV1Response encodes a V1 response, at most MaxAddresses entries.
func EncodeV1Response(eps []V1Endpoint) []byte {
	eps = eps[:min(len(eps), MaxAddresses)]
	resp := &pb.PexResponse{Addresses: make([]*pb.PexAddress, len(eps))}
	for i, ep := range eps {
		resp.Addresses[i] = &pb.PexAddress{Id: string(ep.ID), Ip: ep.Addr.Addr().String(), Port: uint32(ep.Addr.Port())}
	}
	return mustMarshal(&pb.PexMessage{Sum: &pb.PexMessage_PexResponse{PexResponse: resp}})
}

// handleResponse checks a response, stores its valid entries and adapts
// the interval and the size estimate.
func (c *Core) handleResponse(now time.Time, p *corePeer, from addr.NodeID, n int, entry func(int) (addr.NodeAddress, error), acts *Actions) {
	if p == nil || (!p.pending && !p.late) {
		acts.peerError(from, errs.ErrUnsolicitedResponse, true)
		return
	}
	if p.pending {
		p.pending = false
		p.elem = c.rotation.PushBack(p)
	}
	// A late answer (after ResponseTimeout, before we asked again) is
	// honest but slow: it is used, and the miss it already cost stands.
	p.late = false
	c.stats.Responses++
	if n > MaxAddresses {
		acts.peerError(from, fmt.Errorf("%w: %d, limit %d", errs.ErrTooManyAddresses, n, MaxAddresses), true)
		return
	}
	known := c.bk.Len()
	var added, dup, refused, self, invalid int
	var firstErr error
	ids := make([]addr.NodeID, 0, n)
	// The entries' network groups, only where a one-subnet answer can be
	// told (see oneGroup): AddFrom works them out again, so a small or
	// single-subnet network does not pay twice.
	entries := slices.Grow(c.entries[:0], n)[:n]
	defer func() { clear(entries); c.entries = entries[:0] }()
	var groups []uint64
	if n >= minGroupVote && c.bk.Options().MaxOutboundPerGroup != -1 {
		groups = slices.Grow(c.groups[:0], n) // never nil: nil means not counted
		defer func() { c.groups = groups[:0] }()
	}
	for i := range entries {
		a, err := entry(i)
		entries[i] = entryOf{a: a, err: err}
		if err == nil && a.NodeID != from && a.NodeID != c.bk.SelfID() {
			ids = append(ids, a.NodeID)
			entries[i].w = true
			if groups != nil {
				entries[i].g = addr.Group(a)
				groups = append(groups, entries[i].g)
			}
		}
	}
	// Most of it from one subnet: a sybil pushing its own, not a sample of
	// the network. At most as many of that subnet as we would dial at
	// once are kept from it: an honest peer's answer is a sample of the
	// whole network, and holds few of any one subnet.
	sybilGroup, isSybil := oneGroup(groups)
	keep := c.bk.Options().MaxOutboundPerGroup
	for i := range entries {
		e := &entries[i]
		a, err := e.a, e.err
		if err == nil && isSybil && e.g == sybilGroup {
			if keep == 0 {
				dup++ // not news we take from it
				continue
			}
			keep--
		}
		if err == nil {
			var isNew bool
			isNew, err = c.bk.AddFrom(a, from)
			if err == nil {
				if isNew {
					added++
					e.kind = walk.New
				} else {
					dup++
					e.kind = walk.Known
				}
				continue
			}
		}
		switch {
		case errors.Is(err, errs.ErrSelfAddress):
			// A peer that knows us may well share our address: that is
			// honest, so it is dropped, not punished, unless most of the
			// response is like it.
			self++
		case errors.Is(err, errs.ErrAddressBookFull), errors.Is(err, errs.ErrNetworkGroupFull):
			// No room we would give it: no news, and nothing missing.
			dup++
			e.kind = walk.Known
		case errors.Is(err, errs.ErrSourceGroupFull):
			// News we may not store from this source (groups.go): not the
			// peer's fault, no yield from it either, but the network still
			// holds more than we know, so the interval stays short.
			refused++
		default:
			invalid++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	c.stats.AddressesReceived += added + dup + refused
	c.stats.AddressesNew += added
	c.stats.InvalidEntries += invalid
	unusable := invalid + self
	mostlyBad := n >= minMostlyBad && 2*unusable > n
	switch {
	case mostlyBad:
		err := fmt.Errorf("%w: %d of %d entries unusable", errs.ErrMostlyInvalid, unusable, n)
		if firstErr != nil {
			err = errors.Join(err, firstErr)
		}
		if self > 0 {
			err = errors.Join(err, errs.ErrSelfAddress)
		}
		acts.peerError(from, err, true)
	case invalid > 0:
		acts.peerError(from, fmt.Errorf("%w (%d of %d entries invalid)", firstErr, invalid, n), false)
	}
	if added > 0 {
		c.bk.Good(from)
	}
	if isSybil {
		// A one-subnet answer tells nothing of how much we miss, so it
		// moves neither the pace nor the size estimate, and the peer is
		// asked last.
		p.yield, p.answered = 0, true
		return
	}
	if added+refused > 0 {
		p.storable = float64(added) / float64(added+refused)
	}
	if total := added + dup + refused; total > 0 {
		p.yield = float64(added) / float64(total)
	} else {
		p.yield = 0
	}
	if added == 0 {
		p.empties++
	} else {
		p.empties = 0
	}
	p.answered = true
	if !p.source && !mostlyBad && len(ids) > 0 {
		p.source = true
		c.sources++
	}
	p.lastN = n
	wasDone := p.w.LapDone
	kinds := c.kinds[:0] // kinds[i]: what came of ids[i]
	for _, e := range entries {
		if e.w {
			kinds = append(kinds, e.kind)
		}
	}
	c.kinds = kinds[:0]
	c.reader.Observe(&p.w, p.id, ids, kinds, n >= fullAnswer, added, dup)
	p.newsRate = -1
	if p.w.Seen && p.w.LapDone && wasDone && !p.answeredSent.IsZero() {
		// All news, gathered since the request it last answered.
		p.newsRate = float64(added+dup+refused) / max(p.sentAt.Sub(p.answeredSent).Seconds(), minNewsSpan)
	}
	p.answeredSent = p.sentAt
	c.estimate.observe(added+dup+refused, dup, known)
	// What the answer could hold (see adapt): a full answer from a pex
	// peer (it walks our order), the entries sent from one that samples.
	holds := added + dup + refused
	if p.w.Seen {
		holds = max(holds, MaxAddresses)
	}
	c.adapt(now, added, refused, added+dup+refused, holds)
	c.nextRequest = c.lastRequest.Add(c.interval)
}

// oneGroup reports whether more than half of at least 10 entries' groups
// gs are one public IP group (groups.go), and which. Not used with
// MaxOutboundPerGroup -1: a network in one public subnet answers so.
func oneGroup(gs []uint64) (uint64, bool) {
	if len(gs) < minGroupVote {
		return 0, false
	}
	slices.Sort(gs)
	run := 0
	for i, g := range gs {
		if i > 0 && g != gs[i-1] {
			run = 0
		}
		if run++; 2*run > len(gs) && addr.Diverse(g) {
			return g, true
		}
	}
	return 0, false
}

// adapt chooses the wait before the next request from the share of new
// addresses in responses, out of what the answer could hold (holds:
// MaxAddresses for a pex peer, the entries sent for a peer that samples):
// MinInterval while answers are full of new addresses, growing as the
// smoothed share falls (MinInterval/share, at most maxSlowdown
// MinInterval), then doubling with each further answer that brings nothing
// new, up to SaturatedInterval; MaxInterval once the book is bookFull.
// Answers to a peer we keep polling carry only what is new to us (see
// PeerManager.Advertise), so polling a saturated network stays cheap.
func (c *Core) adapt(now time.Time, added, refused, total, holds int) {
	if c.bk.PeerRatio() >= bookFull {
		c.interval = c.cfg.MaxInterval
		return
	}
	if c.cfg.Policy == PolicyTendermint {
		ratio := float64(total+1) / float64(added+1)
		d := float64(c.cfg.MinInterval)/float64(max(len(c.peers), 1))*ratio*ratio + float64(c.cfg.MinInterval)
		c.interval = time.Duration(math.Min(d, float64(c.cfg.MaxInterval)))
		return
	}
	// A pex peer (one that has walked) is counted out of a full answer:
	// once its walk is done it sends its news, often a few entries and all
	// new, and asking again at once brings fewer still, so its share lets
	// news gather. A first run cut short by a small book is counted so
	// too; while our book is clearly short of the network, missing below
	// keeps the wait short. A peer that samples sends a sample of its book
	// whatever its size. This needs the second-source rule (see
	// expectedYield): without it, a node whose only source is stuck would
	// take the lack of news for saturation.
	share := 0.0
	if holds > 0 {
		share = float64(added) / float64(holds)
	}
	// Smooth over responses, so that one peer with nothing new does not
	// stall discovery while others still have plenty.
	c.newShare = (1-shareWeight)*c.newShare + shareWeight*share
	// Our peers' books tell how big the network is: while ours is clearly
	// smaller, answers with nothing new only mean the peers' walks are in
	// a part we know, so keep asking rather than take it for saturation;
	// unless no peer is expected to bring anything (their walks are done
	// or empty, see peerMayTell): then what we miss has not reached our
	// peers yet, and polling them fast would not bring it sooner.
	// Addresses refused for their source's share (groups.go) exist, and
	// the peer that sent them will not send them again: they count as
	// missing too, so we keep asking the others, whose walks bring them.
	// The count fades with each answer that brings nothing new, so a
	// source that keeps sending what cannot be stored does not keep us
	// polling for long.
	c.refusedPending += float64(refused)
	if added == 0 {
		c.refusedPending *= refusedFade
	}
	walked := c.walkedSize()
	missing := max(1-float64(c.bk.Len())/float64(max(c.sizeFrom(walked), 1)),
		min(c.refusedPending/float64(max(c.bk.Len(), 1)), maxRefusedShare))
	switch {
	case added > 0:
		c.idle = 0
	case missing < missingShare || !c.peerMayTell(now, walked):
		c.idle++
	}
	d := float64(c.cfg.MinInterval) / math.Max(math.Max(c.newShare, missing), minShare)
	if c.idle > idleAnswers {
		d = float64(maxSlowdown*c.cfg.MinInterval) * math.Pow(2, float64(min(c.idle-idleAnswers, 30)))
		d = math.Min(d, float64(c.cfg.SaturatedInterval))
	}
	c.interval = time.Duration(math.Min(d, float64(c.cfg.MaxInterval)))
}

// peerMayTell reports whether some peer is expected to bring news (see
// expectedYield); walked is c.walkedSize().
func (c *Core) peerMayTell(now time.Time, walked int) bool {
	for _, p := range c.peers {
		if c.expectedYield(now, p, walked) > 0 {
			return true
		}
	}
	return false
}

// sizeEstimator keeps Schnabel's mark-recapture sums over recent responses:
// each response is a sample of C addresses of which R were already among
// the M we knew, and N ~ sum(C*M) / sum(R). Older samples decay so the
// estimate follows a growing network.
type sizeEstimator struct {
	sumCM, sumR float64
}

func (s *sizeEstimator) observe(sample, recaptured, known int) {
	if sample == 0 {
		return
	}
	s.sumCM = s.sumCM*estimatorDecay + float64(sample)*float64(known)
	s.sumR = s.sumR*estimatorDecay + float64(recaptured)
}

func (s *sizeEstimator) value() int {
	if s.sumCM == 0 {
		return 0
	}
	// +1 keeps the estimate finite before any recapture (Chapman's
	// correction).
	return int(s.sumCM / (s.sumR + 1))
}
