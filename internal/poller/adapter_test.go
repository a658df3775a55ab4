package poller

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/book"
	"github.com/pexnet/pex/internal/errs"
	"github.com/pexnet/pex/internal/event"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The Core's tests drive it beside an address book that a transport
// drives through a PeerManager taking the time from a clock on every call,
// as the root package's does (without its lock).

type (
	NodeID                = addr.NodeID
	NodeAddress           = addr.NodeAddress
	PeerError             = event.PeerError
	PeerUpdate            = event.PeerUpdate
	PeerCaps              = event.PeerCaps
	Envelope              = event.Envelope
	NoPeersAvailableError = errs.NoPeersAvailableError
)

const (
	ProtocolMConn  = addr.ProtocolMConn
	ProtocolTCP    = addr.ProtocolTCP
	ProtocolMemory = addr.ProtocolMemory
	CapV2          = event.CapV2
	PeerStatusUp   = event.PeerStatusUp
	PeerStatusDown = event.PeerStatusDown
)

var (
	ParseNodeAddress       = addr.ParseNodeAddress
	ParseNodeID            = addr.ParseNodeID
	NodeAddressFromIP      = addr.NodeAddressFromIP
	ErrInvalidAddress      = errs.ErrInvalidAddress
	ErrInvalidConfig       = errs.ErrInvalidConfig
	ErrInvalidNodeID       = errs.ErrInvalidNodeID
	ErrMalformedMessage    = errs.ErrMalformedMessage
	ErrMessageTooLarge     = errs.ErrMessageTooLarge
	ErrMostlyInvalid       = errs.ErrMostlyInvalid
	ErrResponseTimeout     = errs.ErrResponseTimeout
	ErrSelfAddress         = errs.ErrSelfAddress
	ErrTooManyAddresses    = errs.ErrTooManyAddresses
	ErrUnknownMessage      = errs.ErrUnknownMessage
	ErrRequestTooSoon      = errs.ErrRequestTooSoon
	ErrUnroutableAddress   = errs.ErrUnroutableAddress
	ErrUnsolicitedResponse = errs.ErrUnsolicitedResponse
	ErrAddressBookFull     = errs.ErrAddressBookFull
	ErrSourceGroupFull     = errs.ErrSourceGroupFull
	ErrNetworkGroupFull    = errs.ErrNetworkGroupFull
	ErrTooManyPeers        = errs.ErrTooManyPeers
	ErrDuplicateConnection = errs.ErrDuplicateConnection
)

// nodeID returns a deterministic node ID for test node i.
func nodeID(i int) NodeID {
	return NodeID(fmt.Sprintf("%040x", i+1))
}

// PeerManagerOptions are the book's options and a clock.
type PeerManagerOptions struct {
	book.Options
	Now func() time.Time
}

// PeerManager drives a book with a clock.
type PeerManager struct {
	*book.Book
	now func() time.Time
}

func NewPeerManager(self NodeID, o PeerManagerOptions) (*PeerManager, error) {
	b, err := book.New(self, o.Options)
	if err != nil {
		return nil, err
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &PeerManager{Book: b, now: now}, nil
}

func (m *PeerManager) TryDialNext() (NodeAddress, bool) { return m.Book.TryDialNext(m.now()) }
func (m *PeerManager) Dialed(a NodeAddress) error       { return m.Book.Dialed(m.now(), a) }
func (m *PeerManager) Accepted(id NodeID, announced ...NodeAddress) error {
	return m.Book.Accepted(m.now(), id, announced...)
}
func (m *PeerManager) Disconnected(id NodeID) { m.Book.Disconnected(m.now(), id) }
func (m *PeerManager) Errored(pe PeerError)   { m.Book.Errored(m.now(), pe) }

// sybilAddr is the i-th address of the sybil subnet 66.66.0.0/16.
func sybilAddr(i int) NodeAddress {
	a, err := NodeAddressFromIP(nodeID(1_000_000+i), netip.AddrFrom4([4]byte{66, 66, byte(i >> 8), byte(i)}), 26656)
	if err != nil {
		panic(err)
	}
	return a
}
