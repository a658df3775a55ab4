package cometbft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/conn"

	"github.com/pexnet/pex"
)

// DefaultCapabilityChannel is the channel a pex node lists in its
// handshake (NodeInfo.Channels) to tell other pex nodes that it speaks V2
// and accepts requests every pex.Config.MinReceiveInterval. No message is
// ever sent on it. CometBFT's own reactors use 0x00 (PEX) and 0x20 and up.
const DefaultCapabilityChannel byte = 0x01

// DefaultDialers is how many dials a Reactor runs at once by default.
const DefaultDialers = 4

// maxHeld bounds the messages kept for a peer that sent them between its
// start and the switch's AddPeer (see Reactor.Receive).
const maxHeld = 8

// Options configures a Reactor. The zero value of each field means its
// default.
type Options struct {
	// Config configures the pex reactor (see pex.Config). Its Logger
	// receives the adapter's logs too. Toward CometBFT peers the reactor
	// sends V1 requests at most once per Config.V1RequestInterval (default
	// 11 s): keep it above a third of the ensure-peers period of the
	// CometBFT nodes on the network (30 s by default, so 10 s), which is
	// how often CometBFT lets a peer ask before it disconnects and bans it.
	Config pex.Config
	// CapabilityChannel marks pex nodes in the handshake; every pex node
	// of a network must use the same. Zero (the PEX channel itself) means
	// DefaultCapabilityChannel.
	CapabilityChannel byte
	// Dialers is how many dials run at once. Default DefaultDialers.
	Dialers int
}

// Reactor runs a pex.Reactor on a CometBFT p2p.Switch, in place of
// CometBFT's own PEX reactor. It implements p2p.Reactor on channel 0x00:
// messages go to and from the pex reactor as they are on the wire,
// AddPeer and RemovePeer become PeerManager connection events (and so peer
// Up and Down), fatal peer errors become Switch.StopPeerForError, and the
// addresses the PeerManager chooses are dialled through the switch.
//
// Add it to a switch with Switch.AddReactor (a full node takes it through
// node.CustomReactors under the name "PEX"), and list both of its channels
// in the node's NodeInfo.Channels. The switch starts and stops it.
type Reactor struct {
	p2p.BaseReactor

	pm      *pex.PeerManager
	cfg     pex.Config // validated
	capCh   byte
	dialers int
	log     *slog.Logger
	in      chan pex.Envelope
	quit    chan struct{} // closed by OnStop: unblocks Receive

	mu      sync.Mutex
	peers   map[pex.NodeID]*peerState
	dialing map[pex.NodeID]pex.NodeAddress // dials in flight, until AddPeer

	lifecycle sync.Mutex
	stopped   bool
	reactor   *pex.Reactor
	cancel    context.CancelFunc
	wg        sync.WaitGroup // dialers and peer stops
}

// peerState is what the adapter knows of one switch peer.
type peerState struct {
	peer     p2p.Peer
	caps     pex.PeerCaps
	admitted bool     // the PeerManager has the connection (Dialed or Accepted)
	held     [][]byte // messages that arrived before AddPeer
}

var _ p2p.Reactor = (*Reactor)(nil)

// NewReactor returns a Reactor that serves and fills pm. opts.Config is
// validated here, as pex.NewReactor would; the pex reactor itself is built
// when the switch starts this one.
func NewReactor(pm *pex.PeerManager, opts Options) (*Reactor, error) {
	if pm == nil {
		return nil, fmt.Errorf("%w: NewReactor needs a PeerManager", pex.ErrInvalidConfig)
	}
	cfg, err := opts.Config.WithDefaults()
	if err != nil {
		return nil, err
	}
	if opts.CapabilityChannel == 0 {
		opts.CapabilityChannel = DefaultCapabilityChannel
	}
	if opts.Dialers == 0 {
		opts.Dialers = DefaultDialers
	}
	if opts.Dialers < 0 {
		return nil, fmt.Errorf("%w: Dialers must be positive", pex.ErrInvalidConfig)
	}
	r := &Reactor{
		pm:      pm,
		cfg:     cfg,
		capCh:   opts.CapabilityChannel,
		dialers: opts.Dialers,
		log:     cfg.Logger.With("module", "pex/cometbft"),
		in:      make(chan pex.Envelope, cfg.ChannelDescriptor().RecvBufferCapacity),
		quit:    make(chan struct{}),
		peers:   make(map[pex.NodeID]*peerState),
		dialing: make(map[pex.NodeID]pex.NodeAddress),
	}
	r.BaseReactor = *p2p.NewBaseReactor("PEX", r)
	return r, nil
}

// PeerManager returns the address book the reactor serves and fills.
func (r *Reactor) PeerManager() *pex.PeerManager { return r.pm }

// Stats returns the pex reactor's counters (zero before the switch
// starts the reactor).
func (r *Reactor) Stats() pex.Stats {
	r.lifecycle.Lock()
	rx := r.reactor
	r.lifecycle.Unlock()
	if rx == nil {
		return pex.Stats{}
	}
	return rx.Stats()
}

// NetworkSizeEstimate returns the pex reactor's estimate of the network's
// size (0 before the switch starts the reactor).
func (r *Reactor) NetworkSizeEstimate() int {
	r.lifecycle.Lock()
	rx := r.reactor
	r.lifecycle.Unlock()
	if rx == nil {
		return 0
	}
	return rx.NetworkSizeEstimate()
}

// GetChannels implements p2p.Reactor: the PEX channel, sized by the pex
// Config, and the capability channel.
func (r *Reactor) GetChannels() []*conn.ChannelDescriptor {
	d := r.cfg.ChannelDescriptor()
	return []*conn.ChannelDescriptor{
		{
			ID:                  d.ID,
			Priority:            d.Priority,
			SendQueueCapacity:   d.SendQueueCapacity,
			RecvBufferCapacity:  d.RecvBufferCapacity,
			RecvMessageCapacity: d.RecvMessageCapacity,
			MessageType:         &wireMessage{},
		},
		{
			ID:                  r.capCh,
			Priority:            1,
			SendQueueCapacity:   1,
			RecvBufferCapacity:  64,
			RecvMessageCapacity: 64,
			MessageType:         &wireMessage{},
		},
	}
}

// OnStart implements service.Service: it starts the pex reactor and the
// dialers. The switch calls it.
func (r *Reactor) OnStart() error {
	if r.Switch == nil {
		return ErrNoSwitch
	}
	r.lifecycle.Lock()
	defer r.lifecycle.Unlock()
	if r.stopped {
		return pex.ErrStopped
	}
	ctx, cancel := context.WithCancel(context.Background())
	sub := r.pm.Subscribe(ctx)
	rx, err := pex.NewReactor(r.cfg, r.pm, sub.Updates(), channel{r})
	if err == nil {
		err = rx.Start(ctx)
	}
	if err != nil {
		cancel()
		return err
	}
	r.reactor, r.cancel = rx, cancel
	for range r.dialers {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.dialLoop(ctx)
		}()
	}
	return nil
}

// OnStop implements service.Service: it returns once the pex reactor, the
// dialers (each may be finishing a dial: the switch's dial and handshake
// timeouts bound it) and the peer stops it started have returned.
func (r *Reactor) OnStop() {
	r.lifecycle.Lock()
	r.stopped = true
	rx, cancel := r.reactor, r.cancel
	r.lifecycle.Unlock()
	close(r.quit)
	if cancel != nil {
		cancel()
	}
	if rx != nil {
		rx.Stop()
	}
	r.wg.Wait()
}

// InitPeer implements p2p.Reactor: it notes the peer's capabilities before
// the peer starts, so that messages it sends before AddPeer are kept.
func (r *Reactor) InitPeer(p p2p.Peer) p2p.Peer {
	id, err := pex.ParseNodeID(string(p.ID()))
	if err != nil {
		return p // AddPeer hangs up
	}
	r.mu.Lock()
	r.peers[id] = &peerState{peer: p, caps: r.capsOf(p)}
	r.mu.Unlock()
	return p
}

// AddPeer implements p2p.Reactor: the connection is reported to the
// PeerManager (Dialed for ours, Accepted with the listen address the peer
// announced for inbound ones), then Ready with CapV2 for peers that list
// the capability channel. A connection the PeerManager refuses (over
// MaxConnected, for example) is closed.
func (r *Reactor) AddPeer(p p2p.Peer) {
	id, err := pex.ParseNodeID(string(p.ID()))
	if err != nil {
		r.log.Debug("pex/cometbft: peer with an invalid ID", "peer", p.ID(), "err", err)
		r.stopPeer(p, nil)
		return
	}
	r.mu.Lock()
	st := r.peers[id]
	if st == nil || st.peer != p {
		if !p.IsRunning() {
			r.mu.Unlock()
			return // removed before it was added
		}
		st = &peerState{peer: p, caps: r.capsOf(p)}
		r.peers[id] = st
	}
	dialed, ours := r.dialing[id]
	if p.IsOutbound() && ours {
		delete(r.dialing, id)
	}
	r.mu.Unlock()

	if p.IsOutbound() {
		if !ours {
			// Dialled by someone else (the switch's persistent peers).
			dialed, err = nodeAddress(id, p.SocketAddr())
		}
		if err == nil {
			err = r.pm.Dialed(dialed)
		}
	} else {
		// Its gossip counts against the group of the connection's
		// remote IP, never of the listen address NodeInfo claims.
		err = r.pm.AcceptedFrom(id, remoteOf(p), r.announced(id, p)...)
	}
	if err != nil {
		r.log.Debug("pex/cometbft: connection refused", "peer", id, "outbound", p.IsOutbound(), "err", err)
		r.mu.Lock()
		if r.peers[id] == st {
			delete(r.peers, id)
		}
		r.mu.Unlock()
		r.stopPeer(p, nil)
		r.closeEvicted()
		return
	}
	r.mu.Lock()
	if r.peers[id] != st {
		// RemovePeer ran while we admitted it, saw it not admitted
		// yet and left the PeerManager alone: the close is ours to
		// report, or the PeerManager would hold the connection for
		// ever.
		r.mu.Unlock()
		r.pm.Disconnected(id)
		r.closeEvicted()
		return
	}
	st.admitted = true
	held := st.held
	st.held = nil
	r.mu.Unlock()
	r.pm.Ready(id, st.caps)
	for _, b := range held {
		r.deliver(pex.Envelope{From: id, Message: b})
	}
	r.closeEvicted()
}

// RemovePeer implements p2p.Reactor: the PeerManager learns that the
// connection closed.
func (r *Reactor) RemovePeer(p p2p.Peer, _ any) {
	id, err := pex.ParseNodeID(string(p.ID()))
	if err != nil {
		return
	}
	r.mu.Lock()
	st := r.peers[id]
	if st == nil || st.peer != p {
		r.mu.Unlock()
		return
	}
	delete(r.peers, id)
	admitted := st.admitted // else AddPeer, still admitting it, reports the close
	r.mu.Unlock()
	if admitted {
		r.pm.Disconnected(id)
	}
}

// Receive implements p2p.Reactor: the message's bytes go to the pex
// reactor, which decodes and judges them. A V1 response from a peer
// without the capability (a CometBFT node) is first cut to
// pex.MaxAddresses entries: CometBFT sends up to 250 in an honest answer.
// A message on the capability channel is a fatal peer error.
//
// Receive blocks while the pex reactor's inbound queue is full, which
// holds back that peer's connection, as any reactor that does its work in
// Receive would.
func (r *Reactor) Receive(e p2p.Envelope) {
	if e.Src == nil {
		return
	}
	id, err := pex.ParseNodeID(string(e.Src.ID()))
	if err != nil {
		return
	}
	if e.ChannelID == r.capCh {
		_ = r.ReportError(context.Background(), pex.PeerError{NodeID: id, Err: ErrUnexpectedChannel, Fatal: true})
		return
	}
	msg, ok := e.Message.(*wireMessage)
	if !ok || e.ChannelID != pex.PexChannel {
		return
	}
	r.mu.Lock()
	st := r.peers[id]
	if st == nil || st.peer != e.Src {
		r.mu.Unlock()
		return // gone already
	}
	b := msg.b
	if st.caps&pex.CapV2 == 0 {
		b = trimV1Response(b)
	}
	if !st.admitted {
		// The peer started before the switch called AddPeer: keep its
		// message until then, or a CometBFT node's first request would go
		// unanswered and it would never ask again.
		if len(st.held) < maxHeld {
			st.held = append(st.held, b)
		}
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()
	r.deliver(pex.Envelope{From: id, Message: b})
}

func (r *Reactor) deliver(e pex.Envelope) {
	select {
	case r.in <- e:
	case <-r.quit:
	}
}

// ReportError lowers the peer's score in the PeerManager and, for a fatal
// error, stops the peer with Switch.StopPeerForError. It implements the
// reporting half of pex.Channel, and an embedder may call it too.
func (r *Reactor) ReportError(_ context.Context, pe pex.PeerError) error {
	r.pm.Errored(pe)
	if pe.Fatal {
		r.mu.Lock()
		st := r.peers[pe.NodeID]
		r.mu.Unlock()
		if st != nil {
			r.stopPeer(st.peer, pe)
		}
	}
	r.closeEvicted()
	return nil
}

// closeEvicted stops the peers the PeerManager names for eviction.
func (r *Reactor) closeEvicted() {
	for {
		id, ok := r.pm.EvictNext()
		if !ok {
			return
		}
		r.mu.Lock()
		st := r.peers[id]
		r.mu.Unlock()
		if st == nil {
			// The switch has no such peer: make the book agree.
			r.pm.Disconnected(id)
			continue
		}
		r.stopPeer(st.peer, nil)
	}
}

// stopPeer stops p through the switch, in a goroutine of its own: the
// switch calls every reactor's RemovePeer from there, and callers may be
// inside a switch callback. reason nil is a graceful stop.
func (r *Reactor) stopPeer(p p2p.Peer, reason any) {
	sw := r.Switch
	r.lifecycle.Lock()
	defer r.lifecycle.Unlock()
	if r.stopped || sw == nil {
		return // the switch stops every peer itself
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if reason != nil {
			sw.StopPeerForError(p, reason)
		} else {
			sw.StopPeerGracefully(p)
		}
	}()
}

// dialLoop dials what the PeerManager chooses until ctx ends.
func (r *Reactor) dialLoop(ctx context.Context) {
	for {
		a, err := r.pm.DialNext(ctx)
		if err != nil {
			return
		}
		// Choosing a persistent peer may have displaced an inbound one.
		r.closeEvicted()
		r.dial(ctx, a)
	}
}

// dial dials a through the switch. The outcome reaches the PeerManager
// from AddPeer on success, and from here (DialFailed) otherwise; a dial
// that lost to the peer's own connection to us costs the address nothing
// (the PeerManager sees the peer connected).
func (r *Reactor) dial(ctx context.Context, a pex.NodeAddress) {
	na, err := r.netAddress(ctx, a)
	if err != nil {
		r.log.Debug("pex/cometbft: cannot dial", "addr", a, "err", err)
		r.pm.DialFailed(a)
		return
	}
	r.mu.Lock()
	r.dialing[a.NodeID] = a
	r.mu.Unlock()
	err = r.Switch.DialPeerWithAddress(na)
	r.mu.Lock()
	_, pending := r.dialing[a.NodeID]
	delete(r.dialing, a.NodeID)
	r.mu.Unlock()
	if pending {
		// AddPeer did not take it: the dial failed, or the switch was
		// stopping.
		r.log.Debug("pex/cometbft: dial failed", "addr", a, "err", err)
		var rej p2p.ErrRejected
		switch {
		case idMismatch(err):
			r.pm.DialMismatch(a)
		case errors.As(err, &rej) && !rej.IsAuthFailure():
			// The handshake proved the ID; the node refused us.
			r.pm.DialRefused(a)
		default:
			r.pm.DialFailed(a)
		}
	}
}

// idMismatch reports whether a dial failed because the node there proved
// another ID than the one dialled. CometBFT's transport reports it as an
// authentication failure whose text says "mismatch"; it exposes no kind.
func idMismatch(err error) bool {
	var rej p2p.ErrRejected
	return errors.As(err, &rej) && rej.IsAuthFailure() && strings.Contains(err.Error(), "mismatch")
}

// netAddress turns a into the switch's form, resolving a host name (with
// Config.Resolver, within Config.ResolveTimeout) to its first IP.
func (r *Reactor) netAddress(ctx context.Context, a pex.NodeAddress) (*p2p.NetAddress, error) {
	if a.Protocol == pex.ProtocolMemory {
		return nil, fmt.Errorf("%w: %s", ErrNotDialable, a)
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ResolveTimeout)
	defer cancel()
	eps, err := a.Resolve(ctx, r.cfg.Resolver)
	if err != nil {
		return nil, err
	}
	for _, ep := range eps {
		if ep.Addr().IsUnspecified() {
			continue
		}
		na := p2p.NewNetAddressIPPort(net.IP(ep.Addr().AsSlice()), ep.Port())
		na.ID = p2p.ID(a.NodeID)
		return na, nil
	}
	return nil, fmt.Errorf("%w: %s resolves to no usable IP", ErrNotDialable, a)
}

// announced returns the listen address p gave in its handshake, if it is
// one a node can be reached at (CometBFT nodes without an external address
// announce 0.0.0.0, which is not).
func (r *Reactor) announced(id pex.NodeID, p p2p.Peer) []pex.NodeAddress {
	ni := p.NodeInfo()
	if ni == nil {
		return nil
	}
	na, err := ni.NetAddress()
	if err != nil || na.IP.IsUnspecified() {
		return nil
	}
	a, err := nodeAddress(id, na)
	if err != nil {
		return nil
	}
	return []pex.NodeAddress{a}
}

// remoteOf is the observed remote address of p's connection (invalid if
// the switch cannot tell).
func remoteOf(p p2p.Peer) netip.AddrPort {
	na := p.SocketAddr()
	if na == nil {
		return netip.AddrPort{}
	}
	ip, ok := netip.AddrFromSlice(na.IP)
	if !ok {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ip.Unmap(), na.Port)
}

// capsOf reports CapV2 for a peer that lists the capability channel.
func (r *Reactor) capsOf(p p2p.Peer) pex.PeerCaps {
	ni, ok := p.NodeInfo().(interface{ HasChannel(byte) bool })
	if ok && ni.HasChannel(r.capCh) {
		return pex.CapV2
	}
	return 0
}

// nodeAddress converts a switch address to pex's form.
func nodeAddress(id pex.NodeID, na *p2p.NetAddress) (pex.NodeAddress, error) {
	if na == nil {
		return pex.NodeAddress{}, fmt.Errorf("%w: %s: no address", pex.ErrInvalidAddress, id)
	}
	ip, ok := netip.AddrFromSlice(na.IP)
	if !ok {
		return pex.NodeAddress{}, fmt.Errorf("%w: %s: bad IP", pex.ErrInvalidAddress, id)
	}
	return pex.NodeAddressFromIP(id, ip.Unmap(), na.Port)
}

// channel is the reactor's pex.Channel: sends go out through the switch's
// peers, reports through Reactor.ReportError.
type channel struct{ r *Reactor }

var _ pex.Channel = channel{}

// Send queues e on the PEX channel of its peer without waiting: a full
// send queue is an error wrapping pex.ErrQueueFull.
func (c channel) Send(_ context.Context, e pex.Envelope) error {
	c.r.mu.Lock()
	st := c.r.peers[e.To]
	c.r.mu.Unlock()
	if st == nil || !st.admitted {
		return fmt.Errorf("%w: %s", pex.ErrNotConnected, e.To)
	}
	if !st.peer.TrySend(p2p.Envelope{ChannelID: pex.PexChannel, Message: &wireMessage{b: e.Message}}) {
		if !st.peer.IsRunning() {
			return fmt.Errorf("%w: %s", pex.ErrNotConnected, e.To)
		}
		return fmt.Errorf("%w: send queue of %s", pex.ErrQueueFull, e.To)
	}
	// A displaced peer that waited for this answer goes now: the stop is
	// graceful, so the switch flushes the answer first.
	c.r.closeEvicted()
	return nil
}

func (c channel) Receive() <-chan pex.Envelope { return c.r.in }

func (c channel) ReportError(ctx context.Context, pe pex.PeerError) error {
	return c.r.ReportError(ctx, pe)
}
