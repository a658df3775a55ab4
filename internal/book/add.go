package book

import (
	"container/heap"
	"errors"
	"fmt"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/errs"
	"github.com/pexnet/pex/internal/event"
	"github.com/pexnet/pex/internal/walk"
)

// AddPersistent adds a (or marks its peer) persistent: kept whatever the
// book's capacity, dialled first and regardless of MaxOutbound, retried
// forever, at the top score. An operator uses it to add a peer at run time,
// for example to join two parts of a network.
func (m *Book) AddPersistent(a addr.NodeAddress) error {
	if _, err := m.Add(a); err != nil && !errors.Is(err, errs.ErrAddressBookFull) && !errors.Is(err, errs.ErrSourceGroupFull) && !errors.Is(err, errs.ErrNetworkGroupFull) {
		return err
	}
	p := m.peers.get(a.NodeID)
	if p == nil {
		// The book is full of peers that may not be dropped: a persistent
		// peer is kept over capacity.
		p = m.insert(a.NodeID, ptr(m.newAddrInfo(a, 0, addr.NoGroup)))
	}
	if !m.extra.any(p, func(ai *addrInfo) bool { return ai.addr().is(a) }) {
		// The operator's address replaces the one failing most, never the
		// one being dialled; with no other to replace it is kept over
		// MaxAddressesPerPeer.
		var worst *addrInfo
		for _, ai := range m.extra.all(p) {
			if ai != m.dialingAddr(p) && (worst == nil || ai.failures > worst.failures) {
				worst = ai
			}
		}
		if m.extra.num(p) < m.opts.MaxAddressesPerPeer || worst == nil {
			m.extra.add(p, ptr(m.newAddrInfo(a, 0, addr.NoGroup)))
		} else {
			*worst = m.newAddrInfo(a, 0, addr.NoGroup)
		}
	}
	if !p.persistent {
		p.persistent = true
		m.persistent = append(m.persistent, p.id)
		m.unplace(p) // configured, not gossip: outside the buckets
	}
	p.score = MaxScore
	if c := m.conns[p]; c != nil && c.feeler {
		// A persistent peer's connection stays, and its dial counts as
		// the operator's, not a test.
		c.feeler = false
		switch p.state {
		case stateDialing:
			// Now a dial of ours, it takes a slot, and another
			// connection may have to make room.
			m.feelers--
			m.slots.Open()
			m.markOutbound(p, c.dialing.addr().of(p.id))
			if m.slots.Over() {
				if v := m.spareable(); v != nil {
					m.queueEviction(v)
				}
			}
		case stateReady:
			m.updates = append(m.updates, event.PeerUpdate{NodeID: p.id, Status: event.PeerStatusUp, Caps: c.caps})
		}
	}
	if c := m.conns[p]; c != nil && c.visitor {
		// A persistent peer stays: it is no longer a visitor, and if it
		// was not yet leaving, it takes a slot.
		c.visitor = false
		if !p.is(evicting) {
			m.slots.Gone()
			if m.slots.Over() {
				if v := m.spareable(); v != nil {
					m.queueEviction(v)
				}
			}
		}
	}
	if p.is(evicting) {
		// It was queued for eviction: no longer. If its going was making
		// room for another connection, an inbound peer goes instead; with
		// none to spare it has to go after all.
		p.mark(evicting, false)
		m.slots.Unqueue(p.id)
		if m.slots.Over() {
			v := m.spareable()
			if v == nil {
				v = p // every other connection is persistent too
			}
			v.mark(evicting, true)
			m.slots.Queue(v.id)
		}
	}
	m.sparePersistent()
	m.unrank(p)
	m.wake = true
	return nil
}

// CheckAddress tells whether Add would accept a's form: valid, not ours,
// routable in strict mode. It does not look at the book.
func (m *Book) CheckAddress(a addr.NodeAddress) error {
	if err := a.Validate(); err != nil {
		return err
	}
	return m.checkValid(a)
}

// checkValid is CheckAddress for a valid address.
func (m *Book) checkValid(a addr.NodeAddress) error {
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
// address back to the peer it came from (one we reached, or one another
// source group told us, does go back); nor, while src stays connected,
// an address src told us of (the one we keep, or a new one it adds): src
// knows it. A better address of the same peer is still sent to src. The
// entry counts against the network group of src (the address we reached
// src at, or the one it announced) and against its bucket, named by that
// group and the address's, so that one source group can hold at most
// half of the book, and one bucket 1/32 of it (groups.go).
func (m *Book) AddFrom(a addr.NodeAddress, src addr.NodeID) (bool, error) {
	if err := a.Validate(); err != nil {
		return false, err
	}
	return m.addValid(a, src, ungrouped, walk.Key(a.NodeID))
}

// AddParsedFrom is AddFrom for an address a parser that accepts only what
// addr.NodeAddress.Validate accepts has made (addr.GroupedFromV1), and
// whose network group, addr.Group(a), and key in the walk's order,
// walk.Key(a.NodeID), it worked out as g and key: what AddFrom would
// check and work out again.
func (m *Book) AddParsedFrom(a addr.NodeAddress, src addr.NodeID, g, key uint64) (bool, error) {
	return m.addValid(a, src, g, key)
}

// ungrouped stands for a network group not worked out yet: no address
// has it (Group never returns it).
const ungrouped = addr.NoGroup

// addValid is AddFrom for a valid address, whose network group is g, or
// ungrouped, and whose node ID's walk.Key is key.
func (m *Book) addValid(a addr.NodeAddress, src addr.NodeID, g, key uint64) (bool, error) {
	if err := m.checkValid(a); err != nil {
		if errors.Is(err, errs.ErrUnroutableAddress) {
			m.logStrictOnce(a)
		}
		return false, err
	}
	if src != "" && src != a.NodeID && len(m.live) > 0 {
		// A peer connected from this host and port proved another ID
		// there: a dial would end in DialMismatch. Honest peers pass on
		// the spoofs they hold, so this is nobody's fault.
		if id, ok := m.live[endpointKey(a)]; ok && id != a.NodeID {
			return false, fmt.Errorf("%w: %s is %s", errs.ErrAnotherNodesAddress, a, id)
		}
	}
	// The source's entry (nil for none: no entry has the empty ID), looked
	// up once for its group, its slot and its tell bit.
	sp, sc := m.sourceEntry(src)
	sg := m.sourceGroup(src, sp, sc)
	p, h := m.peers.lookup(a.NodeID)
	if p != nil {
		for _, ai := range m.extra.all(p) {
			if ai.addr().is(a) {
				ai.toldBy |= m.tellBitOf(sp, sc)
				if sg != ai.srcGroup && src != "" {
					ai.kind |= vouchedBit
				}
				return false, nil
			}
		}
		if m.distrusted(sg) {
			return false, errDistrusted
		}
		if hearsay(a, src) && len(m.junkMarks) > 0 {
			if g == ungrouped {
				g = addr.Group(a)
			}
			if m.junkGroup(g) {
				return false, errJunkGroup
			}
		}
		if !p.persistent && m.extra.any(p, func(ai *addrInfo) bool { return ai.everWorked }) {
			// An address we reached proved the ID: nobody's gossip adds
			// another beside it (a spoof would be dialled when it fails
			// once, and advertised onward). A node that moved is learnt
			// anew once its old address has failed MaxDialFailures dials.
			return false, nil
		}
		if !p.is(placed) && !p.persistent {
			// An inbound peer's first address: placed like a new entry.
			sl := m.slotOf(a, g, src, sg)
			at, err := m.admit(sl, hearsay(a, src))
			if err != nil {
				return false, err
			}
			m.place(p, sl, at)
		}
		before := m.passedOn(p)
		if m.extra.num(p) >= m.opts.MaxAddressesPerPeer {
			if p.persistent {
				// Configured addresses are not gossip's to replace.
				return false, nil
			}
			worst := m.replaceable(p, a, g)
			if worst == nil {
				return false, nil
			}
			*worst = m.newAddrInfo(a, m.tellBitOf(sp, sc), sg)
		} else {
			m.extra.add(p, ptr(m.newAddrInfo(a, m.tellBitOf(sp, sc), sg)))
		}
		m.noteBest(p, before)
		if p.heapIndex >= 0 {
			heap.Fix(&m.evict, int(p.heapIndex)) // a new address: not failing
		}
		m.wake = true
		return true, nil
	}
	if m.distrusted(sg) {
		return false, errDistrusted
	}
	sl := m.slotOf(a, g, src, sg)
	at, err := m.admit(sl, hearsay(a, src))
	if err != nil && m.makeRoomInSource(sl, err) {
		at, err = m.admit(sl, hearsay(a, src))
	}
	if err != nil {
		return false, err
	}
	if m.peers.len() >= m.opts.MaxPeers {
		// The operator's address outranks what we hold; news competes
		// with what failed, and with hearsay of more crowded groups
		// (making room changes the load tables: at is stale, and place
		// looks the counts up again).
		if src == "" {
			err = m.makeRoom()
		} else {
			err = m.makeRoomForGossip(sl.group)
		}
		if err != nil {
			return false, err
		}
	}
	p = m.insertHashed(a.NodeID, h, key, ptr(m.newAddrInfo(a, m.tellBitOf(sp, sc), sg)))
	p.src = m.srcs.take(src)
	m.place(p, sl, at)
	m.trimCrowds()
	m.wake = true
	return true, nil
}

// replaceable returns the address of p, whose slots are full, that a new
// one, a of network group g (or ungrouped), takes the place of, nil if
// none: the one failing
// most, if it failed; else, if g is not crowded, one we never reached in
// a crowded group. Gossip that fills an ID's slots with addresses in an
// attacker's groups (spoofs) thus leaves room for the address in the
// node's own group, which honest nodes tell. Never the one being dialled.
// The caller holds the lock.
func (m *Book) replaceable(p *peerInfo, a addr.NodeAddress, g uint64) *addrInfo {
	dialing := m.dialingAddr(p)
	worst := m.extra.at(p, 0) // the first of those failing most
	for _, ai := range m.extra.all(p) {
		if ai.failures > worst.failures {
			worst = ai
		}
	}
	if worst.failures > 0 && worst != dialing {
		return worst
	}
	if g == ungrouped {
		g = addr.Group(a)
	}
	if m.crowded(g) {
		return nil
	}
	for _, ai := range m.extra.all(p) {
		if !ai.everWorked && ai != dialing && m.crowded(addr.Group(ai.addr().of(p.id))) {
			return ai
		}
	}
	return nil
}

// sourceEntry is m.peers.get(src) and its connection, m.conns of it
// (nil for none), remembered (lastSrc, lastConn): a response's entries
// all name its sender, whose entry is found again by comparing IDs, while
// it is in the book, and its connection with it, until a connection
// begins or ends (setConn, dropConn).
func (m *Book) sourceEntry(src addr.NodeID) (*peerInfo, *connInfo) {
	if p := m.lastSrc; p != nil && p.id == src && !p.is(removed) {
		return p, m.lastConn
	}
	p := m.peers.get(src)
	if p == nil {
		return nil, nil
	}
	m.lastSrc, m.lastConn = p, m.conns[p]
	return p, m.lastConn
}

// setConn makes c p's connection; dropConn forgets p's. Both forget the
// source sourceEntry remembers, with its connection.
func (m *Book) setConn(p *peerInfo, c *connInfo) {
	m.conns[p] = c
	m.lastSrc, m.lastConn = nil, nil
}

func (m *Book) dropConn(p *peerInfo) {
	if c := m.conns[p]; c != nil && c.live {
		m.forgetLive(p.id)
	}
	delete(m.conns, p)
	m.lastSrc, m.lastConn = nil, nil
}

// errDistrusted refuses what a distrusted source group tells (trust.go).
var errDistrusted = errs.ErrDistrustedSource

// errJunkGroup refuses hearsay about a group feelers found junk (feel.go),
// a new entry or another address of one we hold.
var errJunkGroup = fmt.Errorf("%w (feelers found nobody there)", errs.ErrNetworkGroupFull)

// sourceGroup is the network group src, whose entry is sp (nil if none)
// and connection sc (nil if none), counts in as a source (see
// peerInfo.group): addr.NoGroup for no source (the operator),
// addr.GroupUnknown for a source we do not know.
func (m *Book) sourceGroup(src addr.NodeID, sp *peerInfo, sc *connInfo) uint64 {
	if src == "" {
		return addr.NoGroup
	}
	if sp != nil {
		return m.groupOf(sp, sc)
	}
	return addr.GroupUnknown
}

// slot is where a gossiped entry counts: its source group, its bucket
// (address group and source group) and its network group.
type slot struct{ source, bucket, group uint64 }

// slotOf returns the slot for address a, whose network group is g (or
// ungrouped), learnt from src, whose group as a source is sg
// (sourceGroup): with no source, a counts as its own. The caller holds
// the lock.
func (m *Book) slotOf(a addr.NodeAddress, g uint64, src addr.NodeID, sg uint64) slot {
	if g == ungrouped {
		g = addr.Group(a)
	}
	if src == "" {
		sg = g
	}
	return slot{sg, m.bucketKey.bucket(g, sg), g}
}

// group is the network group p counts in as a source and as a
// connection: while connected, the group of the connection's observed
// remote address, never one the peer announced about itself when the
// transport saw the remote; else peerGroup.
func (m *Book) group(p *peerInfo) uint64 {
	if !p.connected() {
		return m.peerGroup(p)
	}
	return m.groupOf(p, m.conns[p])
}

// groupOf is group(p) for p whose connection is c (nil if none).
func (m *Book) groupOf(p *peerInfo, c *connInfo) uint64 {
	if c != nil && c.connGroup != addr.NoGroup {
		return c.connGroup
	}
	return m.peerGroup(p)
}

// peerGroup is the network group of the address we last reached p at,
// else of the first we learnt; addr.GroupUnknown if we hold none.
func (m *Book) peerGroup(p *peerInfo) uint64 {
	if m.extra.num(p) == 0 {
		return addr.GroupUnknown
	}
	best := m.extra.at(p, 0)
	for _, ai := range m.extra.all(p) {
		if ai.lastSuccess > best.lastSuccess {
			best = ai
		}
	}
	return addr.Group(best.addr().of(p.id))
}

// hearsay reports whether src's word about a is about another node: not
// the operator's (no source), and not a peer's own address.
func hearsay(a addr.NodeAddress, src addr.NodeID) bool {
	return src != "" && a.NodeID != src
}

// admit tells whether slot sl has room for one more entry: its network
// group first (a group at its cap is no news, whoever sends it; nor is
// hearsay about a crowded group), then its bucket and its source group.
// It returns where it found their counts, for place. The caller holds
// the lock.
func (m *Book) admit(sl slot, hearsay bool) (spots, error) {
	gl, gs := m.loads.find(sl.group)
	if n := int(gl.group); n >= m.groupCap {
		return spots{}, fmt.Errorf("%w (%d entries)", errs.ErrNetworkGroupFull, n)
	}
	if hearsay && m.crowdedAt(int(gl.group)) {
		return spots{}, fmt.Errorf("%w (%d entries, crowded)", errs.ErrNetworkGroupFull, gl.group)
	}
	if hearsay && m.junkGroup(sl.group) {
		return spots{}, errJunkGroup
	}
	bl, bs := m.bucketLoad.find(sl.bucket)
	if n := int(bl); n >= m.bucketCap {
		return spots{}, fmt.Errorf("%w (%d entries of its group from it)", errs.ErrSourceGroupFull, n)
	}
	sourceLoad, ss := gl.source, gs
	if sl.source != sl.group {
		var l groupLoad
		l, ss = m.loads.find(sl.source)
		sourceLoad = l.source
	}
	if n := int(sourceLoad); n >= m.sourceCap {
		return spots{}, fmt.Errorf("%w (%d entries from it)", errs.ErrSourceGroupFull, n)
	}
	return spots{ss, bs, gs}, nil
}

// spots are where admit found the counts of a slot's source group, bucket
// and network group.
type spots struct{ source, bucket, group spot }

// place counts p in slot sl, whose counts admit found at sp (if the
// tables have not changed since, they are not looked up again: the zero
// spots for none); unplace takes it out. The caller holds the lock.
func (m *Book) place(p *peerInfo, sl slot, sp spots) {
	p.slotSource, p.slotGroup = sl.source, sl.group
	p.mark(placed, true)
	m.loads.refAt(sl.source, sp.source).source++
	*m.bucketLoad.refAt(sl.bucket, sp.bucket)++
	l := m.loads.refAt(sl.group, sp.group)
	m.crowd.move(int(l.group), +1)
	l.group++
	p.crowdRank = uint8(min(l.group, 255))
}

func (m *Book) unplace(p *peerInfo) {
	if !p.is(placed) {
		return
	}
	p.mark(placed, false)
	sl := m.slotOfEntry(p)
	m.addLoad(sl.source, -1, 0)
	if n := m.bucketLoad.ref(sl.bucket); *n <= 1 {
		*n = 0
		m.bucketLoad.forget(sl.bucket)
	} else {
		*n--
	}
	m.crowd.move(m.groupLoad(sl.group), -1)
	m.addLoad(sl.group, 0, -1)
}

// groupLoad is a network group's load: how many entries count against it
// as a source group (source) and as their network group (group).
type groupLoad struct{ source, group int32 }

// sourceLoad is how many gossiped entries count against source group g.
func (m *Book) sourceLoad(g uint64) int { return int(m.loads.get(g).source) }

// groupLoad is how many gossiped entries network group g holds.
func (m *Book) groupLoad(g uint64) int { return int(m.loads.get(g).group) }

// addLoad adds source and group, not both zero, to g's load, forgetting
// g at zero.
func (m *Book) addLoad(g uint64, source, group int32) {
	l := m.loads.ref(g)
	l.source += source
	l.group += group
	if *l == (groupLoad{}) {
		m.loads.forget(g)
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
