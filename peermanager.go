package pex

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/pexnet/pex/internal/book"
)

// PeerManagerOptions configures a PeerManager. The zero value of each
// field means its default.
type PeerManagerOptions struct {
	// SelfAddresses are our own advertised addresses: sent in every
	// response (that is how a node nobody knows becomes known) and never
	// stored or dialled, whatever ID they arrive with.
	SelfAddresses []NodeAddress
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
	// group (a public IPv4 /16 or IPv6 /32), so that a
	// subnet of sybils cannot take every outbound slot, however much of
	// the book it holds. Default max(1, MaxOutbound/5): 2 of 10. -1 lifts
	// it, for a network whose nodes all sit in one public subnet.
	// Persistent peers, DNS names and unroutable addresses do not count.
	MaxOutboundPerGroup int
	// MaxAddressesPerPeer bounds the addresses kept for one node ID.
	// Default 4.
	MaxAddressesPerPeer int
	// PersistentPeers are always kept, dialled first and retried forever.
	PersistentPeers []NodeAddress
	// PrivatePeers are never advertised to anyone.
	PrivatePeers []NodeID
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
	// Now is the clock; default time.Now. The simulator passes virtual time.
	Now func() time.Time
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

// book returns the options as the address book takes them.
func (o PeerManagerOptions) book() book.Options {
	return book.Options{
		SelfAddresses:       o.SelfAddresses,
		MaxPeers:            o.MaxPeers,
		MaxConnected:        o.MaxConnected,
		MaxOutbound:         o.MaxOutbound,
		MaxOutboundPerGroup: o.MaxOutboundPerGroup,
		MaxAddressesPerPeer: o.MaxAddressesPerPeer,
		PersistentPeers:     o.PersistentPeers,
		PrivatePeers:        o.PrivatePeers,
		Strict:              o.Strict,
		MinRetryTime:        o.MinRetryTime,
		MaxRetryTime:        o.MaxRetryTime,
		MaxDialFailures:     o.MaxDialFailures,
		EvictScore:          o.EvictScore,
		Rand:                o.Rand,
		RandomAdvertise:     o.RandomAdvertise,
		Logger:              o.Logger,
	}
}

// Score limits: persistent peers sit at MaxScore.
const (
	MaxScore = book.MaxScore
	MinScore = book.MinScore
)

// PeerManager is an address book plus the lifecycle of the connections
// made from it. It decides whom to dial (TryDialNext, DialNext) with
// per-address exponential back-off, tracks dialing, connected, ready and
// disconnected peers, caps connections, keeps scores, and publishes
// PeerUpdates to subscribers. Transports report what happens (Dialed,
// DialFailed, Accepted, Ready, Disconnected, Errored); the Reactor feeds
// it addresses and asks it what to share.
//
// All methods are safe for concurrent use; none blocks on I/O. One lock
// guards the book and the Reactor's decisions alike, held only for the
// bookkeeping itself, and one clock (PeerManagerOptions.Now) times both.
type PeerManager struct {
	mu       sync.Mutex
	b        *book.Book // guarded by mu
	now      func() time.Time
	subs     map[*PeerUpdates]struct{} // guarded by mu
	dialWake chan struct{}             // made by a waiting DialNext, closed when dialing may proceed; guarded by mu
}

// NewPeerManager returns an empty address book for the node self, holding
// the persistent peers of opts. Options that fail validation are an error
// wrapping ErrInvalidConfig; so are an invalid self ID (ErrInvalidNodeID
// too) and a self or persistent address that does not validate
// (ErrInvalidAddress too).
func NewPeerManager(self NodeID, opts PeerManagerOptions) (*PeerManager, error) {
	b, err := book.New(self, opts.book())
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &PeerManager{b: b, now: now, subs: make(map[*PeerUpdates]struct{})}, nil
}

// unlock publishes what the book did while m.mu was held (peer updates,
// dials made possible), then releases the lock.
func (m *PeerManager) unlock() {
	for _, u := range m.b.TakeUpdates() {
		m.broadcast(u)
	}
	if m.b.TakeWake() && m.dialWake != nil {
		close(m.dialWake)
		m.dialWake = nil
	}
	m.mu.Unlock()
}

// SelfID returns our own node ID.
func (m *PeerManager) SelfID() NodeID {
	m.mu.Lock()
	defer m.unlock()
	return m.b.SelfID()
}

// AddPersistent adds a (or marks its peer) persistent: kept whatever the
// book's capacity, dialled first and regardless of MaxOutbound, retried
// forever, at the top score. An operator uses it to add a peer at run time,
// for example to join two parts of a network. It refuses what CheckAddress
// refuses: an invalid address (ErrInvalidAddress), our own
// (ErrSelfAddress), an unroutable one in strict mode
// (ErrUnroutableAddress); a full book or network group does not refuse it.
func (m *PeerManager) AddPersistent(a NodeAddress) error {
	m.mu.Lock()
	defer m.unlock()
	return m.b.AddPersistent(a)
}

// SelfAddresses returns our own advertised addresses.
func (m *PeerManager) SelfAddresses() []NodeAddress {
	m.mu.Lock()
	defer m.unlock()
	return m.b.SelfAddresses()
}

// MaxPeers returns the capacity of the book.
func (m *PeerManager) MaxPeers() int {
	m.mu.Lock()
	defer m.unlock()
	return m.b.MaxPeers()
}

// CheckAddress tells whether Add would accept a's form: valid
// (ErrInvalidAddress), not ours (ErrSelfAddress), routable in strict mode
// (ErrUnroutableAddress). It does not look at the book.
func (m *PeerManager) CheckAddress(a NodeAddress) error {
	m.mu.Lock()
	defer m.unlock()
	return m.b.CheckAddress(a)
}

// Add stores an address and reports whether it was new to the book. It
// refuses invalid addresses (ErrInvalidAddress), our own (ErrSelfAddress),
// unroutable ones in strict mode (ErrUnroutableAddress), and, when the book is full and every stored peer outranks
// an unknown one, the address (ErrAddressBookFull). When full, the
// lowest-ranked idle, non-persistent peer makes room: never a connected or
// persistent one, and never one that has connected for one that has not.
// A new peer's entry counts against its network group, its source group
// and its bucket (DESIGN.md, "The caps"), with its own network group as its
// source; ErrNetworkGroupFull or ErrSourceGroupFull refuses it when one is
// full.
func (m *PeerManager) Add(a NodeAddress) (bool, error) {
	m.mu.Lock()
	defer m.unlock()
	return m.b.Add(a)
}

// AddFrom is Add for an address that peer src told us about. The book
// remembers the first source of each peer, and Advertise never sends an
// address back to the peer it came from (one we reached, or one another
// source group told us, does go back); nor, while src stays connected,
// an address src told us of (the one we keep, or a new one it adds): src
// knows it. A better address of the same peer is still sent to src. The
// entry counts against the network group of src (while src is connected,
// the group of the connection's observed remote address: see
// AcceptedFrom) and against its bucket, named by that group and the
// address's, so that one source group can hold at most half of the book,
// and one bucket 1/32 of it. The first dial of the address is charged to
// that group: a live node credits it, a dial that reaches another ID
// counts against it. It refuses what Add refuses:
// ErrInvalidAddress, ErrSelfAddress, ErrUnroutableAddress,
// ErrAddressBookFull, ErrNetworkGroupFull, and ErrSourceGroupFull when
// src's share (or its share of a's group) is full; and
// ErrDistrustedSource when src's group told us of addresses that failed
// far more often than they proved live (DialMismatch); and
// ErrAnotherNodesAddress when a peer connected to us proved another node
// ID at a's host and port. A node ID we have reached at an address takes
// no other address from gossip while that one works.
func (m *PeerManager) AddFrom(a NodeAddress, src NodeID) (bool, error) {
	m.mu.Lock()
	defer m.unlock()
	return m.b.AddFrom(a, src)
}

// Advertise returns at most limit addresses to send to peer to: our own
// advertised addresses first, then one address per known peer, never to's
// own, never a private peer's, never a peer at the bottom of the scores.
//
// The book is walked in an order specific to the requester (entries ranked
// by a mix of their ID's hash and the requester's, the same on every node)
// once round, from a place fixed for the pair; entries added behind the
// walk since the last answer (the news) have the room first in each
// answer (after the walk's run, which leads so the requester can read
// it), in laps drawn for the requester (once the walk is done, the newest
// first), so a connected peer is not sent the same address twice. The
// walk is forgotten on disconnect, and begins again at the same place.
// Because every node walks the same order for a requester, the requester
// can tell where each peer's walk stands and where a peer's first answer
// lies, and ask the peer whose next run it knows least of (DESIGN.md, "The
// walk"). An address a connected requester told
// us of (AddFrom) is left out of its walk and its news: it knows it. What
// each of up to 64 connected peers told us is a bit per address, forgotten
// when the peer disconnects (a peer may lose its book when it restarts;
// the first source of an entry is never sent it back, whatever happens).
func (m *PeerManager) Advertise(to NodeID, limit int) []NodeAddress {
	m.mu.Lock()
	defer m.unlock()
	return m.b.Advertise(m.now(), to, limit)
}

// PeerRatio returns stored peers / MaxPeers, between 0 and 1.
func (m *PeerManager) PeerRatio() float64 {
	m.mu.Lock()
	defer m.unlock()
	return m.b.PeerRatio()
}

// Len returns how many peers the book holds.
func (m *PeerManager) Len() int {
	m.mu.Lock()
	defer m.unlock()
	return m.b.Len()
}

// Has reports whether the book holds id.
func (m *PeerManager) Has(id NodeID) bool {
	m.mu.Lock()
	defer m.unlock()
	return m.b.Has(id)
}

// Addresses returns the stored addresses of id.
func (m *PeerManager) Addresses(id NodeID) []NodeAddress {
	m.mu.Lock()
	defer m.unlock()
	return m.b.Addresses(id)
}

// Known returns the IDs of every peer in the book, sorted.
func (m *PeerManager) Known() []NodeID {
	m.mu.Lock()
	defer m.unlock()
	return m.b.Known()
}

// Connected returns the IDs of the ready (Up) peers, sorted.
func (m *PeerManager) Connected() []NodeID {
	m.mu.Lock()
	defer m.unlock()
	return m.b.Connected()
}

// Score returns the score of id, and whether it is known. A score rises
// for a dial of ours that connected (not a feeler) and for Good, never for
// a peer dialling us, and falls on Errored.
func (m *PeerManager) Score(id NodeID) (int, bool) {
	m.mu.Lock()
	defer m.unlock()
	return m.b.Score(id)
}

// IsConnected reports whether id is dialing, connected or ready.
func (m *PeerManager) IsConnected(id NodeID) bool {
	m.mu.Lock()
	defer m.unlock()
	return m.b.IsConnected(id)
}

// TryDialNext returns an address to dial now and marks its peer dialing,
// or false when connections are at MaxConnected or no address is due. A
// persistent peer due for a dial while connections are full displaces an
// inbound peer, which EvictNext then names for the transport to close.
// Persistent peers come first; among the others it looks at a few
// eligible peers from a random place in the book and takes the best
// scored. While outbound slots are full it may return a feeler instead: a
// test of an address nobody has shown to work, which EvictNext names once
// Dialed (see Feeler). The caller must report the outcome with Dialed or
// DialFailed.
func (m *PeerManager) TryDialNext() (NodeAddress, bool) {
	m.mu.Lock()
	defer m.unlock()
	return m.b.TryDialNext(m.now())
}

// NextDialTime returns when an address now waiting out its back-off comes
// due (zero if none is waiting or one is due now). Event-driven callers,
// like the simulator, use it to schedule their next TryDialNext.
func (m *PeerManager) NextDialTime() time.Time {
	m.mu.Lock()
	defer m.unlock()
	return m.b.NextDialTime(m.now())
}

// Dialed records that dialling a succeeded. On an error the caller hangs
// up:
//   - ErrTooManyPeers: the connection would exceed MaxConnected;
//   - ErrDuplicateConnection: the peer is connected already, most often
//     because its own connection to us won a simultaneous dial (Accepted
//     came first); it counts nothing against the address;
//   - ErrSelfAddress: the peer turned out to be us.
//
// An address dialled outside TryDialNext and DialNext is adopted into the
// book, and refused as Add would refuse it: ErrInvalidAddress,
// ErrUnroutableAddress in strict mode, ErrAddressBookFull.
func (m *PeerManager) Dialed(a NodeAddress) error {
	m.mu.Lock()
	defer m.unlock()
	return m.b.Dialed(m.now(), a)
}

// DialFailed records a failed dial of a, where nobody proved a node ID
// (no answer, no handshake; see DialMismatch and DialRefused for the
// others). The failure counts against the address, not the node's score:
// its back-off doubles, and a non-persistent address that failed
// MaxDialFailures times in a row is dropped (with its peer, if that was
// the peer's last address); a gossiped address we never reached goes
// after two.
func (m *PeerManager) DialFailed(a NodeAddress) {
	m.mu.Lock()
	defer m.unlock()
	m.b.DialFailed(m.now(), a)
}

// DialMismatch records that dialling a reached a node with another ID
// (the handshake proved a different key): the address is dropped
// whatever its history and charged to the peer that told us of it, and
// a's node ID keeps its other addresses and its score. Call it instead of
// DialFailed when the transport can tell.
func (m *PeerManager) DialMismatch(a NodeAddress) {
	m.mu.Lock()
	defer m.unlock()
	m.b.DialMismatch(m.now(), a)
}

// DialRefused records that the node at a proved its ID in the handshake
// and then refused the connection (its slots were full, or it is already
// connected to us): the address is live and is kept, and retried on the
// back-off. Call it instead of DialFailed when the transport can tell;
// DialFailed means nobody proved an ID there, and a gossiped address we
// never reached is dropped after two such failures.
func (m *PeerManager) DialRefused(a NodeAddress) {
	m.mu.Lock()
	defer m.unlock()
	m.b.DialRefused(m.now(), a)
}

// Accepted records an inbound connection from id. When connections are at
// MaxConnected it displaces the lowest-scored, youngest inbound peer,
// which EvictNext then returns for the transport to disconnect; outbound
// and persistent peers are never displaced. A displaced peer that
// connected within a few seconds and has not had an answer from us yet
// stays, beside MaxConnected, until the Reactor has sent it one (or the
// few seconds pass): a node dialled by many newcomers at once answers
// each once. On an error the caller closes
// the connection:
//   - ErrTooManyPeers: connections are full and there is no inbound peer
//     to displace (or the newcomer's subnet lately broke the protocol);
//   - ErrDuplicateConnection: id is connected already;
//   - ErrSelfAddress: id is ours;
//   - ErrInvalidNodeID: id is not a valid node ID.
//
// If we are dialling id as it dials us, its connection wins: Accepted
// succeeds, and our dial's Dialed fails.
//
// announced are the addresses the peer gave for itself in the handshake
// (CometBFT's NodeInfo.ListenAddr, for example). They are added to the book
// as Add would, so a node learns where to reach the peers that dial it;
// entries for another node ID, or that Add refuses, are ignored.
//
// A transport that sees the connection's remote address calls
// AcceptedFrom instead: without it, the announced address stands for
// where the peer is, and the peer chooses that.
func (m *PeerManager) Accepted(id NodeID, announced ...NodeAddress) error {
	return m.AcceptedFrom(id, netip.AddrPort{}, announced...)
}

// AcceptedFrom is Accepted for a connection whose remote address the
// transport observed (a TCP connection's RemoteAddr). What the peer tells
// us counts against that address's network group, never against an
// address the peer announces about itself: a peer can claim any listen
// address, but not forge where its connection comes from (SPEC 6a). The
// same group decides whom a newcomer displaces when connections are full.
// An invalid remote means the transport cannot tell (see Accepted).
func (m *PeerManager) AcceptedFrom(id NodeID, remote netip.AddrPort, announced ...NodeAddress) error {
	m.mu.Lock()
	defer m.unlock()
	return m.b.AcceptedFrom(m.now(), id, remote, announced...)
}

// Ready records that the connection to id finished its handshake and
// publishes PeerStatusUp with the peer's capabilities.
func (m *PeerManager) Ready(id NodeID, caps PeerCaps) {
	m.mu.Lock()
	defer m.unlock()
	m.b.Ready(id, caps)
}

// Disconnected records that the connection to id closed, publishing
// PeerStatusDown if it had been Up. A peer with no dialable address is
// then forgotten.
func (m *PeerManager) Disconnected(id NodeID) {
	m.mu.Lock()
	defer m.unlock()
	m.b.Disconnected(m.now(), id)
}

// Errored lowers the score of the peer named by a PeerError (more when it
// is fatal). A connected peer that falls to EvictScore is queued for
// EvictNext. After a fatal error (a broken protocol) a non-persistent
// peer is not dialled again for MaxRetryTime, and no peer is sent its
// address for as long: a flooder that dials us and breaks the protocol at
// once is not spread further by us.
func (m *PeerManager) Errored(pe PeerError) {
	m.mu.Lock()
	defer m.unlock()
	m.b.Errored(m.now(), pe)
}

// Good raises the score of id, for a useful response.
func (m *PeerManager) Good(id NodeID) {
	m.mu.Lock()
	defer m.unlock()
	m.b.Good(id)
}

// EvictNext returns a connected peer to disconnect: one whose score fell
// to EvictScore, one displaced by a newcomer, a displaced one that has
// had its answer (see Accepted), or a feeler once made (see Feeler).
func (m *PeerManager) EvictNext() (NodeID, bool) {
	m.mu.Lock()
	defer m.unlock()
	return m.b.EvictNext()
}

// Feeler reports whether id is being dialled, or is connected, as a
// feeler: a test dial TryDialNext made while outbound slots were full, to
// an address in a network group of several that nobody has shown to
// work. It is closed once made (EvictNext names it), is never Up, and a
// transport need not start anything else on it.
func (m *PeerManager) Feeler(id NodeID) bool {
	m.mu.Lock()
	defer m.unlock()
	return m.b.Feeler(id)
}

// DialNext blocks until TryDialNext has an address for it, or ctx ends.
func (m *PeerManager) DialNext(ctx context.Context) (NodeAddress, error) {
	for {
		m.mu.Lock()
		if m.dialWake == nil {
			m.dialWake = make(chan struct{})
		}
		wake := m.dialWake
		now := m.now()
		a, ok := m.b.TryDialNext(now)
		var next time.Time
		if !ok {
			next = m.b.NextDialTime(now)
		}
		m.unlock()
		if ok {
			return a, nil
		}
		var timeout <-chan time.Time
		var timer *time.Timer
		if !next.IsZero() {
			timer = time.NewTimer(max(next.Sub(m.now()), time.Millisecond))
			timeout = timer.C
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-timeout:
		}
		if timer != nil {
			timer.Stop()
		}
		if err := ctx.Err(); err != nil {
			return NodeAddress{}, err
		}
	}
}

// wakeDialers releases DialNext callers. The caller holds the lock.
func (m *PeerManager) wakeDialers() {
	if m.dialWake != nil {
		close(m.dialWake)
		m.dialWake = nil
	}
}

// PeerUpdates is a subscription to a PeerManager's peer events. Events are
// queued without bound, so a slow reader never blocks the manager and
// never misses a Down.
type PeerUpdates struct {
	out    chan PeerUpdate
	signal chan struct{}
	mu     sync.Mutex
	queue  []PeerUpdate
}

// Updates returns the events, in order. It is closed when the
// subscription's context ends.
func (s *PeerUpdates) Updates() <-chan PeerUpdate { return s.out }

// Subscribe returns a subscription to peer updates that lasts until ctx
// ends. It first replays an Up for every peer already ready, so a
// subscriber starting late sees a consistent picture. It starts one
// goroutine, which exits when ctx ends.
func (m *PeerManager) Subscribe(ctx context.Context) *PeerUpdates {
	s := &PeerUpdates{out: make(chan PeerUpdate), signal: make(chan struct{}, 1)}
	m.mu.Lock()
	s.queue = m.b.ReadyUpdates()
	if len(s.queue) > 0 {
		// Before s is published: once it is in m.subs, a broadcast may
		// fill the one-slot signal (and touch the queue) at any time.
		s.signal <- struct{}{}
	}
	m.subs[s] = struct{}{}
	m.mu.Unlock()
	go func() {
		defer close(s.out)
		defer func() {
			m.mu.Lock()
			delete(m.subs, s)
			m.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.signal:
			}
			for {
				s.mu.Lock()
				if len(s.queue) == 0 {
					s.mu.Unlock()
					break
				}
				u := s.queue[0]
				s.queue = s.queue[1:]
				s.mu.Unlock()
				select {
				case s.out <- u:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return s
}

// broadcast queues u for every subscriber. The caller holds m.mu.
func (m *PeerManager) broadcast(u PeerUpdate) {
	for s := range m.subs {
		s.mu.Lock()
		s.queue = append(s.queue, u)
		if len(s.queue) > 2*(m.b.Options().MaxConnected+subQueueSlack) {
			s.queue = compactUpdates(s.queue)
		}
		s.mu.Unlock()
		select {
		case s.signal <- struct{}{}:
		default:
		}
	}
}

// subQueueSlack lets a subscription queue hold some history before it is
// compacted.
const subQueueSlack = 512

// compactUpdates reduces queued updates to their net effect per peer, so a
// subscriber that stopped reading costs memory bounded by the peers, not
// by the churn: a peer's updates alternate Up and Down, so they reduce to
// nothing, one Up, one Down, or a Down then the latest Up. Order between
// peers is kept by each peer's first update.
func compactUpdates(q []PeerUpdate) []PeerUpdate {
	type net struct {
		first, last PeerUpdate
	}
	seen := make(map[NodeID]*net, len(q))
	order := make([]NodeID, 0, len(q))
	for _, u := range q {
		if n := seen[u.NodeID]; n != nil {
			n.last = u
			continue
		}
		seen[u.NodeID] = &net{first: u, last: u}
		order = append(order, u.NodeID)
	}
	out := q[:0]
	for _, id := range order {
		n := seen[id]
		switch {
		case n.first.Status == PeerStatusUp && n.last.Status == PeerStatusDown:
			// Up ... Down: the subscriber never needs to hear of it.
		case n.first.Status == PeerStatusDown && n.last.Status == PeerStatusUp:
			out = append(out, n.first, n.last)
		default:
			out = append(out, n.last)
		}
	}
	clear(q[len(out):])
	return out
}
