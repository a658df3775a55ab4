package poller

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/errs"
)

// Limits of the peers we interoperate with. Config validation refuses
// settings that would break them.
const (
	// MaxAddresses is the most entries a response may carry, in both
	// directions (Tendermint and CometBFT refuse more).
	MaxAddresses = 100
	// TendermintMinReceiveInterval is the request spacing Tendermint
	// v0.35.6+ enforces per peer.
	TendermintMinReceiveInterval = 200 * time.Millisecond
	// CometBFTMinReceiveInterval is the request spacing CometBFT enforces
	// per peer (a third of its 30 s ensure-peers period); it disconnects a
	// peer that asks more often.
	CometBFTMinReceiveInterval = 10 * time.Second
)

// Policy selects how a reactor paces and aims its requests.
type Policy uint8

const (
	// PolicyAdaptive is pex's own. It asks the peer whose next answer is
	// expected to bring the most new addresses, read from where its walk
	// through our order stands, and waits MinInterval divided by the
	// smoothed share of news, slowing as answers bring nothing, up to
	// MaxInterval. DESIGN.md ("The poller: whom to ask", "The interval")
	// states the rules; internal/poller/tuning.go holds the constants.
	PolicyAdaptive Policy = iota
	// PolicyTendermint reproduces published Tendermint v0.35 for
	// comparisons: strict rotation, and after each response the wait
	// (MinInterval/peers) * ((total+1)/(new+1))^2 + MinInterval, at most
	// MaxInterval (outright once the address book is 95% full).
	PolicyTendermint
)

func (p Policy) String() string {
	switch p {
	case PolicyAdaptive:
		return "adaptive"
	case PolicyTendermint:
		return "tendermint"
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// Config configures a Reactor. Every field is optional: the zero value
// means the default given in its comment, and DefaultConfig returns them
// all filled in.
type Config struct {
	// Logger receives the reactor's logs. Default: discard.
	Logger *slog.Logger
	// Policy selects the pacing. Default PolicyAdaptive.
	Policy Policy

	// MinInterval is the shortest wait between two requests (to different
	// peers), used while answers are full of new addresses (see Policy).
	// Default 200 ms.
	MinInterval time.Duration
	// MaxInterval is the longest wait between two requests, reached as
	// responses keep bringing nothing new, and used outright once the
	// address book is 95% full. Default 10 min.
	MaxInterval time.Duration
	// SaturatedInterval caps the wait while answers bring nothing new but
	// the book is not full. Such answers carry only news (a few bytes), so
	// polling on costs little and lets a healed partition or a newcomer's
	// address spread in minutes. Default 2 min; at most MaxInterval.
	SaturatedInterval time.Duration
	// ResponseTimeout is how long a request may go unanswered before the
	// peer goes back into rotation with a missed response counted against
	// it. Default 10 s.
	ResponseTimeout time.Duration

	// V2RequestInterval is the least time between two requests to one peer
	// known to be pex or Tendermint v0.35 (see CapV2). Default 250 ms; it
	// may not be below TendermintMinReceiveInterval.
	V2RequestInterval time.Duration
	// V1RequestInterval is the least time between two requests to any
	// other peer. Default 11 s, a second of margin over what CometBFT
	// enforces (network jitter can bring two requests closer on arrival);
	// it may not be below CometBFTMinReceiveInterval.
	V1RequestInterval time.Duration
	// NetworkV2 declares that every peer speaks V2 (a pex-only or
	// Tendermint v0.35 network): all get V2 requests at V2RequestInterval.
	NetworkV2 bool
	// V2Scheme writes the scheme of mconn addresses in V2 answers
	// (mconn://<id>@<host>:<port>), as Tendermint v0.35 does. By default
	// it is left out (<id>@<host>:<port>): Tendermint v0.35 and pex read
	// a URL without a scheme as mconn, and each entry is 8 bytes shorter
	// (an IPv4 entry takes about 68 bytes with the scheme).
	V2Scheme bool

	// MinReceiveInterval is the sustained request rate a peer may keep up:
	// one request per interval. Default 200 ms.
	MinReceiveInterval time.Duration
	// RequestBurst is how many requests over that rate a peer may send
	// back to back (a reconnect, a restarted timer) without being
	// punished. Default 4.
	RequestBurst int
	// MaxMessageSize refuses larger messages before decoding them.
	// Default DefaultMaxMessageSize (64 KiB).
	MaxMessageSize int

	// NoPeersMaxBackoff caps the back-off (1 s, 2 s, 4 s, ...) while there
	// is nobody to ask. Default 1 min.
	NoPeersMaxBackoff time.Duration
	// NoPeersRestartWindow: after this long without any connected peer the
	// reactor signals on Restart. Default 0: off.
	NoPeersRestartWindow time.Duration
	// RestartCooldown is the least time between two restart signals.
	// Default 10 min.
	RestartCooldown time.Duration
	// Restart receives the self-remediation signal. The send never blocks:
	// give it a buffer of one, or read it promptly.
	Restart chan<- struct{}

	// Resolver resolves host names for V1 answers, which carry IPs only.
	// It must honour ctx, returning soon after ctx ends: Stop waits for an
	// in-flight resolution, and ResolveTimeout bounds that wait only if
	// the resolver returns when its ctx ends. Default net.DefaultResolver.
	Resolver addr.Resolver
	// ResolveTimeout bounds the resolution of one V1 answer. Default 3 s.
	ResolveTimeout time.Duration
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	c, _ := Config{}.WithDefaults()
	return c
}

// WithDefaults returns c with every default filled in, or an error
// wrapping ErrInvalidConfig if a setting is nonsense or would break the
// peers we interoperate with.
func (c Config) WithDefaults() (Config, error) {
	if c.Logger == nil {
		c.Logger = discardLogger
	}
	setDefault(&c.MinInterval, 200*time.Millisecond)
	setDefault(&c.MaxInterval, 10*time.Minute)
	setDefault(&c.ResponseTimeout, 10*time.Second)
	setDefault(&c.SaturatedInterval, min(2*time.Minute, c.MaxInterval))
	setDefault(&c.V2RequestInterval, 250*time.Millisecond)
	setDefault(&c.V1RequestInterval, CometBFTMinReceiveInterval+time.Second)
	setDefault(&c.MinReceiveInterval, TendermintMinReceiveInterval)
	setDefault(&c.RequestBurst, 4)
	setDefault(&c.MaxMessageSize, DefaultMaxMessageSize)
	setDefault(&c.NoPeersMaxBackoff, time.Minute)
	setDefault(&c.RestartCooldown, 10*time.Minute)
	setDefault(&c.ResolveTimeout, 3*time.Second)
	bad := func(msg string) (Config, error) { return c, fmt.Errorf("%w: %s", errs.ErrInvalidConfig, msg) }
	switch {
	case c.Policy > PolicyTendermint:
		return bad("unknown Policy")
	case c.MinInterval < 0 || c.MaxInterval < c.MinInterval:
		return bad("need 0 <= MinInterval <= MaxInterval")
	case c.SaturatedInterval < c.MinInterval || c.SaturatedInterval > c.MaxInterval:
		return bad("need MinInterval <= SaturatedInterval <= MaxInterval")
	case c.ResponseTimeout < 0:
		return bad("ResponseTimeout must be positive")
	case c.V2RequestInterval < TendermintMinReceiveInterval:
		return bad(fmt.Sprintf("V2RequestInterval %s is below the %s Tendermint enforces", c.V2RequestInterval, TendermintMinReceiveInterval))
	case c.V1RequestInterval < CometBFTMinReceiveInterval:
		return bad(fmt.Sprintf("V1RequestInterval %s is below the %s CometBFT enforces", c.V1RequestInterval, CometBFTMinReceiveInterval))
	case c.MinReceiveInterval < 0 || c.RequestBurst < 1:
		return bad("need MinReceiveInterval >= 0 and RequestBurst >= 1")
	case c.MaxMessageSize < 64:
		return bad("MaxMessageSize too small")
	case c.NoPeersMaxBackoff < time.Second:
		return bad("NoPeersMaxBackoff must be at least 1 s")
	case c.NoPeersRestartWindow < 0 || c.RestartCooldown < 0:
		return bad("restart durations must be positive")
	case c.ResolveTimeout < 0:
		return bad("ResolveTimeout must be positive")
	}
	return c, nil
}

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

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

var discardLogger = slog.New(slog.DiscardHandler)
