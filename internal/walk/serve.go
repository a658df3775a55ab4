package walk

import (
	"cmp"
	"math"
	"math/bits"
	"slices"

	"github.com/pexnet/pex/internal/addr"
)

// Entry is a book entry as the walk sees it: E names it to the book, Key
// is the Key of its node ID.
type Entry[E comparable] struct {
	E   E
	Key uint64
}

// Log is the book a walk is served from: its entries in the order the
// book took them (increasing sequence numbers, which grow with every entry
// the book takes), Seq telling an entry's, and Top, the newest entry's.
// The book may leave entries it removed in Entries for a while, as long as
// ok refuses them; and it may log an entry again, as news once more, at
// the end under a new sequence number, leaving a removed stand-in in its
// old place: a window that holds it twice sends it once.
type Log[E comparable] struct {
	Entries []Entry[E]
	Seq     func(E) uint64
	Top     uint64
}

// from returns the index of the first entry of l whose sequence number is
// at least seq: entries are in increasing sequence, so a binary search.
func (l Log[E]) from(seq uint64) int {
	i, _ := slices.BinarySearchFunc(l.Entries, seq, func(e Entry[E], seq uint64) int { return cmp.Compare(l.Seq(e.E), seq) })
	return i
}

// Cursor is what a server has sent one connected requester: a walk over
// the book in the requester's order, once round, plus the news (entries
// inserted since the walk began that it had already passed), in laps. The
// zero Cursor has sent nothing; reset it when the requester disconnects,
// and the walk begins again at the same place.
type Cursor[E comparable] struct {
	active  bool
	lapDone bool   // the walk went all the way round
	cursor  uint64 // rank of the last entry walked
	origin  uint64 // where the walk began
	newsTop uint64 // entries inserted from here on are in no lap yet
	laps    []newsLap[E]
	win     window[E]
}

// Active reports whether anything has been served from c.
func (c *Cursor[E]) Active() bool { return c.active }

// LapDone reports whether c's walk has gone all the way round.
func (c *Cursor[E]) LapDone() bool { return c.lapDone }

// Share is how much of the book the requester has had from c: the share
// of the order its walk has covered, 1 once the lap is done, 0 before the
// first answer.
func (c *Cursor[E]) Share() float64 {
	switch {
	case !c.active:
		return 0
	case c.lapDone:
		return 1
	}
	return float64(c.cursor-c.origin) / (1 << 64)
}

// newsLap is one lap of news for a requester: the entries inserted in a
// range of sequence numbers that its walk had passed when the lap began
// (which the walk cannot change while the lap is open: the walk only
// moves once the news is out), in the order of Mix(key ^ salt). Sent
// entries, and those ok refused before them, are cut from the front; a
// lap that is done is dropped.
type newsLap[E comparable] struct {
	ents   []ranked[E] // d is Mix(key ^ salt)
	top    uint64      // the newest sequence number it holds
	waited int         // answers in a row that had no room for it
	done   bool
}

// window is the stretch of the walk just ahead of the cursor, gathered by
// one pass over the book, so that a run is taken from it and not from a
// pass per answer: it holds every entry whose rank is in (cursor, end],
// ahead those the pass found and pending those inserted there since. A
// pass gathers 1/windowShare of the book: a lap costs windowShare passes
// whatever the book holds (about 30 entries looked at per entry of an
// answer of 100), a run the entries it takes, and a window 1/windowShare
// of the book's entries per requester. Entries are ranked by d, their
// rank less base; end is base + bound.
type window[E comparable] struct {
	ahead   []ranked[E] // sorted by d; those before head are behind the cursor
	head    int
	pending []ranked[E] // sorted by d
	base    uint64
	bound   uint64
	end     uint64
	synced  uint64 // entries of this sequence number on have not been looked at
	full    bool   // end is the lap's end
	open    bool   // gathered
}

// windowShare is the part of the book a window gathers (see window): at
// 32, a window costs half a byte per entry of the book and requester (50
// requesters mid-walk, 25 bytes per address), and the passes a fraction
// of what the entries an answer sends cost to read.
const windowShare = 32

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
type Server[E comparable] struct {
	walk, news []ranked[E]
	laps       [MaxNewsLaps][]int // nextNews's picks, as indices in each lap
	spare      []ranked[E]        // a window's entries, between windows not kept
	buckets    []int32            // sortByDistance's
}

// ranked is an entry and its distance: its rank after a cursor or a
// window's base, or its place in a lap of news.
type ranked[E comparable] struct {
	d uint64
	e E
}

// Next advances c by one answer of at most want entries to the requester
// whose key is to, from a server whose key is self, over the book log.
// ok says whether an entry may be sent to this requester (never one the
// book removed); rnd draws the order of a new lap of news; keep says c
// will serve this requester again, so a window worth many answers is
// worth gathering (else only this answer's run is). It emits the walk's
// run, in increasing rank, then the news: the news gets the room first
// and the walk takes what is left, so the walk only moves when all news
// is out and an entry it walked can never turn up again as news. The run
// goes first in the answer, so the requester can read where the walk
// stands.
//
// The answer is the one a pass over the whole book would choose: the
// nearest entries ok allows in the lap, and the first entries of each
// lap of news that ok allows. It costs the entries it looks at, the new
// entries since c's last answer and, amortised, 1/windowShare of a pass
// over the book (see window); not a pass.
func (s *Server[E]) Next(c *Cursor[E], log Log[E], self, to uint64, want int, keep bool, ok func(E) bool, rnd func() uint64, emit func(E)) {
	if !c.active {
		st := Start(self, to)
		*c = Cursor[E]{active: true, cursor: st, origin: st, newsTop: log.Top + 1}
	}
	// In the first lap an answer holds the next run of the walk and the
	// news (entries added since the last answer that the walk has already
	// passed); after it, the news alone. Either way nothing is sent twice.
	lapLeft := c.origin - c.cursor - 1 // distances still ahead in the lap
	passed := func(key uint64) bool { return c.lapDone || Rank(key, to)-c.cursor-1 > lapLeft }
	nr := s.nextNews(c, log, want, passed, ok, rnd)
	walkRoom := want - len(nr)
	w := s.walk[:0]
	if walkRoom > 0 && !c.lapDone {
		w = s.nextRun(c, log, to, lapLeft, walkRoom, keep, ok, w)
		if len(w) < walkRoom {
			c.lapDone = true // the walk reached where it began
			c.win = window[E]{}
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

// nextRun returns the room entries that ok allows nearest after c's
// cursor in the lap (distance at most lapLeft), in increasing distance:
// fewer when the lap holds fewer. It takes them from c's window, first
// adding to it the entries inserted there since the last answer, and
// gathers a window when there is none, or a wider one when ok refuses the
// rest of it and the lap goes on; it leaves in the window what is still
// ahead of the run, up to twice what a window gathers.
func (s *Server[E]) nextRun(c *Cursor[E], log Log[E], to, lapLeft uint64, room int, keep bool, ok func(E) bool, w []ranked[E]) []ranked[E] {
	win := &c.win
	target, step := windowBound(len(log.Entries), room, keep)
	if win.open {
		s.sync(c, log, to)
	}
	from := uint64(0) // distances before it have been looked at
	for {
		if !win.open {
			s.gather(c, log, to, min(step, lapLeft), lapLeft)
		}
		shift := c.cursor + 1 - win.base
		var out bool
		w, out = win.take(shift, from, room, ok, w)
		if !out || win.full {
			break
		}
		// The window ran out before the run was full and the lap ends
		// beyond it: gather one twice as wide, or wider by a window if
		// more, and go on past it. An answer that ok refuses most of the
		// lap to costs a few passes, not one per window.
		covered := win.bound - shift
		from = covered + 1
		bound := covered + max(step, covered)
		if bound < covered || bound > lapLeft {
			bound = lapLeft
		}
		s.gather(c, log, to, bound, lapLeft)
	}
	if len(w) > 0 {
		win.drop(c.cursor+1-win.base, w[len(w)-1].d)
	}
	if keep && target > room*runCandidates {
		win.trim(2 * target)
	} else {
		// A window no wider than one answer needs is gathered afresh for
		// each: its pass costs no more than the passes of windows kept
		// would, and it holds nothing between answers.
		clear(win.ahead)
		s.spare = win.ahead[:0]
		c.win = window[E]{}
	}
	return w
}

// windowBound returns how many entries a window of a book of n entries
// gathers (see window), room*runCandidates when the cursor is not kept,
// and the distance that many cover.
func windowBound(n, room int, keep bool) (target int, bound uint64) {
	target = room * runCandidates
	if keep {
		target = max(target, n/windowShare)
	}
	if target >= n {
		return target, math.MaxUint64
	}
	return target, uint64(float64(target) / float64(n) * (1 << 64))
}

// runCandidates is how many entries per entry of room a window holds at
// least: enough that ok must refuse half of them for a run to need a
// second pass.
const runCandidates = 2

// gather passes over the book for c's window: every entry at most bound
// after the cursor, sorted; the lap's end is lapLeft after it.
func (s *Server[E]) gather(c *Cursor[E], log Log[E], to, bound, lapLeft uint64) {
	win := &c.win
	if win.ahead == nil {
		win.ahead, s.spare = s.spare, nil
	}
	a := win.ahead[:0]
	base := c.cursor + 1
	for _, en := range log.Entries {
		if d := Rank(en.Key, to) - base; d <= bound {
			a = append(a, ranked[E]{d, en.E})
		}
	}
	s.sortByDistance(a, bound)
	clear(a[len(a):cap(a)]) // what a wider window left there, removed entries included
	clear(win.pending)
	*win = window[E]{
		ahead:   a,
		pending: win.pending[:0],
		base:    base,
		bound:   bound,
		end:     base + bound,
		synced:  log.Top + 1,
		full:    bound == lapLeft,
		open:    true,
	}
}

// sortByDistance sorts a, whose distances are at most bound, by
// distance, in place. Ranks are uniform, so buckets by the distance's top
// bits, one per few entries, hold a few entries each: a is permuted into
// its buckets (counted first), and each bucket sorted, in linear time
// where a comparison sort takes len(a)*log(len(a)).
func (s *Server[E]) sortByDistance(a []ranked[E], bound uint64) {
	b := max(bits.Len(uint(len(a)))-2, 0) // 2^b buckets, len(a)/8 to len(a)/4
	shift := max(bits.Len64(bound)-b, 0)  // bucket of distance d: d >> shift
	nb := 1 << b
	// next[k] is where bucket k's next entry goes, end[k] where it ends.
	s.buckets = slices.Grow(s.buckets[:0], 2*nb)[:2*nb]
	next, end := s.buckets[:nb], s.buckets[nb:]
	clear(end)
	for _, r := range a {
		end[r.d>>shift]++
	}
	at := int32(0)
	for k, n := range end {
		next[k] = at
		at += n
		end[k] = at
	}
	for k := range nb {
		for next[k] < end[k] {
			i := next[k]
			if kb := a[i].d >> shift; kb != uint64(k) {
				a[i], a[next[kb]] = a[next[kb]], a[i]
				next[kb]++
			} else {
				next[k]++
			}
		}
	}
	start := int32(0)
	for _, e := range end {
		bucket := a[start:e]
		if len(bucket) > 16 {
			// IDs ground to crowd one stretch of a requester's order
			// cost a comparison sort, not a quadratic one.
			slices.SortFunc(bucket, byDistance)
		} else {
			for i := 1; i < len(bucket); i++ {
				for j := i; j > 0 && bucket[j].d < bucket[j-1].d; j-- {
					bucket[j], bucket[j-1] = bucket[j-1], bucket[j]
				}
			}
		}
		start = e
	}
}

// sync adds to c's window the entries inserted since it last looked that
// are in it. The caller holds the window open.
func (s *Server[E]) sync(c *Cursor[E], log Log[E], to uint64) {
	win := &c.win
	if win.synced > log.Top {
		return
	}
	left := win.end - c.cursor - 1 // distances the window holds ahead
	n := len(win.pending)
	for _, en := range log.Entries[log.from(win.synced):] {
		r := Rank(en.Key, to)
		if r-c.cursor-1 <= left {
			win.pending = append(win.pending, ranked[E]{r - win.base, en.E})
		}
	}
	if len(win.pending) > n {
		slices.SortFunc(win.pending, byDistance)
	}
	win.synced = log.Top + 1
}

// take appends to w the entries of the window that ok allows, in
// increasing distance after the cursor (shift after the base), from
// distance from on, until w holds room. out reports that the window ran
// out first.
func (win *window[E]) take(shift, from uint64, room int, ok func(E) bool, w []ranked[E]) (_ []ranked[E], out bool) {
	after := func(r ranked[E], d uint64) int { return cmp.Compare(r.d-shift, d) }
	a, p := win.ahead[win.head:], win.pending
	i, _ := slices.BinarySearchFunc(a, from, after)
	j, _ := slices.BinarySearchFunc(p, from, after)
	for len(w) < room {
		var r ranked[E]
		switch {
		case i < len(a) && (j == len(p) || a[i].d < p[j].d):
			r, i = a[i], i+1
		case j < len(p):
			r, j = p[j], j+1
		default:
			return w, true
		}
		// An entry the book logged again (news once more) is in the
		// window twice, at one distance: it goes once.
		if ok(r.e) && (len(w) == 0 || w[len(w)-1].e != r.e) {
			w = append(w, ranked[E]{r.d - shift, r.e})
		}
	}
	return w, false
}

// drop takes out of the window what the run passed: the entries at most
// last after the cursor (shift after the base). A window whose end the
// run reached is closed.
func (win *window[E]) drop(shift, last uint64) {
	behind := func(rs []ranked[E]) int {
		k, _ := slices.BinarySearchFunc(rs, last, func(r ranked[E], d uint64) int {
			if r.d-shift <= d {
				return -1
			}
			return 1
		})
		return k
	}
	a := win.ahead[win.head:]
	k := behind(a)
	clear(a[:k])
	win.head += k
	k = behind(win.pending)
	n := copy(win.pending, win.pending[k:])
	clear(win.pending[n:])
	win.pending = win.pending[:n]
	if last == win.bound-shift {
		*win = window[E]{ahead: win.ahead[:0], pending: win.pending[:0]}
	}
}

// trim keeps at most limit of the entries the pass found ahead of the
// cursor, moving the window's end back to the last it keeps, so that a
// window widened for entries ok refused does not stay wide.
func (win *window[E]) trim(limit int) {
	a := win.ahead[win.head:]
	if !win.open || len(a) <= limit {
		return
	}
	last := a[limit-1].d
	clear(a[limit:])
	win.ahead = win.ahead[:win.head+limit]
	k, _ := slices.BinarySearchFunc(win.pending, last, func(r ranked[E], d uint64) int {
		if r.d <= d {
			return -1
		}
		return 1
	})
	clear(win.pending[k:])
	win.pending = win.pending[:k]
	win.bound, win.end, win.full = last, win.base+last, false
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
//
// A lap is sorted once, as it opens, from the entries inserted since the
// last one: an answer looks at the entries it sends and those ok refuses
// before them, not at the book.
func (s *Server[E]) nextNews(c *Cursor[E], log Log[E], want int, passed func(uint64) bool, ok func(E) bool, rnd func() uint64) []ranked[E] {
	news := s.news[:0]
	top := log.Top
	for len(news) < want {
		if c.newsTop <= top && (len(c.laps) == 0 || c.lapDone && len(c.laps) < MaxNewsLaps) {
			c.laps = append(c.laps, newLap(log, c.newsTop, rnd(), passed))
			c.newsTop = top + 1
		}
		if len(c.laps) == 0 {
			break // nothing new
		}
		// The next entries of each lap, one more than an answer takes, to
		// tell when a lap is done.
		next := s.laps[:len(c.laps)]
		for li := range c.laps {
			h := next[li][:0]
			for x, r := range c.laps[li].ents {
				// An entry logged again since the lap opened is
				// news of a later lap, or ahead of the walk.
				if log.Seq(r.e) <= c.laps[li].top && ok(r.e) {
					if h = append(h, x); len(h) > want {
						break
					}
				}
			}
			next[li] = h
		}
		var taken [MaxNewsLaps]int
		take := func(i, n int) {
			h := next[i][taken[i]:]
			n = min(n, len(h), want-len(news))
			for _, x := range h[:n] {
				news = append(news, c.laps[i].ents[x])
			}
			taken[i] += n
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
				l.done = true // the rest of it went out
			case taken[i] > 0:
				rest := l.ents[h[taken[i]-1]+1:]
				clear(l.ents[:len(l.ents)-len(rest)])
				l.ents, l.waited = rest, 0
			default:
				l.waited++
			}
			next[i] = h[:0]
		}
		c.laps = slices.DeleteFunc(c.laps, func(l newsLap[E]) bool { return l.done })
	}
	return news
}

// newLap opens a lap of news, salted salt, of the entries of log from
// sequence number seq on that passed allows, sorted.
func newLap[E comparable](log Log[E], seq, salt uint64, passed func(uint64) bool) newsLap[E] {
	var ents []ranked[E]
	for _, en := range log.Entries[log.from(seq):] {
		if passed(en.Key) {
			ents = append(ents, ranked[E]{addr.Mix(en.Key ^ salt), en.E})
		}
	}
	slices.SortFunc(ents, byDistance)
	return newsLap[E]{ents: ents, top: log.Top}
}

func byDistance[E comparable](a, b ranked[E]) int { return cmp.Compare(a.d, b.d) }

// OpenLaps is how many laps of news c holds open.
func (c *Cursor[E]) OpenLaps() int { return len(c.laps) }
