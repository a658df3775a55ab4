package walk

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pexnet/pex/internal/addr"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func nodeID(i int) addr.NodeID { return addr.NodeID(fmt.Sprintf("%040x", i+1)) }

// entry is an entry of a serving book.
type entry struct {
	id      addr.NodeID
	seq     uint64
	removed bool
	refused bool // ok refuses it, whoever asks
}

// book is a serving book: entries in insertion order.
type book struct {
	log    []Entry[*entry]
	top    uint64
	server Server[*entry]
	rnd    *rand.Rand
}

func (b *book) add(id addr.NodeID) *entry {
	b.top++
	e := &entry{id: id, seq: b.top}
	b.log = append(b.log, Entry[*entry]{E: e, Key: Key(id)})
	return e
}

func (b *book) walkLog() Log[*entry] {
	return Log[*entry]{Entries: b.log, Seq: func(e *entry) uint64 { return e.seq }, Top: b.top}
}

func (b *book) serve(c *Cursor[*entry], self, to addr.NodeID, want int) []addr.NodeID {
	var out []addr.NodeID
	ok := func(e *entry) bool { return e.id != to && !e.removed && !e.refused }
	b.server.Next(c, b.walkLog(), Key(self), Key(to), want, true, ok, b.rnd.Uint64, func(e *entry) {
		out = append(out, e.id)
	})
	return out
}

// known is a reading node's own book, as the sorted ranks of its entries
// in its own order.
type known struct{ ranks []uint64 }

func (k *known) add(self, id addr.NodeID) {
	r := Rank(Key(id), Key(self))
	i, found := slices.BinarySearch(k.ranks, r)
	if !found {
		k.ranks = slices.Insert(k.ranks, i, r)
	}
}

func (k *known) has(self, id addr.NodeID) bool {
	_, found := slices.BinarySearch(k.ranks, Rank(Key(id), Key(self)))
	return found
}

func (k *known) count(after, span uint64) int {
	n := 0
	for _, r := range k.ranks {
		if r-after-1 < span {
			n++
		}
	}
	return n
}

// read has reader b take answer ids from a, adding what is new to its book.
func read(rd Reader, x *Reading, kb *known, b, a addr.NodeID, ids []addr.NodeID, want int) {
	kinds := make([]Kind, len(ids))
	added, dup := 0, 0
	for i, id := range ids {
		if kb.has(b, id) {
			kinds[i], dup = Known, dup+1
		} else {
			kinds[i], added = New, added+1
			kb.add(b, id)
		}
	}
	rd.Observe(x, a, ids, kinds, len(ids) >= want, added, dup)
}

// The walk a server sends is read by the requester at the exact place the
// server's cursor stands, through runs, news and the lap's end.
func TestServeOnAReadOnB(t *testing.T) {
	const want = 50
	a, b := nodeID(0), nodeID(1)
	srv := &book{rnd: rand.New(rand.NewPCG(1, 2))}
	for i := 2; i < 400; i++ {
		srv.add(nodeID(i))
	}
	srv.add(b) // the requester is in the server's book: never sent to itself
	kb := &known{}
	for i := 300; i < 500; i++ { // the reader knows part of the server's book, and more
		kb.add(b, nodeID(i))
	}
	rd := Reader{Self: Key(b), Known: kb.count}
	x := NewReading()
	var c Cursor[*entry]

	// Before asking, the reader knows where the walk begins: the first
	// entry is the one of the server's book just after StartOf(a).
	require.Equal(t, Start(Key(a), Key(b)), rd.StartOf(a))
	first := srv.serve(&c, a, b, want)
	require.Len(t, first, want)
	start := rd.StartOf(a)
	for _, e := range srv.log {
		if id := e.E.id; id != b && id != first[0] {
			require.Greater(t, rd.RankOf(id)-start-1, rd.RankOf(first[0])-start-1, "the walk opens with the first entry after its start")
		}
	}
	read(rd, &x, kb, b, a, first, want)
	require.True(t, x.Seen)
	require.True(t, x.Walking)
	require.False(t, x.LapDone)
	require.Equal(t, rd.RankOf(first[0]), x.From)
	require.Equal(t, c.cursor, x.At, "the reader stands where the server's cursor does")
	require.Equal(t, want, x.Len)
	// The stretch's density is that of the two books together: the
	// server's 398 entries but the requester's own, and the requester's
	// 200, 100 of them the server's.
	require.InEpsilon(t, 498, x.Gaps/x.Range, 0.5)

	// News the walk has passed, added after it began, comes after the next
	// run and does not move the reader past the server.
	var news []addr.NodeID
	for i := 1000; len(news) < 5; i++ {
		id := nodeID(i)
		if d := Rank(Key(id), Key(b)) - c.origin; d < c.cursor-c.origin {
			srv.add(id)
			news = append(news, id)
		}
	}
	second := srv.serve(&c, a, b, want)
	require.Len(t, second, want)
	require.Subset(t, second[want-len(news):], news, "news follows the run")
	read(rd, &x, kb, b, a, second, want)
	require.Equal(t, c.cursor, x.At)
	require.True(t, x.Walking)

	// To the lap's end: every answer leaves the reader where the cursor is.
	seen := map[addr.NodeID]int{}
	for _, id := range append(first, second...) {
		seen[id]++
	}
	for i := 0; !x.LapDone; i++ {
		require.Less(t, i, 20, "the lap ends")
		ids := srv.serve(&c, a, b, want)
		for _, id := range ids {
			seen[id]++
		}
		read(rd, &x, kb, b, a, ids, want)
		if !c.LapDone() {
			require.Equal(t, c.cursor, x.At)
		}
	}
	require.True(t, c.LapDone())
	require.Equal(t, 1.0, c.Share())
	require.Len(t, seen, len(srv.log)-1, "every entry but the requester's own, once")
	for id, n := range seen {
		require.Equal(t, 1, n, "%s sent once", id)
	}
}

// A sample (entries in no order) is not read as a walk.
func TestASampleIsNotAWalk(t *testing.T) {
	b := nodeID(1)
	kb := &known{}
	rd := Reader{Self: Key(b), Known: kb.count}
	x := NewReading()
	ids := make([]addr.NodeID, 0, 100)
	for i := 2; i < 102; i++ {
		ids = append(ids, nodeID(i))
	}
	// Sort by descending rank: no increasing run at all.
	slices.SortFunc(ids, func(p, q addr.NodeID) int {
		rp, rq := rd.RankOf(p), rd.RankOf(q)
		switch {
		case rp > rq:
			return -1
		case rp < rq:
			return 1
		}
		return 0
	})
	read(rd, &x, kb, b, nodeID(0), ids, 100)
	require.False(t, x.Seen)
	require.False(t, x.Walking)
}

// The windowed Server sends what a pass over the whole book per answer
// sends (the reference), answer for answer, as the book grows and loses
// entries, ok refuses entries and lets them through again, and
// requesters come and go: the walk's runs, its news and their order.
func TestServerIsTheReference(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	for trial := range 48 { // every book size, answer size and share refused
		n0 := []int{0, 3, 150, 3000}[trial%4]
		want := []int{1, 7, 100}[trial/4%3]
		refusing := []float64{0, 0.3, 0.9, 0.995}[trial/12%4]
		seed := rnd.Uint64()
		srv := &book{rnd: rand.New(rand.NewPCG(seed, 1))}
		refRnd := rand.New(rand.NewPCG(seed, 1))
		var ref refServer
		self := nodeID(0)
		requesters := []addr.NodeID{nodeID(1), nodeID(2), nodeID(3)}
		cursors := make([]Cursor[*entry], len(requesters))
		refCursors := make([]refCursor, len(requesters))
		next := 10
		addSome := func(k int) {
			for range k {
				e := srv.add(nodeID(next))
				e.refused = rnd.Float64() < refusing
				next++
			}
		}
		addSome(n0)
		srv.add(requesters[0]) // a requester in the book is never sent to itself
		for step := range 300 {
			switch x := rnd.IntN(21); {
			case x < 3:
				addSome(rnd.IntN(1 + n0/20 + 3*want))
			case x < 5:
				for range rnd.IntN(1 + n0/20) {
					if len(srv.log) > 0 {
						srv.log[rnd.IntN(len(srv.log))].E.removed = true
					}
				}
				if rnd.IntN(3) == 0 {
					srv.log = slices.DeleteFunc(srv.log, func(e Entry[*entry]) bool { return e.E.removed })
				}
			case x < 7:
				for range rnd.IntN(1 + n0/10) {
					if len(srv.log) > 0 {
						e := srv.log[rnd.IntN(len(srv.log))].E
						e.refused = rnd.Float64() < refusing
					}
				}
			case x < 8:
				j := rnd.IntN(len(requesters))
				cursors[j], refCursors[j] = Cursor[*entry]{}, refCursor{}
			case x < 9:
				// The book logs entries again, as news once more: at
				// the end, a removed stand-in in their old place.
				for range rnd.IntN(1 + n0/20) {
					if len(srv.log) == 0 {
						break
					}
					i := rnd.IntN(len(srv.log))
					e := srv.log[i].E
					if e.removed {
						continue
					}
					srv.log[i].E = &entry{id: e.id, seq: e.seq, removed: true}
					srv.top++
					e.seq = srv.top
					srv.log = append(srv.log, Entry[*entry]{E: e, Key: srv.log[i].Key})
				}
			default:
				j := rnd.IntN(len(requesters))
				to := requesters[j]
				ok := func(e *entry) bool { return e.id != to && !e.removed && !e.refused }
				var got []addr.NodeID
				srv.server.Next(&cursors[j], srv.walkLog(), Key(self), Key(to), want, true, ok, srv.rnd.Uint64, func(e *entry) {
					got = append(got, e.id)
				})
				var items []refItem
				var live []*entry
				for _, e := range srv.log {
					if !e.E.removed {
						items = append(items, refItem{Key: e.Key, Seq: e.E.seq})
						live = append(live, e.E)
					}
				}
				var wantIDs []addr.NodeID
				ref.Next(&refCursors[j], items, Key(self), Key(to), srv.top, want, func(i int) bool { return ok(live[i]) }, refRnd.Uint64, func(i int) {
					wantIDs = append(wantIDs, live[i].id)
				})
				require.Equal(t, wantIDs, got, "trial %d step %d", trial, step)
				require.Equal(t, refCursors[j].lapDone, cursors[j].lapDone, "trial %d step %d", trial, step)
				require.Equal(t, refCursors[j].cursor, cursors[j].cursor, "trial %d step %d", trial, step)
				require.Equal(t, len(refCursors[j].laps), cursors[j].OpenLaps(), "trial %d step %d", trial, step)
			}
		}
	}
}

// A one-off answer (a cursor not kept) is the first answer of a kept one.
func TestOneOffIsTheFirstAnswer(t *testing.T) {
	srv := &book{rnd: rand.New(rand.NewPCG(7, 8))}
	for i := 10; i < 5000; i++ {
		e := srv.add(nodeID(i))
		e.refused = i%3 == 0
	}
	self, to := nodeID(0), nodeID(1)
	ok := func(e *entry) bool { return !e.refused }
	answer := func(keep bool) []addr.NodeID {
		var c Cursor[*entry]
		var out []addr.NodeID
		srv.server.Next(&c, srv.walkLog(), Key(self), Key(to), 100, keep, ok, srv.rnd.Uint64, func(e *entry) { out = append(out, e.id) })
		return out
	}
	require.Equal(t, answer(true), answer(false))
}

// sortByDistance sorts whatever the distances: spread, crowded into one
// stretch (IDs ground to), or all equal.
func TestSortByDistance(t *testing.T) {
	rnd := rand.New(rand.NewPCG(9, 10))
	var s Server[int]
	for trial := range 200 {
		bound := []uint64{0, 5, 1 << 20, 1<<63 + 12345, math.MaxUint64}[trial%5]
		g := make([]ranked[int], rnd.IntN(3000))
		for i := range g {
			switch {
			case bound == 0:
			case trial%3 == 0: // crowded
				g[i].d = bound - rnd.Uint64N(min(bound, 50))
			default:
				g[i].d = rnd.Uint64N(bound) + 1
			}
			g[i].e = i
		}
		got := slices.Clone(g)
		s.sortByDistance(got, bound)
		require.True(t, slices.IsSortedFunc(got, byDistance), "trial %d", trial)
		byBoth := func(a, b ranked[int]) int { return cmp.Or(cmp.Compare(a.d, b.d), cmp.Compare(a.e, b.e)) }
		slices.SortFunc(g, byBoth)
		slices.SortFunc(got, byBoth)
		require.Equal(t, g, got, "trial %d", trial)
	}
}
