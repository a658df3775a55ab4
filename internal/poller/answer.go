package poller

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/errs"
	"github.com/pexnet/pex/internal/event"
	"github.com/pexnet/pex/internal/walk"
)

// entryOf is one entry of a response, parsed, and its network group when
// the answer's groups are counted (see oneGroup).
type entryOf struct {
	a     addr.NodeAddress
	err   error
	g     uint64    // a's network group, once parsed
	key   uint64    // walk.Key(a.NodeID), once parsed
	valid bool      // a's parser accepts only valid addresses (V1)
	w     bool      // its node ID is in the walk handleResponse reads
	kind  walk.Kind // what came of it
}

// Receive handles one message from a peer.
func (c *Core) Receive(now time.Time, e event.Envelope) Actions {
	c.start(now)
	var acts Actions
	c.stats.BytesReceived += len(e.Message)
	if len(e.Message) > c.cfg.MaxMessageSize {
		acts.peerError(e.From, fmt.Errorf("%w: %d bytes, limit %d", errs.ErrMessageTooLarge, len(e.Message), c.cfg.MaxMessageSize), true)
		return c.counted(acts)
	}
	msg, err := Decode(e.Message, c.wire)
	if err != nil {
		acts.peerError(e.From, malformed(err), true)
		return c.counted(acts)
	}
	c.wire = msg.Entries[:0]
	defer clear(msg.Entries) // they point into e.Message
	p := c.peers[e.From]
	switch msg.Kind {
	case KindRequestV1:
		c.serve(now, p, e.From, false, &acts)
	case KindRequestV2:
		if p != nil {
			p.shownV2 = true
		}
		c.serve(now, p, e.From, true, &acts)
	case KindResponseV1, KindResponseV2:
		if msg.Kind == KindResponseV2 && p != nil {
			p.shownV2 = true
		}
		c.handleResponse(now, p, e.From, &msg, &acts)
	default:
		acts.peerError(e.From, errs.ErrUnknownMessage, true)
	}
	return c.counted(acts)
}

func (c *Core) counted(acts Actions) Actions {
	c.stats.PeerErrors += len(acts.Errors)
	for _, s := range acts.Send {
		c.stats.BytesSent += len(s.Message)
	}
	return acts
}

// handleResponse checks a response, stores its valid entries and adapts
// the interval and the size estimate.
func (c *Core) handleResponse(now time.Time, p *corePeer, from addr.NodeID, msg *Decoded, acts *Actions) {
	n := msg.N
	if !c.acceptResponse(p, from, n, acts) {
		return
	}
	c.bk.Answered(from) // a peer that closes soon after answering is redialled later
	known := c.bk.Len()
	entries, ids, groups := c.parseEntries(from, msg)
	defer func() {
		clear(entries)
		c.entries = entries[:0]
		clear(ids)
		c.ids = ids[:0]
	}()
	if groups != nil {
		defer func() { c.groups = groups[:0] }()
	}
	t, isSybil := c.storeEntries(from, entries, groups)
	mostlyBad := c.judgeAnswer(from, n, t, acts)
	if isSybil {
		// A one-subnet answer tells nothing of how much we miss, so it
		// moves neither the pace nor the size estimate, and the peer is
		// asked last.
		p.yield, p.answered = 0, true
		return
	}
	c.readAnswer(p, n, entries, ids, t, mostlyBad)
	c.paceAfter(now, p, t, known)
}

// tally counts what came of an answer's entries.
type tally struct {
	added    int   // new to the book
	dup      int   // known, or no news we take from this answer
	refused  int   // news the caps refused from this source (groups.go)
	self     int   // our own address
	invalid  int   // did not parse or was refused as invalid
	firstErr error // the first invalid entry's error
}

// acceptResponse checks that p asked for the response and that it is not
// too long, and takes p out of pending. A false return means the
// response is not used: the peer error is in acts.
func (c *Core) acceptResponse(p *corePeer, from addr.NodeID, n int, acts *Actions) bool {
	if p == nil || (!p.pending && !p.late) {
		acts.peerError(from, errs.ErrUnsolicitedResponse, true)
		return false
	}
	if p.pending {
		p.pending = false
		p.elem = c.rotation.PushBack(p)
	}
	// A late answer (after ResponseTimeout, before we asked again) is
	// honest but slow: it is used, and the miss it already cost stands.
	p.late = false
	c.stats.Responses++
	if n > MaxAddresses {
		acts.peerError(from, fmt.Errorf("%w: %d, limit %d", errs.ErrTooManyAddresses, n, MaxAddresses), true)
		return false
	}
	return true
}

// parseEntries parses the entries of response msg from from into the
// Core's scratch, each with its network group (which the book's caps
// read). ids are the node IDs of the entries in the walk it shows
// (valid, neither the sender's nor ours), in order. groups are those
// entries' network groups, only where a one-subnet answer can be told
// (see oneGroup), and nil otherwise.
func (c *Core) parseEntries(from addr.NodeID, msg *Decoded) (entries []entryOf, ids []addr.NodeID, groups []uint64) {
	n := msg.N
	ids = slices.Grow(c.ids[:0], n)
	entries = slices.Grow(c.entries[:0], n)[:n]
	if n >= minGroupVote && c.bk.Options().MaxOutboundPerGroup != -1 {
		groups = slices.Grow(c.groups[:0], n) // never nil: nil means not counted
	}
	self := c.bk.SelfID()
	for i := range entries {
		e := &entries[i]
		*e = entryOf{}
		if msg.Kind == KindResponseV1 {
			w := &msg.Entries[i]
			e.a, e.g, e.key, e.err = addr.GroupedFromV1(w.ID, w.IP, w.Port)
			e.valid = true
		} else {
			e.a, e.err = msg.Entries[i].Parse(msg.Kind)
			if e.err == nil {
				e.g, e.key = addr.Group(e.a), walk.Key(e.a.NodeID)
			}
		}
		if e.err == nil && e.a.NodeID != from && e.a.NodeID != self {
			ids = append(ids, e.a.NodeID)
			e.w = true
			if groups != nil {
				groups = append(groups, e.g)
			}
		}
	}
	return entries, ids, groups
}

// storeEntries offers the valid entries to the book as learnt from from,
// and counts what came of each. isSybil reports an answer mostly from one
// subnet: a sybil pushing its own, not a sample of the network. At most
// as many of that subnet as we would dial at once are kept from it: an
// honest peer's answer is a sample of the whole network, and holds few of
// any one subnet.
func (c *Core) storeEntries(from addr.NodeID, entries []entryOf, groups []uint64) (tally, bool) {
	var t tally
	sybilGroup, isSybil := oneGroup(groups)
	keep := c.bk.Options().MaxOutboundPerGroup
	for i := range entries {
		e := &entries[i]
		a, err := e.a, e.err
		if err == nil && isSybil && e.w && e.g == sybilGroup {
			if keep == 0 {
				t.dup++ // not news we take from it
				continue
			}
			keep--
		}
		if err == nil && !e.valid {
			err = a.Validate() // as AddFrom would, first
		}
		if err == nil {
			var isNew bool
			isNew, err = c.bk.AddParsedFrom(a, from, e.g, e.key)
			if err == nil {
				if isNew {
					t.added++
					e.kind = walk.New
				} else {
					t.dup++
					e.kind = walk.Known
				}
				continue
			}
		}
		switch {
		case errors.Is(err, errs.ErrSelfAddress):
			// A peer that knows us may well share our address: that is
			// honest, so it is dropped, not punished, unless most of the
			// response is like it.
			t.self++
		case errors.Is(err, errs.ErrAddressBookFull), errors.Is(err, errs.ErrNetworkGroupFull), errors.Is(err, errs.ErrDistrustedSource), errors.Is(err, errs.ErrAnotherNodesAddress):
			// No room we would give it, or a source whose word we no
			// longer take: no news, and nothing missing.
			t.dup++
			e.kind = walk.Known
		case errors.Is(err, errs.ErrSourceGroupFull):
			// News we may not store from this source (groups.go): not the
			// peer's fault, no yield from it either, but the network still
			// holds more than we know, so the interval stays short.
			t.refused++
		default:
			t.invalid++
			if t.firstErr == nil {
				t.firstErr = err
			}
		}
	}
	return t, isSybil
}

// judgeAnswer counts the answer in the stats, reports its invalid entries
// to the transport, fatally if it is mostly unusable (at least
// minMostlyBad entries, over half of them invalid or ours), and marks
// its sender good if it brought news. It returns whether the answer was
// mostly unusable.
func (c *Core) judgeAnswer(from addr.NodeID, n int, t tally, acts *Actions) bool {
	c.stats.AddressesReceived += t.added + t.dup + t.refused
	c.stats.AddressesNew += t.added
	c.stats.InvalidEntries += t.invalid
	unusable := t.invalid + t.self
	mostlyBad := n >= minMostlyBad && 2*unusable > n
	switch {
	case mostlyBad:
		err := fmt.Errorf("%w: %d of %d entries unusable", errs.ErrMostlyInvalid, unusable, n)
		if t.firstErr != nil {
			err = errors.Join(err, t.firstErr)
		}
		if t.self > 0 {
			err = errors.Join(err, errs.ErrSelfAddress)
		}
		acts.peerError(from, err, true)
	case t.invalid > 0:
		acts.peerError(from, fmt.Errorf("%w (%d of %d entries invalid)", t.firstErr, t.invalid, n), false)
	}
	if t.added > 0 {
		c.bk.Good(from)
	}
	return mostlyBad
}

// readAnswer updates what we know of p from its answer of n entries: its
// yield, whether it is a source, and where its walk through our order
// stands (ids and entries as parseEntries returned them).
func (c *Core) readAnswer(p *corePeer, n int, entries []entryOf, ids []addr.NodeID, t tally, mostlyBad bool) {
	added, dup, refused := t.added, t.dup, t.refused
	if added+refused > 0 {
		p.storable = float64(added) / float64(added+refused)
	}
	if total := added + dup + refused; total > 0 {
		p.yield = float64(added) / float64(total)
	} else {
		p.yield = 0
	}
	if added == 0 {
		p.empties++
	} else {
		p.empties = 0
	}
	p.answered = true
	if !p.source && !mostlyBad && len(ids) > 0 {
		p.source = true
		c.sources++
	}
	p.lastN = n
	wasDone := p.w.LapDone
	kinds := c.kinds[:0] // kinds[i]: what came of ids[i]
	for _, e := range entries {
		if e.w {
			kinds = append(kinds, e.kind)
		}
	}
	c.kinds = kinds[:0]
	c.reader.Observe(&p.w, p.id, ids, kinds, n >= fullAnswer, added, dup)
	p.newsRate = -1
	if p.w.Seen && p.w.LapDone && wasDone && !p.answeredSent.IsZero() {
		// All news, gathered since the request it last answered.
		p.newsRate = float64(added+dup+refused) / max(p.sentAt.Sub(p.answeredSent).Seconds(), minNewsSpan)
	}
	p.answeredSent = p.sentAt
}

// paceAfter feeds p's answer to the size estimate (known is the book's
// size before it) and sets the wait before the next request.
func (c *Core) paceAfter(now time.Time, p *corePeer, t tally, known int) {
	added, dup, refused := t.added, t.dup, t.refused
	c.estimate.observe(added+dup+refused, dup, known)
	// What the answer could hold (see adapt): a full answer from a pex
	// peer (it walks our order), the entries sent from one that samples.
	holds := added + dup + refused
	if p.w.Seen {
		holds = max(holds, MaxAddresses)
	}
	c.adapt(now, added, refused, added+dup+refused, holds, p.w.Walking && !p.w.LapDone)
	switch {
	case added > 0:
		c.inboundIdle = 0
	case c.bk.Inbound(p.id):
		c.inboundIdle++
	}
	c.nextRequest = c.lastRequest.Add(c.interval)
}

// oneGroup reports whether more than half of at least 10 entries' groups
// gs are one public IP group (groups.go), and which. Not used with
// MaxOutboundPerGroup -1: a network in one public subnet answers so.
func oneGroup(gs []uint64) (uint64, bool) {
	if len(gs) < minGroupVote {
		return 0, false
	}
	slices.Sort(gs)
	run := 0
	for i, g := range gs {
		if i > 0 && g != gs[i-1] {
			run = 0
		}
		if run++; 2*run > len(gs) && addr.Diverse(g) {
			return g, true
		}
	}
	return 0, false
}
