package poller

import (
	"math"
	"time"
)

// newsFloor is the least share of news expected from p when we may miss a
// share miss of the network (see missingAtMost): newsFloorGain times miss,
// growing to that over newsFloorRamp since we last asked it, and, while it
// grows, no faster than newsRateSlack times the pace of the peer's news
// (corePeer.newsRate, as a share of MaxAddresses), once that shows. It is
// for peers that have shown us their walk and are not in the middle of a
// fruitful one: their lap is done, or their last run brought nothing. It
// halves with each answer of the peer in a row, after the first, that
// brought nothing. What a node misses at the end is what the network
// learns last, and every peer picks that up in time, to send it as news
// when next asked. A peer in the middle of a fruitful walk is left to
// expectedYield, which reads its runs. The floor is for picking whom to
// ask, not for the pace (see peerMayTell): a peer that stays empty costs
// one request per interval, which slows as answers stay empty.
func newsFloor(now time.Time, p *corePeer, miss float64) float64 {
	if !p.answered || !p.w.Seen || (p.w.Walking && !p.w.LapDone && p.yield > 0) {
		return 0
	}
	f := newsFloorGain * miss * min(1, float64(now.Sub(p.lastSent))/float64(newsFloorRamp))
	if p.empties > 1 {
		// Its answers keep bringing nothing: it is no nearer to what we
		// miss than we are (a peer whose book we copied, say), so the
		// floor halves with each further one.
		f = math.Ldexp(f, 1-p.empties)
	}
	if since := now.Sub(p.lastSent); p.w.LapDone && p.newsRate >= 0 && since < newsFloorRamp {
		// While it ramps, the floor grows no faster than newsRateSlack
		// times the pace its news came at: a peer whose last answer
		// held a few entries of news gathers few more. At newsFloorRamp
		// it is whole at once.
		f = min(f, newsRateSlack*p.newsRate*since.Seconds()/MaxAddresses)
	}
	return f
}

// missingAtMost is the share of the network we may still miss: against
// the larger of the walking peers' book size (walked, from walkedSize)
// and the mark-recapture estimate. The latter reads high when answers are
// walks (they leave out what the peer knows we know), which is what the
// floor wants; but it reads far too high once peers ask each other (see
// mutualBonus), as their answers leave out all we told them. So it counts
// for at most estimateTrust times the larger of our book and walked.
func (c *Core) missingAtMost(walked int) float64 {
	known := c.bk.Len()
	est := min(c.estimate.value(), int(estimateTrust*float64(max(walked, known))))
	n := max(walked, est, known, 1)
	return 1 - float64(known)/float64(n)
}

// drawsOnUs reports whether p draws on us, for mutualBonus and toldBonus:
// it has had mutualAsks requests or more answered by us, did not dial us
// from a crowded subnet, and has not been asked by us on this connection.
func (p *corePeer) drawsOnUs() bool {
	return p.served >= mutualAsks && !p.crowded && p.lastSent.IsZero()
}

// expectedYield estimates the share of new addresses in p's next answer. A
// pex peer walks our order (see PeerManager.Advertise), so the ranks of the
// entries it last sent tell where its walk stands and how far its next run
// will reach; what we know in that stretch, times the share of our
// knowledge the peer turned out to hold, is what it will repeat. For a peer
// that does not walk (it samples), the share of its last answer stands in;
// for one whose lap is done (it will send only its news), that share times
// the news it is expected to have gathered since we asked it; a peer that
// has not answered yet is judged by firstAnswerYield, at unaskedYield or
// more while fewer than minSources peers are sources, and at what the size
// estimate says we miss, if over stallMiss, while answers keep bringing
// nothing (past stallAnswers), up to toldBonus more for one that has had
// our book from us and asked us lately, which is worth that share times
// the share of our book it has had as soon as one answer brought nothing;
// and, while we lack a second source, mutualBonus more if it has had
// mutualAsks requests answered by us (see there). A peer that has
// answered is judged by answeredYield, weighed by the share of its
// source group's news that proved live (book.NewsLasts). walked is
// c.walkedSize(), worked out once by the caller for all its peers.
func (c *Core) expectedYield(now time.Time, p *corePeer, walked int) float64 {
	if !p.answered {
		y := c.firstAnswerYield(p, walked)
		// A peer that has had our book from us and still asks leaves all
		// of it out of its answer (see toldBonus).
		told := p.drawsOnUs() && now.Sub(p.servedAt) <= toldLately
		if c.idle > stallAnswers || (c.idle > 0 && told) {
			// What we may miss counts past stallMiss: the estimate reads
			// that high when we miss nothing, and peers that dial us come
			// without end (attackers). But in a stall a peer we dialled
			// and never asked is worth whatever we may miss: our book
			// chose it, and its book is the second opinion the stall
			// needs (sources whose walks passed where the network's
			// last-learnt nodes sit bring them only as news, and a node
			// left asking them missed 1% of its network for minutes).
			chosen := c.idle > stallAnswers && c.chosenUnasked(p)
			if m := c.missingAtMost(walked); m > stallMiss || chosen {
				share := 0.0
				if told {
					share = c.bk.ToldShare(p.id)
				}
				// Once an answer brought nothing, it is worth what we
				// miss in proportion to the share of our book it has had.
				y = max(y, m*share)
				if c.idle > stallAnswers {
					// Answers keep bringing nothing while the size
					// estimate says we miss much of the network: our
					// sources hold no more than we do, and the walks,
					// which show their books, cannot tell. A peer that
					// has not answered is then worth what we miss, and
					// one that has had our book up to toldBonus more.
					y = max(y, m*(1+toldBonus*share))
				}
			}
		}
		if c.sources < minSources {
			// What one peer has shown us is its book, not the network:
			// its walk ends where its book does, and a book copied
			// from it looks complete. Until a second source has
			// answered, a peer that has not answered is worth a try.
			y = max(y, unaskedYield)
			if p.drawsOnUs() {
				// Of the peers that may be that source, one that asked
				// us leaves out what we sent it (see mutualBonus).
				y *= 1 + mutualBonus
			}
		}
		return y
	}
	// What a peer's news is worth is what of it stays: junk leaves the
	// book at its dials (see book.NewsLasts).
	return c.answeredYield(now, p) * c.bk.NewsLasts(p.id)
}

// firstAnswerYield is expectedYield for a peer that has not answered yet.
func (c *Core) firstAnswerYield(p *corePeer, walked int) float64 {
	// Its first answer is a run from a place in its book: about as
	// new as our book is short of the network, once walking peers have
	// shown the network's size. A fixed optimism here would
	// sample peer after peer (independent samples, the slow way)
	// instead of finishing the walks that cover the network.
	if n := walked; n > 0 {
		if float64(n) < joinAhead*float64(c.bk.Len()) {
			return 1 - float64(c.bk.Len())/float64(n)
		}
		// Peers' books are well ahead of ours: we are joining a
		// network that knows itself. Its first answer is the run of
		// about MaxAddresses of a book of n after where its walk for
		// us begins (PeerManager.WalkStartOf), and what we know there
		// it repeats: so the peer whose run lies in what we miss is
		// asked, not one whose run we hold. While books grow together
		// (a cold start) ours is no guide to a peer's run: we know
		// most where we walked others' books, which hold what a new
		// peer's partial book does not, and the share of the whole
		// network we miss is the better estimate.
		span := min(float64(MaxAddresses)/float64(n)*(1<<64), math.MaxUint64/2)
		known := c.bk.KnownInRank(c.bk.WalkStartOf(p.id), uint64(span))
		return max(0, 1-float64(known)/MaxAddresses)
	}
	// Unknown: worth a try, but not before a walk known to be good.
	return max(c.newShare, unaskedYield)
}

// answeredYield is expectedYield for a peer that has answered.
func (c *Core) answeredYield(now time.Time, p *corePeer) float64 {
	if p.w.LapDone {
		// It sends only what it learned since we last asked, which came
		// at newsRate lately: a request that brings a few addresses costs
		// a round like one that brings a hundred.
		news := float64(p.lastN)
		if p.w.Seen && p.newsRate >= 0 {
			// A pex peer (it walked): its news comes with time. A peer
			// that samples sends a sample of its book whenever asked.
			news = min(p.newsRate*now.Sub(p.lastSent).Seconds(), MaxAddresses)
		}
		return p.yield * news / MaxAddresses
	}
	if !p.w.Walking {
		return p.yield
	}
	if p.yield == 0 {
		// Its last run brought nothing: the model's estimate is noise
		// round zero, and the progress bonus below would keep asking it.
		// Others, even ones as empty, are tried first (the rotation's
		// order breaks ties): after a partition heals or newcomers join,
		// some peer learns first, and polling round finds it. Unless its
		// walk is about to reach a stretch we clearly miss (see aheadYield).
		return c.aheadYield(p)
	}
	known := c.bk.KnownInRank(p.w.At, p.w.Span)
	// The model can be wrong (books overlap unevenly); what the peer just
	// did is evidence too, so a share lastYieldFloor of its last yield is
	// a floor.
	y := max(p.yield*lastYieldFloor, p.storable*(1-p.w.Overlap*float64(known)/float64(p.w.Len)))
	// What we still miss is more likely in the part of its book a walk
	// has not shown us yet: if it holds a missing node with probability
	// q and has walked a share f of its lap without it, the node is in
	// the rest with probability q(1-f)/(1-qf), so its next run holds it
	// 1/(1-qf) times as often as a run of a fresh walk. Finishing walks
	// covers the network; sampling many (random places) does not.
	f := float64(p.w.At-p.w.From) / (1 << 64)
	return min(1, y/(1-walkHoldsMissing*f))
}

// aheadYield is the share of news per request that asking p again and
// again would bring over its next runs, up to lookAhead of them, counting
// only runs that hold a clear gap in our book (gapShare of the run or
// more, not the model's noise): the stretch a source whose share of the
// book was full walked past, say. A walk moves only forward, a run per
// answer, so when every walk is in ground we know, asking the one nearest
// a gap until it gets there beats asking each in turn, which moves them
// all as many times slower as we have peers.
func (c *Core) aheadYield(p *corePeer) float64 {
	best, sum := 0.0, 0.0
	at := p.w.At
	for j := 1; j <= lookAhead; j++ {
		known := c.bk.KnownInRank(at, p.w.Span)
		at += p.w.Span
		if y := 1 - p.w.Overlap*float64(known)/float64(p.w.Len); y >= gapShare {
			sum += y
			best = max(best, sum/float64(j))
		}
	}
	return p.storable * best
}
