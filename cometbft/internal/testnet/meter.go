package testnet

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gogoproto "github.com/cosmos/gogoproto/proto"

	"github.com/cometbft/cometbft/p2p"

	"github.com/pexnet/pex"
)

// Counts are PEX messages and bytes a node received. Every request a node
// sends is received by its peer, so the requests received across a network
// are the requests sent.
type Counts struct {
	Requests   int64 // V1 and V2
	RequestsV2 int64
	Responses  int64
	Bytes      int64 // PEX message bytes received, as encoded on the wire
}

// Add returns the sum of c and d.
func (c Counts) Add(d Counts) Counts {
	return Counts{
		Requests:   c.Requests + d.Requests,
		RequestsV2: c.RequestsV2 + d.RequestsV2,
		Responses:  c.Responses + d.Responses,
		Bytes:      c.Bytes + d.Bytes,
	}
}

// Meter wraps a node's PEX reactor, CometBFT's or the adapter, and counts
// what it receives the same way for both: the message re-encoded as the
// wire carried it (CometBFT's reactor gets it decoded, the adapter as
// bytes).
type Meter struct {
	p2p.Reactor
	requests, requestsV2, responses, bytes atomic.Int64
	// wall-clock Unix nanoseconds of the first request and response
	firstRequest, firstResponse atomic.Int64
}

// Receive counts e and passes it on.
func (m *Meter) Receive(e p2p.Envelope) {
	msg := e.Message
	if w, ok := msg.(p2p.Wrapper); ok {
		msg = w.Wrap()
	}
	if b, err := gogoproto.Marshal(msg); err == nil && len(b) > 0 {
		m.bytes.Add(int64(len(b)))
		switch b[0] {
		case 0x0a: // PexMessage field 1: a V1 request
			m.requests.Add(1)
			m.firstRequest.CompareAndSwap(0, time.Now().UnixNano())
		case 0x1a: // field 3: a V2 request
			m.requests.Add(1)
			m.requestsV2.Add(1)
			m.firstRequest.CompareAndSwap(0, time.Now().UnixNano())
		case 0x12, 0x22: // fields 2 and 4: responses
			m.responses.Add(1)
			m.firstResponse.CompareAndSwap(0, time.Now().UnixNano())
		}
	}
	m.Reactor.Receive(e)
}

// Counts returns what the meter has seen so far.
func (m *Meter) Counts() Counts {
	return Counts{
		Requests:   m.requests.Load(),
		RequestsV2: m.requestsV2.Load(),
		Responses:  m.responses.Load(),
		Bytes:      m.bytes.Load(),
	}
}

// First returns when the meter saw its first request and its first
// response (zero for none yet), on the wall clock.
func (m *Meter) First() (request, response time.Time) {
	at := func(ns int64) time.Time {
		if ns == 0 {
			return time.Time{}
		}
		return time.Unix(0, ns)
	}
	return at(m.firstRequest.Load()), at(m.firstResponse.Load())
}

// Removal is a peer the switch removed, and why.
type Removal struct {
	Peer   p2p.ID
	Reason any
}

// Watch is a reactor without channels that records the peers the switch
// adds (who, which way, when) and those it removes with a reason
// (StopPeerForError; a graceful stop has none).
type Watch struct {
	p2p.BaseReactor
	mu       sync.Mutex
	removals []Removal
	added    []Connection
}

// Connection is a peer the switch added: when (on the wall clock), and
// whether this node dialled it.
type Connection struct {
	Peer     p2p.ID
	Outbound bool
	At       time.Time
}

// NewWatch returns a Watch to add to a switch.
func NewWatch() *Watch {
	w := &Watch{}
	w.BaseReactor = *p2p.NewBaseReactor("WATCH", w)
	return w
}

// AddPeer records the connection.
func (w *Watch) AddPeer(p p2p.Peer) {
	c := Connection{Peer: p.ID(), Outbound: p.IsOutbound(), At: time.Now()}
	w.mu.Lock()
	w.added = append(w.added, c)
	w.mu.Unlock()
}

// RemovePeer records removals that have a reason.
func (w *Watch) RemovePeer(p p2p.Peer, reason any) {
	if reason == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.removals = append(w.removals, Removal{Peer: p.ID(), Reason: reason})
}

// Removals returns the removals recorded so far.
func (w *Watch) Removals() []Removal {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Removal(nil), w.removals...)
}

// Connections returns how many peers were added.
func (w *Watch) Connections() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.added)
}

// Added returns the connections recorded so far, in order.
func (w *Watch) Added() []Connection {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Connection(nil), w.added...)
}

// misbehaviourText are fragments of the reasons a node gives for stopping
// a peer over its PEX messages: CometBFT's PEX reactor (a request too
// soon, an unsolicited or undecodable address list), CometBFT's
// connection (a message it cannot decode or unwrap, a channel it does not
// know), and pex's peer errors (which start with "pex: ").
var misbehaviourText = []string{
	"too soon", "unsolicited", "unmarshaling message", "unwrapping message",
	"Unknown channel", "invalid IP", "invalid port", "pex: ",
}

// IsMisbehaviour reports whether a removal reason is a PEX protocol
// violation rather than a connection ending (EOF, reset, a node stopping).
func IsMisbehaviour(reason any) bool {
	if err, ok := reason.(error); ok {
		var pe pex.PeerError
		if errors.As(err, &pe) {
			return true
		}
	}
	var text string
	switch r := reason.(type) {
	case error:
		text = r.Error()
	case string:
		text = r
	default:
		return reason != nil
	}
	for _, f := range misbehaviourText {
		if strings.Contains(text, f) {
			return true
		}
	}
	return false
}
