// Package errs holds the sentinel errors of pex. The root package
// re-exports each of them under the same name, so errors.Is works on
// either.
package errs

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Every error pex creates, whether returned or reported
// about a peer as a PeerError, wraps one of these, so callers can branch
// with errors.Is; its text starts with "pex: " (a PeerError's too).
//
// Two kinds of error pass through unwrapped, by Go convention: a context's
// own error (context.Canceled or context.DeadlineExceeded, as DialNext
// returns when its ctx ends), and whatever a Channel implementation
// returns, which the reactor only logs. A resolver's error is kept as the
// cause of ErrResolve, so errors.Is finds both.
var (
	// ErrInvalidNodeID: a node ID that is not 40 hexadecimal characters.
	ErrInvalidNodeID = errors.New("pex: invalid node ID")
	// ErrInvalidAddress: a node address that does not parse or validate.
	ErrInvalidAddress = errors.New("pex: invalid node address")
	// ErrSelfAddress: an address with our own node ID, in any form.
	ErrSelfAddress = errors.New("pex: our own address")
	// ErrUnroutableAddress: an address outside the public internet
	// (loopback, private, link-local, ...), refused in strict mode.
	ErrUnroutableAddress = errors.New("pex: unroutable address")
	// ErrAddressBookFull: the book is full of addresses it must keep
	// (connected or persistent), so a new one cannot be stored.
	ErrAddressBookFull = errors.New("pex: address book full")
	// ErrSourceGroupFull: the book's share for the network groups of an
	// address and its source is full; the
	// address may still be stored when another source sends it.
	ErrSourceGroupFull = errors.New("pex: address book share of source group full")
	// ErrNetworkGroupFull: the book holds as many addresses of the
	// address's network group as one group may have, from all sources
	// together.
	ErrNetworkGroupFull = errors.New("pex: address book share of network group full")
	// ErrDistrustedSource: the addresses the source's network group told
	// us of proved other node IDs far more often than they proved live,
	// so the book takes nothing new from it.
	ErrDistrustedSource = errors.New("pex: source's addresses keep proving other node IDs")
	// ErrAnotherNodesAddress: gossip named an address for a node ID while
	// a peer connected to us from that address proved another ID there.
	ErrAnotherNodesAddress = errors.New("pex: address of another connected node")

	// ErrMessageTooLarge: a message over the channel's receive capacity;
	// it was refused before decoding.
	ErrMessageTooLarge = errors.New("pex: message too large")
	// ErrMalformedMessage: bytes that do not decode as a PexMessage.
	ErrMalformedMessage = errors.New("pex: malformed message")
	// ErrUnknownMessage: a PexMessage with no known oneof field set.
	ErrUnknownMessage = errors.New("pex: unknown message type")
	// ErrTooManyAddresses: a response with more than MaxAddresses entries.
	ErrTooManyAddresses = errors.New("pex: too many addresses in response")
	// ErrUnsolicitedResponse: a response we did not ask for.
	ErrUnsolicitedResponse = errors.New("pex: unsolicited response")
	// ErrRequestTooSoon: a peer requests faster than MinReceiveInterval
	// allows, beyond the tolerated burst.
	ErrRequestTooSoon = errors.New("pex: peer requests too often")
	// ErrMostlyInvalid: most entries of a response were unusable.
	ErrMostlyInvalid = errors.New("pex: response mostly invalid")
	// ErrResponseTimeout: a peer did not answer a request in time.
	ErrResponseTimeout = errors.New("pex: no response to request")

	// ErrTooManyPeers: a connection over MaxConnected was refused.
	ErrTooManyPeers = errors.New("pex: too many connected peers")
	// ErrDuplicateConnection: a second connection to a peer that is
	// already connected (or that won a simultaneous dial): close it, it
	// says nothing against the peer's address.
	ErrDuplicateConnection = errors.New("pex: already connected to peer")
	// ErrNotConnected: the peer named is not connected.
	ErrNotConnected = errors.New("pex: peer not connected")
	// ErrInvalidConfig: a Config or option that fails validation.
	ErrInvalidConfig = errors.New("pex: invalid config")
	// ErrAlreadyStarted: Start was called twice, or after Stop.
	ErrAlreadyStarted = errors.New("pex: already started")
	// ErrStopped: the reactor or network has been stopped.
	ErrStopped = errors.New("pex: stopped")
	// ErrQueueFull: a MemoryNetwork message was dropped because the
	// receiver's inbound queue was full.
	ErrQueueFull = errors.New("pex: queue full")
	// ErrResolve: a host name did not resolve (NodeAddress.Resolve); the
	// resolver's error is wrapped too.
	ErrResolve = errors.New("pex: resolving host name")
)

// NoPeersAvailableError says the reactor had nobody to ask for addresses.
// It is logged at each empty round, with the back-off chosen, and is the
// value of Reactor.Stats().NoPeers while the condition lasts.
type NoPeersAvailableError struct {
	// Backoff is how long the reactor waits before looking again.
	Backoff time.Duration
}

func (e *NoPeersAvailableError) Error() string {
	return fmt.Sprintf("pex: no peers available to request addresses from (retrying in %s)", e.Backoff)
}
