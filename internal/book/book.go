package book

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"log/slog"
	"math"
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
	// consecutive failed dials. Default 5.
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
}

// Score limits and steps.
const (
	MaxScore          = 100 // persistent peers sit here
	MinScore          = -100
	scoreConnected    = 1
	scoreGood         = 1
	scoreErrored      = 1
	scoreErroredFatal = 5
	scoreDialFailed   = 1
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

type addrInfo struct {
	addr        addr.NodeAddress
	failures    int       // consecutive failed dials
	retryAt     time.Time // not dialled before this
	everWorked  bool
	lastSuccess time.Time
	// toldBy holds the tellBit of each connected peer that told us of
	// this address: Advertise does not send it back to them (they know
	// it), but does send a better address of the same peer.
	toldBy uint64
}

type peerInfo struct {
	id          addr.NodeID
	addrs       []*addrInfo
	persistent  bool
	private     bool
	score       int
	state       connState
	caps        event.PeerCaps
	dialing     *addrInfo // while stateDialing
	outbound    bool      // we dialled it (dialing or connected)
	outGroup    uint64    // while outbound: its group in outGroups, or addr.NoGroup
	connectedAt time.Time
	key         uint64      // walk.Key(id)
	selfRank    uint64      // rank in our own order (see Advertise)
	src         addr.NodeID // the peer that first told us of it, if any
	proven      bool        // we have connected to it
	brokeAt     time.Time   // when it last broke the protocol (a fatal peer error), if ever
	adv         walk.Cursor // what we have advertised to this connected peer
	slot        slot        // source group, bucket and network group (groups.go), if placed
	placed      bool        // counted in sourceLoad, bucketLoad and groupLoad

	// tellBit is this connected peer's bit in addresses' toldBy masks,
	// once it has told us of an address we keep (0 if it has not, or no
	// bit was free).
	tellBit uint64

	heapIndex int    // position in the evictable heap, -1 if not there
	seq       uint64 // insertion order, for ties in eviction
	removed   bool   // gone from the book; still in order until compaction
	evicting  bool   // queued in evictQueue
}

func (p *peerInfo) connected() bool { return p.state != stateIdle }

// Book is an in-memory address book plus the lifecycle of the
// connections made from it. It decides whom to dial (TryDialNext,
// DialNext) with per-address exponential back-off, tracks dialing,
// connected, ready and disconnected peers, caps connections, keeps scores,
// and publishes PeerUpdates to subscribers. Transports report what
// happens (Dialed, DialFailed, Accepted, Ready, Disconnected, Errored); the
// Reactor feeds it addresses (Add) and asks it what to share (Advertise).
//
// All methods are safe for concurrent use; none blocks on I/O, and the
// lock is held only for the bookkeeping itself.
type Book struct {
	self addr.NodeID
	opts Options
	// selfEndpoints are the host:port pairs of our own addresses.
	selfEndpoints map[endpoint]bool

	peers map[addr.NodeID]*peerInfo
	order []*peerInfo // sorted by ID; may hold removed entries
	fresh []*peerInfo // added since order was last sorted
	stale int         // removed entries still in order
	evict evictHeap   // idle, non-persistent peers, lowest rank first
	seq   uint64
	slots *lifecycle.Slots // connection counts, eviction queue, protocol breakers

	persistent []addr.NodeID          // in the order they were made persistent
	selfKey    uint64                 // walk.Key(self)
	ranks      []uint64               // selfRank of the peers, sorted
	freshRanks []uint64               // selfRank of peers added since, merged on use
	server     walk.Server[*peerInfo] // Advertise's scratch
	tellBits   uint64                 // tellBit of the connected peers that have one
	staleBits  uint64                 // freed tell bits, maybe still on addresses (see dropTellBit)

	bucketKey  bucketKey      // secret key naming buckets (groups.go)
	sourceCap  int            // gossiped entries per source group
	sourceLoad map[uint64]int // gossiped entries per source group
	bucketCap  int            // entries per bucket
	bucketLoad map[uint64]int // gossiped entries per bucket
	groupCap   int            // entries per network group
	groupLoad  map[uint64]int // gossiped entries per network group
	// fatalGroups: when a peer of a public group last broke the protocol

	strictLogged bool

	// updates are the peer updates not yet taken (TakeUpdates); wake is
	// set when a dial may have become possible (TakeWake).
	updates []event.PeerUpdate
	wake    bool
}

// NewBook returns an empty address book for the node self, holding
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
		peers:         make(map[addr.NodeID]*peerInfo),
		bucketKey:     bucketKey{o.Rand.Uint64(), o.Rand.Uint64()},
		slots: lifecycle.NewSlots(lifecycle.Limits{
			MaxConnected:        o.MaxConnected,
			MaxOutbound:         o.MaxOutbound,
			MaxOutboundPerGroup: o.MaxOutboundPerGroup,
			MinRetryTime:        o.MinRetryTime,
			MaxRetryTime:        o.MaxRetryTime,
		}),
		sourceCap:  sourceCap(o.MaxPeers),
		sourceLoad: make(map[uint64]int),
		bucketCap:  bucketCap(o.MaxPeers),
		bucketLoad: make(map[uint64]int),
		groupCap:   groupCap(o.MaxPeers),
		groupLoad:  make(map[uint64]int),
	}
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

// SelfID returns our own node ID.
func (m *Book) SelfID() addr.NodeID { return m.self }

// AddPersistent adds a (or marks its peer) persistent: kept whatever the
// book's capacity, dialled first and regardless of MaxOutbound, retried
// forever, at the top score. An operator uses it to add a peer at run time,
// for example to join two parts of a network.
func (m *Book) AddPersistent(a addr.NodeAddress) error {
	if _, err := m.Add(a); err != nil && !errors.Is(err, errs.ErrAddressBookFull) && !errors.Is(err, errs.ErrSourceGroupFull) && !errors.Is(err, errs.ErrNetworkGroupFull) {
		return err
	}
	p := m.peers[a.NodeID]
	if p == nil {
		// The book is full of peers that may not be dropped: a persistent
		// peer is kept over capacity.
		p = m.insert(a.NodeID, &addrInfo{addr: a})
	}
	if !slices.ContainsFunc(p.addrs, func(ai *addrInfo) bool { return ai.addr == a }) {
		// The operator's address replaces the one failing most, never the
		// one being dialled; with no other to replace it is kept over
		// MaxAddressesPerPeer.
		var worst *addrInfo
		for _, ai := range p.addrs {
			if ai != p.dialing && (worst == nil || ai.failures > worst.failures) {
				worst = ai
			}
		}
		if len(p.addrs) < m.opts.MaxAddressesPerPeer || worst == nil {
			p.addrs = append(p.addrs, &addrInfo{addr: a})
		} else {
			*worst = addrInfo{addr: a}
		}
	}
	if !p.persistent {
		p.persistent = true
		m.persistent = append(m.persistent, p.id)
		m.unplace(p) // configured, not gossip: outside the buckets
	}
	p.score = MaxScore
	if p.evicting {
		// It was queued for eviction: no longer. If its going was making
		// room for another connection, an inbound peer goes instead; with
		// none to spare it has to go after all.
		p.evicting = false
		m.slots.Unqueue(p.id)
		if m.slots.Over() {
			v := m.spareable()
			if v == nil {
				v = p // every other connection is persistent too
			}
			v.evicting = true
			m.slots.Queue(v.id)
		}
	}
	m.sparePersistent()
	m.unrank(p)
	m.wake = true
	return nil
}

// SelfAddresses returns our own advertised addresses.
func (m *Book) SelfAddresses() []addr.NodeAddress {
	return slices.Clone(m.opts.SelfAddresses)
}

// MaxPeers returns the capacity of the book.
func (m *Book) MaxPeers() int { return m.opts.MaxPeers }

// isPrivate reports whether id was configured private.
func (m *Book) isPrivate(id addr.NodeID) bool { return slices.Contains(m.opts.PrivatePeers, id) }

// CheckAddress tells whether Add would accept a's form: valid, not ours,
// routable in strict mode. It does not look at the book.
func (m *Book) CheckAddress(a addr.NodeAddress) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if a.NodeID == m.self || (a.Hostname != "" && m.selfEndpoints[endpointKey(a)]) {
		return fmt.Errorf("%w: %s", errs.ErrSelfAddress, a)
	}
	if m.opts.Strict && !addr.IsRoutable(a) {
		return fmt.Errorf("%w: %s", errs.ErrUnroutableAddress, a)
	}
	return nil
}

// Add stores an address and reports whether it was new to the book. It
// refuses invalid addresses, our own (errs.ErrSelfAddress), unroutable ones in
// strict mode, and, when the book is full and every stored peer outranks
// an unknown one, the address (errs.ErrAddressBookFull). When full, the
// lowest-ranked idle, non-persistent peer makes room: never a connected or
// persistent one, and never one that has connected for one that has not.
// A new peer's entry counts against its network group, its source group
// and its bucket (see groups.go), with its own network group as its
// source; errs.ErrNetworkGroupFull or errs.ErrSourceGroupFull refuses it when one is
// full.
func (m *Book) Add(a addr.NodeAddress) (bool, error) {
	return m.AddFrom(a, "")
}

// AddFrom is Add for an address that peer src told us about. The book
// remembers the first source of each peer, and Advertise never sends an
// address back to the peer it came from; nor, while src stays connected,
// an address src told us of (the one we keep, or a new one it adds): src
// knows it. A better address of the same peer is still sent to src. The
// entry counts against the network group of src (the address we reached
// src at, or the one it announced) and against its bucket, named by that
// group and the address's, so that one source group can hold at most
// half of the book, and one bucket 1/32 of it (groups.go).
func (m *Book) AddFrom(a addr.NodeAddress, src addr.NodeID) (bool, error) {
	if err := m.CheckAddress(a); err != nil {
		if errors.Is(err, errs.ErrUnroutableAddress) {
			m.logStrictOnce(a)
		}
		return false, err
	}
	if p, ok := m.peers[a.NodeID]; ok {
		for _, ai := range p.addrs {
			if ai.addr == a {
				ai.toldBy |= m.tellBitOf(src)
				return false, nil
			}
		}
		if !p.placed && !p.persistent {
			// An inbound peer's first address: placed like a new entry.
			sl := m.slotOf(a, src)
			if err := m.admit(sl); err != nil {
				return false, err
			}
			m.place(p, sl)
		}
		if len(p.addrs) >= m.opts.MaxAddressesPerPeer {
			if p.persistent {
				// Configured addresses are not gossip's to replace.
				return false, nil
			}
			// Replace the worst address, if it has been failing.
			worst := slices.MaxFunc(p.addrs, func(x, y *addrInfo) int { return cmp.Compare(x.failures, y.failures) })
			if worst.failures == 0 || worst == p.dialing {
				return false, nil
			}
			*worst = addrInfo{addr: a, toldBy: m.tellBitOf(src)}
		} else {
			p.addrs = append(p.addrs, &addrInfo{addr: a, toldBy: m.tellBitOf(src)})
		}
		m.wake = true
		return true, nil
	}
	sl := m.slotOf(a, src)
	if err := m.admit(sl); err != nil {
		return false, err
	}
	if len(m.peers) >= m.opts.MaxPeers {
		if err := m.makeRoom(); err != nil {
			return false, err
		}
	}
	p := m.insert(a.NodeID, &addrInfo{addr: a, toldBy: m.tellBitOf(src)})
	p.src = src
	m.place(p, sl)
	m.wake = true
	return true, nil
}

// slot is where a gossiped entry counts: its source group, its bucket
// (address group and source group) and its network group.
type slot struct{ source, bucket, group uint64 }

// slotOf returns the slot for address a learnt from src. The caller holds
// the lock.
func (m *Book) slotOf(a addr.NodeAddress, src addr.NodeID) slot {
	sg := addr.GroupUnknown
	if src == "" {
		sg = addr.Group(a)
	} else if p := m.peers[src]; p != nil {
		sg = peerGroup(p)
	}
	g := addr.Group(a)
	return slot{sg, m.bucketKey.bucket(g, sg), g}
}

// peerGroup is the network group of the address we last reached p at,
// else of the first we learnt; addr.GroupUnknown if we hold none.
func peerGroup(p *peerInfo) uint64 {
	if len(p.addrs) == 0 {
		return addr.GroupUnknown
	}
	best := p.addrs[0]
	for _, ai := range p.addrs[1:] {
		if ai.lastSuccess.After(best.lastSuccess) {
			best = ai
		}
	}
	return addr.Group(best.addr)
}

// admit tells whether slot sl has room for one more entry: its network
// group first (a group at its cap is no news, whoever sends it), then
// its bucket and its source group. The caller holds the lock.
func (m *Book) admit(sl slot) error {
	if n := m.groupLoad[sl.group]; n >= m.groupCap {
		return fmt.Errorf("%w (%d entries)", errs.ErrNetworkGroupFull, n)
	}
	if n := m.bucketLoad[sl.bucket]; n >= m.bucketCap {
		return fmt.Errorf("%w (%d entries of its group from it)", errs.ErrSourceGroupFull, n)
	}
	if n := m.sourceLoad[sl.source]; n >= m.sourceCap {
		return fmt.Errorf("%w (%d entries from it)", errs.ErrSourceGroupFull, n)
	}
	return nil
}

// place counts p in slot sl; unplace takes it out. The caller holds the
// lock.
func (m *Book) place(p *peerInfo, sl slot) {
	p.slot, p.placed = sl, true
	m.sourceLoad[sl.source]++
	m.bucketLoad[sl.bucket]++
	m.groupLoad[sl.group]++
}

func (m *Book) unplace(p *peerInfo) {
	if !p.placed {
		return
	}
	p.placed = false
	decrement(m.sourceLoad, p.slot.source)
	decrement(m.bucketLoad, p.slot.bucket)
	decrement(m.groupLoad, p.slot.group)
}

// decrement counts one entry less under k, forgetting k at zero.
func decrement(load map[uint64]int, k uint64) {
	if load[k]--; load[k] <= 0 {
		delete(load, k)
	}
}

func (m *Book) logStrictOnce(a addr.NodeAddress) {
	first := !m.strictLogged
	m.strictLogged = true
	if first {
		m.opts.Logger.Warn("pex: strict mode refused an unroutable address; set Strict=false on private networks (logged once)",
			"addr", a.String())
	}
}

// insert adds a new peer; the caller holds the lock and made room.
func (m *Book) insert(id addr.NodeID, ai *addrInfo) *peerInfo {
	m.seq++
	key := walk.Key(id)
	p := &peerInfo{id: id, key: key, selfRank: walk.Rank(key, m.selfKey), heapIndex: -1, seq: m.seq, private: m.isPrivate(id)}
	m.freshRanks = append(m.freshRanks, p.selfRank)
	if ai != nil {
		p.addrs = []*addrInfo{ai}
	}
	m.peers[id] = p
	m.fresh = append(m.fresh, p)
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
	if len(m.evict) == 0 || m.evict[0].proven {
		return errs.ErrAddressBookFull
	}
	m.remove(m.evict[0])
	return nil
}

// remove deletes an idle peer from the book. The caller holds the lock.
func (m *Book) remove(p *peerInfo) {
	m.unrank(p)
	m.unplace(p)
	delete(m.peers, p.id)
	p.removed = true
	m.stale++
	m.dropRank(p.selfRank)
	if m.stale > 64 && m.stale > len(m.peers) {
		m.settle() // keep order compact when nobody asks for addresses
	}
}

func (m *Book) rank(p *peerInfo) {
	if p.persistent || p.connected() || p.heapIndex >= 0 || p.removed {
		return
	}
	heap.Push(&m.evict, p)
}

func (m *Book) unrank(p *peerInfo) {
	if p.heapIndex >= 0 {
		heap.Remove(&m.evict, p.heapIndex)
	}
}

func (m *Book) setScore(p *peerInfo, s int) {
	if p.persistent {
		return
	}
	p.score = min(max(s, MinScore), MaxScore-1)
	if p.heapIndex >= 0 {
		heap.Fix(&m.evict, p.heapIndex)
	}
}

// settle sorts new entries into order and compacts removed ones. The
// caller holds the lock.
func (m *Book) settle() {
	if len(m.fresh) == 0 && m.stale == 0 {
		return
	}
	fresh := m.fresh[:0]
	for _, p := range m.fresh {
		if !p.removed {
			fresh = append(fresh, p)
		}
	}
	byID := func(a, b *peerInfo) int { return cmp.Compare(a.id, b.id) }
	slices.SortFunc(fresh, byID)
	merged := make([]*peerInfo, 0, len(m.peers))
	i, j := 0, 0
	for i < len(m.order) || j < len(fresh) {
		var next *peerInfo
		if j >= len(fresh) || (i < len(m.order) && m.order[i].id < fresh[j].id) {
			next = m.order[i]
			i++
		} else {
			next = fresh[j]
			j++
		}
		if !next.removed {
			merged = append(merged, next)
		}
	}
	m.order = merged
	clear(m.fresh)
	m.fresh = m.fresh[:0]
	m.stale = 0
}

// Advertise returns at most limit addresses to send to peer to: our own
// advertised addresses first, then one address per known peer, never to's
// own, never a private peer's, never a peer at the bottom of the scores.
//
// The book is walked in an order specific to the requester (entries ranked
// by a mix of their ID's hash and the requester's, the same on every node)
// once round, from a place fixed for the pair (walkStart); entries added
// behind the walk since the last answer (the news) have the room first in
// each answer (after the walk's run, which leads so the requester can read
// it), in laps drawn for the requester (once the walk is done, the newest
// first: see nextNews), so a connected peer is not sent the same address
// twice. The walk is forgotten on disconnect, and begins again at the same
// place. Because every node walks the same order for a requester, the
// requester can tell where each peer's walk stands (RankOf) and where a
// peer's first answer lies (WalkStartOf), and ask the peer whose next run
// it knows least of. An address a connected requester told
// us of (AddFrom) is left out of its walk and its news: it knows it. What
// each of up to 64 connected peers told us is a bit per address, forgotten
// when the peer disconnects (a peer may lose its book when it restarts;
// the first source of an entry is never sent it back, whatever happens).
func (m *Book) Advertise(now time.Time, to addr.NodeID, limit int) []addr.NodeAddress {
	if limit <= 0 {
		return nil
	}
	out := make([]addr.NodeAddress, 0, min(limit, len(m.opts.SelfAddresses)+len(m.peers)))
	for _, a := range m.opts.SelfAddresses {
		if len(out) == limit {
			return out
		}
		out = append(out, a)
	}
	m.settle()
	n := len(m.order)
	if n == 0 {
		return out
	}
	if m.opts.RandomAdvertise {
		return m.sample(out, to, limit, now)
	}
	requester := m.peers[to]
	if requester != nil && requester.state < stateConnected {
		// Only a connected peer has a walk; a dial may still fail.
		requester = nil
	}
	want := limit - len(out)
	if want <= 0 {
		return out
	}
	var c walk.Cursor
	var toBit uint64
	if requester != nil {
		c, toBit = requester.adv, requester.tellBit
	}
	ok := func(p *peerInfo) bool {
		_, ok := m.advertisableTo(p, to, toBit, now)
		return ok
	}
	m.server.Next(&c, m.order, m.selfKey, walk.Key(to), m.seq, want, ok, m.opts.Rand.Uint64, func(p *peerInfo) {
		a, _ := m.advertisableTo(p, to, toBit, now)
		out = append(out, a)
	})
	if requester != nil {
		requester.adv = c
	}
	return out
}

// WalkStartOf returns where peer id's walk for us begins in our order
// (see RankOf): its first answer is the run of its book just after it.
func (m *Book) WalkStartOf(id addr.NodeID) uint64 { return walk.Start(walk.Key(id), m.selfKey) }

// WalkKey and Seq make an entry a walk.Entry.
func (p *peerInfo) WalkKey() uint64 { return p.key }
func (p *peerInfo) Seq() uint64     { return p.seq }

// sample fills out with an independent random sample of the book, as
// Tendermint v0.35 does. The caller holds the lock and settled the order.
func (m *Book) sample(out []addr.NodeAddress, to addr.NodeID, limit int, now time.Time) []addr.NodeAddress {
	n := len(m.order)
	// Floyd's algorithm: k distinct indices of n, uniformly, in O(k).
	k := min(n, limit-len(out)+2) // +2: room for to and one unusable entry
	chosen := make(map[int]struct{}, k)
	picks := make([]int, 0, k)
	for j := n - k; j < n; j++ {
		t := m.opts.Rand.IntN(j + 1)
		if _, dup := chosen[t]; dup {
			t = j
		}
		chosen[t] = struct{}{}
		picks = append(picks, t)
	}
	m.opts.Rand.Shuffle(len(picks), func(i, j int) { picks[i], picks[j] = picks[j], picks[i] })
	for _, i := range picks {
		if len(out) == limit {
			break
		}
		// Tendermint's sample: what to told us may come back.
		if a, ok := m.advertisableTo(m.order[i], to, 0, now); ok {
			out = append(out, a)
		}
	}
	return out
}

// advertisableTo returns the address of p worth sharing with requester
// to, whose tellBit is toBit (0 for none), if any: never one that to told
// us of.
func (m *Book) advertisableTo(p *peerInfo, to addr.NodeID, toBit uint64, now time.Time) (addr.NodeAddress, bool) {
	if p.id == to || p.src == to || p.private || p.score <= m.opts.EvictScore || len(p.addrs) == 0 {
		return addr.NodeAddress{}, false
	}
	if !p.brokeAt.IsZero() && now.Sub(p.brokeAt) < m.opts.MaxRetryTime {
		// It broke the protocol with us lately: we do not dial it (see
		// Errored), and do not send others to it either.
		return addr.NodeAddress{}, false
	}
	// The address that has worked, else the one failing least; one that
	// keeps failing is not passed on.
	best := p.addrs[0]
	for _, ai := range p.addrs[1:] {
		if (ai.everWorked && !best.everWorked) || (ai.everWorked == best.everWorked && ai.failures < best.failures) {
			best = ai
		}
	}
	if (best.failures >= 2 && !best.everWorked) || best.toldBy&toBit != 0 {
		// Failing, or to told us of it.
		return addr.NodeAddress{}, false
	}
	return best.addr, true
}

// tellBitOf returns src's tellBit, giving it one if its connection is up
// and a bit is free; 0 if not. The caller holds the lock.
func (m *Book) tellBitOf(src addr.NodeID) uint64 {
	p := m.peers[src]
	if src == "" || p == nil || p.state < stateConnected {
		return 0 // a peer we are still dialling has told us nothing
	}
	if p.tellBit != 0 || m.tellBits == math.MaxUint64 {
		return p.tellBit
	}
	free := ^(m.tellBits | m.staleBits)
	if free == 0 {
		m.sweepStaleBits()
		free = ^m.tellBits
	}
	p.tellBit = free & -free // the lowest free bit
	m.tellBits |= p.tellBit
	return p.tellBit
}

// dropTellBit frees p's tellBit as its connection closes: what it told us
// is forgotten (a peer may lose its book when it restarts). The bit stays
// on addresses, matching nobody's, until every bit has been used and
// sweepStaleBits clears the freed ones in one pass over the book, not one
// pass per disconnect. The caller holds the lock.
func (m *Book) dropTellBit(p *peerInfo) {
	m.tellBits &^= p.tellBit
	m.staleBits |= p.tellBit
	p.tellBit = 0
}

// sweepStaleBits clears the freed tell bits from every address, so they
// can be given again. The caller holds the lock.
func (m *Book) sweepStaleBits() {
	for _, q := range m.peers {
		for _, ai := range q.addrs {
			ai.toldBy &^= m.staleBits
		}
	}
	m.staleBits = 0
}

// ToldShare returns how much of our book connected peer id has had from us
// on this connection: the share of our order its walk has covered, 1 once
// the lap is done (see Advertise); 0 for a peer that has not asked, and
// always 0 with RandomAdvertise (a sample keeps no walk). Its answers to us
// leave all of that out (see AddFrom).
func (m *Book) ToldShare(id addr.NodeID) float64 {
	p := m.peers[id]
	if p == nil {
		return 0
	}
	return p.adv.Share()
}

// RankOf returns where id stands in our own advertise order: the order in
// which every node walks its book for us. A requester can tell from the
// ranks of the entries a peer sent where that peer's walk stands.
func (m *Book) RankOf(id addr.NodeID) uint64 { return walk.Rank(walk.Key(id), m.selfKey) }

// KnownInRank counts the peers of the book whose rank in our own order is
// in the circular range (after, after+span].
func (m *Book) KnownInRank(after, span uint64) int {
	m.mergeRanks()
	count := func(lo, hi uint64) int { // ranks in [lo, hi]
		i, _ := slices.BinarySearch(m.ranks, lo)
		j, found := slices.BinarySearch(m.ranks, hi)
		if found {
			j++
		}
		return j - i
	}
	lo := after + 1
	hi := after + span
	if span == 0 {
		return 0
	}
	if hi >= lo {
		return count(lo, hi)
	}
	return count(lo, math.MaxUint64) + count(0, hi)
}

// mergeRanks merges the fresh ranks into the sorted index: a sort of the
// few fresh ones and one pass, not a sort of the book. The caller holds the
// lock.
func (m *Book) mergeRanks() {
	if len(m.freshRanks) == 0 {
		return
	}
	slices.Sort(m.freshRanks)
	n, f := len(m.ranks), len(m.freshRanks)
	m.ranks = slices.Grow(m.ranks, f)[:n+f]
	// Merge from the back, in place.
	i, j := n-1, f-1
	for k := n + f - 1; j >= 0; k-- {
		if i >= 0 && m.ranks[i] > m.freshRanks[j] {
			m.ranks[k] = m.ranks[i]
			i--
		} else {
			m.ranks[k] = m.freshRanks[j]
			j--
		}
	}
	m.freshRanks = m.freshRanks[:0]
}

// dropRank removes one occurrence of r from the rank index. The caller
// holds the lock.
func (m *Book) dropRank(r uint64) {
	if i := slices.Index(m.freshRanks, r); i >= 0 {
		m.freshRanks = slices.Delete(m.freshRanks, i, i+1)
		return
	}
	if i, ok := slices.BinarySearch(m.ranks, r); ok {
		m.ranks = slices.Delete(m.ranks, i, i+1)
	}
}

// PeerRatio returns stored peers / MaxPeers, between 0 and 1.
func (m *Book) PeerRatio() float64 {
	return float64(len(m.peers)) / float64(m.opts.MaxPeers)
}

// Len returns how many peers the book holds.
func (m *Book) Len() int {
	return len(m.peers)
}

// Has reports whether the book holds id.
func (m *Book) Has(id addr.NodeID) bool {
	_, ok := m.peers[id]
	return ok
}

// Addresses returns the stored addresses of id.
func (m *Book) Addresses(id addr.NodeID) []addr.NodeAddress {
	p := m.peers[id]
	if p == nil {
		return nil
	}
	out := make([]addr.NodeAddress, len(p.addrs))
	for i, ai := range p.addrs {
		out[i] = ai.addr
	}
	return out
}

// Known returns the IDs of every peer in the book, sorted.
func (m *Book) Known() []addr.NodeID {
	ids := make([]addr.NodeID, 0, len(m.peers))
	for id := range m.peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Connected returns the IDs of the ready (Up) peers, sorted.
func (m *Book) Connected() []addr.NodeID {
	var ids []addr.NodeID
	for id, p := range m.peers {
		if p.state == stateReady {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Score returns the score of id, and whether it is known.
func (m *Book) Score(id addr.NodeID) (int, bool) {
	p := m.peers[id]
	if p == nil {
		return 0, false
	}
	return p.score, true
}

// IsConnected reports whether id is dialing, connected or ready.
func (m *Book) IsConnected(id addr.NodeID) bool {
	p := m.peers[id]
	return p != nil && p.connected()
}

// CrowdedInbound reports whether id dialled us from a public network
// group another connected peer is in already, or one that broke the
// protocol in the last MaxRetryTime: the Core does not ask such a peer
// first.
func (m *Book) CrowdedInbound(now time.Time, id addr.NodeID) bool {
	p := m.peers[id]
	if p == nil || !p.connected() || p.outbound {
		return false
	}
	g := peerGroup(p)
	if !addr.Diverse(g) {
		return false
	}
	if m.slots.BrokeLately(g, now) {
		return true
	}
	for _, q := range m.peers {
		if q != p && q.connected() && peerGroup(q) == g {
			return true
		}
	}
	return false
}

// TryDialNext returns an address to dial now and marks its peer dialing,
// or false when connections are at MaxConnected or no address is due. A
// persistent peer due for a dial while connections are full displaces an
// inbound peer, which EvictNext then names for the transport to close.
// Persistent peers come first; among the others it looks at a few
// eligible peers from a random place in the book and takes the best
// scored. The caller must report the outcome with Dialed or DialFailed.
func (m *Book) TryDialNext(now time.Time) (addr.NodeAddress, bool) {
	a, ok, _ := m.tryDialNext(now)
	return a, ok
}

// NextDialTime returns when an address now waiting out its back-off comes
// due (zero if none is waiting or one is due now). Event-driven callers,
// like the simulator, use it to schedule their next TryDialNext.
func (m *Book) NextDialTime(now time.Time) time.Time {
	_, _, next := m.pickDial(now)
	return next
}

func (m *Book) tryDialNext(now time.Time) (addr.NodeAddress, bool, time.Time) {
	p, ai, next := m.pickDial(now)
	if p == nil {
		return addr.NodeAddress{}, false, next
	}
	if m.slots.Full() {
		// A persistent peer displaces an inbound one (see pickDial).
		v := m.inboundVictim(addr.NoGroup)
		v.evicting = true
		m.slots.Queue(v.id)
	}
	p.state = stateDialing
	p.dialing = ai
	m.slots.Open()
	m.markOutbound(p, ai.addr)
	m.unrank(p)
	return ai.addr, true, time.Time{}
}

// persistentLeaving reports whether a persistent peer is queued for
// eviction. The caller holds the lock.
func (m *Book) persistentLeaving() bool {
	return slices.ContainsFunc(m.slots.Queued(), func(id addr.NodeID) bool { return m.peers[id].persistent })
}

// pickDial chooses a peer and address to dial. The caller holds the lock.
func (m *Book) pickDial(now time.Time) (*peerInfo, *addrInfo, time.Time) {
	full := m.slots.Full()
	if full && len(m.persistent) == 0 {
		return nil, nil, time.Time{}
	}
	var next time.Time
	due := func(p *peerInfo) *addrInfo {
		if p.connected() || p.removed || p.score <= m.opts.EvictScore {
			return nil
		}
		var best *addrInfo
		for _, ai := range p.addrs {
			if ai.retryAt.After(now) {
				if next.IsZero() || ai.retryAt.Before(next) {
					next = ai.retryAt
				}
				continue
			}
			if best == nil || ai.failures < best.failures {
				best = ai
			}
		}
		return best
	}
	// Persistent peers are dialled whatever MaxOutbound says, and when
	// connections are full they displace an inbound peer.
	for _, id := range m.persistent {
		if p := m.peers[id]; p != nil {
			if ai := due(p); ai != nil && (!full || m.inboundVictim(addr.NoGroup) != nil) {
				return p, ai, time.Time{}
			}
		}
	}
	if full || m.slots.OutboundFull() || m.persistentLeaving() {
		// A persistent peer queued to go (the last resort when every
		// other connection was persistent too) frees its slot for what
		// needed it, not for an ordinary dial.
		return nil, nil, next
	}
	m.settle()
	n := len(m.order)
	if n == 0 {
		return nil, nil, next
	}
	i := lifecycle.Pick(n, m.opts.Rand.IntN(n), func(i int) (int, bool) {
		p := m.order[i]
		ai := due(p)
		if ai == nil || m.slots.GroupFull(addr.Group(ai.addr)) {
			return 0, false
		}
		return p.score, true
	})
	if i < 0 {
		return nil, nil, next
	}
	p := m.order[i]
	return p, due(p), time.Time{}
}

// markOutbound counts p as dialled by us, at address a.
func (m *Book) markOutbound(p *peerInfo, a addr.NodeAddress) {
	p.outbound = true
	p.outGroup = m.slots.Dialled(addr.Group(a), p.persistent)
}

// clearOutbound takes back what markOutbound counted.
func (m *Book) clearOutbound(p *peerInfo) {
	if !p.outbound {
		return
	}
	p.outbound = false
	m.slots.Undialled(p.outGroup)
}

// Dialed records that dialling a succeeded. It fails with errs.ErrTooManyPeers
// if that would exceed MaxConnected (the caller should hang up), and
// errs.ErrSelfAddress if the peer turned out to be us.
func (m *Book) Dialed(now time.Time, a addr.NodeAddress) error {
	if a.NodeID == m.self {
		return errs.ErrSelfAddress
	}
	p := m.peers[a.NodeID]
	if p == nil {
		// Dialled outside TryDialNext: adopt it, if Add would.
		if err := m.CheckAddress(a); err != nil {
			return err
		}
		if len(m.peers) >= m.opts.MaxPeers {
			if err := m.makeRoom(); err != nil {
				return err
			}
		}
		p = m.insert(a.NodeID, &addrInfo{addr: a})
	}
	switch p.state {
	case stateDialing:
	case stateIdle:
		if m.slots.AtCapacity() {
			return errs.ErrTooManyPeers
		}
		m.slots.Open()
		m.markOutbound(p, a)
		m.unrank(p)
	default:
		// It dialled us while we dialled it, and its connection won:
		// the transport closes ours without counting a failure.
		return fmt.Errorf("%w: %s", errs.ErrDuplicateConnection, a.NodeID)
	}
	p.state = stateConnected
	p.connectedAt = now
	ai := p.dialing
	if ai == nil || ai.addr != a {
		ai = nil
		for _, x := range p.addrs {
			if x.addr == a {
				ai = x
			}
		}
	}
	p.dialing = nil
	if ai != nil {
		ai.failures = 0
		ai.retryAt = time.Time{}
		ai.everWorked = true
		p.proven = true
		ai.lastSuccess = now
	}
	m.setScore(p, p.score+scoreConnected)
	m.sparePersistent() // as in accepted
	return nil
}

// DialFailed records a failed dial of a: its back-off doubles, and a
// non-persistent address that failed MaxDialFailures times in a row is
// dropped (with its peer, if that was the peer's last address).
func (m *Book) DialFailed(now time.Time, a addr.NodeAddress) {
	p := m.peers[a.NodeID]
	if p == nil || (p.connected() && p.state != stateDialing) {
		// Unknown, or connected the other way: not the address's fault.
		return
	}
	if p.state == stateDialing {
		p.state = stateIdle
		p.dialing = nil
		m.slots.Close()
		m.clearOutbound(p)
		// As on Disconnected: an idle peer is not queued for eviction,
		// and must be queued again if it reconnects and falls again.
		p.evicting = false
		m.slots.Unqueue(p.id)
		m.rank(p)
		m.keepPersistent() // the room this dial needed is not needed now
	}
	m.setScore(p, p.score-scoreDialFailed)
	for i, ai := range p.addrs {
		if ai.addr != a {
			continue
		}
		ai.failures++
		ai.retryAt = now.Add(m.slots.Backoff(ai.failures))
		if !p.persistent && ai.failures >= m.opts.MaxDialFailures {
			p.addrs = slices.Delete(p.addrs, i, i+1)
			if len(p.addrs) == 0 && !p.connected() {
				m.remove(p)
			}
		}
		break
	}
	m.wake = true
}

// Accepted records an inbound connection from id. When connections are at
// MaxConnected it displaces the lowest-scored, youngest inbound peer,
// which EvictNext then returns for the transport to disconnect; outbound
// and persistent peers are never displaced. It fails with errs.ErrTooManyPeers
// when there is no inbound peer to displace or id is already connected,
// and errs.ErrSelfAddress for ourselves.
//
// announced are the addresses the peer gave for itself in the handshake
// (CometBFT's NodeInfo.ListenAddr, for example). They are added to the book
// as Add would, so a node learns where to reach the peers that dial it;
// entries for another node ID, or that Add refuses, are ignored.
func (m *Book) Accepted(now time.Time, id addr.NodeID, announced ...addr.NodeAddress) error {
	g := addr.NoGroup
	for _, a := range announced {
		if a.NodeID == id {
			g = addr.Group(a)
			break
		}
	}
	if err := m.accepted(now, id, g); err != nil {
		return err
	}
	for _, a := range announced {
		if a.NodeID == id {
			_, _ = m.Add(a)
		}
	}
	return nil
}

// accepted admits the connection; g is the group of the address id
// announced, addr.NoGroup if none.
func (m *Book) accepted(now time.Time, id addr.NodeID, g uint64) error {
	if id == m.self {
		return errs.ErrSelfAddress
	}
	if err := id.Validate(); err != nil {
		return err
	}
	p := m.peers[id]
	if p != nil && p.state == stateDialing {
		// We are dialling it as it dials us: its connection is here, so
		// it wins, and our dial will end with errs.ErrDuplicateConnection.
		p.state = stateConnected
		p.dialing = nil
		m.clearOutbound(p)
		p.connectedAt = now
		m.setScore(p, p.score+scoreConnected)
		m.sparePersistent()
		return nil
	}
	if p != nil && p.connected() {
		return fmt.Errorf("%w: %s", errs.ErrDuplicateConnection, id)
	}
	var victim *peerInfo
	if m.slots.Full() {
		// Full: displace an inbound peer, as Bitcoin does, so that a
		// newcomer that knows only this node can still join.
		if g == addr.NoGroup && p != nil {
			g = peerGroup(p)
		}
		if addr.Diverse(g) && m.slots.BrokeLately(g, now) {
			// Its subnet lately broke the protocol: it displaces nobody.
			return errs.ErrTooManyPeers
		}
		victim = m.inboundVictim(g)
		if victim == nil {
			return errs.ErrTooManyPeers
		}
	}
	if p == nil {
		if len(m.peers) >= m.opts.MaxPeers {
			// A connected peer always has an entry: if nothing can make
			// room, the book runs over MaxPeers (by at most MaxConnected)
			// until the peer disconnects.
			_ = m.makeRoom()
		}
		p = m.insert(id, nil)
	}
	if victim != nil {
		// Only once the newcomer is sure to be admitted.
		victim.evicting = true
		m.slots.Queue(victim.id)
	}
	m.unrank(p)
	p.state = stateConnected
	p.connectedAt = now
	m.slots.Open()
	m.setScore(p, p.score+scoreConnected)
	// A persistent peer queued to go when every other connection was
	// persistent stays: this one goes in its place.
	m.sparePersistent()
	return nil
}

// lowestConnected returns the lowest-scored connected, non-persistent
// peer not already queued for eviction, inbound or outbound. The caller
// holds the lock.
func (m *Book) lowestConnected() *peerInfo {
	var v *peerInfo
	for _, p := range m.peers {
		if !p.connected() || p.persistent || p.evicting || p.state == stateDialing {
			continue
		}
		if v == nil || p.score < v.score || (p.score == v.score && p.id > v.id) {
			v = p
		}
	}
	return v
}

// inboundVictim returns the inbound, non-persistent connected peer to
// displace for a newcomer of group newcomer (addr.NoGroup for a dial), by
// lifecycle.Victim's rule; nil if there is none.
func (m *Book) inboundVictim(newcomer uint64) *peerInfo {
	var cands []lifecycle.Inbound
	var peers []*peerInfo
	for _, p := range m.peers {
		if !p.connected() || p.outbound || p.persistent || p.evicting {
			continue
		}
		cands = append(cands, lifecycle.Inbound{ID: p.id, Group: peerGroup(p), Score: p.score, ConnectedAt: p.connectedAt})
		peers = append(peers, p)
	}
	if v := lifecycle.Victim(cands, newcomer); v >= 0 {
		return peers[v]
	}
	return nil
}

// Ready records that the connection to id finished its handshake and
// publishes event.PeerStatusUp with the peer's capabilities.
func (m *Book) Ready(id addr.NodeID, caps event.PeerCaps) {
	p := m.peers[id]
	if p == nil || p.state != stateConnected {
		return
	}
	p.state = stateReady
	p.caps = caps
	m.updates = append(m.updates, event.PeerUpdate{NodeID: id, Status: event.PeerStatusUp, Caps: caps})
}

// Disconnected records that the connection to id closed, publishing
// event.PeerStatusDown if it had been Up. A peer with no dialable address is
// then forgotten.
func (m *Book) Disconnected(now time.Time, id addr.NodeID) {
	p := m.peers[id]
	if p == nil || p.state == stateIdle {
		return
	}
	if p.state == stateReady {
		m.updates = append(m.updates, event.PeerUpdate{NodeID: id, Status: event.PeerStatusDown})
	}
	p.state = stateIdle
	p.dialing = nil
	p.adv = walk.Cursor{}
	m.dropTellBit(p)
	m.slots.Close()
	// Do not redial at once a peer that just dropped us (or that we
	// dropped): it may have displaced us, and redialling straight away
	// would churn connections.
	cool := now.Add(m.opts.MinRetryTime)
	for _, ai := range p.addrs {
		if ai.retryAt.Before(cool) {
			ai.retryAt = cool
		}
	}
	m.clearOutbound(p)
	p.evicting = false
	m.slots.Unqueue(id)
	m.keepPersistent()
	if len(p.addrs) == 0 && !p.persistent {
		m.remove(p)
	} else {
		m.rank(p)
	}
	for len(m.peers) > m.opts.MaxPeers && m.makeRoom() == nil {
		// Back under capacity after a connection that ran over it.
	}
	m.wake = true
}

// Errored lowers the score of the peer named by a event.PeerError (more when it
// is fatal). A connected peer that falls to EvictScore is queued for
// EvictNext. After a fatal error (a broken protocol) a non-persistent
// peer is not dialled again for MaxRetryTime, and no peer is sent its
// address for as long: a flooder that dials us and breaks the protocol at
// once is not spread further by us.
func (m *Book) Errored(now time.Time, pe event.PeerError) {
	p := m.peers[pe.NodeID]
	if p == nil {
		return
	}
	step := scoreErrored
	if pe.Fatal {
		step = scoreErroredFatal
		p.brokeAt = now
		m.slots.Broke(peerGroup(p), now)
		if !p.persistent {
			// It broke the protocol: not dialled again for the longest
			// back-off, whatever its score.
			hold := now.Add(m.opts.MaxRetryTime)
			for _, ai := range p.addrs {
				if ai.retryAt.Before(hold) {
					ai.retryAt = hold
				}
			}
		}
	}
	m.setScore(p, p.score-step)
	if p.connected() && !p.persistent && p.score <= m.opts.EvictScore && !p.evicting {
		p.evicting = true
		m.slots.Queue(p.id)
	}
}

// Good raises the score of id, for a useful response.
func (m *Book) Good(id addr.NodeID) {
	if p := m.peers[id]; p != nil {
		m.setScore(p, p.score+scoreGood)
	}
}

// EvictNext returns a connected peer whose score fell to EvictScore, for
// the transport to disconnect.
func (m *Book) EvictNext() (addr.NodeID, bool) {
	return m.slots.Next()
}

// spareable returns a connected peer that may go in a persistent one's
// place: an inbound one (see inboundVictim), else the lowest scored. The
// caller holds the lock.
func (m *Book) spareable() *peerInfo {
	if v := m.inboundVictim(addr.NoGroup); v != nil {
		return v
	}
	return m.lowestConnected()
}

// keepPersistent takes persistent peers off the eviction queue once they
// need not go: a connection closed, or a dial failed, since they were
// queued to make room. The caller holds the lock.
func (m *Book) keepPersistent() {
	for i := len(m.slots.Queued()) - 1; i >= 0 && !m.slots.Full(); i-- {
		if p := m.peers[m.slots.Queued()[i]]; p != nil && p.persistent {
			p.evicting = false
			m.slots.Drop(i)
		}
	}
}

// sparePersistent puts, in the eviction queue, another connected peer in
// place of each persistent one queued when every other connection was
// persistent, if there is one now. The caller holds the lock.
func (m *Book) sparePersistent() {
	for i, id := range m.slots.Queued() {
		p := m.peers[id]
		if p == nil || !p.persistent {
			continue
		}
		v := m.spareable()
		if v == nil {
			return
		}
		p.evicting = false
		v.evicting = true
		m.slots.Replace(i, v.id)
	}
}

// evictHeap orders idle, non-persistent peers by rank: lowest score first,
// then the oldest.
type evictHeap []*peerInfo

func (h evictHeap) Len() int           { return len(h) }
func (h evictHeap) Less(i, j int) bool { return evictsFirst(h[i], h[j]) }

// evictsFirst orders entries for eviction: unproven before proven, then
// the lowest score, then the oldest.
func evictsFirst(a, b *peerInfo) bool {
	if a.proven != b.proven {
		return !a.proven
	}
	if a.score != b.score {
		return a.score < b.score
	}
	return a.seq < b.seq
}
func (h evictHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex = i
	h[j].heapIndex = j
}
func (h *evictHeap) Push(x any) {
	p := x.(*peerInfo)
	p.heapIndex = len(*h)
	*h = append(*h, p)
}
func (h *evictHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	p.heapIndex = -1
	*h = old[:len(old)-1]
	return p
}
