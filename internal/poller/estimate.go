package poller

import "math"

// NetworkSizeEstimate returns the estimated number of nodes in the network
// (ourselves excluded), never below the size of the address book. A pex
// peer's walk through our order shows how densely its book and ours
// together fill that order, hence how many nodes they know; pooled over
// the peers that walk, and taken at its lower bound (see walkedSize),
// that is the estimate. Without such peers (CometBFT and Tendermint peers
// send samples), it is the Schnabel mark-recapture estimate from how often
// recent responses repeated what we knew. Either is a floor: what no peer
// of ours holds does not show.
func (c *Core) NetworkSizeEstimate() int {
	return c.sizeFrom(c.walkedSize())
}

// sizeFrom is NetworkSizeEstimate for walked, the walking peers' book size
// (c.walkedSize()), worked out by a caller that needs it too.
func (c *Core) sizeFrom(walked int) int {
	if walked > 0 {
		return walked
	}
	return max(c.estimate.value(), c.bk.Len())
}

// walkedSize is the size of the network the walking peers show, never
// below our own book; 0 when no peer walks. Each walking peer's last run
// spans a stretch of our order, which its book and ours together fill
// (the walk leaves out what we told it, and we hold that). The runs are
// pooled: g gaps between the entries of both books over stretches r (as
// a share of our order) give g/r nodes, give or take a share 1/sqrt(s)
// for the s gaps of the runs that set the stretches, and the estimate is
// walkSizeZ such errors below that (see tuning.go): a single dense run
// must not pass for a network larger than ours.
func (c *Core) walkedSize() int {
	var sent, gaps, span float64
	for _, p := range c.peers {
		if p.w.Walking && p.w.Sent > 0 {
			sent += p.w.Sent
			gaps += p.w.Gaps
			span += p.w.Range
		}
	}
	if sent == 0 {
		return 0
	}
	est := gaps / span * (1 - walkSizeZ/math.Sqrt(sent))
	return max(int(est), c.bk.Len())
}

// sizeEstimator keeps Schnabel's mark-recapture sums over recent responses:
// each response is a sample of C addresses of which R were already among
// the M we knew, and N ~ sum(C*M) / sum(R). Older samples decay so the
// estimate follows a growing network.
type sizeEstimator struct {
	sumCM, sumR float64
}

func (s *sizeEstimator) observe(sample, recaptured, known int) {
	if sample == 0 {
		return
	}
	s.sumCM = s.sumCM*estimatorDecay + float64(sample)*float64(known)
	s.sumR = s.sumR*estimatorDecay + float64(recaptured)
}

func (s *sizeEstimator) value() int {
	if s.sumCM == 0 {
		return 0
	}
	// +1 keeps the estimate finite before any recapture (Chapman's
	// correction).
	return int(s.sumCM / (s.sumR + 1))
}
