package book

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pexnet/pex/internal/addr"
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
