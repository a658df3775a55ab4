package book

import (
	"hash/maphash"
	"iter"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/walk"
)

// peerTable is the book's index of its entries by node ID: an
// open-addressing hash table of entry pointers, probed linearly, with a
// byte of each slot's hash beside it so that a probe reads the entry only
// when that byte matches. An entry costs its slot, 9 bytes, over the
// load (at most 7/8), where a Go map keyed by the ID would keep a second
// copy of the ID's string header beside the pointer. The hash is seeded
// per table, so nobody can choose IDs that collide, and the order in
// which all yields the entries is, as a map's, no order the book may
// depend on.
type peerTable struct {
	tags  []uint8 // 0: empty; else tagOf the hash of the entry in slots
	slots []*peerInfo
	n     int
	seed  maphash.Seed
}

func newPeerTable() peerTable { return peerTable{seed: maphash.MakeSeed()} }

func (t *peerTable) hash(id addr.NodeID) uint64 { return maphash.String(t.seed, string(id)) }

// tagOf is the byte of hash h kept beside its slot: never 0.
func tagOf(h uint64) uint8 { return uint8(h>>57) | 0x80 }

func (t *peerTable) len() int { return t.n }

// get returns the entry of id, nil if none.
func (t *peerTable) get(id addr.NodeID) *peerInfo {
	if t.n == 0 {
		return nil
	}
	p, _ := t.lookup(id)
	return p
}

// lookup returns the entry of id, nil if none, and id's hash, for
// putHashed to add id's entry without hashing it again.
func (t *peerTable) lookup(id addr.NodeID) (*peerInfo, uint64) {
	h := t.hash(id)
	if t.n == 0 {
		return nil, h
	}
	tag, mask := tagOf(h), uint64(len(t.slots)-1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch t.tags[i] {
		case 0:
			return nil, h
		case tag:
			if p := t.slots[i]; p.id == id {
				return p, h
			}
		}
	}
}

// put adds p, whose ID the table does not hold.
func (t *peerTable) put(p *peerInfo) { t.putHashed(p, t.hash(p.id)) }

// putHashed is put for p whose ID hashes to h (lookup's).
func (t *peerTable) putHashed(p *peerInfo, h uint64) {
	if t.full() {
		t.grow()
	}
	t.insert(p, h)
	t.n++
}

// full reports whether the next put grows the table.
func (t *peerTable) full() bool { return 8*(t.n+1) > 7*len(t.slots) }

func (t *peerTable) insert(p *peerInfo, h uint64) {
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.tags[i] != 0 {
		i = (i + 1) & mask
	}
	t.tags[i], t.slots[i] = tagOf(h), p
}

func (t *peerTable) grow() {
	tags, slots := t.tags, t.slots
	n := max(8, 2*len(slots))
	t.tags, t.slots = make([]uint8, n), make([]*peerInfo, n)
	for i, p := range slots {
		if tags[i] != 0 {
			t.insert(p, t.hash(p.id))
		}
	}
}

// growFrom is grow for a table that holds exactly the entries of log
// not removed: it reads them in the order they were made, and so, mostly,
// in the order they lie in memory, where grow reads them in the table's
// order (random). Rehashing is most of a growing book's cost of adding.
func (t *peerTable) growFrom(log []walk.Entry[*peerInfo]) {
	old := *t
	n := max(8, 2*len(t.slots))
	t.tags, t.slots = make([]uint8, n), make([]*peerInfo, n)
	held := 0
	for _, e := range log {
		if !e.E.is(removed) {
			t.insert(e.E, t.hash(e.E.id))
			held++
		}
	}
	if held != t.n {
		// Not the table's entries after all: grow from the table.
		*t = old
		t.grow()
	}
}

// del removes the entry of id, if the table holds it. The entries
// probed past its slot move back to fill it (no tombstones), so a probe
// still ends at the first empty slot.
func (t *peerTable) del(id addr.NodeID) {
	if t.n == 0 {
		return
	}
	h := t.hash(id)
	tag, mask := tagOf(h), uint64(len(t.slots)-1)
	i := h & mask
	for ; ; i = (i + 1) & mask {
		if t.tags[i] == 0 {
			return
		}
		if t.tags[i] == tag && t.slots[i].id == id {
			break
		}
	}
	// i is now empty: move back the next entry whose home is not in
	// (i, j], until an empty slot.
	for j := (i + 1) & mask; t.tags[j] != 0; j = (j + 1) & mask {
		home := t.hash(t.slots[j].id) & mask
		if (j-home)&mask >= (j-i)&mask {
			t.tags[i], t.slots[i] = t.tags[j], t.slots[j]
			i = j
		}
	}
	t.tags[i], t.slots[i] = 0, nil
	t.n--
}

// all yields every entry, with its ID. The table must not change while
// it does.
func (t *peerTable) all() iter.Seq2[addr.NodeID, *peerInfo] {
	return func(yield func(addr.NodeID, *peerInfo) bool) {
		for i, tag := range t.tags {
			if tag != 0 && !yield(t.slots[i].id, t.slots[i]) {
				return
			}
		}
	}
}
