// Package lifecycle holds the rules of a node's connections: how many it
// keeps and dials (slots), how long it waits before dialling an address
// again (back-off, after a failed dial or a peer's hang-up), which known
// address it dials next, which inbound peer a newcomer displaces when
// every slot is taken, and which subnets lately broke the protocol. The
// address book keeps each peer's state and asks
// these rules; they keep only the counts.
//
// Invariants (checked by the book's Check): Active is the peers dialing
// or connected; Outbound those of them we dialled; the per-group outbound
// counts are the outbound peers of public IP groups, none above
// MaxOutboundPerGroup by our own dialling; every queued peer is connected.
package lifecycle

import (
	"slices"
	"time"

	"github.com/pexnet/pex/internal/addr"
)

// Limits are the connection limits and back-off bounds.
type Limits struct {
	MaxConnected        int // dialing and connected, inbound and outbound
	MaxOutbound         int // of which we dialled
	MaxOutboundPerGroup int // dialled into one public IP group; -1: no limit
	MinRetryTime        time.Duration
	MaxRetryTime        time.Duration
}

// Slots counts connections against Limits, queues connected peers to be
// disconnected (EvictNext), and remembers which public groups lately
// broke the protocol. Not safe for concurrent use.
type Slots struct {
	l         Limits
	active    int
	outbound  int
	outGroups map[uint64]int
	queue     []addr.NodeID
	broke     map[uint64]time.Time
	visiting  int // visitors admitted and not yet queued to go
}

// NewSlots returns empty slots under l.
func NewSlots(l Limits) *Slots {
	return &Slots{l: l, outGroups: make(map[uint64]int), broke: make(map[uint64]time.Time)}
}

// Active is how many peers are dialing or connected; Outbound how many of
// them we dialled.
func (s *Slots) Active() int   { return s.active }
func (s *Slots) Outbound() int { return s.outbound }

// Open takes a slot for a connection or a dial; Close gives it back.
func (s *Slots) Open()  { s.active++ }
func (s *Slots) Close() { s.active-- }

// Full reports whether every slot is taken, not counting the peers queued
// to go and visitors.
func (s *Slots) Full() bool { return s.staying() >= s.l.MaxConnected }

// Over reports whether the connections, not counting those queued to go
// and visitors, are more than MaxConnected.
func (s *Slots) Over() bool { return s.staying() > s.l.MaxConnected }

func (s *Slots) staying() int { return s.active - len(s.queue) - s.visiting }

// Visitors. When every slot is taken, a newcomer displaces an inbound
// peer (see Victim); if that peer is itself new and we have not answered
// it yet (see FirstAnswerGrace), it stays, beside the slots, as a
// visitor until it has had one answer, and then goes, as a seed treats
// every peer. A node dialled by many newcomers at once (a bootstrap node
// in a cold start) thus answers each of them once instead of displacing
// each for the next before it could answer. At most MaxVisitors stay at
// once; past that, the displaced go at once, unanswered, as before.
//
// Linger makes a connected peer a visitor; Leave queues a visitor to go
// (it was answered, or its grace ran out); Gone is a visitor's connection
// closed before it was queued.
func (s *Slots) Linger()              { s.visiting++ }
func (s *Slots) Leave(id addr.NodeID) { s.visiting--; s.Queue(id) }
func (s *Slots) Gone()                { s.visiting-- }

// Visiting is how many visitors are admitted and not yet queued to go.
func (s *Slots) Visiting() int { return s.visiting }

// MaxVisitors is how many displaced peers may wait for their answer at
// once: 4 x MaxConnected. Each waits at most FirstAnswerGrace, so this
// bounds what a stampede of newcomers, or an attacker dialling from many
// hosts, holds open beside the slots; the bootstrap node of the 1,000-node
// cold start peaks at about 160 with no bound (MaxConnected 50), and a
// lower one cuts the answers of the newcomers it came for: the worst node
// of `pexsim -seed 1` needs 29 requests with MaxConnected, 24 with this.
// TestVisitorsAreBounded (internal/book) guards the bound.
func (s *Slots) MaxVisitors() int { return max(1, 4*s.l.MaxConnected) }

// FirstAnswerGrace is how long a displaced peer that dialled us has to
// ask and be answered before it is closed unanswered: a pex or CometBFT
// node asks a peer it dialled as soon as the connection is up, so a few
// seconds cover its request and our answer on any path.
// TestVisitorLeavesAfterItsGrace (internal/book) guards it.
const FirstAnswerGrace = 5 * time.Second

// AtCapacity reports whether a connection we did not plan (a dial made
// outside the schedule) would exceed MaxConnected.
func (s *Slots) AtCapacity() bool { return s.active >= s.l.MaxConnected }

// OutboundFull reports whether we dial no one more: outbound slots are
// kept for our own dials, so that slots stay free for nodes that dial us.
func (s *Slots) OutboundFull() bool { return s.outbound >= s.l.MaxOutbound }

// Dialled counts an outbound connection to an address of group g, and
// reports the group it is counted in (addr.NoGroup if none: persistent
// peers, DNS names and unroutable addresses do not count against a
// group).
func (s *Slots) Dialled(g uint64, persistent bool) uint64 {
	s.outbound++
	if persistent || !addr.Diverse(g) {
		return addr.NoGroup
	}
	s.outGroups[g]++
	return g
}

// Undialled takes back what Dialled counted in group g.
func (s *Slots) Undialled(g uint64) {
	s.outbound--
	if g == addr.NoGroup {
		return
	}
	if s.outGroups[g]--; s.outGroups[g] <= 0 {
		delete(s.outGroups, g)
	}
}

// GroupFull reports whether we may not dial one more peer of group g: a
// subnet, however much of the book it holds, gets at most
// MaxOutboundPerGroup of our outbound connections.
func (s *Slots) GroupFull(g uint64) bool {
	return s.l.MaxOutboundPerGroup > 0 && addr.Diverse(g) && s.outGroups[g] >= s.l.MaxOutboundPerGroup
}

// OutGroups returns the outbound count per group, for checks.
func (s *Slots) OutGroups() map[uint64]int { return s.outGroups }

// Queue puts id in the eviction queue; Unqueue takes it out; Next takes
// the first out for the transport to disconnect.
func (s *Slots) Queue(id addr.NodeID) { s.queue = append(s.queue, id) }

func (s *Slots) Unqueue(id addr.NodeID) {
	s.queue = slices.DeleteFunc(s.queue, func(x addr.NodeID) bool { return x == id })
}

func (s *Slots) Next() (addr.NodeID, bool) {
	if len(s.queue) == 0 {
		return "", false
	}
	id := s.queue[0]
	s.queue = s.queue[1:]
	return id, true
}

// Queued returns the eviction queue, in order. Replace swaps its i-th
// entry for id; Drop removes its i-th entry.
func (s *Slots) Queued() []addr.NodeID         { return s.queue }
func (s *Slots) Replace(i int, id addr.NodeID) { s.queue[i] = id }
func (s *Slots) Drop(i int)                    { s.queue = slices.Delete(s.queue, i, i+1) }

// Broke records that a peer of public group g broke the protocol at now.
// The memory is bounded by MaxConnected groups: past it, all is forgotten.
func (s *Slots) Broke(g uint64, now time.Time) {
	if !addr.Diverse(g) {
		return
	}
	if len(s.broke) >= s.l.MaxConnected {
		clear(s.broke)
	}
	s.broke[g] = now
}

// BrokeLately reports whether a peer of group g broke the protocol within
// MaxRetryTime of now: a newcomer of that group displaces nobody, and an
// inbound peer of it is doubted.
func (s *Slots) BrokeLately(g uint64, now time.Time) bool {
	at, ok := s.broke[g]
	if ok && now.Sub(at) >= s.l.MaxRetryTime {
		delete(s.broke, g)
		ok = false
	}
	return ok
}

// Backoff is the wait after the n-th consecutive failed dial of an
// address: MinRetryTime doubled n-1 times, capped at MaxRetryTime (without
// overflowing).
func (s *Slots) Backoff(n int) time.Duration {
	return s.doubled(s.l.MinRetryTime, n)
}

// Hang-ups. A connection that ends within ShortConnection of being made,
// after the peer answered us and not at our asking, is the peer's
// hang-up: a CometBFT seed disconnects a peer once it has answered, so
// redialling it as soon as a slot is free only costs both sides. Each
// hang-up in a row doubles the wait before the next dial of the peer, from
// HangUpWait up to MaxRetryTime; a connection that lasts ShortConnection
// or longer starts the count again. A peer that closes before answering
// is not counted: it may have displaced us for a newcomer, as a full node
// does, and still knows what we need (counted, it took the golden cold
// runs' slowest node from 5 s to 12 s to learn 99% of the network).
//
// HangUpWait is 10 s so that a peer hanging up at once is dialled at most
// 3 times in the minute after the first (at 0, 10 and 30 s, then 70 s):
// TestSeedModeHangUps (cometbft/) guards it against a stock CometBFT seed,
// TestHangUpBackoff (internal/book) the schedule. ShortConnection is a
// minute: far above the second a seed takes to answer and close, and
// below the life of a connection that was of use; TestHangUpBackoff
// guards where it falls.
const (
	HangUpWait      = 10 * time.Second
	ShortConnection = time.Minute
	// MaxHangUps bounds the count: past it the wait is MaxRetryTime for
	// any MaxRetryTime up to 3.8 days (10 s doubled 15 times).
	MaxHangUps = 16
)

// HangUpBackoff is the wait before dialling again a peer after its n-th
// hang-up in a row: HangUpWait (or MinRetryTime, if longer) doubled n-1
// times, capped at MaxRetryTime.
func (s *Slots) HangUpBackoff(n int) time.Duration {
	return s.doubled(max(HangUpWait, s.l.MinRetryTime), n)
}

// doubled is d doubled n-1 times, capped at MaxRetryTime (without
// overflowing).
func (s *Slots) doubled(d time.Duration, n int) time.Duration {
	for i := 1; i < n && d < s.l.MaxRetryTime; i++ {
		d *= 2
	}
	return min(d, s.l.MaxRetryTime)
}
