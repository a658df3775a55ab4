package pex

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/pexnet/pex/internal/poller"
)

// Reactor is the PEX service: it asks connected peers for addresses,
// answers their requests, and feeds what it learns to a PeerManager. It is
// a goroutine shell around a Core, which makes every decision; the Reactor
// only reads the Channel and the peer events, keeps time, and carries out
// the Core's actions.
type Reactor struct {
	cfg     Config
	log     *slog.Logger
	ch      Channel
	updates <-chan PeerUpdate

	// core makes the decisions under its PeerManager's lock (pm.mu), one
	// call at a time, timed by the PeerManager's clock.
	pm   *PeerManager
	core *poller.Core

	lifecycle sync.Mutex
	started   bool
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	resolves  chan poller.V1Answer
	// answers carries resolved V1 answers from resolveLoop to run, the
	// only goroutine that calls the Channel.
	answers chan Envelope
}

// NewReactor returns a Reactor that serves and fills pm over ch, learning
// of peers going up and down from updates (typically
// pm.Subscribe(ctx).Updates(), or a transport's own events). cfg is
// validated and its defaults filled in. A nil pm, ch or updates, or a cfg
// that fails validation, is an error wrapping ErrInvalidConfig.
func NewReactor(cfg Config, pm *PeerManager, updates <-chan PeerUpdate, ch Channel) (*Reactor, error) {
	if ch == nil || updates == nil {
		return nil, fmt.Errorf("%w: NewReactor needs a Channel and peer updates", ErrInvalidConfig)
	}
	if pm == nil {
		return nil, fmt.Errorf("%w: NewReactor needs a PeerManager", ErrInvalidConfig)
	}
	core, err := poller.New(cfg, pm.b)
	if err != nil {
		return nil, err
	}
	cfg = core.Config()
	return &Reactor{
		cfg:      cfg,
		log:      cfg.Logger.With("module", "pex"),
		ch:       ch,
		updates:  updates,
		pm:       pm,
		core:     core,
		resolves: make(chan poller.V1Answer, 16),
		answers:  make(chan Envelope),
	}, nil
}

// Start starts the reactor's goroutines. They run until ctx ends or Stop
// is called. A reactor starts once: Start again, or after Stop, returns
// ErrAlreadyStarted.
func (r *Reactor) Start(ctx context.Context) error {
	r.lifecycle.Lock()
	defer r.lifecycle.Unlock()
	if r.started {
		return ErrAlreadyStarted
	}
	r.started = true
	ctx, r.cancel = context.WithCancel(ctx)
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		r.run(ctx)
	}()
	go func() {
		defer r.wg.Done()
		r.resolveLoop(ctx)
	}()
	return nil
}

// Stop stops the reactor and returns once every goroutine it started has
// exited. It is safe to call more than once, and before Start.
func (r *Reactor) Stop() {
	r.lifecycle.Lock()
	cancel := r.cancel
	r.started = true // a stopped reactor does not start again
	r.lifecycle.Unlock()
	if cancel != nil {
		cancel()
	}
	r.wg.Wait()
}

// NetworkSizeEstimate returns the running estimate of the network's size.
func (r *Reactor) NetworkSizeEstimate() int {
	r.pm.mu.Lock()
	defer r.pm.unlock()
	return r.core.NetworkSizeEstimate()
}

// Stats returns the reactor's counters.
func (r *Reactor) Stats() Stats {
	r.pm.mu.Lock()
	defer r.pm.unlock()
	return r.core.Stats()
}

func (r *Reactor) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	in := r.ch.Receive()
	updates := r.updates
	r.step(ctx, func(c *poller.Core, now time.Time) poller.Actions { return c.Tick(now) })
	for {
		r.pm.mu.Lock()
		wake := r.core.NextWake()
		r.pm.unlock()
		var timerC <-chan time.Time
		if !wake.IsZero() {
			timer.Reset(max(wake.Sub(r.pm.now()), 0))
			timerC = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case u, ok := <-updates:
			if !ok {
				updates = nil // the subscription ended; keep serving
				continue
			}
			if u.Status == PeerStatusDown {
				// What a peer sent before its connection closed is queued
				// before the close is reported: read it first, or the
				// answer of a peer that answers and hangs up (a CometBFT
				// seed) would be lost, and taken for unsolicited.
				for range len(in) {
					e, ok := <-in
					if !ok {
						break
					}
					r.step(ctx, func(c *poller.Core, now time.Time) poller.Actions { return c.Receive(now, e) })
				}
			}
			r.step(ctx, func(c *poller.Core, now time.Time) poller.Actions { return c.PeerUpdate(now, u) })
		case e, ok := <-in:
			if !ok {
				r.log.Info("pex: channel closed, stopping")
				return
			}
			r.step(ctx, func(c *poller.Core, now time.Time) poller.Actions { return c.Receive(now, e) })
		case <-timerC:
			r.step(ctx, func(c *poller.Core, now time.Time) poller.Actions { return c.Tick(now) })
		case e := <-r.answers:
			r.send(ctx, e)
		}
	}
}

// step runs one Core call under the lock, then carries out its actions
// without it.
func (r *Reactor) step(ctx context.Context, f func(*poller.Core, time.Time) poller.Actions) {
	r.pm.mu.Lock()
	acts := f(r.core, r.pm.now())
	r.pm.unlock()
	for _, pe := range acts.Errors {
		r.log.Debug("pex: peer error", "peer", pe.NodeID, "err", pe.Err, "fatal", pe.Fatal)
		if err := r.ch.ReportError(ctx, pe); err != nil {
			r.log.Debug("pex: reporting peer error failed", "peer", pe.NodeID, "err", err)
		}
	}
	for _, e := range acts.Send {
		r.send(ctx, e)
	}
	for _, a := range acts.Resolve {
		select {
		case r.resolves <- a:
		default:
			r.log.Warn("pex: too many V1 answers waiting on DNS, dropping one", "peer", a.To)
		}
	}
	if acts.NoPeers != nil {
		r.log.Debug(acts.NoPeers.Error())
	}
	if acts.Restart {
		r.log.Warn("pex: no connected peers for too long, signalling restart", "window", r.cfg.NoPeersRestartWindow)
		if r.cfg.Restart != nil {
			select {
			case r.cfg.Restart <- struct{}{}:
			default:
			}
		}
	}
}

func (r *Reactor) send(ctx context.Context, e Envelope) {
	if err := r.ch.Send(ctx, e); err != nil {
		r.log.Debug("pex: send failed", "peer", e.To, "err", err)
	}
}

// resolveLoop resolves the host names of V1 answers and hands the encoded
// answers to run, which sends them: the Channel is called from one
// goroutine only.
func (r *Reactor) resolveLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-r.resolves:
			msg := resolveV1Answer(ctx, r.cfg.Resolver, r.cfg.ResolveTimeout, a.Addrs)
			select {
			case r.answers <- Envelope{To: a.To, Message: msg}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// resolveV1Answer encodes a V1 response for addrs, resolving host names
// (all at once, within timeout) to every IP they have now. Memory
// addresses and names that fail to resolve are left out; IPv6 is kept.
func resolveV1Answer(ctx context.Context, res Resolver, timeout time.Duration, addrs []NodeAddress) []byte {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resolved := make([][]netip.AddrPort, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		if a.Protocol == ProtocolMemory {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resolved[i], _ = a.Resolve(ctx, res)
		}()
	}
	wg.Wait()
	var eps []poller.V1Endpoint
	for i, list := range resolved {
		// One entry per node ID: a name that resolves to many IPs must
		// not fill the answer (an answer is not an amplifier).
		if len(list) > 0 {
			eps = append(eps, poller.V1Endpoint{ID: addrs[i].NodeID, Addr: list[0]})
		}
	}
	return poller.EncodeV1Response(eps)
}
