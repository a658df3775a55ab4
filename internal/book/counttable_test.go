package book

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestCountTable runs random changes of counts against a map: every
// count stays found, a key whose count fell to zero is gone, and all
// yields each key once. The keys are few, so that they come and go
// often and forget has keys to move back, and structured (small values,
// and values whose low bits are zero), as network groups are. Counts are
// changed through ref, and through refAt with the spot find gave just
// before, or at some earlier step (the table may have changed since).
func TestCountTable(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tab := newCountTable[int32]()
	want := map[uint64]int32{}
	found := map[uint64]spot{} // where find left each key, at some step
	refOf := func(k uint64) *int32 {
		switch r.IntN(3) {
		case 0:
			return tab.ref(k)
		case 1:
			n, sp := tab.find(k)
			if n != want[k] {
				t.Fatalf("find(%d) = %d, want %d", k, n, want[k])
			}
			found[k] = sp
			return tab.refAt(k, sp)
		default:
			return tab.refAt(k, found[k])
		}
	}
	key := func() uint64 {
		if r.IntN(2) == 0 {
			return uint64(r.IntN(500))
		}
		return uint64(r.IntN(500)) << 20
	}
	for step := range 200_000 {
		k := key()
		switch n := want[k]; {
		case n == 0 || r.IntN(2) == 0:
			*refOf(k)++
			want[k]++
		default:
			c := refOf(k)
			if *c--; *c == 0 {
				tab.forget(k)
				delete(want, k)
			} else {
				want[k]--
			}
		}
		if got := tab.get(k); got != want[k] {
			t.Fatalf("step %d: get(%d) = %d, want %d", step, k, got, want[k])
		}
		if step%5000 == 0 {
			if !maps.Equal(maps.Collect(tab.all()), want) || tab.len() != len(want) || !tab.consistent() {
				t.Fatalf("step %d: the table holds %v (len %d), want %v", step, maps.Collect(tab.all()), tab.len(), want)
			}
		}
	}
	if tab.get(1<<40) != 0 {
		t.Fatal("a key never counted has a count")
	}
}

// A spot find gave is not trusted once another key has taken the empty
// slot it names: refAt looks the key up again.
func TestCountTableSpotTaken(t *testing.T) {
	tab := newCountTable[int32]()
	*tab.ref(1)++
	_, sp := tab.find(2) // 2 is not held: its probe ends at an empty slot
	other := uint64(3)
	for ; ; other++ {
		if _, s := tab.find(other); s.i == sp.i {
			break
		}
	}
	*tab.ref(other)++ // takes that slot
	*tab.refAt(2, sp)++
	if tab.get(2) != 1 || tab.get(other) != 1 || !tab.consistent() {
		t.Fatalf("counts %d and %d, want 1 and 1", tab.get(2), tab.get(other))
	}
}

// TestTableSize: tables grow by half and by a third in turn, from 8.
func TestTableSize(t *testing.T) {
	var got []int
	for n := 0; n < 100; n = tableSize(n) {
		got = append(got, tableSize(n))
	}
	if want := []int{8, 12, 16, 24, 32, 48, 64, 96, 128}; !slices.Equal(got, want) {
		t.Fatalf("sizes %v, want %v", got, want)
	}
}
