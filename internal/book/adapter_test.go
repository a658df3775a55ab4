package book

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/errs"
	"github.com/pexnet/pex/internal/event"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The book's tests read as a transport uses the book: through a
// PeerManager that takes the time from a clock on every call, as the root
// package's does (without its lock, subscriptions and waiting dialers,
// which the root package tests).

type (
	NodeID      = addr.NodeID
	NodeAddress = addr.NodeAddress
	PeerError   = event.PeerError
	PeerUpdate  = event.PeerUpdate
	PeerCaps    = event.PeerCaps
)

const (
	ProtocolMConn  = addr.ProtocolMConn
	ProtocolTCP    = addr.ProtocolTCP
	ProtocolMemory = addr.ProtocolMemory
	CapV2          = event.CapV2
	MaxAddresses   = 100
	testIDUpper    = "0123456789ABCDEF0123456789ABCDEF01234567"
	testID         = "0123456789abcdef0123456789abcdef01234567"
)

var (
	ParseNodeAddress       = addr.ParseNodeAddress
	NodeAddressFromIP      = addr.NodeAddressFromIP
	ErrAddressBookFull     = errs.ErrAddressBookFull
	ErrDuplicateConnection = errs.ErrDuplicateConnection
	ErrInvalidAddress      = errs.ErrInvalidAddress
	ErrInvalidConfig       = errs.ErrInvalidConfig
	ErrInvalidNodeID       = errs.ErrInvalidNodeID
	ErrMalformedMessage    = errs.ErrMalformedMessage
	ErrMessageTooLarge     = errs.ErrMessageTooLarge
	ErrMostlyInvalid       = errs.ErrMostlyInvalid
	ErrResponseTimeout     = errs.ErrResponseTimeout
	ErrSelfAddress         = errs.ErrSelfAddress
	ErrTooManyPeers        = errs.ErrTooManyPeers
	ErrUnroutableAddress   = errs.ErrUnroutableAddress
	ErrUnsolicitedResponse = errs.ErrUnsolicitedResponse
	ErrSourceGroupFull     = errs.ErrSourceGroupFull
	ErrNetworkGroupFull    = errs.ErrNetworkGroupFull
	ErrAnotherNodesAddress = errs.ErrAnotherNodesAddress
	ErrNotConnected        = errs.ErrNotConnected
)

// nodeID returns a deterministic node ID for test node i.
func nodeID(i int) NodeID {
	return NodeID(fmt.Sprintf("%040x", i+1))
}

// PeerManagerOptions are the book's options and a clock.
type PeerManagerOptions struct {
	Options
	Now func() time.Time
}

// PeerManager drives a Book with a clock.
type PeerManager struct {
	*Book
	mu  sync.Mutex // tests that read the book's state take it, as the root's users would
	now func() time.Time
}

func NewPeerManager(self NodeID, o PeerManagerOptions) (*PeerManager, error) {
	b, err := New(self, o.Options)
	if err != nil {
		return nil, err
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &PeerManager{Book: b, now: now}, nil
}

func (m *PeerManager) Advertise(to NodeID, limit int) []NodeAddress {
	return m.Book.Advertise(m.now(), to, limit)
}
func (m *PeerManager) CrowdedInbound(id NodeID) bool    { return m.Book.CrowdedInbound(m.now(), id) }
func (m *PeerManager) TryDialNext() (NodeAddress, bool) { return m.Book.TryDialNext(m.now()) }
func (m *PeerManager) NextDialTime() time.Time          { return m.Book.NextDialTime(m.now()) }
func (m *PeerManager) Dialed(a NodeAddress) error       { return m.Book.Dialed(m.now(), a) }
func (m *PeerManager) DialFailed(a NodeAddress)         { m.Book.DialFailed(m.now(), a) }
func (m *PeerManager) DialMismatch(a NodeAddress)       { m.Book.DialMismatch(m.now(), a) }
func (m *PeerManager) DialRefused(a NodeAddress)        { m.Book.DialRefused(m.now(), a) }
func (m *PeerManager) AcceptedFrom(id NodeID, remote netip.AddrPort, announced ...NodeAddress) error {
	return m.Book.AcceptedFrom(m.now(), id, remote, announced...)
}
func (m *PeerManager) Accepted(id NodeID, announced ...NodeAddress) error {
	return m.Book.Accepted(m.now(), id, announced...)
}
func (m *PeerManager) Disconnected(id NodeID) { m.Book.Disconnected(m.now(), id) }
func (m *PeerManager) Errored(pe PeerError)   { m.Book.Errored(m.now(), pe) }

func mustAddr(t testing.TB, s string) NodeAddress {
	t.Helper()
	a, err := ParseNodeAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
