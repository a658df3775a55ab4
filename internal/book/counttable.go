package book

import (
	"iter"
	"math/bits"
	"math/rand/v2"

	"github.com/pexnet/pex/internal/addr"
)

// countTable holds counts by a 64-bit key: the loads of network groups
// (Book.loads) and of buckets (Book.bucketLoad). It is an open-addressing
// hash table probed linearly, as peerTable is, whose slots hold a key and
// its count side by side and in which a zero count is an empty slot: a
// key whose count falls to zero is forgotten (forget). Adding an entry to
// the book looks up keys it mostly does not hold yet (a new group, a new
// bucket) and then gives them a slot: the probe and the slot it ends at
// are one stretch of memory. A count is read and changed in one probe
// (ref), where a Go map looks its key up once to read and again to
// write. Keys are mixed with a secret drawn per table, so nobody can
// choose groups whose keys collide, and the order in which all yields
// them is no order the book may depend on.
type countTable[V comparable] struct {
	slots []countSlot[V]
	n     int
	seed  uint64
	// gen counts the changes that take a slot or move keys (a key given
	// a slot, forget, grow): a slot found since the last one is still
	// the key's (see spot).
	gen uint64
}

// spot is where find left a key: its slot, or the empty slot its probe
// ended at, good while the table's gen is the one it holds (ok).
type spot struct {
	i   int
	gen uint64
	ok  bool
}

type countSlot[V comparable] struct {
	key uint64
	val V // the zero V: the slot is empty
}

func newCountTable[V comparable]() countTable[V] {
	return countTable[V]{seed: rand.Uint64()}
}

func (t *countTable[V]) len() int { return t.n }

// home is the slot where k's probe begins: its mixed key scaled to the
// table's size, which is not always a power of two (tableSize).
func (t *countTable[V]) home(k uint64) int {
	hi, _ := bits.Mul64(addr.Mix(k^t.seed), uint64(len(t.slots)))
	return int(hi)
}

// next is the slot a probe reads after i: the first after the last.
func (t *countTable[V]) next(i int) int {
	if i++; i == len(t.slots) {
		return 0
	}
	return i
}

// dist is how far slot j is from slot i, probing on from i.
func (t *countTable[V]) dist(i, j int) int {
	if j < i {
		j += len(t.slots)
	}
	return j - i
}

// tableSize is the size a hash table of size n grows to: n half again
// from a power of two, a third again from half-way, 8, 12, 16, 24, 32 and
// so on. A table holds from 7/12 to 7/8 of its slots once it has grown,
// where doubling leaves from 7/16 to 7/8: a book of 1,000 groups has
// 1,536 slots, not 2,048.
func tableSize(n int) int {
	switch {
	case n < 8:
		return 8
	case n&(n-1) == 0:
		return n + n/2
	}
	return n / 3 * 4
}

// get returns k's count, zero if none.
func (t *countTable[V]) get(k uint64) V {
	var zero V
	if t.n == 0 {
		return zero
	}
	for i := t.home(k); ; i = t.next(i) {
		switch s := &t.slots[i]; {
		case s.val == zero:
			return zero
		case s.key == k:
			return s.val
		}
	}
}

// find is get, and where the probe for k ended, for refAt: adding an
// entry reads its counts, then changes them.
func (t *countTable[V]) find(k uint64) (V, spot) {
	var zero V
	if len(t.slots) == 0 {
		return zero, spot{}
	}
	for i := t.home(k); ; i = t.next(i) {
		switch s := &t.slots[i]; {
		case s.val == zero:
			return zero, spot{i: i, gen: t.gen, ok: true}
		case s.key == k:
			return s.val, spot{i: i, gen: t.gen, ok: true}
		}
	}
}

// ref returns k's count to change, giving k a slot (a zero count) if it
// has none. The caller leaves the count non-zero, or sets it to zero and
// calls forget; the pointer is good until the next ref or forget.
func (t *countTable[V]) ref(k uint64) *V { return t.refAt(k, spot{}) }

// refAt is ref for k, which find left at sp: while no slot has been
// taken or moved since, k's probe ends there again, and is not made
// twice.
func (t *countTable[V]) refAt(k uint64, sp spot) *V {
	var zero V
	if sp.ok && sp.gen == t.gen && t.slots[sp.i].val != zero {
		return &t.slots[sp.i].val // k's own: a probe stops at no other full slot
	}
	if 8*(t.n+1) > 7*len(t.slots) {
		t.grow()
	}
	i := sp.i
	if !sp.ok || sp.gen != t.gen {
		for i = t.home(k); t.slots[i].val != zero; i = t.next(i) {
			if t.slots[i].key == k {
				return &t.slots[i].val
			}
		}
	}
	t.slots[i].key = k
	t.n++
	t.gen++
	return &t.slots[i].val
}

func (t *countTable[V]) grow() {
	t.gen++
	slots := t.slots
	t.slots = make([]countSlot[V], tableSize(len(slots)))
	var zero V
	for _, s := range slots {
		if s.val == zero {
			continue
		}
		i := t.home(s.key)
		for t.slots[i].val != zero {
			i = t.next(i)
		}
		t.slots[i] = s
	}
}

// forget empties k's slot, once its count, changed through ref, is zero.
// The keys probed past it move back to fill it (no tombstones), so a
// probe still ends at the first empty slot.
func (t *countTable[V]) forget(k uint64) {
	if t.n == 0 {
		return
	}
	var zero V
	i := t.home(k)
	for t.slots[i].val != zero {
		i = t.next(i)
	}
	// The probe for k ends at its own slot, the first empty one.
	if t.slots[i].key != k {
		return
	}
	t.gen++
	// Move back the next key whose home is not in (i, j], until an
	// empty slot.
	for j := t.next(i); t.slots[j].val != zero; j = t.next(j) {
		if t.dist(t.home(t.slots[j].key), j) >= t.dist(i, j) {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = countSlot[V]{}
	t.n--
}

// all yields every key with its count. The table must not change while
// it does.
func (t *countTable[V]) all() iter.Seq2[uint64, V] {
	return func(yield func(uint64, V) bool) {
		var zero V
		for _, s := range t.slots {
			if s.val != zero && !yield(s.key, s.val) {
				return
			}
		}
	}
}

// consistent reports whether the table finds every key it holds and
// counts them right, as Check verifies.
func (t *countTable[V]) consistent() bool {
	n := 0
	for k, v := range t.all() {
		if t.get(k) != v {
			return false
		}
		n++
	}
	return n == t.n
}
