package book

import (
	"iter"
	"math/rand/v2"

	"github.com/pexnet/pex/internal/addr"
)

// countTable holds counts by a 64-bit key: the loads of network groups
// (Book.loads) and of buckets (Book.bucketLoad). It is an open-addressing
// hash table probed linearly, as peerTable is, in which a zero count is
// an empty slot: a key whose count falls to zero is forgotten (forget). A
// count is read and changed in one probe (ref), where a Go map looks its
// key up once to read and again to write; adding an entry reads three
// counts and changes them. Keys are mixed with a secret drawn per table,
// so nobody can choose groups whose keys collide, and the order in which
// all yields them is no order the book may depend on.
type countTable[V comparable] struct {
	keys []uint64
	vals []V // the zero V: the slot is empty
	n    int
	seed uint64
}

func newCountTable[V comparable]() countTable[V] {
	return countTable[V]{seed: rand.Uint64()}
}

func (t *countTable[V]) len() int { return t.n }

// home is the slot where k's probe begins.
func (t *countTable[V]) home(k uint64) int {
	return int(addr.Mix(k^t.seed) & uint64(len(t.keys)-1))
}

// get returns k's count, zero if none.
func (t *countTable[V]) get(k uint64) V {
	var zero V
	if t.n == 0 {
		return zero
	}
	mask := len(t.keys) - 1
	for i := t.home(k); ; i = (i + 1) & mask {
		switch {
		case t.vals[i] == zero:
			return zero
		case t.keys[i] == k:
			return t.vals[i]
		}
	}
}

// ref returns k's count to change, giving k a slot if it has none. The
// caller leaves the count non-zero, or sets it to zero and calls forget;
// the pointer is good until the next ref or forget.
func (t *countTable[V]) ref(k uint64) *V {
	if 8*(t.n+1) > 7*len(t.keys) {
		t.grow()
	}
	var zero V
	mask := len(t.keys) - 1
	i := t.home(k)
	for ; t.vals[i] != zero; i = (i + 1) & mask {
		if t.keys[i] == k {
			return &t.vals[i]
		}
	}
	t.keys[i] = k
	t.n++
	return &t.vals[i]
}

func (t *countTable[V]) grow() {
	keys, vals := t.keys, t.vals
	n := max(8, 2*len(keys))
	t.keys, t.vals = make([]uint64, n), make([]V, n)
	var zero V
	mask := n - 1
	for j, v := range vals {
		if v == zero {
			continue
		}
		i := t.home(keys[j])
		for t.vals[i] != zero {
			i = (i + 1) & mask
		}
		t.keys[i], t.vals[i] = keys[j], v
	}
}

// forget empties k's slot once its count, changed through ref, is zero.
// The keys probed past it move back to fill it (no tombstones), so a
// probe still ends at the first empty slot.
func (t *countTable[V]) forget(k uint64) {
	var zero V
	mask := len(t.keys) - 1
	i := t.home(k)
	for t.vals[i] != zero {
		i = (i + 1) & mask
	}
	// The probe for k ends at its own slot, the first empty one.
	if t.keys[i] != k {
		return
	}
	// Move back the next key whose home is not in (i, j], until an
	// empty slot.
	for j := (i + 1) & mask; t.vals[j] != zero; j = (j + 1) & mask {
		if (j-t.home(t.keys[j]))&mask >= (j-i)&mask {
			t.keys[i], t.vals[i] = t.keys[j], t.vals[j]
			i = j
		}
	}
	t.keys[i], t.vals[i] = 0, zero
	t.n--
}

// all yields every key with its count. The table must not change while
// it does.
func (t *countTable[V]) all() iter.Seq2[uint64, V] {
	return func(yield func(uint64, V) bool) {
		var zero V
		for i, v := range t.vals {
			if v != zero && !yield(t.keys[i], v) {
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
