package walk

import (
	"math"

	"github.com/pexnet/pex/internal/addr"
)

// Kind is what came of one entry of an answer, as the requester counts it:
// news to us (New), an address we knew or had no room for (Known), or
// neither (Other: invalid, refused, ours).
type Kind uint8

const (
	Other Kind = iota
	New
	Known
)

// Reading is where one peer's walk through our order stands, as its
// answers show it. Use NewReading for a peer not heard from yet.
type Reading struct {
	Seen    bool    // a walk was seen, and From is set
	Walking bool    // its last answer held a run of its walk
	LapDone bool    // its last answer was not full: its walk is done, it sends news only
	From    uint64  // rank of the first entry of its walk
	At      uint64  // rank of the last entry of its last run
	Span    uint64  // how far its next run is expected to reach
	Len     int     // entries in its last run of two or more
	Overlap float64 // share of what we knew in its last run that its book held
	// Its last run of Sent+1 entries (0 if too short to tell) spanned a
	// stretch Range of our order (a share of it), where its book and ours
	// together hold Gaps+1 entries: the network holds at least about
	// Gaps/Range nodes, give or take a share 1/sqrt(Sent). Its own entries
	// alone would miss what it left out for having had it from us.
	Sent, Gaps, Range float64
}

// NewReading is the reading of a peer that has not answered: its book is
// taken to cover ours until a run shows otherwise.
func NewReading() Reading { return Reading{Overlap: 1} }

// Reader reads answers in the order of the node whose key is Self. Known
// counts the entries of its book whose rank is in the circular range
// (after, after+span].
type Reader struct {
	Self  uint64
	Known func(after, span uint64) int
}

// RankOf is where id stands in the reader's order.
func (r Reader) RankOf(id addr.NodeID) uint64 { return Rank(Key(id), r.Self) }

// StartOf is where peer id's walk for the reader begins: its first answer
// is the run of its book just after it.
func (r Reader) StartOf(id addr.NodeID) uint64 { return Start(Key(id), r.Self) }

// Observe reads an answer of peer into x, from the node IDs of its entries
// in the order sent (other than the peer's and ours; kinds[i] is what
// came of ids[i]). full says the answer was (nearly) full: one that is
// not ends the peer's lap. added and dup count the answer's new and known
// entries. A first answer that does not open with a run in increasing
// rank is a sample, not a walk; once a walk is seen, it is followed for
// good.
func (r Reader) Observe(x *Reading, peer addr.NodeID, ids []addr.NodeID, kinds []Kind, full bool, added, dup int) {
	x.LapDone = !full
	if x.Seen {
		r.follow(x, peer, ids, kinds)
		return
	}
	if len(ids) < 2 {
		return
	}
	// The walk comes first, in increasing rank.
	first := r.RankOf(ids[0])
	prev, k := uint64(0), 1
	for _, id := range ids[1:] {
		d := r.RankOf(id) - first
		if d <= prev {
			break
		}
		prev, k = d, k+1
	}
	if k < 2 || 2*k < len(ids) {
		x.Walking = false // a sample: no order to follow
		return
	}
	// The first run is all walk (there is no news before it).
	x.Walking = true
	x.Seen = true
	x.From = first
	r.take(x, first, prev, k, added, dup)
}

// follow reads the answer of a peer whose walk we have seen. Measured from
// where the walk began (StartOf), the run goes on past where the walk
// stood, in increasing rank; news follows it, made of entries the walk has
// passed, so the run ends at the first entry not beyond the one before
// (read from the run's first entry alone, news would look like more of the
// run, nearly a turn further on). An answer of news alone leaves the walk
// where it stood. Once the walk has gone round, news may hold entries past
// its last run (a lap's end is not sent): such an entry, if first, reads
// as a run of one, which only moves where the walk stands.
func (r Reader) follow(x *Reading, peer addr.NodeID, ids []addr.NodeID, kinds []Kind) {
	origin := r.StartOf(peer)
	end := x.At - origin // where the walk stands, from its start
	var first uint64
	k, added, dup := 0, 0, 0
	for i, id := range ids {
		pos := r.RankOf(id) - origin
		if pos <= end {
			break // news: the walk passed it
		}
		if k == 0 {
			first = pos
		}
		end = pos
		k++
		switch kinds[i] {
		case New:
			added++
		case Known:
			dup++
		}
	}
	if k == 0 {
		return
	}
	x.Walking = true
	r.take(x, origin+first, end-first, k, added, dup)
}

// take records a run of k entries, from rank first to first+prev, of
// which added were new to us and dup known. A run of one entry moves only
// where the walk stands.
func (r Reader) take(x *Reading, first, prev uint64, k, added, dup int) {
	x.At = first + prev
	if k < 2 {
		return
	}
	// How much of what we knew in that stretch the peer knew too: 1 when
	// its book covers ours, near 0 when it holds another part of the
	// network (after a partition, say).
	held := r.Known(first-1, prev+1) // ours in the stretch, with what it brought
	if before := held - added; before > 0 {
		x.Overlap = min(1, float64(dup)/float64(before))
	}
	x.Len = k
	if k >= minSizeRun {
		// The stretch spans prev ranks of 2^64, as far as its k entries
		// reach (so it is off by a share 1/sqrt(k)), and holds, in the
		// peer's book or ours, at least those and what we hold there:
		// the two books together hold about (held-1)/prev * 2^64 nodes,
		// the first entry being where the stretch starts. A walk leaves
		// out what we told the peer, so its k entries alone show less
		// than its book.
		x.Sent, x.Gaps, x.Range = float64(k-1), float64(max(k, held)-1), float64(prev)/(1<<64)
	}
	span := float64(prev) * float64(k) / float64(k-1)
	x.Span = uint64(min(span, math.MaxUint64/2))
}

// minSizeRun is the shortest run whose density is taken as a measure of
// the peer's book: a run of 10 is off by a third at most one time in
// twenty, and the size estimate pools runs and takes their lower bound.
const minSizeRun = 10
