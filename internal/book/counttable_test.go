package book

import (
	"maps"
	"math/rand/v2"
	"testing"
)

// TestCountTable runs random changes of counts against a map: every
// count stays found, a key whose count fell to zero is gone, and all
// yields each key once. The keys are few, so that they come and go
// often and forget has keys to move back, and structured (small values,
// and values whose low bits are zero), as network groups are.
func TestCountTable(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	tab := newCountTable[int32]()
	want := map[uint64]int32{}
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
			*tab.ref(k)++
			want[k]++
		default:
			c := tab.ref(k)
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
