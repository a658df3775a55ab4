package pex

import (
	"context"

	"github.com/pexnet/pex/internal/event"
)

// Envelope is one PEX message and the peer it comes from or goes to.
// Message holds the encoded PexMessage: the reactor decodes what it
// receives itself, so that it can refuse oversize or malformed input with
// a peer error instead of trusting the transport to. From is set by the
// transport on receive, To by the reactor on send.
type Envelope = event.Envelope

// PeerError says that a peer misbehaved. The transport decides what to do:
// lower the peer's score (PeerManager.Errored), or disconnect it when
// Fatal, which marks protocol violations (bytes that do not decode,
// floods, unsolicited or oversize responses); non-fatal errors are about
// content quality (an odd bad entry, a missed response). Its Error text is
// "pex: peer <id>: <error>", and it unwraps to Err.
type PeerError = event.PeerError

// Channel is the seam between the reactor and a transport: envelopes out,
// envelopes in, peer errors back. It is deliberately small so that a
// CometBFT switch, a libp2p stream handler, the in-memory network or a test
// double can implement it in a few lines.
//
// Send and ReportError may be called from one goroutine at a time per
// reactor and should not block for long; they return an error when the
// peer is gone or the transport is closed, and the reactor logs it and
// carries on. Receive returns the same channel on every call; the
// transport closes it only when it shuts down.
type Channel interface {
	Send(ctx context.Context, e Envelope) error
	Receive() <-chan Envelope
	ReportError(ctx context.Context, pe PeerError) error
}

// PeerStatus is what happened to a peer in a PeerUpdate.
type PeerStatus = event.PeerStatus

const (
	// PeerStatusUp: the peer is connected and ready for messages.
	PeerStatusUp = event.PeerStatusUp
	// PeerStatusDown: the peer disconnected. Every Up is followed by at
	// most one Down, and a Down always follows an Up.
	PeerStatusDown = event.PeerStatusDown
)

// PeerCaps are what a transport learned about a peer in its handshake.
type PeerCaps = event.PeerCaps

const (
	// CapV2 marks a peer known to be pex or Tendermint v0.35: it speaks the
	// V2 (URL) messages and accepts requests every MinReceiveInterval.
	// Without it a peer is treated as CometBFT: V1 only, and asked at most
	// once per V1RequestInterval.
	CapV2 = event.CapV2
)

// PeerUpdate reports that a peer went up or down; Caps is set on Up.
type PeerUpdate = event.PeerUpdate
