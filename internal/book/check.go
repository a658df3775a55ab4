package book

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/lifecycle"
	"github.com/pexnet/pex/internal/walk"
)

// Check verifies every invariant of the book and returns the first that
// does not hold. Tests and fuzzers call it after each step; it costs time
// in proportion to the book, so nothing else does.
//
// The invariants:
//   - the table of entries finds each entry it holds by its ID;
//   - the book holds at most MaxPeers entries but for connected and
//     persistent ones, never
//     our own ID, each entry under its own ID with at most
//     MaxAddressesPerPeer addresses, all of that ID, and a score within
//     [MinScore, MaxScore] (MaxScore for a persistent peer), and at most
//     lifecycle.MaxHangUps hang-ups, none for an entry never connected,
//     an answer only on a connection, and an answer awaited from a
//     closed connection only while not connected again;
//   - the connection counts (active, outbound, outbound per group) are the
//     entries' states counted; a dialing entry has the address it dials;
//     every entry queued for eviction is connected and marked so; a
//     visitor is an inbound connection, and the visitors not queued to
//     go are counted, at most lifecycle.Slots.MaxVisitors;
//   - the eviction heap holds exactly the idle, non-persistent entries, in
//     heap order;
//   - the counts of network groups by load are the loads' (caps.go);
//   - the source-group, bucket and network-group loads are the placed
//     entries counted, each within its cap, and no persistent entry is
//     placed;
//   - each tell bit belongs to one connected peer, and addresses carry
//     only bits held or freed;
//   - a dialing entry is outbound, or a feeler: at most MaxOutbound
//     feelers are dialled at a time, and a feeler connection is queued
//     to go;
//   - no entry placed in a junk group after it was marked is hearsay we
//     never reached (feel.go);
//   - each live address names one connected peer, which proved its ID
//     there, and each such peer has one;
//   - the trust table holds at most MaxPeers source groups, and no idle
//     entry we never reached stands on distrusted sources alone;
//   - an entry has connection state (conn) exactly while dialing or
//     connected, dials an address only while dialing, and the side
//     tables (brokeAt, closedShort, the source refs) match the entries;
//   - the order, once settled, is the book sorted by ID, and the rank index
//     holds the entries' ranks.
func (m *Book) Check() error {
	if n, limit := m.peers.len(), m.opts.MaxPeers+m.slots.Active()+len(m.persistent); n > limit {
		return fmt.Errorf("book holds %d entries, limit %d with %d connected and %d persistent", n, limit, m.slots.Active(), len(m.persistent))
	}
	if m.peers.get(m.self) != nil {
		return errors.New("book holds our own ID")
	}
	active, dialled, ranked, visiting := 0, 0, 0, 0
	for id, p := range m.peers.all() {
		if err := m.checkEntry(p); err != nil {
			return fmt.Errorf("entry %s: %w", id, err)
		}
		if id != p.id {
			return fmt.Errorf("entry %s stored under %s", p.id, id)
		}
		if m.peers.get(id) != p {
			return fmt.Errorf("entry %s held but not found by its ID", id)
		}
		if p.connected() && (p.state != stateDialing || !m.conns[p].feeler) {
			active++ // a feeler takes a slot once connected
		}
		if p.is(outbound) {
			dialled++
		}
		if c := m.conns[p]; c != nil && c.visitor {
			if p.is(outbound) || !p.connected() {
				return fmt.Errorf("visitor %s not an inbound connection", id)
			}
			if !p.is(evicting) {
				visiting++
			}
		}
		if p.heapIndex >= 0 {
			ranked++
		}
	}
	switch {
	case active != m.slots.Active():
		return fmt.Errorf("active count %d, counted %d", m.slots.Active(), active)
	case dialled != m.slots.Outbound():
		return fmt.Errorf("outbound count %d, counted %d", m.slots.Outbound(), dialled)
	case visiting != m.slots.Visiting() || visiting > m.slots.MaxVisitors():
		return fmt.Errorf("visitors count %d, counted %d, at most %d", m.slots.Visiting(), visiting, m.slots.MaxVisitors())
	case ranked != len(m.evict.es):
		return fmt.Errorf("eviction heap holds %d, %d entries ranked", len(m.evict.es), ranked)
	}
	for i := 1; i < len(m.evict.es); i++ {
		if m.evict.Less(i, (i-1)/2) {
			return fmt.Errorf("eviction heap out of order at %d", i)
		}
	}
	if p := m.lastSrc; p != nil && !p.is(removed) && m.lastConn != m.conns[p] {
		return fmt.Errorf("source %s remembered with another connection than its own", p.id)
	}
	for _, id := range m.slots.Queued() {
		if p := m.peers.get(id); p == nil || !p.connected() || !p.is(evicting) {
			return fmt.Errorf("queued for eviction but not a connected entry marked so: %s", id)
		}
	}
	if err := m.checkLoads(); err != nil {
		return err
	}
	if err := m.checkFeelers(); err != nil {
		return err
	}
	if err := m.checkLive(); err != nil {
		return err
	}
	if err := m.checkTellBits(); err != nil {
		return err
	}
	if err := m.checkTrust(); err != nil {
		return err
	}
	if err := m.checkSideTables(); err != nil {
		return err
	}
	return m.checkOrder()
}

// checkSideTables: the times of the side tables are of entries in the
// book (closedShort's of idle ones), the connection states of connected
// entries, and each source ref is counted by
// the entries naming it, its ID indexed under it.
func (m *Book) checkSideTables() error {
	for name, t := range map[string]map[*peerInfo]stamp{"brokeAt": m.brokeAt, "closedShort": m.closedShort} {
		for p, at := range t {
			if m.peers.get(p.id) != p || at == 0 {
				return fmt.Errorf("%s holds %s, not in the book, or the zero time", name, p.id)
			}
		}
	}
	for p := range m.conns {
		if m.peers.get(p.id) != p || !p.connected() {
			return fmt.Errorf("connection state held for %s, not a connected entry", p.id)
		}
	}
	refs := make([]int32, len(m.srcs.ids))
	for _, p := range m.peers.all() {
		refs[p.src]++
	}
	refs[noSrc] = 0
	if !slices.Equal(refs, m.srcs.refs) {
		return errors.New("source refs are not the entries naming them counted")
	}
	if len(m.srcs.index)+len(m.srcs.free)+1 != len(m.srcs.ids) {
		return fmt.Errorf("%d sources indexed and %d free of %d", len(m.srcs.index), len(m.srcs.free), len(m.srcs.ids)-1)
	}
	for id, r := range m.srcs.index {
		if id == "" || m.srcs.ids[r] != id || m.srcs.refs[r] <= 0 {
			return fmt.Errorf("source %s indexed under ref %d, which names %s", id, r, m.srcs.ids[r])
		}
	}
	return nil
}

// checkTrust: the trust table is bounded, and no idle entry we never
// reached stands on the word of distrusted source groups alone (purge).
func (m *Book) checkTrust() error {
	if len(m.trust) > m.opts.MaxPeers {
		return fmt.Errorf("trust table holds %d groups, limit %d", len(m.trust), m.opts.MaxPeers)
	}
	for id, p := range m.peers.all() {
		if m.baseless(p) {
			return fmt.Errorf("entry %s stands on distrusted sources alone", id)
		}
	}
	return nil
}

func (m *Book) checkEntry(p *peerInfo) error {
	switch {
	case p.is(removed):
		return errors.New("removed but in the book")
	case m.extra.num(p) > m.opts.MaxAddressesPerPeer && !p.persistent:
		return fmt.Errorf("%d addresses, limit %d", m.extra.num(p), m.opts.MaxAddressesPerPeer)
	case p.score < MinScore || p.score > MaxScore:
		return fmt.Errorf("score %d", p.score)
	case p.persistent && p.score != MaxScore:
		return fmt.Errorf("persistent with score %d", p.score)
	case p.is(hasExtra) != (len(m.extra[p]) > 0) || slices.Contains(m.extra[p], nil):
		return errors.New("further addresses not as marked, or a nil one")
	case p.connected() != (m.conns[p] != nil):
		return fmt.Errorf("state %d with connection state %v", p.state, m.conns[p] != nil)
	case p.state == stateDialing && m.conns[p].dialing == nil:
		return errors.New("dialing no address")
	case p.state != stateDialing && p.connected() && m.conns[p].dialing != nil:
		return errors.New("dialing an address but not dialing")
	case p.is(outbound) && !p.connected():
		return errors.New("outbound but idle")
	case p.state == stateDialing && !p.is(outbound) && !m.conns[p].feeler:
		return errors.New("dialing but not outbound")
	case p.state == stateDialing && p.is(outbound) && m.conns[p].feeler:
		return errors.New("a feeler counted outbound")
	case p.state >= stateConnected && m.conns[p].feeler && !p.is(evicting):
		return errors.New("a feeler connection not queued to go")
	case (!p.persistent && !p.connected()) != (p.heapIndex >= 0):
		return fmt.Errorf("in the eviction heap: %v, state %d, persistent %v", p.heapIndex >= 0, p.state, p.persistent)
	case p.heapIndex >= 0 && (int(p.heapIndex) >= len(m.evict.es) || m.evict.es[p.heapIndex] != p):
		return errors.New("heap index points elsewhere")
	case p.hangUps < 0 || p.hangUps > lifecycle.MaxHangUps:
		return fmt.Errorf("%d hang-ups, limit %d", p.hangUps, lifecycle.MaxHangUps)
	case p.hangUps > 0 && !p.is(everConn):
		return errors.New("hung up but never connected")
	case m.conns[p] != nil && m.conns[p].answered && p.state < stateConnected:
		return errors.New("answered but not connected")
	case m.closedShort[p] != 0 && p.state >= stateConnected:
		return errors.New("connected, and waiting for the answer of its last connection")
	case p.is(broke) != (m.brokeAt[p] != 0):
		return errors.New("marked broke without a time, or a time without the mark")
	case p.src != noSrc && (int(p.src) >= len(m.srcs.ids) || m.srcs.ids[p.src] == ""):
		return fmt.Errorf("source ref %d names nobody", p.src)
	}
	return nil
}

func (m *Book) checkLoads() error {
	sources, buckets, groups, out := map[uint64]int{}, map[uint64]int{}, map[uint64]int{}, map[uint64]int{}
	for id, p := range m.peers.all() {
		if p.is(outbound) && m.conns[p].outGroup != addr.NoGroup {
			out[m.conns[p].outGroup]++
		}
		if !p.is(placed) {
			continue
		}
		if p.persistent {
			return fmt.Errorf("persistent entry %s in a bucket", id)
		}
		sl := m.slotOfEntry(p)
		sources[sl.source]++
		buckets[sl.bucket]++
		groups[sl.group]++
	}
	switch {
	case !m.loads.consistent() || !m.bucketLoad.consistent():
		return errors.New("a load table does not find what it holds")
	case !maps.Equal(sources, m.loadsOf(func(l groupLoad) int32 { return l.source })):
		return fmt.Errorf("source loads %v, counted %v", maps.Collect(m.loads.all()), sources)
	case !maps.Equal(buckets, m.bucketLoads()):
		return fmt.Errorf("bucket loads %v, counted %v", m.bucketLoads(), buckets)
	case !maps.Equal(groups, m.loadsOf(func(l groupLoad) int32 { return l.group })):
		return fmt.Errorf("group loads %v, counted %v", maps.Collect(m.loads.all()), groups)
	case !m.crowd.counts(groups):
		return fmt.Errorf("group load counts %v (%d groups), loads %v", m.crowd.n, m.crowd.groups, groups)
	case !maps.Equal(out, m.slots.OutGroups()):
		return fmt.Errorf("outbound groups %v, counted %v", m.slots.OutGroups(), out)
	}
	for g, n := range sources {
		if n > m.sourceCap {
			return fmt.Errorf("source group %x holds %d, cap %d", g, n, m.sourceCap)
		}
	}
	for b, n := range buckets {
		if n > m.bucketCap {
			return fmt.Errorf("bucket %x holds %d, cap %d", b, n, m.bucketCap)
		}
	}
	for g, n := range groups {
		if n > m.groupCap {
			return fmt.Errorf("group %x holds %d, cap %d", g, n, m.groupCap)
		}
	}
	return nil
}

// bucketLoads returns the buckets' loads.
func (m *Book) bucketLoads() map[uint64]int {
	out := map[uint64]int{}
	for b, n := range m.bucketLoad.all() {
		out[b] = int(n)
	}
	return out
}

// loadsOf returns the non-zero counts f reads of the groups' loads.
func (m *Book) loadsOf(f func(groupLoad) int32) map[uint64]int {
	out := map[uint64]int{}
	for g, l := range m.loads.all() {
		if n := f(l); n != 0 {
			out[g] = int(n)
		}
	}
	return out
}

func (m *Book) checkTellBits() error {
	var held uint64
	for id, p := range m.peers.all() {
		if m.tellBit(p) == 0 {
			continue
		}
		switch {
		case p.state < stateConnected:
			return fmt.Errorf("%s holds a tell bit but is not connected", id)
		case m.conns[p].tell > 64:
			return fmt.Errorf("%s holds tell bit %d", id, m.conns[p].tell)
		case held&m.tellBit(p) != 0:
			return fmt.Errorf("tell bit of %s shared", id)
		}
		held |= m.tellBit(p)
	}
	if held != m.tellBits {
		return fmt.Errorf("tell bits in use %x, held %x", m.tellBits, held)
	}
	if held&m.staleBits != 0 {
		return errors.New("a tell bit both held and freed")
	}
	for id, p := range m.peers.all() {
		for _, ai := range m.extra.all(p) {
			if ai.toldBy&^(held|m.staleBits) != 0 {
				return fmt.Errorf("address of %s carries a bit given to nobody and not freed", id)
			}
		}
	}
	return nil
}

func (m *Book) checkOrder() error {
	m.settle()
	if len(m.order) != m.peers.len() {
		return fmt.Errorf("order holds %d, book %d", len(m.order), m.peers.len())
	}
	for i, p := range m.order {
		if m.peers.get(p.id) != p {
			return fmt.Errorf("order holds %s, not in the book", p.id)
		}
		if i > 0 && m.order[i-1].id >= p.id {
			return fmt.Errorf("order not sorted at %d", i)
		}
	}
	live, gone := 0, 0
	for i, e := range m.log {
		switch {
		case i > 0 && m.log[i-1].E.seq >= e.E.seq:
			return fmt.Errorf("log not in insertion order at %d", i)
		case e.Key != walk.Key(e.E.id):
			return fmt.Errorf("log entry %d has another key than its entry's", i)
		case e.E.is(removed):
			gone++
		case m.peers.get(e.E.id) != e.E:
			return fmt.Errorf("log holds %s, not in the book", e.E.id)
		default:
			live++
		}
	}
	if live != m.peers.len() || gone != m.logGone {
		return fmt.Errorf("log holds %d entries and %d removed, book %d and %d", live, gone, m.peers.len(), m.logGone)
	}
	m.mergeRanks()
	ranks := make([]uint64, 0, m.peers.len())
	for _, p := range m.peers.all() {
		ranks = append(ranks, m.RankOf(p.id))
	}
	slices.Sort(ranks)
	if !slices.Equal(ranks, m.ranks) {
		return errors.New("rank index is not the entries' ranks")
	}
	return nil
}

// checkFeelers verifies that Book.feelers counts the feelers dialled, at
// most MaxOutbound, and that no entry placed in a junk group after it
// was marked is hearsay we never reached.
func (m *Book) checkFeelers() error {
	feelers := 0
	for p, c := range m.conns {
		if c.feeler && p.state == stateDialing {
			feelers++
		}
	}
	if feelers != m.feelers || feelers > m.opts.MaxOutbound {
		return fmt.Errorf("%d feelers dialled, counted %d, at most %d", feelers, m.feelers, m.opts.MaxOutbound)
	}
	for g, j := range m.junkMarks {
		if j.fails <= 0 {
			return fmt.Errorf("junk mark of group %x with no failure", g)
		}
		if !j.junk {
			continue
		}
		for _, p := range m.peers.all() {
			// (An entry left there holds no address there: it is
			// logged again when what we pass on for it changes.)
			if p.is(placed) && p.slotGroup == g && p.seq > j.seq && m.untestedHearsay(p) && m.extra.any(p, func(ai *addrInfo) bool { return m.inGroup(ai, p.id, g) }) {
				return fmt.Errorf("entry %s, hearsay we never reached, placed in junk group %x after it was marked", p.id, g)
			}
		}
	}
	return nil
}

// checkLive verifies that each live address names one connected peer
// that proved its ID there, and that each such peer has one.
func (m *Book) checkLive() error {
	keys := make(map[addr.NodeID]int, len(m.live))
	for _, id := range m.live {
		p := m.peers.get(id)
		if p == nil || m.conns[p] == nil || !m.conns[p].live || p.state == stateDialing {
			return fmt.Errorf("live address of %s, not a peer connected at it", id)
		}
		if keys[id]++; keys[id] > 1 {
			return fmt.Errorf("%s live at two addresses", id)
		}
	}
	for p, c := range m.conns {
		if c.live && keys[p.id] == 0 {
			return fmt.Errorf("%s connected at a live address the book does not hold", p.id)
		}
	}
	return nil
}
