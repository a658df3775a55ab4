package pex

import "github.com/pexnet/pex/internal/errs"

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
	ErrInvalidNodeID = errs.ErrInvalidNodeID
	// ErrInvalidAddress: a node address that does not parse or validate.
	ErrInvalidAddress = errs.ErrInvalidAddress
	// ErrSelfAddress: an address with our own node ID, in any form.
	ErrSelfAddress = errs.ErrSelfAddress
	// ErrUnroutableAddress: an address outside the public internet
	// (loopback, private, link-local, ...), refused in strict mode.
	ErrUnroutableAddress = errs.ErrUnroutableAddress
	// ErrAddressBookFull: the book is full of addresses it must keep
	// (connected or persistent), so a new one cannot be stored.
	ErrAddressBookFull = errs.ErrAddressBookFull
	// ErrSourceGroupFull: the book's share for the network groups of an
	// address and its source is full (see PeerManager.AddFrom); the
	// address may still be stored when another source sends it.
	ErrSourceGroupFull = errs.ErrSourceGroupFull
	// ErrNetworkGroupFull: the book holds as many addresses of the
	// address's network group as one group may have, from all sources
	// together (see PeerManager.AddFrom).
	ErrNetworkGroupFull = errs.ErrNetworkGroupFull
	// ErrDistrustedSource: the addresses the source's network group told
	// us of proved other node IDs far more often than they proved live
	// (PeerManager.DialMismatch), so the book takes nothing new from it
	// (see PeerManager.AddFrom).
	ErrDistrustedSource = errs.ErrDistrustedSource
	// ErrAnotherNodesAddress: gossip named an address for a node ID while
	// a peer connected from that very host and port proved another ID
	// there (a spoof; see PeerManager.AddFrom). Not the teller's fault:
	// honest peers pass on the spoofs they hold.
	ErrAnotherNodesAddress = errs.ErrAnotherNodesAddress

	// ErrMessageTooLarge: a message over the channel's receive capacity;
	// it was refused before decoding.
	ErrMessageTooLarge = errs.ErrMessageTooLarge
	// ErrMalformedMessage: bytes that do not decode as a PexMessage.
	ErrMalformedMessage = errs.ErrMalformedMessage
	// ErrUnknownMessage: a PexMessage with no known oneof field set.
	ErrUnknownMessage = errs.ErrUnknownMessage
	// ErrTooManyAddresses: a response with more than MaxAddresses entries.
	ErrTooManyAddresses = errs.ErrTooManyAddresses
	// ErrUnsolicitedResponse: a response we did not ask for.
	ErrUnsolicitedResponse = errs.ErrUnsolicitedResponse
	// ErrRequestTooSoon: a peer requests faster than MinReceiveInterval
	// allows, beyond the tolerated burst.
	ErrRequestTooSoon = errs.ErrRequestTooSoon
	// ErrMostlyInvalid: most entries of a response were unusable.
	ErrMostlyInvalid = errs.ErrMostlyInvalid
	// ErrResponseTimeout: a peer did not answer a request in time.
	ErrResponseTimeout = errs.ErrResponseTimeout

	// ErrTooManyPeers: a connection over MaxConnected was refused.
	ErrTooManyPeers = errs.ErrTooManyPeers
	// ErrDuplicateConnection: a second connection to a peer that is
	// already connected (or that won a simultaneous dial): close it, it
	// says nothing against the peer's address.
	ErrDuplicateConnection = errs.ErrDuplicateConnection
	// ErrNotConnected: the peer named is not connected.
	ErrNotConnected = errs.ErrNotConnected
	// ErrInvalidConfig: a Config or option that fails validation.
	ErrInvalidConfig = errs.ErrInvalidConfig
	// ErrAlreadyStarted: Start was called twice, or after Stop.
	ErrAlreadyStarted = errs.ErrAlreadyStarted
	// ErrStopped: the reactor or network has been stopped.
	ErrStopped = errs.ErrStopped
	// ErrQueueFull: a MemoryNetwork message was dropped because the
	// receiver's inbound queue was full.
	ErrQueueFull = errs.ErrQueueFull
	// ErrResolve: a host name did not resolve (NodeAddress.Resolve); the
	// resolver's error is wrapped too.
	ErrResolve = errs.ErrResolve
)

// NoPeersAvailableError says the reactor had nobody to ask for addresses.
// It is logged at each empty round, with the back-off chosen, and is the
// value of Reactor.Stats().NoPeers while the condition lasts.
type NoPeersAvailableError = errs.NoPeersAvailableError
