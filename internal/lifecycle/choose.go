package lifecycle

import (
	"time"

	"github.com/pexnet/pex/internal/addr"
)

// DialCandidates is how many dialable entries Pick weighs: the best scored
// of a few drawn at random, so good peers are preferred without the book's
// top ranks taking every dial (which an attacker could aim at).
const DialCandidates = 4

// Pick chooses whom to dial among n entries, looking from start onwards
// (wrapping round) at the first DialCandidates that due says may be dialled
// now, and taking the best scored (the first among equals). It returns -1
// if none may.
func Pick(n, start int, due func(i int) (score int, ok bool)) int {
	best, bestScore, found := -1, 0, 0
	for k := 0; k < n && found < DialCandidates; k++ {
		i := (start + k) % n
		score, ok := due(i)
		if !ok {
			continue
		}
		found++
		if best < 0 || score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// Inbound is a connected inbound peer that a newcomer could displace.
type Inbound struct {
	ID          addr.NodeID
	Group       uint64 // network group of the address we know it by
	Score       int
	ConnectedAt time.Time
}

// Victim returns the index of the inbound peer to displace for a newcomer
// of group newcomer (addr.NoGroup for a dial of our own), or -1 if cands is
// empty. It comes from the network group with the most inbound
// connections, the newcomer counted in its group, as in Bitcoin: sybils
// from one subnet that keep dialling displace each other, not honest peers
// spread over many networks. Within the group the lowest scored goes, the
// youngest among equals (long-lived peers are the hardest for an attacker
// to fake), then the highest ID, so the choice does not depend on order.
func Victim(cands []Inbound, newcomer uint64) int {
	size := map[uint64]int{newcomer: 1}
	for _, c := range cands {
		size[c.Group]++
	}
	v, vsize := -1, 0
	for i, c := range cands {
		n := size[c.Group]
		if v < 0 || n > vsize || (n == vsize && worse(c, cands[v])) {
			v, vsize = i, n
		}
	}
	return v
}

// worse reports whether a should go before b, in one group.
func worse(a, b Inbound) bool {
	switch {
	case a.Score != b.Score:
		return a.Score < b.Score
	case !a.ConnectedAt.Equal(b.ConnectedAt):
		return a.ConnectedAt.After(b.ConnectedAt)
	}
	return a.ID > b.ID
}
