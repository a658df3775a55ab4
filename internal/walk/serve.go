package walk

import (
	"cmp"
	"slices"

	"github.com/pexnet/pex/internal/addr"
)

// Entry is what a book entry shows the walk: its Key (see Key) and its
// insertion sequence number, which grows with every entry the book takes.
type Entry interface {
	WalkKey() uint64
	Seq() uint64
}

// Cursor is what a server has sent one connected requester: a walk over
// the book in the requester's order, once round, plus the news (entries
// inserted since the walk began that it had already passed), in laps. The
// zero Cursor has sent nothing; reset it when the requester disconnects,
// and the walk begins again at the same place.
type Cursor struct {
	active  bool
	lapDone bool   // the walk went all the way round
	cursor  uint64 // rank of the last entry walked
	origin  uint64 // where the walk began
	newsTop uint64 // entries inserted from here on are in no lap yet
	laps    []newsLap
}

// Active reports whether anything has been served from c.
func (c *Cursor) Active() bool { return c.active }

// LapDone reports whether c's walk has gone all the way round.
func (c *Cursor) LapDone() bool { return c.lapDone }

// Share is how much of the book the requester has had from c: the share
// of the order its walk has covered, 1 once the lap is done, 0 before the
// first answer.
func (c *Cursor) Share() float64 {
	switch {
	case !c.active:
		return 0
	case c.lapDone:
		return 1
	}
	return float64(c.cursor-c.origin) / (1 << 64)
}

// newsLap is one lap of news for a requester: the entries inserted in
// [from, to) that its walk had passed, in the order of Mix(key ^ salt),
// sent up to the key at once begun. A lap that is done is emptied
// (to = from) and dropped.
type newsLap struct {
	from, to, salt, at uint64
	begun              bool
	waited             int // answers in a row that had no room for it
}

// MaxNewsLaps bounds the laps of news open for one requester: more gain
// nothing, as a lap that waits goes first after LapPatience answers.
// LapPatience is how many answers in a row a lap can have no room in
// before it goes first, so that news coming as fast as answers go cannot
// hold older news back for as long as it comes. Guarded by the golden
// cold, partition and join runs.
const (
	MaxNewsLaps = 8
	LapPatience = 16
)

// Server serves walks from one book. It holds scratch space only, so a
// book keeps one and uses it under its lock.
type Server[E Entry] struct {
	walk, news []ranked[E]
	laps       [MaxNewsLaps][]ranked[E]
}

// ranked is a candidate entry and its distance after the cursor.
type ranked[E Entry] struct {
	d uint64
	e E
}

// Next advances c by one answer of at most want entries to the requester
// whose key is to, from a server whose key is self, over the book order
// (in any order), whose newest entry has sequence number top. ok says
// whether an entry may be sent to this requester; rnd draws the order of
// a new lap of news. It emits the walk's run, in increasing rank, then the
// news: the news gets the room first and the walk takes what is left, so
// the walk only moves when all news is out and an entry it walked can
// never turn up again as news. The run goes first in the answer, so the
// requester can read where the walk stands.
func (s *Server[E]) Next(c *Cursor, order []E, self, to, top uint64, want int, ok func(E) bool, rnd func() uint64, emit func(E)) {
	if !c.active {
		st := Start(self, to)
		*c = Cursor{active: true, cursor: st, origin: st, newsTop: top + 1}
	}
	// In the first lap an answer holds the next run of the walk and the
	// news (entries added since the last answer that the walk has already
	// passed); after it, the news alone. Either way nothing is sent twice.
	lapLeft := c.origin - c.cursor - 1 // distances still ahead in the lap
	passed := func(e E) bool { return c.lapDone || Rank(e.WalkKey(), to)-c.cursor-1 > lapLeft }
	nr := s.nextNews(c, order, top, want, passed, ok, rnd)
	walkRoom := want - len(nr)
	w := s.walk[:0]
	if walkRoom > 0 && !c.lapDone {
		for _, e := range order {
			d := Rank(e.WalkKey(), to) - c.cursor - 1
			if d > lapLeft || (len(w) == walkRoom && d >= w[0].d) {
				continue
			}
			if ok(e) {
				w = pushBounded(w, ranked[E]{d, e}, walkRoom)
			}
		}
		slices.SortFunc(w, byDistance)
		if len(w) < walkRoom {
			c.lapDone = true // the walk reached where it began
		}
		if len(w) > 0 {
			c.cursor += w[len(w)-1].d + 1
		}
	}
	for _, r := range w {
		emit(r.e)
	}
	for _, r := range nr {
		emit(r.e)
	}
	clear(w)
	clear(nr)
	s.walk, s.news = w[:0], nr[:0]
}

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
func (s *Server[E]) nextNews(c *Cursor, order []E, top uint64, want int, passed, ok func(E) bool, rnd func() uint64) []ranked[E] {
	news := s.news[:0]
	for len(news) < want {
		if c.newsTop <= top && (len(c.laps) == 0 || c.lapDone && len(c.laps) < MaxNewsLaps) {
			c.laps = append(c.laps, newsLap{from: c.newsTop, to: top + 1, salt: rnd()})
			c.newsTop = top + 1
		}
		if len(c.laps) == 0 {
			break // nothing new
		}
		// One pass over the book: the next entries of each lap, one more
		// than an answer takes, to tell when a lap is done.
		next := s.laps[:len(c.laps)]
		for _, e := range order {
			seq := e.Seq()
			if seq < c.laps[0].from || seq >= c.newsTop || !passed(e) {
				continue
			}
			i := len(c.laps) - 1
			for seq < c.laps[i].from {
				i--
			}
			l, h := &c.laps[i], next[i]
			if seq >= l.to {
				continue // in a lap that is done
			}
			k := addr.Mix(e.WalkKey() ^ l.salt)
			if (l.begun && k <= l.at) || (len(h) > want && k >= h[0].d) {
				continue
			}
			if ok(e) {
				next[i] = pushBounded(h, ranked[E]{k, e}, want+1)
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
			slices.SortFunc(next[i], byDistance)
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
		c.laps = slices.DeleteFunc(c.laps, func(l newsLap) bool { return l.to == l.from })
	}
	return news
}

func byDistance[E Entry](a, b ranked[E]) int { return cmp.Compare(a.d, b.d) }

// pushBounded adds r to h, a max-heap on d holding at most k entries.
func pushBounded[E Entry](h []ranked[E], r ranked[E], k int) []ranked[E] {
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

// OpenLaps is how many laps of news c holds open.
func (c *Cursor) OpenLaps() int { return len(c.laps) }
