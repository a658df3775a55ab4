package walk

// The serving walk as it was when every answer passed over the whole
// book: the reference the windowed Server must agree with, answer for
// answer (TestServerIsTheReference).

import (
	"cmp"
	"slices"

	"github.com/pexnet/pex/internal/addr"
)

// refItem is what a book entry shows the walk: its Key (see Key) and its
// insertion sequence number, which grows with every entry the book takes.
// A book keeps its entries' items in one slice, in any order, and the
// walk names entries by their index in it.
type refItem struct {
	Key, Seq uint64
}

// refCursor is what a server has sent one connected requester: a walk over
// the book in the requester's order, once round, plus the news (entries
// inserted since the walk began that it had already passed), in laps. The
// zero refCursor has sent nothing; reset it when the requester disconnects,
// and the walk begins again at the same place.
type refCursor struct {
	active  bool
	lapDone bool   // the walk went all the way round
	cursor  uint64 // rank of the last entry walked
	origin  uint64 // where the walk began
	newsTop uint64 // entries inserted from here on are in no lap yet
	laps    []refLap
}

// refLap is one lap of news for a requester: the entries inserted in
// [from, to) that its walk had passed, in the order of Mix(key ^ salt),
// sent up to the key at once begun. A lap that is done is emptied
// (to = from) and dropped.
type refLap struct {
	from, to, salt, at uint64
	begun              bool
	waited             int // answers in a row that had no room for it
}

// refServer serves walks from one book. It holds scratch space only, so a
// book keeps one and uses it under its lock.
type refServer struct {
	walk, news []refRanked
	cand       []refRanked // nextRun's candidates
	laps       [MaxNewsLaps][]refRanked
}

// refRanked is a candidate entry (its index) and its distance after the
// cursor.
type refRanked struct {
	d uint64
	i int
}

// Next advances c by one answer of at most want entries to the requester
// whose key is to, from a server whose key is self, over the book's items
// (in any order), whose newest entry has sequence number top. ok says
// whether the entry of an index may be sent to this requester; rnd draws
// the order of a new lap of news. It emits the walk's run, in increasing
// rank, then the
// news: the news gets the room first and the walk takes what is left, so
// the walk only moves when all news is out and an entry it walked can
// never turn up again as news. The run goes first in the answer, so the
// requester can read where the walk stands.
func (s *refServer) Next(c *refCursor, items []refItem, self, to, top uint64, want int, ok func(int) bool, rnd func() uint64, emit func(int)) {
	if !c.active {
		st := Start(self, to)
		*c = refCursor{active: true, cursor: st, origin: st, newsTop: top + 1}
	}
	// In the first lap an answer holds the next run of the walk and the
	// news (entries added since the last answer that the walk has already
	// passed); after it, the news alone. Either way nothing is sent twice.
	lapLeft := c.origin - c.cursor - 1 // distances still ahead in the lap
	passed := func(it refItem) bool { return c.lapDone || Rank(it.Key, to)-c.cursor-1 > lapLeft }
	nr := s.nextNews(c, items, top, want, passed, ok, rnd)
	walkRoom := want - len(nr)
	w := s.walk[:0]
	if walkRoom > 0 && !c.lapDone {
		w = s.nextRun(c, items, to, lapLeft, walkRoom, ok, w)
		if len(w) < walkRoom {
			c.lapDone = true // the walk reached where it began
		}
		if len(w) > 0 {
			c.cursor += w[len(w)-1].d + 1
		}
	}
	for _, r := range w {
		emit(r.i)
	}
	for _, r := range nr {
		emit(r.i)
	}
	clear(w)
	clear(nr)
	s.walk, s.news = w[:0], nr[:0]
}

// nextRun returns the room entries that ok allows nearest after c's
// cursor in the lap (distance at most lapLeft), in increasing distance:
// fewer when the lap holds fewer.
//
// It ranks first and asks ok after. ok reads the book's entry itself,
// far from items in memory, so it is asked of the nearest candidates in
// order, about room of them, not of every entry that is among the nearest
// so far in a pass (in a random order, about room*ln(len(items)/room) of
// them). Only when ok refuses too many of the candidates does a second
// pass go on beyond them, asking as it goes. Either way the run is the
// one a single pass asking ok of every entry would choose.
func (s *refServer) nextRun(c *refCursor, items []refItem, to, lapLeft uint64, room int, ok func(int) bool, w []refRanked) []refRanked {
	k := room * refRunCandidates
	cand := s.cand[:0]
	for i, it := range items {
		d := Rank(it.Key, to) - c.cursor - 1
		if d > lapLeft || (len(cand) == k && d >= cand[0].d) {
			continue
		}
		cand = refPush(cand, refRanked{d, i}, k)
	}
	slices.SortFunc(cand, refByDistance)
	for _, r := range cand {
		if ok(r.i) {
			if w = append(w, r); len(w) == room {
				break
			}
		}
	}
	if len(w) < room && len(cand) == k {
		// The lap goes on past the candidates: the nearest entries
		// beyond them that ok allows make up the run. w, in decreasing
		// distance, is a max-heap.
		bound := cand[k-1].d
		slices.Reverse(w)
		for i, it := range items {
			d := Rank(it.Key, to) - c.cursor - 1
			if d > lapLeft || d <= bound || (len(w) == room && d >= w[0].d) {
				continue
			}
			if ok(i) {
				w = refPush(w, refRanked{d, i}, room)
			}
		}
		slices.SortFunc(w, refByDistance)
	}
	clear(cand)
	s.cand = cand[:0]
	return w
}

// refRunCandidates is how many candidates per entry of room nextRun ranks
// before it asks ok: enough that a second pass is rare (it needs ok to
// refuse more than half the nearest), few enough to keep the pass cheap.
const refRunCandidates = 2

// nextNews returns up to want entries of news for the requester of c:
// entries inserted since its walk began that the walk has passed, and
// that no answer has held yet.
//
// News goes out in laps, each in an order of its own drawn for this
// requester, so the peers that ask us for one long backlog each get
// another part of it first and pass it on to each other, rather than all
// the same part (any order common to them sends everyone the same first
// answer). While the walk goes on, one lap is open at a time, and the next
// begins with what was inserted since, once it is done. Once the walk is
// done, an answer opens a lap for what was inserted since the last one
// began, if anything was and fewer than MaxNewsLaps are open, and the
// newest lap goes first: what a peer whose walk is done still misses is
// what the network learnt last, and our oldest news it has mostly had from
// others since it last asked. A lap that has had no room in LapPatience
// answers in a row goes first in the next.
func (s *refServer) nextNews(c *refCursor, items []refItem, top uint64, want int, passed func(refItem) bool, ok func(int) bool, rnd func() uint64) []refRanked {
	news := s.news[:0]
	for len(news) < want {
		if c.newsTop <= top && (len(c.laps) == 0 || c.lapDone && len(c.laps) < MaxNewsLaps) {
			c.laps = append(c.laps, refLap{from: c.newsTop, to: top + 1, salt: rnd()})
			c.newsTop = top + 1
		}
		if len(c.laps) == 0 {
			break // nothing new
		}
		// One pass over the book: the next entries of each lap, one more
		// than an answer takes, to tell when a lap is done.
		next := s.laps[:len(c.laps)]
		for i, it := range items {
			seq := it.Seq
			if seq < c.laps[0].from || seq >= c.newsTop || !passed(it) {
				continue
			}
			li := len(c.laps) - 1
			for seq < c.laps[li].from {
				li--
			}
			l, h := &c.laps[li], next[li]
			if seq >= l.to {
				continue // in a lap that is done
			}
			k := addr.Mix(it.Key ^ l.salt)
			if (l.begun && k <= l.at) || (len(h) > want && k >= h[0].d) {
				continue
			}
			if ok(i) {
				next[li] = refPush(h, refRanked{k, i}, want+1)
			}
		}
		var taken [MaxNewsLaps]int
		take := func(i, n int) {
			h := next[i][taken[i]:]
			n = min(n, len(h), want-len(news))
			news = append(news, h[:n]...)
			taken[i] += n
		}
		for i := range next {
			slices.SortFunc(next[i], refByDistance)
		}
		// A lap that has waited LapPatience answers first, then the newest
		// (while the walk goes on, one is open).
		for i, l := range c.laps {
			if l.waited >= LapPatience {
				take(i, want)
				break
			}
		}
		for i := len(c.laps) - 1; i >= 0; i-- {
			take(i, want)
		}
		for i, h := range next {
			l := &c.laps[i]
			switch {
			case taken[i] == len(h):
				l.to = l.from // done: the rest of it went out
			case taken[i] > 0:
				l.at, l.begun, l.waited = h[taken[i]-1].d, true, 0
			default:
				l.waited++
			}
			clear(h)
			next[i] = h[:0]
		}
		c.laps = slices.DeleteFunc(c.laps, func(l refLap) bool { return l.to == l.from })
	}
	return news
}

func refByDistance(a, b refRanked) int { return cmp.Compare(a.d, b.d) }

// refPush adds r to h, a max-heap on d holding at most k entries.
func refPush(h []refRanked, r refRanked, k int) []refRanked {
	if len(h) < k {
		h = append(h, r)
		for i := len(h) - 1; i > 0; {
			parent := (i - 1) / 2
			if h[parent].d >= h[i].d {
				break
			}
			h[parent], h[i] = h[i], h[parent]
			i = parent
		}
		return h
	}
	h[0] = r
	for i := 0; ; {
		l, big := 2*i+1, i
		if l < len(h) && h[l].d > h[big].d {
			big = l
		}
		if l+1 < len(h) && h[l+1].d > h[big].d {
			big = l + 1
		}
		if big == i {
			return h
		}
		h[i], h[big] = h[big], h[i]
		i = big
	}
}
