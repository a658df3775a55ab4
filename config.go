package pex

import (
	"log/slog"

	"github.com/pexnet/pex/internal/poller"
)

// Limits of the peers we interoperate with. Config validation refuses
// settings that would break them.
const (
	// MaxAddresses is the most entries a response may carry, in both
	// directions (Tendermint and CometBFT refuse more).
	MaxAddresses = poller.MaxAddresses
	// TendermintMinReceiveInterval is the request spacing Tendermint
	// v0.35.6+ enforces per peer.
	TendermintMinReceiveInterval = poller.TendermintMinReceiveInterval
	// CometBFTMinReceiveInterval is the request spacing CometBFT enforces
	// per peer (a third of its 30 s ensure-peers period); it disconnects a
	// peer that asks more often.
	CometBFTMinReceiveInterval = poller.CometBFTMinReceiveInterval
)

// Policy selects how a reactor paces and aims its requests: PolicyAdaptive
// (pex's own, the default; DESIGN.md states its rules) or PolicyTendermint
// (published Tendermint v0.35, for comparisons).
type Policy = poller.Policy

const (
	// PolicyAdaptive asks the connected peer whose next answer is expected
	// to bring the most new addresses, and paces requests by the share of
	// news in the answers.
	PolicyAdaptive = poller.PolicyAdaptive
	// PolicyTendermint reproduces published Tendermint v0.35 for
	// comparisons: strict rotation, and after each response the wait
	// (MinInterval/peers) * ((total+1)/(new+1))^2 + MinInterval, at most
	// MaxInterval (outright once the address book is 95% full).
	PolicyTendermint = poller.PolicyTendermint
)

// Config configures a Reactor. Every field is optional: the zero value
// means the default given in its comment, DefaultConfig returns them all
// filled in, and WithDefaults fills them in and validates. The fields:
// Logger, Policy, MinInterval, MaxInterval, SaturatedInterval,
// ResponseTimeout, V2RequestInterval, V1RequestInterval, NetworkV2,
// V2Scheme, MinReceiveInterval, RequestBurst, MaxMessageSize,
// NoPeersMaxBackoff, NoPeersRestartWindow, RestartCooldown, Restart,
// Resolver and ResolveTimeout (README.md has their defaults in a table).
type Config = poller.Config

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config { return poller.DefaultConfig() }

// Stats are a reactor's running counters.
type Stats = poller.Stats

// PexChannel is the ID of the channel PEX messages travel on, the same in
// Tendermint and CometBFT.
const PexChannel = poller.PexChannel

// DefaultMaxMessageSize is the default receive capacity of the PEX
// channel. A full V2 response of 100 long URLs fits well within it.
const DefaultMaxMessageSize = poller.DefaultMaxMessageSize

// ChannelParams describes the PEX channel to a transport that multiplexes
// several channels over one connection.
type ChannelParams = poller.ChannelParams

// ChannelDescriptor returns the default parameters of the PEX channel.
// Its RecvMessageCapacity is DefaultMaxMessageSize, the default of
// Config.MaxMessageSize: a transport serving a reactor whose Config sets
// another MaxMessageSize should use Config.ChannelDescriptor instead, so
// that the transport and the reactor refuse messages at the same size.
func ChannelDescriptor() ChannelParams { return poller.ChannelDescriptor() }

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

var discardLogger = slog.New(slog.DiscardHandler)
