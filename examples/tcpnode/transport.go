package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/pexnet/pex"
)

// node is one pex node on its own TCP transport. It is the pex.Channel of
// its Reactor.
type node struct {
	id       pex.NodeID
	key      ed25519.PrivateKey
	addr     pex.NodeAddress // where the others reach us
	pm       *pex.PeerManager
	reactor  *pex.Reactor
	ln       net.Listener
	in       chan pex.Envelope // what Receive returns
	maxFrame int               // the largest PEX message we accept
	log      *slog.Logger

	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept and dial loops, and one per connection

	// mu guards conns and orders our PeerManager calls that open or close
	// connections, so that conns and the PeerManager always agree.
	mu    sync.Mutex
	conns map[pex.NodeID]net.Conn // the connections pex counts (Dialed or Accepted)
}

var _ pex.Channel = (*node)(nil)

const (
	dialTimeout  = 3 * time.Second
	writeTimeout = 2 * time.Second // Send must not block the Reactor for long
)

// startNode starts a node listening on 127.0.0.1 (a port the system
// chooses) that dials persistent first. It runs until stop is called.
func startNode(ctx context.Context, persistent []pex.NodeAddress, log *slog.Logger) (_ *node, err error) {
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, err
	}
	id := pex.NodeIDFromPublicKey(pub)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		if err != nil {
			cancel()
			ln.Close()
		}
	}()
	self, err := pex.ParseNodeAddress(fmt.Sprintf("tcp://%s@%s", id, ln.Addr()))
	if err != nil {
		return nil, err
	}
	pm, err := pex.NewPeerManager(id, pex.PeerManagerOptions{
		SelfAddresses:   []pex.NodeAddress{self}, // sent in every answer
		PersistentPeers: persistent,              // the seed: dialled first, retried forever
	})
	if err != nil {
		return nil, err
	}
	// Every node here is a pex node, so all get V2 requests, fast.
	cfg := pex.Config{NetworkV2: true, Logger: log}
	n := &node{
		id: id, key: key, addr: self, pm: pm, ln: ln, log: log, cancel: cancel,
		in:       make(chan pex.Envelope, pex.ChannelDescriptor().RecvBufferCapacity),
		maxFrame: cfg.ChannelDescriptor().RecvMessageCapacity, // the Reactor's limit too
		conns:    make(map[pex.NodeID]net.Conn),
	}
	// The subscription ends with ctx: Reactor.Stop does not end it.
	if n.reactor, err = pex.NewReactor(cfg, pm, pm.Subscribe(ctx).Updates(), n); err != nil {
		return nil, err
	}
	if err := n.reactor.Start(ctx); err != nil {
		return nil, err
	}
	n.wg.Add(2)
	go func() { defer n.wg.Done(); n.acceptLoop(ctx) }()
	go func() { defer n.wg.Done(); n.dialLoop(ctx) }()
	return n, nil
}

// stop closes everything and returns once every goroutine has exited.
func (n *node) stop() {
	n.cancel()       // ends the dial loop, and closes every connection (see handle)
	n.ln.Close()     // ends the accept loop
	n.reactor.Stop() // nothing reads n.in from here on; the read loops give up on ctx
	n.wg.Wait()      // every connection has reported Disconnected
}

// acceptLoop hands each inbound connection to handle.
func (n *node) acceptLoop(ctx context.Context) {
	for {
		nc, err := n.ln.Accept()
		if err != nil {
			return // the listener closed (a server would retry temporary errors)
		}
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.handle(ctx, nc, nil) }()
	}
}

// dialLoop dials whatever the PeerManager chooses, until ctx ends.
func (n *node) dialLoop(ctx context.Context) {
	d := net.Dialer{Timeout: dialTimeout}
	for {
		a, err := n.pm.DialNext(ctx) // marks a's peer dialing: report Dialed or DialFailed
		if err != nil {
			return // ctx ended
		}
		n.mu.Lock()
		n.evictLocked() // a persistent peer's dial may have displaced an inbound peer
		n.mu.Unlock()
		nc, err := d.DialContext(ctx, "tcp", net.JoinHostPort(a.Hostname, strconv.Itoa(int(a.Port))))
		if err != nil {
			n.pm.DialFailed(a)
			continue
		}
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.handle(ctx, nc, &a) }()
	}
}

// handle runs one connection: handshake, then reads until it closes.
// dialled is the address we dialled, nil for a connection we accepted.
func (n *node) handle(ctx context.Context, nc net.Conn, dialled *pex.NodeAddress) {
	defer nc.Close()
	defer context.AfterFunc(ctx, func() { nc.Close() })() // stop closes it
	id, err := n.connect(nc, dialled)
	if err != nil {
		n.log.Debug("connection refused", "remote", nc.RemoteAddr(), "outbound", dialled != nil, "err", err)
		return
	}
	defer n.disconnected(id)
	n.pm.Ready(id, pex.CapV2) // publishes Up: the Reactor may now send to id
	n.readLoop(ctx, nc, id)
}

var errWrongNode = errors.New("the peer is not the node we dialled")

// connect runs the handshake and tells the PeerManager about the
// connection, only once the peer has proved its key. On success the
// connection is in n.conns, and the caller must call disconnected when it
// closes. On error the caller closes it, and pex has nothing to undo.
func (n *node) connect(nc net.Conn, dialled *pex.NodeAddress) (pex.NodeID, error) {
	id, listen, err := handshake(nc, n.key, n.ln.Addr().String())
	if err == nil && dialled != nil && id != dialled.NodeID {
		err = fmt.Errorf("%w: dialled %s, reached %s", errWrongNode, dialled.NodeID, id)
	}
	if err != nil {
		switch {
		case dialled == nil:
		case errors.Is(err, errWrongNode):
			n.pm.DialMismatch(*dialled) // someone else is there: the address goes
		default:
			n.pm.DialFailed(*dialled) // the address backs off
		}
		return "", err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	defer n.evictLocked() // Accepted may have displaced an inbound peer
	if dialled != nil {
		// ErrDuplicateConnection: the peer's own connection to us won,
		// and this one goes; it counts nothing against the address.
		// ErrTooManyPeers, ErrSelfAddress: hang up.
		err = n.pm.Dialed(*dialled)
	} else {
		// Tell the book where the peer listens, and where its
		// connection comes from: its gossip counts against the group
		// of the remote IP we saw, not of the address it claims. An
		// address AcceptedFrom cannot use is ignored.
		var announced []pex.NodeAddress
		if a, err := pex.ParseNodeAddress(fmt.Sprintf("tcp://%s@%s", id, listen)); err == nil {
			announced = append(announced, a)
		}
		var remote netip.AddrPort
		if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
			remote = ta.AddrPort()
		}
		// ErrDuplicateConnection, ErrTooManyPeers, ErrSelfAddress: close.
		err = n.pm.AcceptedFrom(id, remote, announced...)
	}
	if err != nil {
		return "", err
	}
	n.conns[id] = nc
	return id, nil
}

// disconnected reports that the connection to id closed.
func (n *node) disconnected(id pex.NodeID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.conns, id)
	n.pm.Disconnected(id) // publishes Down
}

// readLoop feeds each frame from id to the Reactor until the connection
// closes or ctx ends.
func (n *node) readLoop(ctx context.Context, nc net.Conn, id pex.NodeID) {
	for {
		msg, err := readFrame(nc, n.maxFrame)
		if errors.Is(err, errFrameTooLarge) {
			// The stream cannot be resynchronised: the peer broke the
			// protocol. Report it as the Reactor would, and hang up.
			n.ReportError(ctx, pex.PeerError{NodeID: id, Err: fmt.Errorf("%w: %w", pex.ErrMessageTooLarge, err), Fatal: true})
			return
		}
		if err != nil {
			return
		}
		select {
		case n.in <- pex.Envelope{From: id, Message: msg}:
		case <-ctx.Done(): // after Reactor.Stop nobody reads n.in
			return
		}
	}
}

// evictLocked closes the connections pex wants gone: inbound peers
// displaced by a newcomer, and peers whose score fell too low. Closing a
// connection ends its read loop, which reports Disconnected. The caller
// holds n.mu.
func (n *node) evictLocked() {
	for {
		id, ok := n.pm.EvictNext()
		if !ok {
			return
		}
		if nc := n.conns[id]; nc != nil {
			nc.Close()
		}
	}
}

// Receive implements pex.Channel.
func (n *node) Receive() <-chan pex.Envelope { return n.in }

// Send implements pex.Channel: one frame to the peer. The Reactor calls it
// from one goroutine, so frames do not interleave; a transport with other
// writers would lock the connection.
func (n *node) Send(_ context.Context, e pex.Envelope) error {
	n.mu.Lock()
	nc := n.conns[e.To]
	n.mu.Unlock()
	if nc == nil {
		return fmt.Errorf("%w: %s", pex.ErrNotConnected, e.To)
	}
	nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := writeFrame(nc, e.Message); err != nil {
		nc.Close() // a frame may be half written: the stream is lost
		return err
	}
	// A displaced peer that waited for this answer goes now that it is
	// written.
	n.mu.Lock()
	n.evictLocked()
	n.mu.Unlock()
	return nil
}

// ReportError implements pex.Channel: the peer's score drops, and a peer
// that broke the protocol is disconnected.
func (n *node) ReportError(_ context.Context, pe pex.PeerError) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pm.Errored(pe)
	if nc := n.conns[pe.NodeID]; nc != nil && pe.Fatal {
		nc.Close()
	}
	n.evictLocked() // the score may have fallen to EvictScore
	return nil
}
