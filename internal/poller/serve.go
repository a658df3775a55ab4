package poller

import (
	"fmt"
	"math"
	"time"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/errs"
	"github.com/pexnet/pex/internal/event"
)

// bucket is a token bucket for a peer's requests: RequestBurst tokens, one
// more per MinReceiveInterval; and how many of its requests we have
// answered on this connection, as far as we can tell (see mutualAsks),
// those before its Up too, and when we answered the last (see toldLately).
type bucket struct {
	tokens   float64
	at       time.Time
	served   int
	servedAt time.Time // when we last answered one of its requests, zero before
}

// take spends a token, refilling first; false means the peer asks too
// often.
func (b *bucket) take(now time.Time, cfg *Config) bool {
	if cfg.MinReceiveInterval <= 0 {
		return true
	}
	refill := float64(now.Sub(b.at)) / float64(cfg.MinReceiveInterval)
	b.tokens = math.Min(float64(cfg.RequestBurst), b.tokens+refill)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// serve answers a request in its own version, if the peer's request
// bucket allows it.
func (c *Core) serve(now time.Time, p *corePeer, from addr.NodeID, v2 bool, acts *Actions) {
	var b *bucket
	switch {
	case p != nil:
		b = &p.bucket
	case !c.bk.IsConnected(from) || c.bk.Feeler(from):
		// Not (or no longer) connected, or a test dial of ours that is
		// closed once made: there is nobody to answer.
		return
	default:
		// A request can overtake its peer's Up (messages and peer events
		// travel separately): it is answered, from a bucket kept until the
		// Up arrives, at most one per connection the PeerManager allows.
		b = c.early[from]
		if b == nil {
			if len(c.early) >= c.bk.Options().MaxConnected {
				return
			}
			b = &bucket{tokens: float64(c.cfg.RequestBurst), at: now}
			c.early[from] = b
		}
	}
	if !b.take(now, &c.cfg) {
		acts.peerError(from, fmt.Errorf("%w: more than one request per %s", errs.ErrRequestTooSoon, c.cfg.MinReceiveInterval), true)
		return
	}
	c.stats.RequestsServed++
	b.served++
	b.servedAt = now
	if p != nil && !p.doubtedUntil.IsZero() {
		// It asks as an honest new peer does: a new peer like any
		// other (but for mutualBonus and toldBonus, which crowded
		// stops).
		p.doubtedUntil = time.Time{}
		c.askSoon(now)
	}
	addrs := c.bk.Advertise(now, from, MaxAddresses)
	var msg []byte
	if v2 {
		msg, c.answer = encodeV2Answer(addrs, c.cfg.V2Scheme, c.answer)
	} else {
		var ok bool
		if msg, ok, c.answer = encodeV1Answer(addrs, c.answer); !ok {
			acts.Resolve = append(acts.Resolve, V1Answer{To: from, Addrs: addrs})
			return
		}
	}
	acts.Send = append(acts.Send, event.Envelope{To: from, Message: msg})
	// A visitor goes once this answer is sent (an answer that waits for
	// names to resolve is not counted: the visitor's grace ends it).
	c.bk.Served(from)
}
