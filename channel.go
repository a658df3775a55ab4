package pex

import (
	"context"

	"github.com/pexnet/pex/internal/event"
)

// PexChannel is the ID of the channel PEX messages travel on, the same in
// Tendermint and CometBFT.
const PexChannel = 0x00

// DefaultMaxMessageSize is the default receive capacity of the PEX
// channel. A full V2 response of 100 long URLs fits well within it.
const DefaultMaxMessageSize = 64 << 10

// ChannelParams describes the PEX channel to a transport that multiplexes
// several channels over one connection.
type ChannelParams struct {
	ID                  byte
	Name                string
	Priority            int
	SendQueueCapacity   int
	RecvBufferCapacity  int
	RecvMessageCapacity int
}

// ChannelDescriptor returns the default parameters of the PEX channel.
// Its RecvMessageCapacity is DefaultMaxMessageSize, the default of
// Config.MaxMessageSize: a transport serving a reactor whose Config sets
// another MaxMessageSize should use Config.ChannelDescriptor instead, so
// that the transport and the reactor refuse messages at the same size.
func ChannelDescriptor() ChannelParams {
	return ChannelParams{
		ID:                  PexChannel,
		Name:                "pex",
		Priority:            1,
		SendQueueCapacity:   10,
		RecvBufferCapacity:  128,
		RecvMessageCapacity: DefaultMaxMessageSize,
	}
}

// ChannelDescriptor returns the parameters of the PEX channel for a
// reactor built with c: those of the package-level ChannelDescriptor, with
// RecvMessageCapacity set to c.MaxMessageSize (DefaultMaxMessageSize when
// it is not positive). NewReactor refuses a MaxMessageSize below 64 bytes.
func (c Config) ChannelDescriptor() ChannelParams {
	d := ChannelDescriptor()
	if c.MaxMessageSize > 0 {
		d.RecvMessageCapacity = c.MaxMessageSize
	}
	return d
}

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
