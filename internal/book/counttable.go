package book

import (
	"iter"
	"math/rand/v2"

	"github.com/pexnet/pex/internal/addr"
)

// countTable holds counts by a 64-bit key: the loads of network groups
// (Book.loads) and of buckets (Book.bucketLoad). It is an open-addressing
// hash table probed linearly, as peerTable is, with a byte of each slot's
// hash beside it, so that a probe reads a slot's key only when that byte
// matches: adding an entry to the book looks up keys it mostly does not
// hold yet (a new group, a new bucket), and such a probe reads bytes, a
// few to a cache line, until an empty one. A count is read and changed in
// one probe (ref), where a Go map looks its key up once to read and again
// to write. A key whose count falls to zero is forgotten (forget). Keys
// are mixed with a secret drawn per table, so nobody can choose groups
// whose keys collide, and the order in which all yields them is no order
// the book may depend on.
type countTable[V comparable] struct {
	tags  []uint8 // 0: empty; else tagOf the hash of the slot's key
	slots []countSlot[V]
	n     int
	seed  uint64
}

type countSlot[V comparable] struct {
	key uint64
	val V
}

func newCountTable[V comparable]() countTable[V] {
	return countTable[V]{seed: rand.Uint64()}
}

func (t *countTable[V]) len() int { return t.n }

func (t *countTable[V]) hash(k uint64) uint64 { return addr.Mix(k ^ t.seed) }

// find returns k's slot, or the empty slot where k's probe ended (and
// false), and k's hash.
func (t *countTable[V]) find(k uint64) (int, bool, uint64) {
	h := t.hash(k)
	tag, mask := tagOf(h), uint64(len(t.slots)-1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch t.tags[i] {
		case 0:
			return int(i), false, h
		case tag:
			if t.slots[i].key == k {
				return int(i), true, h
			}
		}
	}
}

// get returns k's count, zero if none.
func (t *countTable[V]) get(k uint64) V {
	if t.n == 0 {
		var zero V
		return zero
	}
	i, ok, _ := t.find(k)
	if !ok {
		var zero V
		return zero
	}
	return t.slots[i].val
}

// ref returns k's count to change, giving k a slot (a zero count) if it
// has none. The caller leaves the count non-zero, or sets it to zero and
// calls forget; the pointer is good until the next ref or forget.
func (t *countTable[V]) ref(k uint64) *V {
	if 8*(t.n+1) > 7*len(t.slots) {
		t.grow()
	}
	i, ok, h := t.find(k)
	if !ok {
		t.tags[i], t.slots[i] = tagOf(h), countSlot[V]{key: k}
		t.n++
	}
	return &t.slots[i].val
}

func (t *countTable[V]) grow() {
	tags, slots := t.tags, t.slots
	n := max(8, 2*len(slots))
	t.tags, t.slots = make([]uint8, n), make([]countSlot[V], n)
	mask := uint64(n - 1)
	for j, tag := range tags {
		if tag == 0 {
			continue
		}
		h := t.hash(slots[j].key)
		i := h & mask
		for t.tags[i] != 0 {
			i = (i + 1) & mask
		}
		t.tags[i], t.slots[i] = tag, slots[j]
	}
}

// forget empties k's slot, once its count, changed through ref, is zero.
// The keys probed past it move back to fill it (no tombstones), so a
// probe still ends at the first empty slot.
func (t *countTable[V]) forget(k uint64) {
	if t.n == 0 {
		return
	}
	i, ok, _ := t.find(k)
	if !ok {
		return
	}
	mask := len(t.slots) - 1
	// i is now empty: move back the next key whose home is not in
	// (i, j], until an empty slot.
	for j := (i + 1) & mask; t.tags[j] != 0; j = (j + 1) & mask {
		home := int(t.hash(t.slots[j].key)) & mask
		if (j-home)&mask >= (j-i)&mask {
			t.tags[i], t.slots[i] = t.tags[j], t.slots[j]
			i = j
		}
	}
	t.tags[i], t.slots[i] = 0, countSlot[V]{}
	t.n--
}

// all yields every key with its count. The table must not change while
// it does.
func (t *countTable[V]) all() iter.Seq2[uint64, V] {
	return func(yield func(uint64, V) bool) {
		for i, tag := range t.tags {
			if tag != 0 && !yield(t.slots[i].key, t.slots[i].val) {
				return
			}
		}
	}
}

// consistent reports whether the table finds every key it holds, holds
// no zero count, and counts its keys right, as Check verifies.
func (t *countTable[V]) consistent() bool {
	var zero V
	n := 0
	for k, v := range t.all() {
		if v == zero || t.get(k) != v {
			return false
		}
		n++
	}
	return n == t.n
}
