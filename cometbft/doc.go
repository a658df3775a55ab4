// Package cometbft runs pex on CometBFT's p2p stack: Reactor wraps a
// pex.Reactor as a CometBFT v0.38 p2p.Reactor, so that a node built on
// CometBFT's switch (multiplexed, encrypted TCP connections) discovers its
// network with pex instead of CometBFT's PEX reactor, and still talks to
// the CometBFT nodes around it.
//
// # A full node
//
// ForNode builds pex for a CometBFT v0.38 full node from its config, node
// key and logger; FullNode.Option goes to node.NewNode, and
// FullNode.Attach is called before the node starts:
//
//	px, _ := cometbft.ForNode(cfg, nodeKey, logger, cometbft.NodeOptions{})
//	n, _ := node.NewNode(cfg, ..., logger, px.Option())
//	_ = px.Attach(n)
//
// # Wiring a bare switch
//
//	pm, _ := pex.NewPeerManager(self.NodeID, pex.PeerManagerOptions{
//		SelfAddresses: []pex.NodeAddress{self},
//	})
//	r, _ := cometbft.NewReactor(pm, cometbft.Options{})
//	for _, ch := range r.GetChannels() {
//		nodeInfo.Channels = append(nodeInfo.Channels, ch.ID)
//	}
//	// ... transport and switch built with nodeInfo ...
//	sw.SetAddrBook(r.AddrBook())
//	sw.AddReactor("PEX", r)
//
// The switch starts and stops the reactor with itself.
//
// # Talking to CometBFT nodes
//
// Messages travel as bytes on channel 0x00 and the pex reactor decodes
// them itself. pex nodes list a second channel, the capability channel
// (nothing travels on it), in their handshake, and ask each other in V2;
// every other peer is taken for a CometBFT node and gets V1 requests no
// closer than pex.Config.V1RequestInterval, above the third of CometBFT's
// ensure-peers period that CometBFT punishes with a ban. A CometBFT
// node's answer of more than pex.MaxAddresses entries (it sends up to 250)
// is cut to the first pex.MaxAddresses before the pex reactor sees it.
package cometbft
