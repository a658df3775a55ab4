package walk

import (
	"fmt"
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

// book is a serving book: entries in insertion order.
type book struct {
	ids    []addr.NodeID
	items  []Item
	server Server
	rnd    *rand.Rand
}

func (b *book) add(id addr.NodeID) {
	b.ids = append(b.ids, id)
	b.items = append(b.items, Item{Key: Key(id), Seq: uint64(len(b.items) + 1)})
}

func (b *book) serve(c *Cursor, self, to addr.NodeID, want int) []addr.NodeID {
	var out []addr.NodeID
	ok := func(i int) bool { return b.ids[i] != to }
	b.server.Next(c, b.items, Key(self), Key(to), uint64(len(b.items)), want, ok, b.rnd.Uint64, func(i int) {
		out = append(out, b.ids[i])
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
	var c Cursor

	// Before asking, the reader knows where the walk begins: the first
	// entry is the one of the server's book just after StartOf(a).
	require.Equal(t, Start(Key(a), Key(b)), rd.StartOf(a))
	first := srv.serve(&c, a, b, want)
	require.Len(t, first, want)
	start := rd.StartOf(a)
	for _, id := range srv.ids {
		if id != b && id != first[0] {
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
	// The run's density is the server's book: 399 entries but the
	// requester's own.
	require.InEpsilon(t, 398, x.Gaps/x.Range, 0.5)

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
	require.Len(t, seen, len(srv.ids)-1, "every entry but the requester's own, once")
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

// referenceRun is the run a single pass asking ok of every entry chooses.
func referenceRun(c *Cursor, items []Item, to, lapLeft uint64, room int, ok func(int) bool) []ranked {
	var w []ranked
	for i, it := range items {
		d := Rank(it.Key, to) - c.cursor - 1
		if d > lapLeft || (len(w) == room && d >= w[0].d) {
			continue
		}
		if ok(i) {
			w = pushBounded(w, ranked{d, i}, room)
		}
	}
	slices.SortFunc(w, byDistance)
	return w
}

// nextRun chooses the run a single pass would, whatever share of the
// entries ok refuses, and asks ok of few entries when it refuses few.
func TestNextRunIsTheSinglePassRun(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	var s Server
	for trial := range 400 {
		items := make([]Item, 1+rnd.IntN(3000))
		for i := range items {
			items[i] = Item{Key: rnd.Uint64(), Seq: uint64(i)}
		}
		refused := []float64{0, 0.1, 0.5, 0.7, 0.95, 1}[trial%6]
		allowed := make([]bool, len(items))
		for i := range allowed {
			allowed[i] = rnd.Float64() >= refused
		}
		asked := 0
		ok := func(i int) bool { asked++; return allowed[i] }
		c := &Cursor{active: true, cursor: rnd.Uint64()}
		c.origin = c.cursor + rnd.Uint64()
		lapLeft := c.origin - c.cursor - 1
		to, room := rnd.Uint64(), 1+rnd.IntN(120)
		want := referenceRun(c, items, to, lapLeft, room, func(i int) bool { return allowed[i] })
		got := s.nextRun(c, items, to, lapLeft, room, ok, nil)
		require.Equal(t, want, got, "trial %d", trial)
		if refused == 0 {
			require.LessOrEqual(t, asked, room, "trial %d", trial)
		}
	}
}
