// Package event holds the values that pass between a transport, the
// address book and the decision core: messages, peer errors and peer
// updates. The root package re-exports each under the same name.
package event

import (
	"fmt"
	"strings"

	"github.com/pexnet/pex/internal/addr"
)

// Envelope is one PEX message and the peer it comes from or goes to.
// Message holds the encoded pb.PexMessage: the reactor decodes what it
// receives itself, so that it can refuse oversize or malformed input with
// a peer error instead of trusting the transport to.
type Envelope struct {
	From    addr.NodeID // set by the transport on receive
	To      addr.NodeID // set by the reactor on send
	Message []byte
}

// PeerError says that a peer misbehaved. The transport decides what to do:
// lower the peer's score (PeerManager.Errored), or disconnect it when Fatal.
type PeerError struct {
	NodeID addr.NodeID
	Err    error
	// Fatal marks protocol violations (bytes that do not decode, floods,
	// unsolicited or oversize responses). Non-fatal errors are about
	// content quality: an odd bad entry, a missed response.
	Fatal bool
}

// Error returns "pex: peer <id>: <error>", without repeating the "pex: "
// that starts the text of every pex sentinel.
func (e PeerError) Error() string {
	msg := "<nil>"
	if e.Err != nil {
		msg = strings.TrimPrefix(e.Err.Error(), "pex: ")
	}
	return fmt.Sprintf("pex: peer %s: %s", e.NodeID, msg)
}

func (e PeerError) Unwrap() error { return e.Err }

// PeerStatus is what happened to a peer in a PeerUpdate.
type PeerStatus uint8

const (
	// PeerStatusUp: the peer is connected and ready for messages.
	PeerStatusUp PeerStatus = iota + 1
	// PeerStatusDown: the peer disconnected. Every Up is followed by at
	// most one Down, and a Down always follows an Up.
	PeerStatusDown
)

func (s PeerStatus) String() string {
	switch s {
	case PeerStatusUp:
		return "up"
	case PeerStatusDown:
		return "down"
	}
	return fmt.Sprintf("PeerStatus(%d)", uint8(s))
}

// PeerCaps are what a transport learned about a peer in its handshake.
type PeerCaps uint8

const (
	// CapV2 marks a peer known to be pex or Tendermint v0.35: it speaks the
	// V2 (URL) messages and accepts requests every MinReceiveInterval.
	// Without it a peer is treated as CometBFT: V1 only, and asked at most
	// once per V1RequestInterval.
	CapV2 PeerCaps = 1 << iota
)

// PeerUpdate reports that a peer went up or down.
type PeerUpdate struct {
	NodeID addr.NodeID
	Status PeerStatus
	Caps   PeerCaps // set on Up
}
