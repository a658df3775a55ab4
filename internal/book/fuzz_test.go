package book

import (
	"fmt"
	"github.com/pexnet/pex/internal/addr"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pexnet/pex/internal/testkit"
)

// fzPMSentinels are the exported errors PeerManager methods may return.
var fzPMSentinels = []error{
	ErrInvalidAddress, ErrInvalidNodeID, ErrSelfAddress, ErrUnroutableAddress,
	ErrAddressBookFull, ErrSourceGroupFull, ErrNetworkGroupFull, ErrAnotherNodesAddress, ErrTooManyPeers, ErrDuplicateConnection,
}

// ---------------------------------------------------------------------------
// FuzzPeerManagerOps

const fzPMIDs = 12 // nodeID(0..11), plus our own ID

type fzPM struct {
	t     *testing.T
	m     *PeerManager
	clock *testkit.Clock
	ids   []NodeID
	dials []NodeAddress                // returned by TryDialNext, not yet reported
	sent  map[NodeID]map[NodeID]uint64 // per requester: peer -> seq of the incarnation sent
	// owed: per connected requester, the peers (and incarnations) that
	// were advertisable when its walk began and have stayed so without
	// being sent yet. An answer shorter than its limit ends the lap, so
	// nothing may be owed then.
	owed     map[NodeID]map[NodeID]uint64
	tracked  map[NodeID]bool // requester's connection seen by advertise
	persist  map[NodeID]bool // made persistent, never to be removed
	random   bool
	private  NodeID
	checkAdv bool // idle peers keep no walk state
}

type fzSnap struct {
	proven, persistent, connected, failing bool
	late                                   bool      // late hearsay of a group (caps.go)
	p                                      *peerInfo // its incarnation (a renewed entry keeps it)
}

func (h *fzPM) id(r *testkit.Reader) NodeID {
	k := int(r.U8())
	if k >= 250 {
		return NodeID([]string{"", "xyz", strings.ToUpper(string(nodeID(1))), string(nodeID(1))[:39], strings.Repeat("g", 40), string(nodeID(2)) + " "}[k-250])
	}
	return h.ids[k%len(h.ids)]
}

// connID is mostly a connected peer (ops on them are the interesting
// ones), else any ID.
func (h *fzPM) connID(r *testkit.Reader) NodeID {
	k := r.U8()
	if k < 160 {
		var conn []NodeID
		for id, p := range h.m.peers.all() {
			if p.connected() {
				conn = append(conn, id)
			}
		}
		if len(conn) > 0 {
			slices.Sort(conn)
			return conn[int(k)%len(conn)]
		}
	}
	return h.id(r)
}

func (h *fzPM) addr(r *testkit.Reader) NodeAddress {
	id := h.id(r)
	k := r.U8()
	hosts := []string{"11.0.0.1", "11.0.0.2", "11.0.0.3", "10.0.0.1", "2001:db8::1", "node.example.com", "127.0.0.1", "11.0.0.9"}
	a := NodeAddress{Protocol: ProtocolMConn, NodeID: id, Hostname: hosts[k%8], Port: 26656 + uint16(k>>3&1)}
	switch k >> 4 & 7 {
	case 1:
		a.Protocol = ProtocolTCP
	case 2:
		a = NodeAddress{Protocol: ProtocolMemory, NodeID: id}
	case 3:
		if k&0x80 != 0 {
			a.Port = 0
		} else {
			a.Protocol = "bogus"
		}
	case 4:
		a.Hostname = "Node.Example.com"
	}
	return a
}

func (h *fzPM) snapshot() map[NodeID]fzSnap {
	s := make(map[NodeID]fzSnap, h.m.peers.len())
	for id, p := range h.m.peers.all() {
		s[id] = fzSnap{proven: p.is(proven), persistent: p.persistent, connected: p.connected(), failing: h.m.extra.failing(p), late: h.m.lateHearsay(p), p: p}
	}
	return s
}

func (h *fzPM) checkErr(what string, err error) {
	if err != nil {
		testkit.CheckErr(h.t, what, err, fzPMSentinels)
	}
}

// advertise calls Advertise and checks the answer, and, for a requester
// that stays connected, that no peer is sent to it twice unless it was
// removed and re-added since.
func (h *fzPM) advertise(to NodeID, limit int) {
	t := h.t
	m := h.m
	m.mu.Lock()
	if req := m.peers.get(to); req != nil && req.connected() && !h.tracked[to] && !h.random {
		h.tracked[to] = true
		if m.cursor(req) == nil || !m.cursor(req).Active() { // a fresh walk (see fzCheckIdleAdv)
			h.owed[to] = map[NodeID]uint64{}
			for id, p := range m.peers.all() {
				if _, ok := m.advertisable(p, to, m.now()); ok {
					h.owed[to][id] = p.seq
				}
			}
		}
	}
	m.mu.Unlock()
	out := m.Advertise(to, limit)
	if len(out) > limit {
		t.Fatalf("advertise: %d > limit %d", len(out), limit)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	req := m.peers.get(to)
	connected := req != nil && req.state >= stateConnected // a dial has no walk yet
	if !connected {
		delete(h.sent, to)
	}
	seen := map[NodeID]bool{}
	for _, a := range out {
		if a.NodeID == m.self {
			if !slices.Contains(m.opts.SelfAddresses, a) {
				t.Fatalf("advertise: our own ID with a foreign address %s", a)
			}
			continue
		}
		if a.NodeID == to {
			t.Fatalf("advertise: sent %s its own address", to)
		}
		if seen[a.NodeID] {
			t.Fatalf("advertise: %s twice in one answer to %s", a.NodeID, to)
		}
		seen[a.NodeID] = true
		p := m.peers.get(a.NodeID)
		if p == nil {
			t.Fatalf("advertise: %s is not in the book", a.NodeID)
		}
		if !m.extra.any(p, func(ai *addrInfo) bool { return ai.addr().is(a) }) {
			t.Fatalf("advertise: %s is not a stored address", a)
		}
		if p.is(private) || a.NodeID == h.private {
			t.Fatalf("advertise: private peer %s advertised", a.NodeID)
		}
		if m.srcs.id(p.src) == to {
			// Only an address its source's group did not tell us.
			for _, ai := range m.extra.all(p) {
				if ai.addr().is(a) && !ai.everWorked && (m.askerGroup(to) == addr.NoGroup || ai.srcGroup == m.askerGroup(to)) {
					t.Fatalf("advertise: %s sent back to its source %s", a, to)
				}
			}
		}
		if int(p.score) <= m.opts.EvictScore {
			t.Fatalf("advertise: %s advertised at score %d", a.NodeID, p.score)
		}
		if !connected || h.random {
			continue
		}
		if h.sent[to] == nil {
			h.sent[to] = map[NodeID]uint64{}
		}
		if seq, ok := h.sent[to][a.NodeID]; ok && seq == p.seq {
			t.Fatalf("advertise: %s sent twice to connected %s (same incarnation, seq %d)", a.NodeID, to, seq)
		}
		h.sent[to][a.NodeID] = p.seq
		delete(h.owed[to], a.NodeID)
	}
	if connected && len(out) < limit && len(h.owed[to]) > 0 {
		t.Fatalf("advertise: short answer (%d of %d) to %s, yet never sent it %v (adv %+v)", len(out), limit, to, h.owed[to], m.cursor(req))
	}
}

// check verifies the manager's internals after an op. before is the
// book before the op; target and mayDrop name a peer the op may have
// removed although proven (its own failed dial or disconnect).
func (h *fzPM) check(what string, before map[NodeID]fzSnap, target NodeID, mayDrop bool) {
	t := h.t
	t.Helper()
	m := h.m
	m.mu.Lock()
	defer m.mu.Unlock()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s: "+format, append([]any{what}, args...)...)
	}
	if err := m.Check(); err != nil {
		fail("%v", err)
	}
	if m.peers.get(m.self) != nil {
		fail("self in book")
	}
	// Tell bits: distinct, held only by peers whose connection is up, and
	// no address carries the bit of a peer that left.
	var tells uint64
	for id, p := range m.peers.all() {
		if m.tellBit(p) == 0 {
			continue
		}
		if p.state < stateConnected || tells&m.tellBit(p) != 0 {
			fail("peer %s: tell bit %x, state %d, taken %x", id, m.tellBit(p), p.state, tells)
		}
		tells |= m.tellBit(p)
	}
	if tells != m.tellBits || tells&m.staleBits != 0 {
		fail("tell bits in use %x, held %x, freed %x", m.tellBits, tells, m.staleBits)
	}
	for id, p := range m.peers.all() {
		for _, ai := range m.extra.all(p) {
			if ai.toldBy&^(tells|m.staleBits) != 0 {
				fail("address %s told by %x, bits held %x, freed %x", ai.addr().of(id), ai.toldBy, tells, m.staleBits)
			}
		}
	}
	active, nOutbound, ranked, nEvicting := 0, 0, 0, 0
	seqs := map[uint64]bool{}
	for id, p := range m.peers.all() {
		if p.id != id || p.is(removed) {
			fail("entry %s: id %s removed %v", id, p.id, p.is(removed))
		}
		if err := id.Validate(); err != nil {
			fail("invalid ID %q in book", id)
		}
		if seqs[p.seq] {
			fail("seq %d twice", p.seq)
		}
		seqs[p.seq] = true
		// AddPersistent appends its address past MaxAddressesPerPeer
		// (reported; an operator's call, not a peer's input).
		if m.extra.num(p) > m.opts.MaxAddressesPerPeer && !p.persistent {
			fail("%s holds %d addresses, MaxAddressesPerPeer %d (persistent %v)", id, m.extra.num(p), m.opts.MaxAddressesPerPeer, p.persistent)
		}
		for i, ai := range m.extra.all(p) {
			if err := m.CheckAddress(ai.addr().of(id)); err != nil {
				fail("%s holds refused address %s: %v", id, ai.addr().of(id), err)
			}
			for j, aj := range m.extra.all(p) {
				if j < i && (aj.addr() == ai.addr() || aj == ai) {
					fail("%s holds %s twice", id, ai.addr().of(id))
				}
			}
		}
		if m.extra.num(p) == 0 && !p.connected() && !p.persistent {
			fail("%s idle with no address", id)
		}
		if p.score < MinScore || p.score > MaxScore || (p.persistent && p.score != MaxScore) {
			fail("%s score %d persistent %v", id, p.score, p.persistent)
		}
		if p.connected() {
			if p.state != stateDialing || !m.conns[p].feeler {
				active++ // a feeler takes a slot once connected
			}
			if p.is(evicting) {
				nEvicting++
			}
		} else {
			if p.is(outbound) || m.conns[p] != nil || p.is(evicting) {
				fail("idle %s: outbound %v connection state %v evicting %v", id, p.is(outbound), m.conns[p] != nil, p.is(evicting))
			}
			if h.checkAdv && m.cursor(p) != nil {
				fail("idle %s keeps walk state %+v", id, m.cursor(p))
			}
		}
		if p.is(outbound) {
			nOutbound++
		}
		if p.state == stateDialing {
			if m.dialingAddr(p) == nil || p.is(outbound) == m.conns[p].feeler || !m.extra.any(p, func(ai *addrInfo) bool { return ai == m.dialingAddr(p) }) {
				fail("dialing %s: dialing %v outbound %v feeler %v", id, m.dialingAddr(p), p.is(outbound), m.conns[p].feeler)
			}
		} else if m.dialingAddr(p) != nil {
			fail("%s in state %d has a dialing address", id, p.state)
		}
		want := !p.persistent && !p.connected()
		if want != (p.heapIndex >= 0) {
			fail("%s: persistent %v state %d heapIndex %d", id, p.persistent, p.state, p.heapIndex)
		}
		if p.heapIndex >= 0 {
			ranked++
			if int(p.heapIndex) >= len(m.evict.es) || m.evict.es[p.heapIndex] != p {
				fail("%s: heap index %d wrong", id, p.heapIndex)
			}
		}
		if p.persistent != slices.Contains(m.persistent, id) {
			fail("%s: persistent flag %v vs list", id, p.persistent)
		}
		if p.is(private) != (id == h.private) {
			fail("%s: private flag", id)
		}
	}
	if active != m.slots.Active() {
		fail("active %d, counted %d", m.slots.Active(), active)
	}
	if err := bucketsErr(m); err != nil {
		fail("%v", err)
	}
	if nOutbound != m.slots.Outbound() {
		fail("outbound %d, counted %d", m.slots.Outbound(), nOutbound)
	}
	if ranked != len(m.evict.es) {
		fail("evict heap holds %d, %d peers ranked", len(m.evict.es), ranked)
	}
	for i := 1; i < len(m.evict.es); i++ {
		if m.evict.Less(i, (i-1)/2) {
			fail("heap order at %d", i)
		}
	}
	if m.peers.len() > m.opts.MaxPeers+m.slots.Active()+len(m.persistent) {
		fail("book %d peers, MaxPeers %d, active %d, persistent %d", m.peers.len(), m.opts.MaxPeers, m.slots.Active(), len(m.persistent))
	}
	// Displaced peers waiting for their first answer stay beside the slots.
	if m.slots.Active()-nEvicting-m.slots.Visiting() > m.opts.MaxConnected {
		fail("active %d (evicting %d, visiting %d) over MaxConnected %d", m.slots.Active(), nEvicting, m.slots.Visiting(), m.opts.MaxConnected)
	}
	queued := map[NodeID]bool{}
	for _, id := range m.slots.Queued() {
		p := m.peers.get(id)
		if p == nil || !p.connected() || !p.is(evicting) || queued[id] {
			fail("evictQueue entry %s: known %v", id, p != nil)
		}
		if p.persistent && fzCheckPersistentQueued && m.lowestConnected() != nil {
			// Only when every other connection is persistent too may a
			// persistent peer go to make room (see AddPersistent), after
			// any operation.
			fail("persistent %s queued for eviction", id)
		}
		if p.persistent && m.slots.Active()-len(m.slots.Queued()) < m.opts.MaxConnected {
			fail("persistent %s queued for eviction, with room for it", id)
		}
		queued[id] = true
	}
	for _, id := range m.persistent {
		if m.peers.get(id) == nil {
			fail("persistent %s not in the book", id)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(m.persistent)))) != len(m.persistent) {
		fail("persistent list has duplicates")
	}
	for id := range h.persist {
		if p := m.peers.get(id); p == nil || !p.persistent {
			fail("persistent %s removed or demoted", id)
		}
	}
	// order ∪ fresh hold every peer exactly once; order stays sorted.
	listed := map[NodeID]bool{}
	var prev NodeID
	for _, p := range m.order {
		if p.is(removed) {
			continue
		}
		if prev != "" && p.id <= prev {
			fail("order unsorted at %s", p.id)
		}
		prev = p.id
		if listed[p.id] || m.peers.get(p.id) != p {
			fail("order entry %s duplicate or stale", p.id)
		}
		listed[p.id] = true
	}
	for _, p := range m.fresh {
		if p.is(removed) {
			continue
		}
		if listed[p.id] || m.peers.get(p.id) != p {
			fail("fresh entry %s duplicate or stale", p.id)
		}
		listed[p.id] = true
	}
	if len(listed) != m.peers.len() {
		fail("order and fresh list %d of %d peers", len(listed), m.peers.len())
	}
	// What left the book: never a connected or persistent peer, and a
	// proven one only by its own failures.
	for id, s := range before {
		if m.peers.get(id) == s.p {
			continue
		}
		if s.persistent {
			fail("persistent %s dropped", id)
		}
		if s.connected && !(mayDrop && id == target) {
			fail("connected %s dropped", id)
		}
		if s.proven && !(mayDrop && id == target) {
			fail("proven %s dropped by %s", id, what)
		}
		if !s.failing && !s.late && strings.HasPrefix(what, "AddFrom ") {
			fail("gossip (%s) displaced %s, which had not failed nor come late to a crowded group", what, id)
		}
	}
	// Walk state belongs to connected requesters only.
	for to := range h.sent {
		if p := m.peers.get(to); p == nil || !p.connected() {
			delete(h.sent, to)
		}
	}
	for to := range h.tracked {
		if p := m.peers.get(to); p == nil || !p.connected() {
			delete(h.tracked, to)
			delete(h.owed, to)
		}
	}
	for to, owed := range h.owed {
		for id, seq := range owed {
			if p := m.peers.get(id); p == nil || p.seq != seq {
				delete(owed, id)
			} else if _, ok := m.advertisable(p, to, m.now()); !ok {
				delete(owed, id)
			}
		}
	}
}

func (h *fzPM) knownInRank(after, span uint64) {
	got := h.m.KnownInRank(after, span)
	want := 0
	for _, p := range h.m.peers.all() {
		if span > 0 && h.m.RankOf(p.id)-after-1 <= span-1 {
			want++
		}
	}
	n, atAfter := h.m.peers.len(), 0
	for _, p := range h.m.peers.all() {
		if h.m.RankOf(p.id) == after {
			atAfter++
		}
	}
	if got != want {
		h.t.Fatalf("KnownInRank(%d, %d) = %d, brute force %d", after, span, got, want)
	}
	// The range (after, after+MaxUint64] is every rank but after itself.
	if all := h.m.KnownInRank(after, math.MaxUint64); all != n-atAfter {
		h.t.Fatalf("KnownInRank(%d, MaxUint64) = %d, book %d (at after: %d)", after, all, n, atAfter)
	}
}

func FuzzPeerManagerOps(f *testing.F) {
	f.Add([]byte{0})
	f.Add([]byte{0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 3, 0, 3, 1, 12, 3, 5})
	f.Add([]byte{0x07, 7, 1, 0, 8, 1, 1, 7, 2, 1, 5, 12, 1, 8, 12, 1, 8, 9, 1, 12, 1, 8})
	f.Add([]byte{0x02, 2, 3, 10, 0, 0, 3, 0, 0, 3, 1, 4, 0, 1, 14, 200, 3, 2, 0, 11, 1})
	f.Add([]byte{0x10, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8, 0, 9, 0, 10, 7, 11, 0, 7, 1, 0, 10, 1, 3, 10, 1, 3, 11, 1})
	// Four inbound peers, a fifth displacing one, evictions, dials.
	f.Add([]byte{0x00, 0, 7, 1, 0, 7, 2, 0, 7, 4, 0, 7, 5, 0, 7, 6, 0, 11, 0, 10, 5, 0x87, 11, 0, 3, 0, 3, 2, 9, 6, 250, 7, 250, 0})
	// Advertise to a connected peer, add news, advertise again (walk and news).
	f.Add([]byte{0x00, 0, 7, 1, 0, 0, 2, 0, 12, 0, 5, 0, 3, 0, 0, 4, 1, 12, 0, 1, 0, 5, 0, 12, 0, 5, 12, 0, 11, 0, 6, 2, 12, 0, 11})
	f.Add([]byte{0x00, 9, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0, 5, 0, 0, 6, 0, 7, 7, 0, 12, 0, 2, 12, 0, 2, 0, 8, 0, 0, 9, 0, 12, 0, 2,
		9, 0, 7, 7, 0, 12, 0, 11, 0, 10, 0, 0, 11, 0, 12, 0, 1, 12, 0, 1, 12, 0, 1, 12, 0, 1})
	// An inbound peer errs until queued for eviction, then is made persistent.
	f.Add([]byte{0x00, 0, 7, 1, 0, 10, 0, 0x87, 2, 1, 0, 11, 0})
	testkit.RandomSeeds(f, 202)
	f.Fuzz(func(t *testing.T, data []byte) {
		defer testkit.Watchdog(data)()
		r := testkit.NewReader(data)
		cfg := r.U8()
		clock := newFakeClock()
		h := &fzPM{t: t, clock: clock, sent: map[NodeID]map[NodeID]uint64{}, owed: map[NodeID]map[NodeID]uint64{}, tracked: map[NodeID]bool{}, persist: map[NodeID]bool{}, random: cfg&8 != 0, checkAdv: fzCheckIdleAdv}
		for i := range fzPMIDs {
			h.ids = append(h.ids, nodeID(i))
		}
		h.ids = append(h.ids, selfID)
		opts := PeerManagerOptions{Options: Options{SelfAddresses: []NodeAddress{selfAddr("11.0.0.9", 26656)}, MaxPeers: 8, MaxConnected: 4, MaxOutbound: 2, MaxDialFailures: 3, MaxAddressesPerPeer: 4, Rand: rand.New(rand.NewPCG(uint64(r.U8()), 2)), RandomAdvertise: cfg&8 != 0, Strict: cfg&16 != 0}, Now: clock.Now}
		if cfg&1 != 0 {
			opts.MaxAddressesPerPeer = 2
		}
		if cfg&2 != 0 {
			opts.PersistentPeers = []NodeAddress{peerAddr(1)}
			h.persist[nodeID(1)] = true
		}
		if cfg&4 != 0 {
			h.private = nodeID(3)
			opts.PrivatePeers = []NodeID{h.private}
		}
		m, err := NewPeerManager(selfID, opts)
		if err != nil {
			t.Fatal(err)
		}
		h.m = m
		h.check("new", nil, "", false)
		for step := 0; !r.Empty() && step < 300; step++ {
			op := r.U8()
			before := h.snapshot()
			var target NodeID
			mayDrop := false
			var what string
			switch op % 17 {
			case 0:
				a := h.addr(r)
				what = "Add " + a.String()
				_, err := m.Add(a)
				h.checkErr(what, err)
			case 1:
				a, src := h.addr(r), h.id(r)
				what = "AddFrom " + a.String()
				if src == "" {
					what = "AddFrom (no source) " + a.String() // the operator's: may displace
				}
				_, err := m.AddFrom(a, src)
				h.checkErr(what, err)
			case 2:
				a := h.addr(r)
				what = "AddPersistent " + a.String()
				if err := m.AddPersistent(a); err != nil {
					h.checkErr(what, err)
				} else {
					h.persist[a.NodeID] = true
				}
			case 3:
				what = "TryDialNext"
				if a, ok := m.TryDialNext(); ok {
					what += " " + a.String()
					if m.CheckAddress(a) != nil {
						t.Fatalf("TryDialNext returned refused %s", a)
					}
					switch k := r.U8() % 3; k {
					case 0:
						h.checkErr(what+": Dialed", m.Dialed(a))
					case 1:
						target, mayDrop = a.NodeID, true
						m.DialFailed(a)
					default:
						h.dials = append(h.dials, a)
					}
				}
			case 4:
				if len(h.dials) == 0 {
					continue
				}
				i := int(r.U8()) % len(h.dials)
				a := h.dials[i]
				h.dials = slices.Delete(h.dials, i, i+1)
				if r.U8()&1 == 0 {
					what = "Dialed (pending) " + a.String()
					h.checkErr(what, m.Dialed(a))
				} else {
					what = "DialFailed (pending) " + a.String()
					target, mayDrop = a.NodeID, true
					m.DialFailed(a)
				}
			case 5:
				a := h.addr(r)
				what = "Dialed " + a.String()
				if m.CheckAddress(a) != nil && a.NodeID != selfID {
					// Dialed adopts an unknown address without checking it
					// (reported): only addresses Add would take are used.
					continue
				}
				h.checkErr(what, m.Dialed(a))
			case 6:
				a := h.addr(r)
				target, mayDrop = a.NodeID, true
				switch r.U8() % 3 {
				case 0:
					what = "DialFailed " + a.String()
					m.DialFailed(a)
				case 1:
					what = "DialMismatch " + a.String()
					m.DialMismatch(a)
				default:
					what = "DialRefused " + a.String()
					m.DialRefused(a)
				}
			case 7:
				id := h.id(r)
				var ann []NodeAddress
				for range r.U8() % 4 {
					a := h.addr(r)
					if r.U8()&1 == 0 {
						a.NodeID = id
					}
					ann = append(ann, a)
				}
				// A remote from a few /16s, or none (the announced
				// address stands in).
				var remote netip.AddrPort
				if k := r.U8() % 4; k > 0 {
					remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, k, 0, 1}), 40000)
				}
				what = fmt.Sprintf("AcceptedFrom %s %v %v", id, remote, ann)
				h.checkErr(what, m.AcceptedFrom(id, remote, ann...))
			case 8:
				id := h.connID(r)
				what = "Ready " + string(id)
				m.Ready(id, PeerCaps(r.U8()&1))
			case 9:
				id := h.connID(r)
				what = "Disconnected " + string(id)
				target, mayDrop = id, true
				m.Disconnected(id)
			case 10:
				id := h.connID(r)
				k := r.U8()
				what = "Errored " + string(id)
				for range 1 + k%8 {
					m.Errored(PeerError{NodeID: id, Err: ErrMostlyInvalid, Fatal: k&0x80 != 0})
				}
			case 11:
				what = "EvictNext"
				if id, ok := m.EvictNext(); ok {
					what += " " + string(id)
					if !m.IsConnected(id) {
						t.Fatalf("EvictNext named %s, not connected", id)
					}
					if r.U8()&1 == 0 {
						target, mayDrop = id, true
						m.Disconnected(id)
					}
				}
			case 12:
				to := h.connID(r)
				limit := 1 + int(r.U8())%12
				what = fmt.Sprintf("Advertise %s %d", to, limit)
				h.advertise(to, limit)
			case 13:
				what = "KnownInRank"
				var after uint64
				m.mu.Lock()
				if k := r.U8(); k&1 == 0 && m.peers.len() > 0 {
					// Exactly at a peer's rank, or just around it.
					ps := slices.Collect(func(yield func(*peerInfo) bool) {
						for _, p := range m.peers.all() {
							if !yield(p) {
								return
							}
						}
					})
					slices.SortFunc(ps, func(a, b *peerInfo) int { return testkit.CmpU64(a.seq, b.seq) })
					after = h.m.RankOf(ps[int(k>>1)%len(ps)].id) + uint64(int64(int8(r.U8()))>>4)
				} else {
					after = r.U64()
				}
				m.mu.Unlock()
				span := r.U64()
				if k := r.U8(); k < 64 {
					span = math.MaxUint64 - uint64(k)
				} else if k < 128 {
					span >>= k % 64
				}
				h.knownInRank(after, span)
			case 14:
				d := time.Duration(r.U8()) * 100 * time.Millisecond
				if op&0x80 != 0 {
					d *= 100
				}
				what = "Advance"
				clock.Advance(d)
			case 15:
				id := h.connID(r)
				what = "Good " + string(id)
				m.Good(id)
				if op&0x80 != 0 {
					what = "Good and Answered " + string(id)
					m.Answered(id)
				}
				if op&0x40 != 0 {
					// We answered it: a displaced peer waiting for that goes.
					what += " and Served"
					m.Served(id)
				}
			case 16:
				what = "Has/Addresses/Score/NextDialTime"
				id := h.id(r)
				addrs := m.Addresses(id)
				if len(addrs) > 0 && !m.Has(id) {
					t.Fatalf("Has/Addresses disagree for %s", id)
				}
				_, _ = m.Score(id)
				_ = m.NextDialTime()
				_ = m.Connected()
				_ = m.PeerRatio()
			}
			h.check(fmt.Sprintf("step %d (%s)", step, what), before, target, mayDrop)
		}
	})
}

// fzCheckIdleAdv makes FuzzPeerManagerOps require that an idle peer keeps
// no walk state (the walk is "forgotten on disconnect").
const fzCheckPersistentQueued = true

const fzCheckIdleAdv = true

// advertisable returns the address of p worth sharing with to, if any
// (Advertise's rule, for the harness).
func (m *PeerManager) advertisable(p *peerInfo, to NodeID, now time.Time) (NodeAddress, bool) {
	var toBit uint64
	if r := m.peers.get(to); r != nil {
		toBit = m.tellBit(r)
	}
	return m.advertisableTo(p, to, toBit, now)
}
