// Package testnet builds networks of real CometBFT switches on loopback
// TCP, each node running either CometBFT's PEX reactor with its address
// book or pex through the adapter, for the adapter's tests and for the
// pexrace benchmark. Every node gets its own 127.X.0.1 address: CometBFT's
// address book groups IPv4 addresses by /16, and a group holds at most 64
// addresses, so nodes all on 127.0.0.1 would crowd each other out.
package testnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto/ed25519"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p"
	cmtpex "github.com/cometbft/cometbft/p2p/pex"
	"github.com/cometbft/cometbft/version"

	"github.com/pexnet/pex"
	"github.com/pexnet/pex/cometbft"
)

// Kind is the PEX implementation a node runs.
type Kind int

const (
	// CometBFT runs CometBFT's PEX reactor and address book.
	CometBFT Kind = iota
	// Pex runs pex through the adapter.
	Pex
)

func (k Kind) String() string {
	if k == Pex {
		return "pex"
	}
	return "cometbft"
}

// Topology is whom each node knows at start.
type Topology string

const (
	// Star: every node knows node 0.
	Star Topology = "star"
	// Chain: node i knows node i-1.
	Chain Topology = "chain"
)

// Options configures a Network. Zero values mean the defaults given.
type Options struct {
	// Period is CometBFT's ensure-peers period. Default 30 s, CometBFT's.
	Period time.Duration
	// Pex is the configuration of the pex nodes' reactors.
	Pex pex.Config
	// MaxInbound and MaxOutbound are the switch's connection limits, and
	// the PeerManager's: MaxConnected = MaxInbound + MaxOutbound,
	// MaxOutbound = MaxOutbound. Default: the number of nodes, so that no
	// limit stalls discovery (CometBFT asks for addresses only while it
	// has fewer outbound peers than its limit).
	MaxInbound, MaxOutbound int
	// Seed derives the node keys and the pex nodes' random sources.
	Seed uint64
	// Dir holds the CometBFT address book files. Required when any node
	// is a CometBFT node.
	Dir string
	// Logger for the switches and CometBFT's reactors; default none.
	Logger cmtlog.Logger
}

// Node is one node of a Network.
type Node struct {
	Index     int
	Kind      Kind
	ID        pex.NodeID
	Addr      *p2p.NetAddress // where it listens
	Switch    *p2p.Switch
	Transport *p2p.MultiplexTransport
	Book      cmtpex.AddrBook   // CometBFT nodes
	PM        *pex.PeerManager  // pex nodes
	Adapter   *cometbft.Reactor // pex nodes
	Meter     *Meter            // wraps the node's PEX reactor
	Watch     *Watch            // records why peers were removed
}

// Knows reports whether n's address book holds other.
func (n *Node) Knows(other *Node) bool {
	if n.Kind == Pex {
		return n.PM.Has(other.ID)
	}
	return n.Book.HasAddress(other.Addr)
}

// Network is a set of nodes on loopback.
type Network struct {
	Nodes []*Node
	opts  Options
}

// New builds one node per kind, listening but not started.
func New(kinds []Kind, opts Options) (*Network, error) {
	if opts.Period == 0 {
		opts.Period = 30 * time.Second
	}
	if opts.MaxInbound == 0 {
		opts.MaxInbound = len(kinds)
	}
	if opts.MaxOutbound == 0 {
		opts.MaxOutbound = len(kinds)
	}
	if opts.Logger == nil {
		opts.Logger = cmtlog.NewNopLogger()
	}
	if len(kinds) > 254 {
		return nil, errors.New("testnet: at most 254 nodes (one 127.X.0.1 each)")
	}
	net := &Network{opts: opts}
	for i, k := range kinds {
		n, err := net.newNode(i, k)
		if err != nil {
			net.Stop()
			return nil, fmt.Errorf("testnet: node %d: %w", i, err)
		}
		net.Nodes = append(net.Nodes, n)
	}
	return net, nil
}

// IP returns the loopback address of node i: 127.(i+1).0.1.
func IP(i int) net.IP { return net.IPv4(127, byte(i+1), 0, 1) }

func (nw *Network) newNode(i int, kind Kind) (*Node, error) {
	o := nw.opts
	key := ed25519.GenPrivKeyFromSecret([]byte(fmt.Sprintf("pex-testnet-%d-%d", o.Seed, i)))
	nodeKey := &p2p.NodeKey{PrivKey: key}
	id := nodeKey.ID()
	port, err := freePort(IP(i))
	if err != nil {
		return nil, err
	}
	addr := p2p.NewNetAddressIPPort(IP(i), port)
	addr.ID = id
	hostPort := net.JoinHostPort(IP(i).String(), strconv.Itoa(int(port)))

	cfg := config.DefaultP2PConfig()
	cfg.ListenAddress = "tcp://" + hostPort
	cfg.MaxNumInboundPeers = o.MaxInbound
	cfg.MaxNumOutboundPeers = o.MaxOutbound
	cfg.AllowDuplicateIP = true // every inbound connection comes from 127.0.0.1
	cfg.AddrBookStrict = false  // loopback addresses

	n := &Node{Index: i, Kind: kind, ID: pex.NodeID(id), Addr: addr, Watch: NewWatch()}
	var reactor p2p.Reactor
	var book p2p.AddrBook
	channels := []byte{cmtpex.PexChannel}
	switch kind {
	case CometBFT:
		if o.Dir == "" {
			return nil, errors.New("Options.Dir is required for CometBFT nodes")
		}
		b := cmtpex.NewAddrBook(filepath.Join(o.Dir, fmt.Sprintf("addrbook-%d.json", i)), cfg.AddrBookStrict)
		b.SetLogger(o.Logger.With("node", i, "module", "book"))
		b.AddOurAddress(addr)
		r := cmtpex.NewReactor(b, &cmtpex.ReactorConfig{})
		r.SetEnsurePeersPeriod(o.Period)
		r.SetLogger(o.Logger.With("node", i, "module", "pex"))
		n.Book, book, reactor = b, b, r
	case Pex:
		self, err := pex.ParseNodeAddress("mconn://" + string(id) + "@" + hostPort)
		if err != nil {
			return nil, err
		}
		pm, err := pex.NewPeerManager(pex.NodeID(id), pex.PeerManagerOptions{
			SelfAddresses: []pex.NodeAddress{self},
			MaxConnected:  o.MaxInbound + o.MaxOutbound,
			MaxOutbound:   o.MaxOutbound,
			Rand:          rand.New(rand.NewPCG(o.Seed, uint64(i))),
		})
		if err != nil {
			return nil, err
		}
		r, err := cometbft.NewReactor(pm, cometbft.Options{Config: o.Pex})
		if err != nil {
			return nil, err
		}
		channels = append(channels, cometbft.DefaultCapabilityChannel)
		n.PM, n.Adapter, book, reactor = pm, r, r.AddrBook(), r
	}
	n.Meter = &Meter{Reactor: reactor}

	info := p2p.DefaultNodeInfo{
		ProtocolVersion: p2p.NewProtocolVersion(version.P2PProtocol, version.BlockProtocol, 0),
		DefaultNodeID:   id,
		ListenAddr:      hostPort,
		Network:         "pex-testnet",
		Version:         version.TMCoreSemVer,
		Channels:        channels,
		Moniker:         fmt.Sprintf("%s-%d", kind, i),
	}
	if err := info.Validate(); err != nil {
		return nil, err
	}
	tr := p2p.NewMultiplexTransport(info, *nodeKey, p2p.MConnConfig(cfg))
	p2p.MultiplexTransportMaxIncomingConnections(cfg.MaxNumInboundPeers)(tr)
	sw := p2p.NewSwitch(cfg, tr)
	sw.SetLogger(o.Logger.With("node", i, "module", "p2p"))
	sw.SetNodeInfo(info)
	sw.SetNodeKey(nodeKey)
	sw.SetAddrBook(book)
	sw.AddReactor("PEX", n.Meter)
	sw.AddReactor("WATCH", n.Watch)
	if err := tr.Listen(*addr); err != nil {
		return nil, err
	}
	n.Switch, n.Transport = sw, tr
	return n, nil
}

// freePort finds a port that is free on ip now. The transport listens on
// it a moment later: each node has an IP of its own, so only another
// program listening on that very IP could take it in between.
func freePort(ip net.IP) (uint16, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, err
	}
	return uint16(port), nil
}

// Bootstrap gives each node the address of the node(s) the topology says
// it knows at start: an address book entry, as an operator's seed list
// would give. Call it before Start.
func (nw *Network) Bootstrap(t Topology) error {
	for i, n := range nw.Nodes {
		if i == 0 {
			continue
		}
		var target *Node
		switch t {
		case Star:
			target = nw.Nodes[0]
		case Chain:
			target = nw.Nodes[i-1]
		default:
			return fmt.Errorf("testnet: unknown topology %q", t)
		}
		if err := n.Add(target); err != nil {
			return fmt.Errorf("testnet: node %d: %w", i, err)
		}
	}
	return nil
}

// Add puts other's address in n's book.
func (n *Node) Add(other *Node) error {
	if n.Kind == Pex {
		a, err := pex.ParseNodeAddress("mconn://" + string(other.ID) + "@" + other.Addr.DialString())
		if err != nil {
			return err
		}
		_, err = n.PM.Add(a)
		return err
	}
	return n.Book.AddAddress(other.Addr, n.Addr)
}

// Start starts every switch.
func (nw *Network) Start() error {
	for _, n := range nw.Nodes {
		if err := n.Switch.Start(); err != nil {
			return fmt.Errorf("testnet: node %d: %w", n.Index, err)
		}
	}
	return nil
}

// Stop closes every transport (no more connections), then stops every
// switch (peers, then reactors) and waits for the address books to save.
func (nw *Network) Stop() {
	for _, n := range nw.Nodes {
		if n.Transport != nil {
			_ = n.Transport.Close()
		}
	}
	var wg sync.WaitGroup
	for _, n := range nw.Nodes {
		if n.Switch == nil || !n.Switch.IsRunning() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = n.Switch.Stop()
		}()
	}
	wg.Wait()
	for _, n := range nw.Nodes {
		if w, ok := n.Book.(interface{ Wait() }); ok {
			w.Wait() // the book's save routine; returns at once if never started
		}
	}
}

// Missing counts the (node, other node) pairs where the node's book lacks
// the other.
func (nw *Network) Missing() int {
	missing := 0
	for _, n := range nw.Nodes {
		for _, m := range nw.Nodes {
			if n != m && !n.Knows(m) {
				missing++
			}
		}
	}
	return missing
}

// Converged reports whether every book holds every other node.
func (nw *Network) Converged() bool { return nw.Missing() == 0 }

// Banned lists, for each CometBFT node, the nodes its book has banned.
func (nw *Network) Banned() []string {
	var out []string
	for _, n := range nw.Nodes {
		if n.Kind != CometBFT {
			continue
		}
		for _, m := range nw.Nodes {
			if n != m && n.Book.IsBanned(m.Addr) {
				out = append(out, fmt.Sprintf("node %d (%s) banned node %d (%s)", n.Index, n.Kind, m.Index, m.Kind))
			}
		}
	}
	return out
}

// Misbehaviour lists the peer removals, on any node, whose reason was a
// PEX protocol violation (see IsMisbehaviour).
func (nw *Network) Misbehaviour() []string {
	var out []string
	for _, n := range nw.Nodes {
		for _, r := range n.Watch.Removals() {
			if IsMisbehaviour(r.Reason) {
				out = append(out, fmt.Sprintf("node %d (%s) stopped peer %s: %v", n.Index, n.Kind, r.Peer, r.Reason))
			}
		}
	}
	return out
}

// Totals adds up the nodes' meters.
func (nw *Network) Totals() Counts {
	var c Counts
	for _, n := range nw.Nodes {
		c = c.Add(n.Meter.Counts())
	}
	return c
}

// WaitGoroutines polls until at most n goroutines run, or timeout passes
// (on the wall clock: these networks use real sockets, which synctest
// cannot fake);
// it reports whether they got there. CometBFT's reactors start goroutines
// that nothing waits for (dials from its ensure-peers loop, its accept
// routine): after Stop they end on their own within a dial timeout.
func WaitGoroutines(n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}
