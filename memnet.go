package pex

import (
	"context"
	"fmt"
	"sync"
)

// MemoryNetwork connects in-process nodes without sockets: each node is a
// PeerManager plus a Channel, and a connection is a pair of queues. It
// routes by node ID alone, so nodes may advertise any address form
// (mconn://id@10.0.0.1:26656 for V1 peers, memory:id for V2 ones). pex's
// tests use it, and so can yours: a node joins with AddNode, connects with
// Dial or by running its dialer (RunDialer) on what its PeerManager
// chooses, and a Reactor runs on its Channel.
type MemoryNetwork struct {
	mu    sync.Mutex
	nodes map[NodeID]*MemoryNode
}

// NewMemoryNetwork returns an empty network.
func NewMemoryNetwork() *MemoryNetwork {
	return &MemoryNetwork{nodes: make(map[NodeID]*MemoryNode)}
}

// MemoryNodeOptions configures a node of a MemoryNetwork.
type MemoryNodeOptions struct {
	// Caps is what the node announces in its handshake (CapV2 for a pex or
	// Tendermint v0.35 node; none for a CometBFT-like V1 node).
	Caps PeerCaps
	// QueueSize is the node's inbound queue; a message to a full queue is
	// dropped and Send returns an error wrapping ErrQueueFull. Default
	// 1024.
	QueueSize int
}

// MemoryNode is one node of a MemoryNetwork. It implements Channel.
type MemoryNode struct {
	net  *MemoryNetwork
	id   NodeID
	pm   *PeerManager
	caps PeerCaps
	in   chan Envelope

	// guarded by net.mu
	links  map[NodeID]*MemoryNode
	closed bool
	errs   []PeerError
}

var _ Channel = (*MemoryNode)(nil)

// AddNode joins a node with address book pm to the network. A node with
// pm's ID in the network already is an error wrapping ErrInvalidConfig.
func (n *MemoryNetwork) AddNode(pm *PeerManager, opts MemoryNodeOptions) (*MemoryNode, error) {
	setDefault(&opts.QueueSize, 1024)
	n.mu.Lock()
	defer n.mu.Unlock()
	id := pm.SelfID()
	if _, ok := n.nodes[id]; ok {
		return nil, fmt.Errorf("%w: node %s is already in the network", ErrInvalidConfig, id)
	}
	node := &MemoryNode{
		net:   n,
		id:    id,
		pm:    pm,
		caps:  opts.Caps,
		in:    make(chan Envelope, opts.QueueSize),
		links: make(map[NodeID]*MemoryNode),
	}
	n.nodes[id] = node
	return node, nil
}

// ID returns the node's ID.
func (m *MemoryNode) ID() NodeID { return m.id }

// PeerManager returns the node's address book.
func (m *MemoryNode) PeerManager() *PeerManager { return m.pm }

// Receive implements Channel.
func (m *MemoryNode) Receive() <-chan Envelope { return m.in }

// Send implements Channel: it queues e at the peer e.To. It fails with
// ErrNotConnected when e.To is not connected (or m is closed), and with
// ErrQueueFull, dropping e, when e.To's inbound queue is full.
func (m *MemoryNode) Send(_ context.Context, e Envelope) error {
	m.net.mu.Lock()
	defer m.net.mu.Unlock()
	peer := m.links[e.To]
	if m.closed || peer == nil {
		return fmt.Errorf("%w: %s", ErrNotConnected, e.To)
	}
	e.From = m.id
	select {
	case peer.in <- e:
		// A displaced peer that waited for this answer goes now; the
		// answer is already in its queue.
		m.closeEvictedLocked()
		return nil
	default:
		return fmt.Errorf("%w: memory network: inbound queue of %s", ErrQueueFull, e.To)
	}
}

// ReportError implements Channel: the peer's score drops in the node's
// PeerManager, and the connection closes if the error is fatal or the
// score reached the eviction threshold. It returns nil.
func (m *MemoryNode) ReportError(_ context.Context, pe PeerError) error {
	m.net.mu.Lock()
	m.errs = append(m.errs, pe)
	if len(m.errs) >= 2*maxPeerErrors {
		// Trim now and then rather than at every error: amortised O(1).
		m.errs = append(m.errs[:0], m.errs[len(m.errs)-maxPeerErrors:]...)
	}
	m.net.mu.Unlock()
	m.pm.Errored(pe)
	if pe.Fatal {
		m.Disconnect(pe.NodeID)
	}
	m.net.mu.Lock()
	defer m.net.mu.Unlock()
	m.closeEvictedLocked()
	return nil
}

// maxPeerErrors is how many reported peer errors a MemoryNode keeps.
const maxPeerErrors = 1024

// PeerErrors returns the peer errors reported on this node, oldest first:
// the most recent 1024 of them, so that a long-running node's memory stays
// bounded (older ones are forgotten).
func (m *MemoryNode) PeerErrors() []PeerError {
	m.net.mu.Lock()
	defer m.net.mu.Unlock()
	return append([]PeerError(nil), m.errs[max(len(m.errs)-maxPeerErrors, 0):]...)
}

// Dial connects to the node a names (by its node ID) and reports the
// outcome to both PeerManagers, which publish Up on success. A dial that
// fails is reported with DialFailed. It fails with ErrStopped when m is
// closed, ErrNotConnected when the network has no node a.NodeID (or it is
// m), ErrDuplicateConnection when the two are connected already, and
// ErrTooManyPeers when either side is full; otherwise with what the peer's
// PeerManager.Accepted or m's PeerManager.Dialed returns.
func (m *MemoryNode) Dial(a NodeAddress) error {
	n := m.net
	n.mu.Lock()
	defer n.mu.Unlock()
	fail := func(err error) error {
		m.pm.DialFailed(a)
		return err
	}
	if m.closed {
		return fail(ErrStopped)
	}
	peer := n.nodes[a.NodeID]
	if peer == nil || peer.closed || peer == m {
		return fail(fmt.Errorf("%w: no node %s", ErrNotConnected, a.NodeID))
	}
	if m.links[peer.id] != nil {
		return fail(fmt.Errorf("%w: %s", ErrDuplicateConnection, a.NodeID))
	}
	if err := peer.pm.Accepted(m.id, m.pm.SelfAddresses()...); err != nil {
		return fail(err)
	}
	peer.closeEvictedLocked() // accepting may have displaced an inbound peer
	if err := m.pm.Dialed(a); err != nil {
		peer.pm.Disconnected(m.id)
		m.pm.DialFailed(a)
		return err
	}
	m.links[peer.id] = peer
	peer.links[m.id] = m
	m.pm.Ready(peer.id, peer.caps)
	peer.pm.Ready(m.id, m.caps)
	m.closeEvictedLocked() // a feeler goes once made
	return nil
}

// RunDialer dials what the node's PeerManager chooses until ctx ends.
func (m *MemoryNode) RunDialer(ctx context.Context) {
	for {
		a, err := m.pm.DialNext(ctx)
		if err != nil {
			return
		}
		// A dial to a persistent peer may have displaced an inbound one.
		m.net.mu.Lock()
		m.closeEvictedLocked()
		m.net.mu.Unlock()
		_ = m.Dial(a) // failures are recorded in the PeerManager
	}
}

// Disconnect closes the connection to peer, if any, on both sides.
func (m *MemoryNode) Disconnect(peer NodeID) {
	m.net.mu.Lock()
	defer m.net.mu.Unlock()
	m.disconnectLocked(peer)
}

func (m *MemoryNode) disconnectLocked(peer NodeID) {
	other := m.links[peer]
	if other == nil {
		return
	}
	delete(m.links, peer)
	delete(other.links, m.id)
	m.pm.Disconnected(peer)
	other.pm.Disconnected(m.id)
}

// closeEvictedLocked closes the connections the PeerManager names for
// eviction. The caller holds net.mu.
func (m *MemoryNode) closeEvictedLocked() {
	for {
		id, ok := m.pm.EvictNext()
		if !ok {
			return
		}
		m.disconnectLocked(id)
	}
}

// Peers returns the IDs of the nodes m is connected to.
func (m *MemoryNode) Peers() []NodeID {
	m.net.mu.Lock()
	defer m.net.mu.Unlock()
	ids := make([]NodeID, 0, len(m.links))
	for id := range m.links {
		ids = append(ids, id)
	}
	return ids
}

// Close disconnects the node from everyone and leaves the network; its
// Receive channel is closed.
func (m *MemoryNode) Close() {
	m.net.mu.Lock()
	defer m.net.mu.Unlock()
	if m.closed {
		return
	}
	for id := range m.links {
		m.disconnectLocked(id)
	}
	m.closed = true
	delete(m.net.nodes, m.id)
	close(m.in)
}
