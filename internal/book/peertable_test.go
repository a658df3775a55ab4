package book

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/walk"
)

// TestPeerTable runs random insertions and deletions against a map:
// every entry stays found, none removed is, and all yields each once.
func TestPeerTable(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tab := newPeerTable()
	want := map[addr.NodeID]*peerInfo{}
	id := func() addr.NodeID { return addr.NodeID(fmt.Sprintf("%040x", r.IntN(3000))) }
	for step := range 100_000 {
		k := id()
		switch p := want[k]; {
		case p == nil && r.IntN(3) > 0:
			p = &peerInfo{id: k}
			tab.put(p)
			want[k] = p
		case p != nil && r.IntN(2) == 0:
			tab.del(k)
			delete(want, k)
		}
		if got := tab.get(k); got != want[k] {
			t.Fatalf("step %d: get(%s) = %v, want %v", step, k, got, want[k])
		}
		if step%5000 == 0 {
			seen := map[addr.NodeID]bool{}
			for id, p := range tab.all() {
				if seen[id] || want[id] != p {
					t.Fatalf("step %d: all yields %s twice or not stored", step, id)
				}
				seen[id] = true
			}
			if len(seen) != len(want) || tab.len() != len(want) {
				t.Fatalf("step %d: all yields %d, len %d, want %d", step, len(seen), tab.len(), len(want))
			}
			for id, p := range want {
				if tab.get(id) != p {
					t.Fatalf("step %d: %s lost", step, id)
				}
			}
		}
	}
	n := tab.len()
	tab.del("absent")
	if tab.len() != n {
		t.Fatal("deleting an absent ID changed the table")
	}
}

// TestPeerTableGrowFrom: growing from the book's log keeps exactly the
// entries not removed, and a log that does not hold the table's entries
// leaves growth to the table itself.
func TestPeerTableGrowFrom(t *testing.T) {
	for _, lost := range []bool{false, true} {
		tab := newPeerTable()
		var log []walk.Entry[*peerInfo]
		for i := 0; tab.n == 0 || !tab.full(); i++ {
			p := &peerInfo{id: addr.NodeID(fmt.Sprintf("%040x", i))}
			log = append(log, walk.Entry[*peerInfo]{E: p})
			if i%3 == 2 {
				p.mark(removed, true) // in the log, not in the table
			} else {
				tab.put(p)
			}
		}
		if lost {
			log = append(log[:1:1], log[2:]...) // the second entry is in the table
		}
		size := len(tab.slots)
		tab.growFrom(log)
		if len(tab.slots) != 2*size {
			t.Fatalf("lost=%v: %d slots after growing from %d", lost, len(tab.slots), size)
		}
		n := 0
		for id, p := range tab.all() {
			if p.is(removed) || tab.get(id) != p {
				t.Fatalf("lost=%v: %s held wrongly", lost, id)
			}
			n++
		}
		if n != tab.n {
			t.Fatalf("lost=%v: all yields %d, len %d", lost, n, tab.n)
		}
		for i := range 6 {
			if i%3 != 2 && tab.get(addr.NodeID(fmt.Sprintf("%040x", i))) == nil {
				t.Fatalf("lost=%v: entry %d lost", lost, i)
			}
		}
	}
}
