package cometbft

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	"github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"

	"github.com/pexnet/pex"
)

// ReactorName is the name under which a full node runs its PEX reactor,
// and so the name FullNode.Option gives the adapter, in place of
// CometBFT's.
const ReactorName = "PEX"

// NodeOptions configures ForNode. Its zero value is what most nodes want:
// everything ForNode needs comes from the node's config.
type NodeOptions struct {
	// Reactor configures the adapter reactor (see Options). A nil
	// Reactor.Config.Logger means the node's logger, bridged to slog.
	Reactor Options
	// PeerManager is the starting point of the PeerManager's options.
	// ForNode puts our address first in SelfAddresses, appends the
	// config's persistent_peers to PersistentPeers and private_peer_ids to
	// PrivatePeers, sets Strict from addr_book_strict, and takes
	// MaxConnected (max_num_inbound_peers + max_num_outbound_peers) and
	// MaxOutbound (max_num_outbound_peers) from the config where they are
	// zero here. A nil Logger means the node's logger, bridged to slog.
	PeerManager pex.PeerManagerOptions
}

// FullNode is pex made ready for one CometBFT v0.38 full node by ForNode:
// the adapter reactor and its PeerManager, to hand to node.NewNode with
// Option, and to attach to the node with Attach before it starts.
type FullNode struct {
	reactor *Reactor
	self    pex.NodeAddress
	seeds   []pex.NodeAddress
	logger  *slog.Logger
}

// ForNode builds pex for a CometBFT v0.38 full node from what its operator
// already has: the node's config and node key, and its logger. An
// operator switches a node to pex with three lines:
//
//	px, err := cometbft.ForNode(cfg, nodeKey, logger, cometbft.NodeOptions{})
//	n, err := node.NewNode(cfg, ..., logger, px.Option())
//	err = px.Attach(n) // after NewNode, before n.Start()
//
// From the config's [p2p] section it reads:
//
//   - external_address, or laddr when it is empty (tcp://host:port): our
//     own address, mconn://<node ID>@host:port, which pex advertises and
//     never dials. A laddr on 0.0.0.0 or [::] (or port 0) without an
//     external_address says nothing of where others reach us: it is an
//     error wrapping pex.ErrInvalidConfig.
//   - persistent_peers (id@host:port, comma-separated): the PeerManager's
//     PersistentPeers, kept and redialled by pex. The switch dials them
//     too, as it does for every node.
//   - seeds: added to the PeerManager's book, which dials them and asks
//     them for addresses like any other peer.
//   - private_peer_ids: the PeerManager's PrivatePeers, never advertised.
//   - max_num_inbound_peers and max_num_outbound_peers: MaxConnected (their
//     sum) and MaxOutbound.
//   - addr_book_strict: Strict (refuse unroutable addresses).
//
// A config with seed_mode on is refused (pex has no seed mode). The
// config's pex key does not matter: Option replaces CometBFT's PEX
// reactor if NewNode built one. Malformed entries are errors wrapping
// pex.ErrInvalidConfig.
func ForNode(cfg *config.Config, nodeKey *p2p.NodeKey, logger cmtlog.Logger, opts NodeOptions) (*FullNode, error) {
	if cfg == nil || cfg.P2P == nil {
		return nil, fmt.Errorf("%w: ForNode needs the node's config", pex.ErrInvalidConfig)
	}
	if nodeKey == nil || nodeKey.PrivKey == nil {
		return nil, fmt.Errorf("%w: ForNode needs the node key", pex.ErrInvalidConfig)
	}
	if cfg.P2P.SeedMode {
		return nil, fmt.Errorf("%w: seed_mode: pex has no seed mode; run the node with CometBFT's PEX reactor", pex.ErrInvalidConfig)
	}
	if logger == nil {
		logger = cmtlog.NewNopLogger()
	}
	slogger := slog.New(NewLogHandler(logger.With("module", "pex")))
	id, err := pex.ParseNodeID(string(nodeKey.ID()))
	if err != nil {
		return nil, fmt.Errorf("%w: node key: %w", pex.ErrInvalidConfig, err)
	}
	self, err := selfAddress(id, cfg.P2P)
	if err != nil {
		return nil, err
	}
	persistent, err := parsePeerList("persistent_peers", cfg.P2P.PersistentPeers)
	if err != nil {
		return nil, err
	}
	seeds, err := parsePeerList("seeds", cfg.P2P.Seeds)
	if err != nil {
		return nil, err
	}
	var private []pex.NodeID
	for _, s := range splitList(cfg.P2P.PrivatePeerIDs) {
		pid, err := pex.ParseNodeID(s)
		if err != nil {
			return nil, fmt.Errorf("%w: private_peer_ids: %w", pex.ErrInvalidConfig, err)
		}
		private = append(private, pid)
	}

	po := opts.PeerManager
	po.SelfAddresses = append([]pex.NodeAddress{self}, po.SelfAddresses...)
	po.PersistentPeers = append(append([]pex.NodeAddress(nil), po.PersistentPeers...), persistent...)
	po.PrivatePeers = append(append([]pex.NodeID(nil), po.PrivatePeers...), private...)
	po.Strict = cfg.P2P.AddrBookStrict
	if po.MaxConnected == 0 && cfg.P2P.MaxNumInboundPeers+cfg.P2P.MaxNumOutboundPeers > 0 {
		po.MaxConnected = cfg.P2P.MaxNumInboundPeers + cfg.P2P.MaxNumOutboundPeers
	}
	if po.MaxOutbound == 0 && cfg.P2P.MaxNumOutboundPeers > 0 {
		po.MaxOutbound = cfg.P2P.MaxNumOutboundPeers
	}
	if po.Logger == nil {
		po.Logger = slogger
	}
	pm, err := pex.NewPeerManager(id, po)
	if err != nil {
		return nil, err
	}
	for _, s := range seeds {
		if _, err := pm.Add(s); err != nil {
			return nil, fmt.Errorf("%w: seeds: %s: %w", pex.ErrInvalidConfig, s, err)
		}
	}
	ro := opts.Reactor
	if ro.Config.Logger == nil {
		ro.Config.Logger = slogger
	}
	r, err := NewReactor(pm, ro)
	if err != nil {
		return nil, err
	}
	return &FullNode{reactor: r, self: self, seeds: seeds, logger: slogger}, nil
}

// Reactor returns the adapter reactor.
func (f *FullNode) Reactor() *Reactor { return f.reactor }

// PeerManager returns the node's address book and connection manager.
func (f *FullNode) PeerManager() *pex.PeerManager { return f.reactor.pm }

// Self returns the address pex advertises for this node.
func (f *FullNode) Self() pex.NodeAddress { return f.self }

// Seeds returns the seeds read from the config, as given to the
// PeerManager.
func (f *FullNode) Seeds() []pex.NodeAddress { return append([]pex.NodeAddress(nil), f.seeds...) }

// Logger returns the slog logger pex writes to (the node's logger, with
// module=pex, unless NodeOptions gave another).
func (f *FullNode) Logger() *slog.Logger { return f.logger }

// Option returns the node.Option to pass to node.NewNode: it runs the
// adapter under the name "PEX", in place of CometBFT's PEX reactor if the
// config built one, and adds its two channels (0x00 and the capability
// channel) to the node's NodeInfo and transport.
func (f *FullNode) Option() node.Option {
	return node.CustomReactors(map[string]p2p.Reactor{ReactorName: f.reactor})
}

// Attach finishes the wiring on a node built by node.NewNode with Option;
// call it before n.Start. It sets the PeerManager as the switch's address
// book, in place of the CometBFT address book NewNode put there (which is
// then never started, so it neither loads nor writes addrbook.json): the
// switch reports good peers (consensus's MarkPeerAsGood) and the
// addresses it dials to its book. It also gives the switch the NodeInfo
// that lists the capability channel (NewNode's option updates the node's
// copy and the transport's, not the switch's). It fails, wrapping
// pex.ErrInvalidConfig, if n does not run this reactor.
func (f *FullNode) Attach(n *node.Node) error {
	if n == nil || n.Switch() == nil {
		return fmt.Errorf("%w: Attach needs the node", pex.ErrInvalidConfig)
	}
	sw := n.Switch()
	if sw.Reactor(ReactorName) != p2p.Reactor(f.reactor) {
		return fmt.Errorf("%w: the node does not run this reactor: pass FullNode.Option to node.NewNode", pex.ErrInvalidConfig)
	}
	if n.IsRunning() {
		return fmt.Errorf("%w: Attach must be called before the node starts", pex.ErrInvalidConfig)
	}
	sw.SetAddrBook(f.reactor.AddrBook())
	sw.SetNodeInfo(n.NodeInfo())
	return nil
}

// selfAddress is our address from external_address, or laddr.
func selfAddress(id pex.NodeID, c *config.P2PConfig) (pex.NodeAddress, error) {
	key, raw := "external_address", c.ExternalAddress
	if strings.TrimSpace(raw) == "" {
		key, raw = "laddr", c.ListenAddress
	}
	hostPort, err := stripTCP(strings.TrimSpace(raw))
	if err != nil {
		return pex.NodeAddress{}, fmt.Errorf("%w: %s %q: %w", pex.ErrInvalidConfig, key, raw, err)
	}
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return pex.NodeAddress{}, fmt.Errorf("%w: %s %q: %w", pex.ErrInvalidConfig, key, raw, err)
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) || port == "0" {
		return pex.NodeAddress{}, fmt.Errorf("%w: %s %q is not an address other nodes can reach: set external_address", pex.ErrInvalidConfig, key, raw)
	}
	a, err := pex.ParseNodeAddress("mconn://" + string(id) + "@" + hostPort)
	if err != nil {
		return pex.NodeAddress{}, fmt.Errorf("%w: %s %q: %w", pex.ErrInvalidConfig, key, raw, err)
	}
	return a, nil
}

// parsePeerList parses a comma-separated list of id@host:port.
func parsePeerList(key, list string) ([]pex.NodeAddress, error) {
	var out []pex.NodeAddress
	for _, s := range splitList(list) {
		hp, err := stripTCP(s)
		if err == nil {
			var a pex.NodeAddress
			a, err = pex.ParseNodeAddress("mconn://" + hp)
			if err == nil {
				out = append(out, a)
				continue
			}
		}
		return nil, fmt.Errorf("%w: %s: %q: %w", pex.ErrInvalidConfig, key, s, err)
	}
	return out, nil
}

// stripTCP removes a tcp:// prefix; any other protocol is an error.
func stripTCP(s string) (string, error) {
	proto, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s, nil
	}
	if proto != "tcp" {
		return "", errors.New("only tcp:// addresses can be advertised")
	}
	return rest, nil
}

// splitList splits a comma-separated config list, trimming spaces and
// dropping empty entries, as CometBFT does.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
