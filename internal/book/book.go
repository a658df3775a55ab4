// Package book is a node's address book: the peers it knows, the
// addresses it holds for each, their scores and dial history, and, while
// they last, its connections to them. It is a state machine with no lock
// and no clock: every call that depends on time takes it, and the caller
// (the root package's PeerManager, or the simulator) serialises calls.
//
// What it defends against (DESIGN.md states the model):
// an attacker that pushes addresses of its own subnet through many node
// IDs, floods, and dials us again and again. Gossiped entries count
// against the network group of their source, a bucket (source group and
// address group, keyed by a secret) and their own network group, each
// capped (caps.go); an entry we have connected to is never displaced by
// one we have not; connected and persistent entries are never evicted.
// The rules of connections (slots, back-off, whom to dial, whom a
// newcomer displaces) are package lifecycle's; the order in which the
// book is served to each requester is package walk's.
//
// Check verifies every invariant; tests and the fuzzer call it after
// each step.
package book

import (
	"cmp"
	"container/heap"
	"fmt"
	"log/slog"
	"math/bits"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/errs"
	"github.com/pexnet/pex/internal/event"
	"github.com/pexnet/pex/internal/lifecycle"
	"github.com/pexnet/pex/internal/walk"
)

// Options configures a Book. The zero value of each
// field means its default.
type Options struct {
	// SelfAddresses are our own advertised addresses: sent in every
	// response (that is how a node nobody knows becomes known) and never
	// stored or dialled, whatever ID they arrive with.
	SelfAddresses []addr.NodeAddress
	// MaxPeers bounds the address book, counted in peers. Default 1000.
	MaxPeers int
	// MaxConnected bounds connections, dialing and inbound together.
	// Default 50.
	MaxConnected int
	// MaxOutbound bounds the connections we dial ourselves (TryDialNext
	// stops there), so that slots stay free for nodes that dial us: without
	// it, established nodes fill every slot with each other and a newcomer
	// finds nobody to connect to. Default MaxConnected/5, at least 1 (10 of
	// 50, as CometBFT).
	MaxOutbound int
	// MaxOutboundPerGroup bounds the connections we dial into one network
	// group (a public IPv4 /16 or IPv6 /32, see groups.go), so that a
	// subnet of sybils cannot take every outbound slot, however much of
	// the book it holds. Default max(1, MaxOutbound/5): 2 of 10. -1 lifts
	// it, for a network whose nodes all sit in one public subnet.
	// Persistent peers, DNS names and unroutable addresses do not count.
	MaxOutboundPerGroup int
	// MaxAddressesPerPeer bounds the addresses kept for one node ID.
	// Default 4.
	MaxAddressesPerPeer int
	// PersistentPeers are always kept, dialled first and retried forever.
	PersistentPeers []addr.NodeAddress
	// PrivatePeers are never advertised to anyone.
	PrivatePeers []addr.NodeID
	// Strict refuses unroutable addresses (loopback, private, link-local,
	// unique-local, unspecified, documentation ranges). Off by default, for
	// tests and private networks.
	Strict bool
	// MinRetryTime is the first dial back-off; each failure doubles it up
	// to MaxRetryTime. Defaults 1 s and 10 min.
	MinRetryTime time.Duration
	MaxRetryTime time.Duration
	// MaxDialFailures drops a non-persistent address after that many
	// consecutive failed dials. Default 5. A gossiped address we never
	// reached goes after two.
	MaxDialFailures int
	// EvictScore: a connected peer whose score falls to it or below is
	// queued for disconnection (EvictNext) and not dialled again while it
	// stays there. Default -10.
	EvictScore int
	// Rand drives sampling choices; default a randomly seeded source. Pass a
	// seeded one for deterministic runs. Used under the manager's lock.
	Rand *rand.Rand
	// RandomAdvertise makes Advertise return an independent random sample
	// each time, as Tendermint v0.35 does, instead of resuming where the
	// last answer to the same peer stopped. Worse for discovery; it exists
	// so the simulator can compare the two.
	RandomAdvertise bool
	// Logger; default discards.
	Logger *slog.Logger
	// Intern, if set, returns the string an entry keeps for a node ID or
	// a host it stores: one equal to the string it is given, and shared
	// with whoever else holds it. The simulator runs thousands of books
	// that each hold nearly every node, and shares one copy of each ID
	// and host among them; a node with one book has nothing to share.
	// Default: the string given.
	Intern func(string) string
}

// Score limits and steps. A score rises only for what we chose and saw
// work: a dial of ours that connected (not a feeler, a test), a peer's
// Good. A peer that dials us earns nothing by it: an attacker that dials
// every node again and again would otherwise rank above the honest nodes
// we never reached, and our dials would go to it.
const (
	MaxScore          = 100 // persistent peers sit here
	MinScore          = -100
	scoreConnected    = 1
	scoreGood         = 1
	scoreErrored      = 1
	scoreErroredFatal = 5
)

func (o *Options) withDefaults() (Options, error) {
	c := *o
	setDefault(&c.MaxPeers, 1000)
	setDefault(&c.MaxConnected, 50)
	setDefault(&c.MaxOutbound, max(1, c.MaxConnected/5))
	setDefault(&c.MaxOutboundPerGroup, max(1, c.MaxOutbound/5))
	setDefault(&c.MaxAddressesPerPeer, 4)
	setDefault(&c.MinRetryTime, time.Second)
	setDefault(&c.MaxRetryTime, 10*time.Minute)
	setDefault(&c.MaxDialFailures, 5)
	setDefault(&c.EvictScore, -10)
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if c.Logger == nil {
		c.Logger = discardLogger
	}
	switch {
	case c.MaxOutbound > c.MaxConnected:
		return c, fmt.Errorf("%w: MaxOutbound above MaxConnected", errs.ErrInvalidConfig)
	case c.MaxPeers < 1, c.MaxConnected < 1, c.MaxOutbound < 1, c.MaxAddressesPerPeer < 1, c.MaxDialFailures < 1:
		return c, fmt.Errorf("%w: peer manager limits must be positive", errs.ErrInvalidConfig)
	case c.MaxOutboundPerGroup < -1:
		return c, fmt.Errorf("%w: MaxOutboundPerGroup must be positive, or -1 for no limit", errs.ErrInvalidConfig)
	case c.MinRetryTime < 0 || c.MaxRetryTime < c.MinRetryTime:
		return c, fmt.Errorf("%w: need 0 <= MinRetryTime <= MaxRetryTime", errs.ErrInvalidConfig)
	case c.EvictScore >= 0 || c.EvictScore <= MinScore:
		return c, fmt.Errorf("%w: EvictScore must be in (%d, 0)", errs.ErrInvalidConfig, MinScore)
	case len(c.PersistentPeers) > c.MaxPeers:
		return c, fmt.Errorf("%w: more persistent peers than MaxPeers", errs.ErrInvalidConfig)
	}
	return c, nil
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

var discardLogger = slog.New(slog.DiscardHandler)

// connState is where a peer is in its connection lifecycle.
type connState uint8

const (
	stateIdle      connState = iota // known, not connected
	stateDialing                    // we are dialling it
	stateConnected                  // connection up, handshake not finished
	stateReady                      // Up was published
)

// addrInfo is a stored address (storedAddr's fields, flattened so that
// its flags and failures fill what would be its padding) and its
// history.
type addrInfo struct {
	// failures comes first: the eviction order reads it in an entry's
	// first address, beside the entry's own marks (see peerInfo).
	failures int32 // consecutive failed dials
	port     uint16
	// kind is the protocol's index in protocols, with vouchedBit set
	// once a source of another group than srcGroup told us of the
	// address too.
	kind        uint8
	everWorked  bool
	host        string
	retryAt     stamp // not dialled before this
	lastSuccess stamp
	// toldBy holds the tellBit of each connected peer that told us of
	// this address: Advertise does not send it back to them (they know
	// it), but does send a better address of the same peer.
	toldBy uint64
	// srcGroup is the network group of the connection that first told
	// us of this address (addr.NoGroup for the operator's), charged with
	// what its first dial shows (trust.go).
	srcGroup uint64
}

const vouchedBit = 0x80 // in addrInfo.kind

// newAddrInfo returns the entry of address a, which the book validated,
// told by the sources of toldBy, first from source group srcGroup.
func (m *Book) newAddrInfo(a addr.NodeAddress, toldBy, srcGroup uint64) addrInfo {
	s := store(a)
	return addrInfo{host: m.intern(s.host), port: s.port, kind: s.proto, toldBy: toldBy, srcGroup: srcGroup}
}

// intern is s as the book keeps it (Options.Intern).
func (m *Book) intern(s string) string {
	if m.opts.Intern == nil {
		return s
	}
	return m.opts.Intern(s)
}

// addr is the address ai stores.
func (ai *addrInfo) addr() storedAddr {
	return storedAddr{host: ai.host, port: ai.port, proto: ai.kind &^ vouchedBit}
}

func (ai *addrInfo) vouched() bool { return ai.kind&vouchedBit != 0 }

// peerInfo is a peer's entry. Its fields are ordered, and sized, to pack
// (the book holds up to MaxPeers of them; TestEntrySize pins the size):
// times are stamps, small counts small integers, marks bits; what
// matters only while a connection lasts is in the book's conns, and what
// few entries have (further addresses, a broken protocol, a short
// connection's awaited answer) in its other side tables. What the
// eviction order compares (seq, score, flags, and the failures of the
// first address) is in its first 20 bytes, mostly one cache line: every
// new entry is compared with another, which is seldom in the cache.
type peerInfo struct {
	seq   uint64 // insertion order, for ties in eviction
	score int16  // MinScore to MaxScore
	flags entryFlags
	// hangUps counts the connections in a row that ended within
	// lifecycle.ShortConnection of being made, after the peer answered
	// us and not at our asking (see Disconnected); at most
	// lifecycle.MaxHangUps. When the last connection closed within
	// lifecycle.ShortConnection, before an answer and not at our asking,
	// Book.closedShort holds when, until the next connection (see
	// Answered).
	hangUps int8
	// crowdRank is how many entries its network group held when it was
	// placed, itself included (at most 255): the late entries of a
	// crowded group are the ones that make room (caps.go).
	crowdRank  uint8
	state      connState
	persistent bool
	// The peer's addresses (see extraAddrs) are first, while hasFirst,
	// then those of Book.extra, while hasExtra (few peers have more than
	// one). The one it enters the book with is stored inline (first), so
	// that a new entry is one allocation; addresses added later are
	// allocated apart, and first, once taken out, is not used again.
	first addrInfo
	id    addr.NodeID
	// slotSource and slotGroup are, while placed, the source group and
	// network group it counts in (its slot, the bucket named by both).
	slotSource uint64
	slotGroup  uint64
	src        srcRef // the peer that first told us of it, if any
	heapIndex  int32  // position in the evictable heap, -1 if not there
}

// entryFlags are an entry's marks, a bit each.
type entryFlags uint16

const (
	hasFirst entryFlags = 1 << iota // first is the peer's first address
	hasExtra                        // Book.extra holds its further addresses
	broke                           // Book.brokeAt holds when it last broke the protocol
	everConn                        // it has been connected (we dialled it, or it us)
	private                         // configured private: never advertised
	outbound                        // we dialled it (dialing or connected)
	proven                          // we have connected to it
	placed                          // counted in loads and bucketLoad
	removed                         // gone from the book; still in order until compaction
	evicting                        // queued for eviction (lifecycle.Slots.Queue)
)

func (p *peerInfo) is(f entryFlags) bool { return p.flags&f != 0 }

func (p *peerInfo) mark(f entryFlags, on bool) {
	if on {
		p.flags |= f
	} else {
		p.flags &^= f
	}
}

// connInfo is the state of a connection to a peer while it is being made
// or is up, kept in the book's conns: allocated as it begins (a dial, an
// accepted connection) and dropped when it ends, so that the idle
// entries, most of a book, do not carry it.
type connInfo struct {
	dialing *addrInfo // while stateDialing
	// adv is what we have advertised to this connected peer: nil until
	// we first answer it on this connection.
	adv      *walk.Cursor[*peerInfo]
	outGroup uint64 // while outbound: its group in outGroups, or addr.NoGroup
	// connGroup is the network group of the connection's observed remote
	// address (the address we dialled, or the remote IP the transport
	// saw); addr.NoGroup when the transport could not tell.
	connGroup   uint64
	connectedAt stamp
	caps        event.PeerCaps // once Ready
	// tell numbers this connected peer's bit in addresses' toldBy masks
	// (tellBit), once it has told us of an address we keep: 1 + the
	// bit's index, 0 if it has not, or no bit was free.
	tell uint8
	// answered: the peer answered a request of ours on this connection.
	answered bool
	// served: we answered a request of the peer's on this connection.
	served bool
	// visitor: admitted beside the slots, to be answered once and closed
	// (lifecycle.Slots.Visit).
	visitor bool
	// feeler: a test dial of ours, closed once it is made (feel.go).
	feeler bool
	// live: the peer proved its ID at a host and port on this connection
	// (the address we dialled, or the host it came from with the port it
	// announced), its key in Book.live.
	live bool
}

// dialingAddr is the address p is being dialled at, nil if none.
func (m *Book) dialingAddr(p *peerInfo) *addrInfo {
	if p.state != stateDialing {
		return nil
	}
	return m.conns[p].dialing
}

// cursor is p's walk on its connection (connInfo.adv), nil if none.
func (m *Book) cursor(p *peerInfo) *walk.Cursor[*peerInfo] {
	if !p.connected() {
		return nil
	}
	return m.conns[p].adv
}

// slotOfEntry is where p counts while placed: its source group, its
// bucket and its network group.
func (m *Book) slotOfEntry(p *peerInfo) slot {
	return slot{p.slotSource, m.bucketKey.bucket(p.slotGroup, p.slotSource), p.slotGroup}
}

// tellBit is p's bit in addresses' toldBy masks (see tell), 0 if none.
func (m *Book) tellBit(p *peerInfo) uint64 {
	if !p.connected() {
		return 0
	}
	return m.conns[p].tellBit()
}

// tellBit is the bit numbered by c.tell, 0 if none.
func (c *connInfo) tellBit() uint64 {
	if c.tell == 0 {
		return 0
	}
	return 1 << (c.tell - 1)
}

func (p *peerInfo) connected() bool { return p.state != stateIdle }

// Book is an in-memory address book plus the state of the connections
// made from it. It decides whom to dial (TryDialNext) with per-address
// exponential back-off, tracks dialing, connected, ready and disconnected
// peers, caps connections, keeps scores, and queues peer updates for its
// caller to publish (TakeUpdates). Transports report what happens
// (Dialed, DialFailed, Accepted, Ready, Disconnected, Errored); the
// decision core feeds it addresses (AddFrom) and asks it what to share
// (Advertise).
//
// A Book is not safe for concurrent use and reads no clock: its caller
// serialises calls and passes the time to those that need it.
type Book struct {
	self addr.NodeID
	opts Options
	// selfEndpoints are the host:port pairs of our own addresses.
	selfEndpoints map[endpoint]bool
	// live names, for each host and port where a connected peer proved
	// its ID, that ID: gossip naming another ID there is a spoof. One
	// key per connected peer at most.
	live map[endpoint]addr.NodeID

	peers  peerTable
	order  []*peerInfo // sorted by ID; may hold removed entries
	fresh  []*peerInfo // added since order was last sorted
	stale  int         // removed entries still in order
	gone   []*peerInfo // removed since order was last settled (some may be in fresh, not order)
	goneAt []int       // compact's scratch
	evict  evictHeap   // idle, non-persistent peers, lowest rank first
	seq    uint64
	slots  *lifecycle.Slots // connection counts, eviction queue, protocol breakers

	persistent []addr.NodeID // in the order they were made persistent
	selfKey    uint64        // walk.Key(self)
	ranks      []uint64      // selfRank of the peers, sorted
	freshRanks []uint64      // selfRank of peers added since, merged on use
	// log is the book in insertion order, as walks are served from it;
	// logGone counts the removed entries it still holds.
	log       []walk.Entry[*peerInfo]
	logGone   int
	server    walk.Server[*peerInfo] // Advertise's scratch
	tellBits  uint64                 // tellBit of the connected peers that have one
	staleBits uint64                 // freed tell bits, maybe still on addresses (see dropTellBit)

	bucketKey  bucketKey         // secret key naming buckets (groups.go)
	sourceCap  int               // gossiped entries per source group
	bucketCap  int               // entries per bucket
	bucketLoad countTable[int32] // gossiped entries per bucket
	groupCap   int               // entries per network group
	// loads counts, for each network group, the gossiped entries it
	// holds and those counted against it as a source group: one table,
	// since a group is both (an operator's address is its own source).
	loads countTable[groupLoad]
	crowd loadCounts // how many groups hold each load (caps.go)
	// fatalGroups: when a peer of a public group last broke the protocol

	trust map[uint64]*sourceTrust // what each source group's addresses proved (trust.go)

	// Feelers (feel.go): feelers dialled and not yet connected or
	// failed, the next not before feelAt, feelWait after the last draw;
	// feelNext, where in the log the next draw starts looking, and
	// feelLooked, how many entries draws have looked at since one found a
	// feeler; junkMarks, what they found in each network group.
	feelers    int
	feelAt     stamp
	feelWait   stamp
	feelNext   int
	feelLooked int
	junkMarks  map[uint64]*junkMark

	srcs sources // the node IDs entries name as their source (srcref.go)
	// lastSrc is the source entry AddFrom found last, and lastConn its
	// connection, m.conns[lastSrc] (sourceEntry).
	lastSrc  *peerInfo
	lastConn *connInfo
	// conns holds the state of each entry's connection while it is
	// dialing or connected (see connInfo).
	conns map[*peerInfo]*connInfo
	// brokeAt holds, for each entry marked broke, when its peer last
	// broke the protocol (a fatal peer error); closedShort, for each idle
	// entry whose last connection closed short and unanswered (see
	// peerInfo.hangUps), when it closed.
	brokeAt     map[*peerInfo]stamp
	closedShort map[*peerInfo]stamp
	extra       extraAddrs // the addresses of an entry after its first (hasExtra)

	strictLogged bool

	// epoch is the time stamps count from (stamp.go): the first the
	// book was given, once hasEpoch.
	epoch    time.Time
	hasEpoch bool

	// updates are the peer updates not yet taken (TakeUpdates); wake is
	// set when a dial may have become possible (TakeWake).
	updates []event.PeerUpdate
	wake    bool
}

// New returns an empty address book for the node self, holding
// the persistent peers of opts.
func New(self addr.NodeID, opts Options) (*Book, error) {
	if err := self.Validate(); err != nil {
		return nil, fmt.Errorf("%w: self: %w", errs.ErrInvalidConfig, err)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Book{
		self:          self,
		selfKey:       walk.Key(self),
		opts:          o,
		selfEndpoints: make(map[endpoint]bool),
		live:          make(map[endpoint]addr.NodeID),
		peers:         newPeerTable(),
		bucketKey:     bucketKey{o.Rand.Uint64(), o.Rand.Uint64()},
		slots: lifecycle.NewSlots(lifecycle.Limits{
			MaxConnected:        o.MaxConnected,
			MaxOutbound:         o.MaxOutbound,
			MaxOutboundPerGroup: o.MaxOutboundPerGroup,
			MinRetryTime:        o.MinRetryTime,
			MaxRetryTime:        o.MaxRetryTime,
		}),
		sourceCap:   sourceCap(o.MaxPeers),
		bucketCap:   bucketCap(o.MaxPeers),
		bucketLoad:  newCountTable[int32](),
		groupCap:    groupCap(o.MaxPeers),
		loads:       newCountTable[groupLoad](),
		trust:       make(map[uint64]*sourceTrust),
		junkMarks:   make(map[uint64]*junkMark),
		srcs:        newSources(),
		brokeAt:     make(map[*peerInfo]stamp),
		closedShort: make(map[*peerInfo]stamp),
		extra:       make(extraAddrs),
		conns:       make(map[*peerInfo]*connInfo),
	}
	m.evict.extra = m.extra
	for _, a := range o.SelfAddresses {
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("%w: self address: %w", errs.ErrInvalidConfig, err)
		}
		if a.NodeID != self {
			return nil, fmt.Errorf("%w: self address %s has another node ID", errs.ErrInvalidConfig, a)
		}
		if a.Hostname != "" {
			m.selfEndpoints[endpointKey(a)] = true
		}
	}
	for _, a := range o.PersistentPeers {
		if err := m.AddPersistent(a); err != nil {
			return nil, fmt.Errorf("%w: persistent peer: %w", errs.ErrInvalidConfig, err)
		}
	}
	for _, id := range o.PrivatePeers {
		if err := id.Validate(); err != nil {
			return nil, fmt.Errorf("%w: private peer: %w", errs.ErrInvalidConfig, err)
		}
	}
	return m, nil
}

// endpoint is a host and port, whatever the node ID and scheme.
type endpoint struct {
	host string
	port uint16
}

func endpointKey(a addr.NodeAddress) endpoint { return endpoint{a.Hostname, a.Port} }

// isPrivate reports whether id was configured private.
func (m *Book) isPrivate(id addr.NodeID) bool { return slices.Contains(m.opts.PrivatePeers, id) }

// insert adds a new peer, with ai (if not nil) as its first address,
// copied into the entry; the caller holds the lock and made room.
func (m *Book) insert(id addr.NodeID, ai *addrInfo) *peerInfo {
	return m.insertHashed(id, m.peers.hash(id), walk.Key(id), ai)
}

// insertHashed is insert for an ID whose hash in the peer table is h and
// whose walk.Key is key.
func (m *Book) insertHashed(id addr.NodeID, h, key uint64, ai *addrInfo) *peerInfo {
	m.seq++
	p := &peerInfo{id: addr.NodeID(m.intern(string(id))), heapIndex: -1, seq: m.seq}
	p.mark(private, m.isPrivate(id))
	m.freshRanks = append(grown(m.freshRanks, m.opts.MaxPeers), walk.Rank(key, m.selfKey)) // RankOf(id)
	if ai != nil {
		p.first = *ai
		p.mark(hasFirst, true)
	}
	if m.peers.full() {
		m.peers.growFrom(m.log)
	}
	m.peers.putHashed(p, h)
	m.fresh = append(grown(m.fresh, m.opts.MaxPeers), p)
	m.log = append(grown(m.log, m.opts.MaxPeers), walk.Entry[*peerInfo]{E: p, Key: key})
	if len(m.fresh) > 64 && len(m.fresh) > len(m.order) {
		m.settle() // keep fresh bounded when nobody asks for addresses
	}
	m.rank(p)
	return p
}

// makeRoom drops the lowest-ranked evictable peer, unless it is proven
// (we have connected to it): a proven peer is never replaced by an
// unproven one. The caller holds the lock.
func (m *Book) makeRoom() error {
	if len(m.evict.es) == 0 || m.evict.es[0].is(proven) {
		return errs.ErrAddressBookFull
	}
	m.remove(m.evict.es[0])
	return nil
}

// makeRoomForGossip is makeRoom for what a peer tells or brings: it
// drops only an entry that has failed (the eviction order puts them
// first among the unproven). What we know and have no reason to doubt is
// not pushed out by news: else a flood, junk included, or a host that
// keeps connecting under new IDs, evicts the honest network we learnt
// first. The caller holds the lock.
//
// News about a network group g also displaces idle hearsay of the most
// crowded group (see crowdVictim), when that group holds at least
// crowdFloor and two more than g: no set of groups owns a full book, and
// a book an attacker's groups filled before the honest network reached
// it takes the honest network in as it comes (g is addr.NoGroup for
// none).
func (m *Book) makeRoomForGossip(g uint64) error {
	if len(m.evict.es) > 0 && !m.evict.es[0].is(proven) && m.extra.failing(m.evict.es[0]) {
		m.remove(m.evict.es[0])
		return nil
	}
	if g != addr.NoGroup {
		if v := m.crowdVictim(m.groupLoad(g) + 2); v != nil {
			m.remove(v)
			return nil
		}
	}
	return errs.ErrAddressBookFull
}

// remove deletes an idle peer from the book. The caller holds the lock.
func (m *Book) remove(p *peerInfo) {
	m.unrank(p)
	m.unplace(p)
	m.peers.del(p.id)
	p.mark(removed, true)
	m.srcs.release(p.src)
	p.src = noSrc
	delete(m.brokeAt, p)
	delete(m.closedShort, p)
	m.extra.drop(p)
	m.stale++
	m.gone = append(m.gone, p)
	m.dropRank(m.RankOf(p.id))
	// Removed entries are taken out of order and the log once they are
	// an eighth of either: amortised, a removal moves eight entries, and
	// what they keep alive of removed entries is at most a seventh of the
	// book. (Serving reads neither order, which only dialling and the
	// random sample settle, nor the removed entries of the log.)
	if m.stale > 16 && 8*m.stale > len(m.order) {
		m.settle()
	}
	if m.logGone++; m.logGone > 16 && 8*m.logGone > len(m.log) {
		m.compactLog()
	}
}

// renew logs p again, at the end of the log under a new sequence number,
// when what Advertise passes on for it changed (see noteBest): peers
// whose walks passed it hold what we sent then, and it is news to them
// once more. Its old place holds a removed stand-in. The caller holds the
// lock.
func (m *Book) renew(p *peerInfo) {
	i, found := slices.BinarySearchFunc(m.log, p.seq, func(e walk.Entry[*peerInfo], seq uint64) int { return cmp.Compare(e.E.seq, seq) })
	if !found || m.log[i].E != p {
		return
	}
	key := m.log[i].Key
	m.log[i].E = &peerInfo{id: p.id, seq: p.seq, flags: removed, heapIndex: -1}
	m.seq++
	p.seq = m.seq
	m.log = append(m.log, walk.Entry[*peerInfo]{E: p, Key: key})
	if p.heapIndex >= 0 {
		heap.Fix(&m.evict, int(p.heapIndex)) // ties go by sequence
	}
	if m.logGone++; m.logGone > 16 && 8*m.logGone > len(m.log) {
		m.compactLog()
	}
}

// passedOn is the address Advertise passes on for p, when p has more
// than one (else the zero storedAddr: which it passes on cannot change
// while it keeps it).
func (m *Book) passedOn(p *peerInfo) storedAddr {
	if m.extra.num(p) < 2 {
		return storedAddr{}
	}
	return m.bestAddress(p).addr()
}

// noteBest renews p (see renew) if it is still in the book and the
// address Advertise passes on for it is no longer before, what passedOn
// said before a change to its addresses: a spoof failed or left, or its
// true address came or was reached.
func (m *Book) noteBest(p *peerInfo, before storedAddr) {
	if before == (storedAddr{}) || p.is(removed) || m.extra.num(p) == 0 {
		return
	}
	if m.bestAddress(p).addr() != before {
		m.renew(p)
	}
}

// compactLog takes the removed entries out of the log, in one pass. The
// caller holds the lock.
func (m *Book) compactLog() {
	live := slices.DeleteFunc(m.log, func(e walk.Entry[*peerInfo]) bool { return e.E.is(removed) })
	m.log, m.logGone = live, 0
}

func (m *Book) rank(p *peerInfo) {
	if p.persistent || p.connected() || p.heapIndex >= 0 || p.is(removed) {
		return
	}
	m.evict.es = grown(m.evict.es, m.opts.MaxPeers)
	m.evict.push(p)
}

func (m *Book) unrank(p *peerInfo) {
	if p.heapIndex >= 0 {
		heap.Remove(&m.evict, int(p.heapIndex))
	}
}

func (m *Book) setScore(p *peerInfo, s int) {
	if p.persistent {
		return
	}
	p.score = int16(min(max(s, MinScore), MaxScore-1))
	if p.heapIndex >= 0 {
		heap.Fix(&m.evict, int(p.heapIndex))
	}
}

// freshKept is the most capacity fresh keeps once settled.
const freshKept = 128

// settle sorts new entries into order and compacts removed ones, in
// place: the few new entries are sorted and each finds its place by
// binary search, and every entry of order moves once, in runs (copy), so
// an answer after a few additions costs a move of memory, not a merge
// comparing every entry's ID nor a new slice. Removed entries are found
// in one pass, when there are any. The caller holds the lock.
func (m *Book) settle() {
	if len(m.fresh) == 0 && m.stale == 0 {
		return
	}
	fresh := m.fresh[:0]
	for _, p := range m.fresh {
		if !p.is(removed) {
			fresh = append(fresh, p)
		}
	}
	slices.SortFunc(fresh, func(a, b *peerInfo) int { return cmp.Compare(a.id, b.id) })
	if len(m.gone) > 0 {
		m.compact()
	}
	// Merge from the back: order[:hi] has not moved yet. A new entry
	// goes before the entries of order with its ID, if any.
	n, f := len(m.order), len(fresh)
	m.order = grownBy(m.order, f, m.opts.MaxPeers)[:n+f]
	if f*bits.Len(uint(n)) > n {
		// So many that comparing along order costs less than a binary
		// search for each (a book filled before anyone asks).
		i := n - 1
		for j, k := f-1, n+f-1; j >= 0; k-- {
			if i >= 0 && cmp.Compare(m.order[i].id, fresh[j].id) >= 0 {
				m.order[k] = m.order[i]
				i--
			} else {
				m.order[k] = fresh[j]
				j--
			}
		}
	} else {
		hi := n
		for j := f - 1; j >= 0; j-- {
			p := fresh[j]
			pos, _ := slices.BinarySearchFunc(m.order[:hi], p.id, func(q *peerInfo, id addr.NodeID) int { return cmp.Compare(q.id, id) })
			copy(m.order[pos+j+1:hi+j+1], m.order[pos:hi])
			m.order[pos+j] = p
			hi = pos
		}
	}
	clear(m.fresh)
	m.fresh = m.fresh[:0]
	if cap(m.fresh) > freshKept {
		// Only a book filled before anyone asks for addresses needs as
		// long a list; it settles at every answer once asked.
		m.fresh = nil
	}
	m.stale = 0
}

// compact takes the removed entries out of order: each is found
// by binary search (those removed before they were sorted in are not
// there), and the entries between them move down once, in runs. The
// caller holds the lock.
func (m *Book) compact() {
	at := m.goneAt[:0]
	for _, g := range m.gone {
		if i, ok := slices.BinarySearchFunc(m.order, g.id, func(q *peerInfo, id addr.NodeID) int { return cmp.Compare(q.id, id) }); ok && m.order[i] == g {
			at = append(at, i)
		}
	}
	slices.Sort(at)
	at = slices.Compact(at)
	if len(at) > 0 {
		k := at[0]
		for x, i := range at {
			end := len(m.order)
			if x+1 < len(at) {
				end = at[x+1]
			}
			k += copy(m.order[k:], m.order[i+1:end])
		}
		clear(m.order[k:])
		m.order = m.order[:k]
	}
	clear(m.gone)
	m.gone, m.goneAt = m.gone[:0], at[:0]
}

// evictHeap orders idle, non-persistent peers by rank: lowest score first,
// then the oldest.
type evictHeap struct {
	es    []*peerInfo
	extra extraAddrs // the book's, to read the entries' addresses
}

func (h *evictHeap) Len() int           { return len(h.es) }
func (h *evictHeap) Less(i, j int) bool { return h.evictsFirst(h.es[i], h.es[j]) }

// evictsFirst orders entries for eviction: unproven before proven, then
// failing (every address failed its last dial) before the others, then
// the lowest score, then the oldest.
func (h *evictHeap) evictsFirst(a, b *peerInfo) bool {
	if a.is(proven) != b.is(proven) {
		return !a.is(proven)
	}
	if fa, fb := h.extra.failing(a), h.extra.failing(b); fa != fb {
		return fa
	}
	if a.score != b.score {
		return a.score < b.score
	}
	return a.seq < b.seq
}
func (h *evictHeap) Swap(i, j int) {
	h.es[i], h.es[j] = h.es[j], h.es[i]
	h.es[i].heapIndex = int32(i)
	h.es[j].heapIndex = int32(j)
}
func (h *evictHeap) Push(x any) {
	p := x.(*peerInfo)
	p.heapIndex = int32(len(h.es))
	h.es = append(h.es, p)
}

// push is heap.Push(h, p), with direct calls: every new entry is pushed.
func (h *evictHeap) push(p *peerInfo) {
	h.Push(p)
	for j := len(h.es) - 1; j > 0; {
		i := (j - 1) / 2 // parent
		if !h.evictsFirst(h.es[j], h.es[i]) {
			break
		}
		h.Swap(i, j)
		j = i
	}
}

func (h *evictHeap) Pop() any {
	old := h.es
	p := old[len(old)-1]
	old[len(old)-1] = nil
	p.heapIndex = -1
	h.es = old[:len(old)-1]
	return p
}

// grown returns s, a list of the book's entries, with room for one more.
// Such a list grows one entry at a time toward limit, MaxPeers: its
// capacity doubles, never past limit, where append would grow a long
// slice by a quarter at a time, copying it over and over, and overshoot
// the book's bound by up to a quarter. Past limit (connected and
// persistent entries, removed ones not yet compacted) append grows it.
func grown[S ~[]E, E any](s S, limit int) S {
	if len(s) < cap(s) || len(s) >= limit {
		return s
	}
	t := make(S, len(s), min(max(2*len(s), 8), limit))
	copy(t, s)
	return t
}

// grownBy is grown for n more entries at once, as a merge adds them: its
// capacity doubles until they fit, never past limit unless they do not
// fit within it.
func grownBy[S ~[]E, E any](s S, n, limit int) S {
	if len(s)+n <= cap(s) {
		return s
	}
	c := max(cap(s), 8)
	for c < len(s)+n {
		c *= 2
	}
	t := make(S, len(s), max(min(c, limit), len(s)+n))
	copy(t, s)
	return t
}
