package book

import (
	"cmp"
	"container/heap"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/errs"
	"github.com/pexnet/pex/internal/event"
	"github.com/pexnet/pex/internal/lifecycle"
)

// Inbound reports whether id is a connected peer that dialled us.
func (m *Book) Inbound(id addr.NodeID) bool {
	p := m.peers.get(id)
	return p != nil && p.connected() && !p.is(outbound)
}

// CrowdedInbound reports whether id dialled us from a public network
// group another connected peer is in already, or one that broke the
// protocol in the last MaxRetryTime: the Core does not ask such a peer
// first.
func (m *Book) CrowdedInbound(now time.Time, id addr.NodeID) bool {
	p := m.peers.get(id)
	if p == nil || !p.connected() || p.is(outbound) {
		return false
	}
	g := m.group(p)
	if !addr.Diverse(g) {
		return false
	}
	if m.slots.BrokeLately(g, now) {
		return true
	}
	for q := range m.conns {
		if q != p && q.connected() && m.group(q) == g {
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
// scored. While outbound slots are full it may return a feeler instead: a
// test of an address nobody has shown to work, which EvictNext names once
// Dialed (see Feeler). The caller must report the outcome with Dialed or
// DialFailed.
func (m *Book) TryDialNext(now time.Time) (addr.NodeAddress, bool) {
	a, ok, _ := m.tryDialNext(now)
	return a, ok
}

// NextDialTime returns when an address now waiting out its back-off comes
// due (zero if none is waiting or one is due now). Event-driven callers,
// like the simulator, use it to schedule their next TryDialNext.
// A visitor's grace running out counts as a time to come back: the
// visitor is then queued to go.
func (m *Book) NextDialTime(now time.Time) time.Time {
	_, _, next := m.pickDial(now)
	if next.IsZero() || next.After(now) {
		next = earliest(next, m.nextFeeler())
	}
	return earliest(next, m.sendVisitorsAway(now))
}

// earliest is the earlier of two times, the zero time standing for none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

func (m *Book) tryDialNext(now time.Time) (addr.NodeAddress, bool, time.Time) {
	visitorDue := m.sendVisitorsAway(now)
	p, ai, next := m.pickDial(now)
	next = earliest(next, visitorDue)
	if p == nil {
		m.rotate(now)
		at := m.stamp(now)
		m.forgetJunk(at)
		if !m.feelerDue(at) {
			return addr.NodeAddress{}, false, earliest(next, m.nextFeeler())
		}
		if p, ai = m.feeler(at); p == nil {
			return addr.NodeAddress{}, false, earliest(next, m.nextFeeler())
		}
		// A test dial beside the slots, closed once made: it takes a
		// slot only once connected, queued to go at once.
		p.state = stateDialing
		m.setConn(p, &connInfo{dialing: ai, feeler: true})
		m.feelers++
		m.unrank(p)
		a := ai.addr().of(p.id)
		m.conns[p].connGroup = addr.Group(a)
		return a, true, time.Time{}
	}
	if m.slots.Full() {
		// A persistent peer displaces an inbound one (see pickDial).
		v := m.inboundVictim(addr.NoGroup)
		v.mark(evicting, true)
		m.slots.Queue(v.id)
	}
	p.state = stateDialing
	m.setConn(p, &connInfo{dialing: ai})
	m.slots.Open()
	a := ai.addr().of(p.id)
	m.markOutbound(p, a)
	m.unrank(p)
	return a, true, time.Time{}
}

// persistentLeaving reports whether a persistent peer is queued for
// eviction. The caller holds the lock.
func (m *Book) persistentLeaving() bool {
	return slices.ContainsFunc(m.slots.Queued(), func(id addr.NodeID) bool { return m.peers.get(id).persistent })
}

// pickDial chooses a peer and address to dial. The caller holds the lock.
func (m *Book) pickDial(now time.Time) (*peerInfo, *addrInfo, time.Time) {
	full := m.slots.Full()
	if full && len(m.persistent) == 0 {
		return nil, nil, time.Time{}
	}
	var next stamp
	at := m.stamp(now)
	due := func(p *peerInfo) *addrInfo { return m.dueAddr(p, at, &next) }
	// Persistent peers are dialled whatever MaxOutbound says, and when
	// connections are full they displace an inbound peer.
	for _, id := range m.persistent {
		if p := m.peers.get(id); p != nil {
			if ai := due(p); ai != nil && (!full || m.inboundVictim(addr.NoGroup) != nil) {
				return p, ai, time.Time{}
			}
		}
	}
	if full || m.slots.OutboundFull() || m.persistentLeaving() {
		// A persistent peer queued to go (the last resort when every
		// other connection was persistent too) frees its slot for what
		// needed it, not for an ordinary dial.
		return nil, nil, m.time(next)
	}
	m.settle()
	n := len(m.order)
	if n == 0 {
		return nil, nil, m.time(next)
	}
	// Entries of crowded groups (caps.go) and of junk groups (feel.go)
	// are dialled only when no other is due: an attacker's many
	// addresses crowd its groups, and its junk marks them, so an
	// attacker-heavy book does not become attacker-only connections.
	start := m.opts.Rand.IntN(n)
	i := m.candidate(start, false, due)
	if i < 0 {
		i = m.candidate(start, true, due)
	}
	if i < 0 {
		return nil, nil, m.time(next)
	}
	p := m.order[i]
	return p, due(p), time.Time{}
}

// candidate picks an entry of the order to dial, from start on (see
// lifecycle.Pick), with due's address; of a crowded group, or at an
// address in a junk group, only if crowdedToo. -1 if none.
func (m *Book) candidate(start int, crowdedToo bool, due func(*peerInfo) *addrInfo) int {
	return lifecycle.Pick(len(m.order), start, func(i int) (int, bool) {
		p := m.order[i]
		ai := due(p)
		if ai == nil {
			return 0, false
		}
		g := addr.Group(ai.addr().of(p.id))
		if m.slots.GroupFull(g) || (!crowdedToo && (p.is(placed) && m.crowded(p.slotGroup) || m.junkGroup(g))) {
			return 0, false
		}
		return int(p.score), true
	})
}

// rotate, when outbound slots are full (or every slot is), closes one
// outbound connection to a crowded group (caps.go) or a junk group
// (feel.go) if an entry of another group is due to be dialled in its
// place: connections made while an attacker's groups crowded a young
// book give way as the book learns the honest network and as feelers
// find the attacker's junk beside them. With every slot taken, the dial
// takes the slot the closing connection frees (Full counts it gone),
// so peers that dial us do not keep us from replacing it. One at a
// time; persistent peers never. The caller holds the lock.
func (m *Book) rotate(now time.Time) {
	if !(m.slots.OutboundFull() || m.slots.Full()) || len(m.slots.Queued()) > 0 {
		return
	}
	// The outbound groups (a few) first: the book is scanned only when
	// one of them gives way.
	giving := false
	for g := range m.slots.OutGroups() {
		if giving = m.givesWay(g); giving {
			break
		}
	}
	if !giving {
		return
	}
	var v *peerInfo // the one connected longest, so the choice does not hang on map order
	for _, p := range m.peers.all() {
		if p.is(outbound) && p.state >= stateConnected && !p.persistent && m.conns[p].outGroup != addr.NoGroup && m.givesWay(m.conns[p].outGroup) &&
			(v == nil || m.conns[p].connectedAt < m.conns[v].connectedAt || (m.conns[p].connectedAt == m.conns[v].connectedAt && p.seq < v.seq)) {
			v = p
		}
	}
	if v == nil {
		return
	}
	at := m.stamp(now)
	due := func(p *peerInfo) *addrInfo { return m.dueAddr(p, at, nil) }
	m.settle()
	if len(m.order) == 0 || m.candidate(m.opts.Rand.IntN(len(m.order)), false, due) < 0 {
		return
	}
	v.mark(evicting, true)
	m.slots.Queue(v.id)
}

// givesWay reports whether an outbound connection to network group g
// gives way (rotate): g is crowded or junk.
func (m *Book) givesWay(g uint64) bool {
	return m.crowded(g) || m.junkGroup(g)
}

// dueAddr returns the address of p to dial at at, the one failing
// least, or nil if p may not be dialled then (connected, gone, scored
// out, or every address backing off); with next, it lowers *next to the
// earliest retry of the addresses backing off.
func (m *Book) dueAddr(p *peerInfo, at stamp, next *stamp) *addrInfo {
	if p.connected() || p.is(removed) || int(p.score) <= m.opts.EvictScore {
		return nil
	}
	var best *addrInfo
	for _, ai := range m.extra.all(p) {
		if ai.retryAt > at {
			if next != nil && (*next == 0 || ai.retryAt < *next) {
				*next = ai.retryAt
			}
			continue
		}
		if best == nil || ai.failures < best.failures {
			best = ai
		}
	}
	return best
}

// markOutbound counts p as dialled by us, at address a.
func (m *Book) markOutbound(p *peerInfo, a addr.NodeAddress) {
	p.mark(outbound, true)
	m.conns[p].connGroup = addr.Group(a)
	m.conns[p].outGroup = m.slots.Dialled(m.conns[p].connGroup, p.persistent)
}

// clearOutbound takes back what markOutbound counted.
func (m *Book) clearOutbound(p *peerInfo) {
	if !p.is(outbound) {
		return
	}
	p.mark(outbound, false)
	m.slots.Undialled(m.conns[p].outGroup)
}

// Dialed records that dialling a succeeded. It fails with errs.ErrTooManyPeers
// if that would exceed MaxConnected (the caller should hang up), and
// errs.ErrSelfAddress if the peer turned out to be us.
func (m *Book) Dialed(now time.Time, a addr.NodeAddress) error {
	if a.NodeID == m.self {
		return errs.ErrSelfAddress
	}
	p := m.peers.get(a.NodeID)
	if p == nil {
		// Dialled outside TryDialNext: adopt it, if Add would.
		if err := m.CheckAddress(a); err != nil {
			return err
		}
		if m.peers.len() >= m.opts.MaxPeers {
			if err := m.makeRoom(); err != nil {
				return err
			}
		}
		p = m.insert(a.NodeID, ptr(m.newAddrInfo(a, 0, addr.NoGroup)))
	}
	switch p.state {
	case stateDialing:
		if m.conns[p].feeler {
			m.slots.Open()
		}
	case stateIdle:
		if m.slots.AtCapacity() {
			return errs.ErrTooManyPeers
		}
		m.slots.Open()
		m.setConn(p, new(connInfo))
		m.markOutbound(p, a)
		m.unrank(p)
	default:
		// It dialled us while we dialled it, and its connection won:
		// the transport closes ours without counting a failure.
		return fmt.Errorf("%w: %s", errs.ErrDuplicateConnection, a.NodeID)
	}
	p.state = stateConnected
	m.connected(p, now)
	ai := m.conns[p].dialing
	if ai == nil || !ai.addr().is(a) {
		ai = nil
		for _, x := range m.extra.all(p) {
			if x.addr().is(a) {
				ai = x
			}
		}
	}
	m.conns[p].dialing = nil
	if ai != nil {
		before := m.passedOn(p)
		if !ai.everWorked {
			m.proved(ai)
		}
		ai.failures = 0
		ai.retryAt = 0
		ai.everWorked = true
		p.mark(proven, true)
		ai.lastSuccess = m.stamp(now)
		m.noteBest(p, before)
	}
	if !m.conns[p].feeler {
		// A feeler tests the address; it earns the node nothing.
		m.setScore(p, int(p.score)+scoreConnected)
	}
	m.sparePersistent() // as in accepted
	m.proveAt(p.id, a)
	if m.conns[p].feeler {
		m.feelers--
		m.queueEviction(p) // tested: it goes
	}
	return nil
}

// DialFailed records a failed dial of a. The failure counts against the
// address, not its node ID (someone may have announced a bad address for
// an honest node): its back-off doubles, and a non-persistent address
// that failed MaxDialFailures times in a row is dropped (with its peer,
// if that was the peer's last address); a gossiped address we have never
// reached is dropped at its junkTries-th. DialFailed means nobody proved
// an ID there (no answer, no handshake); a node that proved its ID and
// then refused the connection is DialRefused, one that proved another ID
// is DialMismatch.
func (m *Book) DialFailed(now time.Time, a addr.NodeAddress) {
	m.dialFailed(now, a, false)
}

// DialRefused records that the node at a proved its ID and then refused
// the connection (its slots were full, or it was already connected to
// us): the address is live, which credits its source, and it is retried
// on the same back-off as a failure, so a full node is not dialled again
// at once.
func (m *Book) DialRefused(now time.Time, a addr.NodeAddress) {
	if p := m.peers.get(a.NodeID); p != nil {
		before := m.passedOn(p)
		for _, ai := range m.extra.all(p) {
			if ai.addr().is(a) && !ai.everWorked {
				m.proved(ai)
				ai.everWorked = true
				p.mark(proven, true)
			}
		}
		m.noteBest(p, before)
	}
	m.dialFailed(now, a, false)
}

// DialMismatch records that dialling a reached a node with another ID
// (the handshake proved a different key): a is dropped whatever its
// history, and charged to the source that told us of it. Its node ID
// keeps its other addresses, and its score: the address lied, not the
// node.
func (m *Book) DialMismatch(now time.Time, a addr.NodeAddress) {
	m.dialFailed(now, a, true)
}

func (m *Book) dialFailed(now time.Time, a addr.NodeAddress, mismatch bool) {
	p := m.peers.get(a.NodeID)
	if p == nil || (p.connected() && p.state != stateDialing) {
		// Unknown, or connected the other way: not the address's fault.
		return
	}
	before := m.passedOn(p)
	felt, g := false, uint64(0)
	if p.state == stateDialing {
		felt, g = m.conns[p].feeler, m.conns[p].connGroup
		if felt {
			m.feelers--
		} else {
			m.slots.Close()
		}
		p.state = stateIdle
		m.clearOutbound(p)
		m.dropConn(p)
		// As on Disconnected: an idle peer is not queued for eviction,
		// and must be queued again if it reconnects and falls again.
		p.mark(evicting, false)
		m.slots.Unqueue(p.id)
		m.rank(p)
		m.keepPersistent() // the room this dial needed is not needed now
	}
	for i, ai := range m.extra.all(p) {
		if !ai.addr().is(a) {
			continue
		}
		ai.failures++
		ai.retryAt = m.stamp(now.Add(m.slots.Backoff(int(ai.failures))))
		if mismatch && !felt {
			// A feeler's find is no strike: feelers test groups of
			// several entries, where spoofs gather, and would charge
			// honest relays for the spoofs they pass on far beyond
			// their share.
			m.strike(ai)
		}
		gossip := !ai.everWorked && ai.srcGroup != addr.NoGroup
		junk := mismatch || (gossip && ai.failures >= junkTries)
		if gossip && !mismatch && ai.failures == junkTries {
			m.trustOf(ai.srcGroup).dead++
		}
		if !p.persistent && (junk || int(ai.failures) >= m.opts.MaxDialFailures) && !p.is(removed) {
			m.extra.delete(p, i)
			if m.extra.num(p) == 0 && !p.connected() {
				m.remove(p)
			}
		}
		break
	}
	if felt {
		m.feltNothing(m.stamp(now), g)
	}
	m.noteBest(p, before)
	if !p.is(removed) && m.baseless(p) {
		m.remove(p)
	} else if p.heapIndex >= 0 {
		heap.Fix(&m.evict, int(p.heapIndex)) // it may be failing now
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
	return m.AcceptedFrom(now, id, netip.AddrPort{}, announced...)
}

// AcceptedFrom is Accepted for a connection whose remote address the
// transport observed: the peer's gossip counts against that address's
// network group (SPEC 6a: where gossip came from is what we saw), and so
// does the connection, when a newcomer displaces an inbound peer. With an
// invalid remote (a transport that cannot tell, like the in-memory
// network) the group of the address the peer announced stands in.
func (m *Book) AcceptedFrom(now time.Time, id addr.NodeID, remote netip.AddrPort, announced ...addr.NodeAddress) error {
	g := addr.RemoteGroup(remote)
	for _, a := range announced {
		if g == addr.NoGroup && a.NodeID == id {
			g = addr.Group(a)
			break
		}
	}
	if err := m.accepted(now, id, g); err != nil {
		return err
	}
	for _, a := range announced {
		if a.NodeID == id {
			// The peer is the source of its claim, so the entry counts
			// against the group its connection came from: a host that
			// comes back under new IDs claiming new subnets places no
			// more than that group's share.
			seen := observedHost(a, remote)
			_, _ = m.AddFrom(seen, id)
			if ip, ok := seen.IP(); ok && remote.IsValid() && ip.Unmap() == remote.Addr().Unmap() {
				m.forgetOthersAt(seen)
				m.proveAt(id, seen)
			}
		}
	}
	return nil
}

// forgetOthersAt drops a, the host a connected peer came from with the
// port it announced, from the entries of other node IDs that we never
// reached: the host now answers as a's ID, so a dial there would end in
// DialMismatch, which drops such an address (here without charging its
// source, which may have told the truth when it told it). A host that
// comes back under a new ID leaves no hearsay of its old ones behind;
// an address we reached keeps its ID until its own dials say otherwise.
// Only the peer's observed IP is evidence, so nothing at another host is
// touched. It reads the whole book: no index maps a host to the entries
// that name it (it would cost memory on every address). The caller holds
// the lock.
func (m *Book) forgetOthersAt(a addr.NodeAddress) {
	var stale []*peerInfo
	for _, p := range m.peers.all() {
		if p.id == a.NodeID || p.connected() || p.persistent || p.is(proven) {
			continue
		}
		if m.extra.any(p, func(ai *addrInfo) bool { return ai.addr().is(a) }) {
			stale = append(stale, p)
		}
	}
	for _, p := range stale {
		for i, ai := range m.extra.all(p) {
			if ai.addr().is(a) {
				m.extra.delete(p, i)
				break
			}
		}
		if m.extra.num(p) == 0 || m.baseless(p) {
			m.remove(p)
		} else if p.heapIndex >= 0 {
			heap.Fix(&m.evict, int(p.heapIndex))
		}
	}
	if len(stale) > 0 {
		m.wake = true
	}
}

// proveAt records that connected peer id proved its ID at a's host and
// port (see Book.live), while this connection lasts. The caller holds the
// lock.
func (m *Book) proveAt(id addr.NodeID, a addr.NodeAddress) {
	p := m.peers.get(id)
	if p == nil || m.conns[p] == nil || a.Hostname == "" {
		return
	}
	if m.conns[p].live {
		m.forgetLive(id)
	}
	e := endpointKey(a)
	if old, ok := m.live[e]; ok {
		// Another ID proved itself there before (a host that came back
		// under a new ID): the newest word holds.
		if q := m.peers.get(old); q != nil && m.conns[q] != nil {
			m.conns[q].live = false
		}
	}
	m.conns[p].live = true
	m.live[e] = id
}

// forgetLive drops id's key from Book.live: a scan of at most one key per
// connected peer, when a connection that proved one ends.
func (m *Book) forgetLive(id addr.NodeID) {
	maps.DeleteFunc(m.live, func(_ endpoint, v addr.NodeID) bool { return v == id })
}

// observedHost is the announced address a with the host we saw the
// connection come from, when both are public IPs and differ: a peer may
// claim any listen address, but where it connects from it cannot forge,
// so what we store of it is a host we know is there (its port as
// announced). A host that comes back under a new ID then leaves behind an
// address where the handshake shows the new ID (DialMismatch), not junk
// in someone else's subnet. Names, unroutable addresses (loopback tests,
// private networks, where one host may dial from another of its IPs) and
// transports that cannot tell are left as announced.
func observedHost(a addr.NodeAddress, remote netip.AddrPort) addr.NodeAddress {
	ip, ok := a.IP()
	if !ok || !remote.IsValid() {
		return a
	}
	seen := remote.Addr().Unmap()
	if ip.Unmap() == seen || !addr.IsRoutableIP(ip) || !addr.IsRoutableIP(seen) {
		return a
	}
	b, err := addr.NodeAddressFromIP(a.NodeID, seen, a.Port)
	if err != nil {
		return a
	}
	b.Protocol = a.Protocol
	return b
}

// accepted admits the connection; g is the group of its observed remote
// address (or of the one id announced), addr.NoGroup if none.
func (m *Book) accepted(now time.Time, id addr.NodeID, g uint64) error {
	if id == m.self {
		return errs.ErrSelfAddress
	}
	if err := id.Validate(); err != nil {
		return err
	}
	p := m.peers.get(id)
	if p != nil && p.state == stateDialing && m.conns[p].feeler {
		// It dials us as we test its address: an inbound peer like any
		// other, and the test is off (our dial will end with
		// errs.ErrDuplicateConnection, which costs the address nothing).
		m.feelers--
		p.state = stateIdle
		m.dropConn(p)
		m.rank(p)
	}
	if p != nil && p.state == stateDialing {
		// We are dialling it as it dials us: its connection is here, so
		// it wins, and our dial will end with errs.ErrDuplicateConnection.
		p.state = stateConnected
		m.conns[p].dialing = nil
		m.clearOutbound(p)
		m.conns[p].connGroup = g
		m.connected(p, now)
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
			g = m.group(p)
		}
		if addr.Diverse(g) && m.slots.BrokeLately(g, now) {
			// Its subnet lately broke the protocol: it displaces nobody.
			return errs.ErrTooManyPeers
		}
		m.sendVisitorsAway(now)
		victim = m.inboundVictim(g)
		if victim == nil {
			return errs.ErrTooManyPeers
		}
	}
	if p == nil {
		if m.peers.len() >= m.opts.MaxPeers {
			// A connected peer always has an entry: if no entry that
			// failed can make room, the book runs over MaxPeers (by at
			// most MaxConnected) until the peer disconnects.
			_ = m.makeRoomForGossip(g)
		}
		p = m.insert(id, nil)
	}
	switch {
	case victim == nil:
	case m.waitsForAnswer(victim, now) && m.slots.Visiting() < m.slots.MaxVisitors():
		// It has not had its answer yet: it stays for it, as a visitor.
		m.conns[victim].visitor = true
		m.slots.Linger()
	default:
		// Only once the newcomer is sure to be admitted.
		victim.mark(evicting, true)
		m.slots.Queue(victim.id)
	}
	m.unrank(p)
	p.state = stateConnected
	m.setConn(p, &connInfo{connGroup: g})
	m.connected(p, now)
	m.slots.Open()
	// A persistent peer queued to go when every other connection was
	// persistent stays: this one goes in its place.
	m.sparePersistent()
	return nil
}

// waitsForAnswer reports whether p, connected, is an inbound peer not
// yet answered within lifecycle.FirstAnswerGrace of connecting: displaced,
// it stays for its answer (see lifecycle.Slots.Linger).
func (m *Book) waitsForAnswer(p *peerInfo, now time.Time) bool {
	c := m.conns[p]
	return !c.served && now.Sub(m.time(c.connectedAt)) < lifecycle.FirstAnswerGrace
}

// Served records that we answered a request of the connected peer id; a
// visitor is then queued to go (EvictNext): transports drain EvictNext
// after each Send, and close gracefully, so the answer leaves first.
func (m *Book) Served(id addr.NodeID) {
	p := m.peers.get(id)
	if p == nil || !p.connected() {
		return
	}
	m.conns[p].served = true
	if m.conns[p].visitor && !p.is(evicting) {
		m.queueEviction(p)
	}
}

// queueEviction marks connected p to go and queues it for EvictNext; a
// visitor leaves the visitors' count. The caller holds the lock.
func (m *Book) queueEviction(p *peerInfo) {
	p.mark(evicting, true)
	if m.conns[p].visitor {
		m.slots.Leave(p.id)
		return
	}
	m.slots.Queue(p.id)
}

// Visitor reports whether id is connected as a visitor: a transport
// closing it for EvictNext lets the answer it was sent go first.
func (m *Book) Visitor(id addr.NodeID) bool {
	p := m.peers.get(id)
	return p != nil && p.connected() && m.conns[p].visitor
}

// sendVisitorsAway queues the visitors that did not ask within
// lifecycle.FirstAnswerGrace to go; it returns when the next one's grace
// runs out (zero if none).
func (m *Book) sendVisitorsAway(now time.Time) time.Time {
	if m.slots.Visiting() == 0 {
		return time.Time{}
	}
	var next time.Time
	var gone []*peerInfo
	for p, c := range m.conns {
		if !c.visitor || p.is(evicting) {
			continue
		}
		due := m.time(c.connectedAt).Add(lifecycle.FirstAnswerGrace)
		if !now.Before(due) {
			gone = append(gone, p)
		} else if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	// In the order they came, whatever the map's.
	slices.SortFunc(gone, func(a, b *peerInfo) int {
		return cmp.Or(cmp.Compare(m.conns[a].connectedAt, m.conns[b].connectedAt), cmp.Compare(a.id, b.id))
	})
	for _, p := range gone {
		m.queueEviction(p)
	}
	return next
}

// lowestConnected returns the lowest-scored connected, non-persistent
// peer not already queued for eviction, inbound or outbound. The caller
// holds the lock.
func (m *Book) lowestConnected() *peerInfo {
	var v *peerInfo
	for _, p := range m.peers.all() {
		if !p.connected() || p.persistent || p.is(evicting) || p.state == stateDialing || m.conns[p].visitor {
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
// lifecycle.Victim's rule; nil if there is none. It reads the
// connections, not the book (Victim's choice does not depend on their
// order).
func (m *Book) inboundVictim(newcomer uint64) *peerInfo {
	var cands []lifecycle.Inbound
	var peers []*peerInfo
	for p, c := range m.conns {
		if !p.connected() || p.is(outbound) || p.persistent || p.is(evicting) || c.visitor || c.feeler {
			continue
		}
		cands = append(cands, lifecycle.Inbound{ID: p.id, Group: m.group(p), Score: int(p.score), ConnectedAt: m.time(c.connectedAt)})
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
	p := m.peers.get(id)
	if p == nil || p.state != stateConnected {
		return
	}
	p.state = stateReady
	m.conns[p].caps = caps
	if m.conns[p].feeler {
		return // closed once made: nobody is to ask it
	}
	m.updates = append(m.updates, event.PeerUpdate{NodeID: id, Status: event.PeerStatusUp, Caps: caps})
}

// Disconnected records that the connection to id closed, publishing
// event.PeerStatusDown if it had been Up. A peer with no dialable address is
// then forgotten.
//
// The peer is not dialled again for MinRetryTime or, if it hung up, for
// lifecycle.HangUpBackoff of its hang-ups in a row. A hang-up is a
// connection that ended within lifecycle.ShortConnection of being made,
// after the peer answered us (Answered), and that we had not queued for
// eviction: a peer that closes soon after answering (a CometBFT seed
// does) is redialled on a growing back-off, not as soon as a slot is
// free. One that closes before answering may have displaced us for a
// newcomer, as a full node does: we may still need what it knows, so it
// waits only MinRetryTime.
func (m *Book) Disconnected(now time.Time, id addr.NodeID) {
	p := m.peers.get(id)
	if p == nil || p.state == stateIdle {
		return
	}
	hungUp := false
	switch {
	case p.is(evicting) || p.state == stateDialing:
		// We asked for it (EvictNext), or it never connected: not the
		// peer's hang-up.
	case now.Sub(m.time(m.conns[p].connectedAt)) >= lifecycle.ShortConnection:
		p.hangUps = 0
	case m.conns[p].answered:
		hungUp = true
	default:
		// Its answer may yet be read (Answered).
		m.setStamp(m.closedShort, p, m.stamp(now))
	}
	if p.state == stateReady && !m.conns[p].feeler {
		m.updates = append(m.updates, event.PeerUpdate{NodeID: id, Status: event.PeerStatusDown})
	}
	if c := m.conns[p]; c != nil && c.visitor && !p.is(evicting) {
		m.slots.Gone()
	}
	if p.state == stateDialing && m.conns[p].feeler {
		m.feelers--
	} else {
		m.slots.Close()
	}
	p.state = stateIdle
	m.dropTellBit(p)
	// Do not redial at once a peer that just dropped us (or that we
	// dropped): it may have displaced us, and redialling straight away
	// would churn connections.
	m.holdOff(p, m.stamp(now.Add(m.opts.MinRetryTime)))
	if hungUp {
		m.hangUp(p, now)
	}
	m.clearOutbound(p)
	m.dropConn(p)
	p.mark(evicting, false)
	m.slots.Unqueue(id)
	m.keepPersistent()
	if (m.extra.num(p) == 0 && !p.persistent) || m.baseless(p) {
		m.remove(p)
	} else {
		m.rank(p)
	}
	// Back under capacity after a connection that ran over it: failed
	// entries go first, then the peer itself if we never reached it
	// (it came in over capacity), then the lowest ranked.
	for m.peers.len() > m.opts.MaxPeers && m.makeRoomForGossip(addr.NoGroup) == nil {
	}
	if m.peers.len() > m.opts.MaxPeers && !p.is(removed) && !p.is(proven) && !p.persistent {
		m.remove(p)
	}
	for m.peers.len() > m.opts.MaxPeers && m.makeRoom() == nil {
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
	p := m.peers.get(pe.NodeID)
	if p == nil {
		return
	}
	step := scoreErrored
	if pe.Fatal {
		step = scoreErroredFatal
		m.setStamp(m.brokeAt, p, m.stamp(now))
		p.mark(broke, m.brokeAt[p] != 0)
		m.slots.Broke(m.group(p), now)
		if !p.persistent {
			// It broke the protocol: not dialled again for the longest
			// back-off, whatever its score.
			hold := m.stamp(now.Add(m.opts.MaxRetryTime))
			for _, ai := range m.extra.all(p) {
				if ai.retryAt < hold {
					ai.retryAt = hold
				}
			}
		}
	}
	m.setScore(p, int(p.score)-step)
	if p.state == stateDialing && m.conns[p].feeler {
		return // it holds no slot, and goes once connected (Dialed)
	}
	if p.connected() && !p.persistent && int(p.score) <= m.opts.EvictScore && !p.is(evicting) {
		m.queueEviction(p)
	}
}

// Answered records that the peer id answered a request of ours (see
// Disconnected). The answer of a peer that answers and hangs up at once
// may be read after the transport reported the close: then the hang-up
// counts from the close.
func (m *Book) Answered(id addr.NodeID) {
	p := m.peers.get(id)
	switch {
	case p == nil:
	case p.state >= stateConnected:
		m.conns[p].answered = true
	case p.state == stateIdle:
		if at, ok := m.closedShort[p]; ok {
			m.hangUp(p, m.time(at))
		}
	}
}

// setStamp sets p's time in the side table t, where no entry is the
// zero stamp (the zero time).
func (m *Book) setStamp(t map[*peerInfo]stamp, p *peerInfo, s stamp) {
	if s == 0 {
		delete(t, p)
		return
	}
	t[p] = s
}

// connected records that p's connection is up from now, its conn
// allocated.
func (m *Book) connected(p *peerInfo, now time.Time) {
	m.conns[p].connectedAt = m.stamp(now)
	p.mark(everConn, true)
	delete(m.closedShort, p)
}

// hangUp counts a hang-up of p at closed and holds off its next dial.
func (m *Book) hangUp(p *peerInfo, closed time.Time) {
	delete(m.closedShort, p)
	p.hangUps = min(p.hangUps+1, lifecycle.MaxHangUps)
	m.holdOff(p, m.stamp(closed.Add(m.slots.HangUpBackoff(int(p.hangUps)))))
}

// holdOff puts off every dial of p until at least t.
func (m *Book) holdOff(p *peerInfo, t stamp) {
	for _, ai := range m.extra.all(p) {
		if ai.retryAt < t {
			ai.retryAt = t
		}
	}
}

// Good raises the score of id, for a useful response.
func (m *Book) Good(id addr.NodeID) {
	if p := m.peers.get(id); p != nil {
		m.setScore(p, int(p.score)+scoreGood)
	}
}

// EvictNext returns a connected peer to disconnect: one whose score fell
// to EvictScore, one displaced by a newcomer, or a displaced one that has
// had its answer (see Accepted).
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
		if p := m.peers.get(m.slots.Queued()[i]); p != nil && p.persistent {
			p.mark(evicting, false)
			m.slots.Drop(i)
		}
	}
}

// sparePersistent puts, in the eviction queue, another connected peer in
// place of each persistent one queued when every other connection was
// persistent, if there is one now. The caller holds the lock.
func (m *Book) sparePersistent() {
	for i, id := range m.slots.Queued() {
		p := m.peers.get(id)
		if p == nil || !p.persistent {
			continue
		}
		v := m.spareable()
		if v == nil {
			return
		}
		p.mark(evicting, false)
		v.mark(evicting, true)
		m.slots.Replace(i, v.id)
	}
}
