package cometbft

import "errors"

// Errors this package creates start with "pex: ", like every pex error.
// Where a pex sentinel fits (pex.ErrNotConnected, pex.ErrQueueFull,
// pex.ErrStopped, pex.ErrInvalidConfig, pex.ErrInvalidAddress) it is the
// one wrapped, so that callers test them with errors.Is as they would
// anywhere in pex; the conditions only the adapter knows of have these
// sentinels, whose text starts "pex: cometbft: ".
var (
	// ErrUnexpectedChannel: a peer sent a message on the capability
	// channel (see Options.CapabilityChannel), which carries none. It is
	// reported as a fatal peer error.
	ErrUnexpectedChannel = errors.New("pex: cometbft: message on the capability channel")
	// ErrNotDialable: an address the switch cannot dial (a memory:
	// address, or a host name that resolves to no IP).
	ErrNotDialable = errors.New("pex: cometbft: address not dialable")
	// ErrNoSwitch: the reactor was used before a switch was set.
	ErrNoSwitch = errors.New("pex: cometbft: reactor is not on a switch")
)
