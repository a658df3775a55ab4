// Package pex lets the nodes of a peer-to-peer network discover each other
// by exchanging peer addresses (PEX, peer exchange). You embed it in a node
// and connect it to your own transport. It is wire-compatible with CometBFT
// and Tendermint v0.34 (V1 messages: node ID, IP, port) and with Tendermint
// v0.35 (V2 messages: URLs).
//
// # Embedding
//
// A node needs three pieces:
//
//   - a [PeerManager]: the address book and the lifecycle of connections.
//     It chooses whom to dial, tracks who is connected, keeps scores and
//     publishes peer Up and Down events.
//   - a [Channel]: how PEX messages reach peers. Implement it over your
//     transport, or use a [MemoryNetwork] node in tests.
//   - a [Reactor]: the PEX service. It asks connected peers for
//     addresses, answers their requests and feeds what it learns to the
//     PeerManager.
//
// Wire them together like this:
//
//	pm, err := pex.NewPeerManager(selfID, pex.PeerManagerOptions{
//		SelfAddresses: []pex.NodeAddress{self},
//	})
//	if err != nil {
//		return err
//	}
//	r, err := pex.NewReactor(pex.Config{}, pm, pm.Subscribe(ctx).Updates(), channel)
//	if err != nil {
//		return err
//	}
//	if err := r.Start(ctx); err != nil {
//		return err
//	}
//	defer r.Stop()
//
// Every field of [Config] and [PeerManagerOptions] is optional, and a zero
// value means its default. [DefaultConfig] returns the defaults. The
// Reactor runs until ctx ends or Stop is called. Stop returns once every
// goroutine the Reactor started has exited.
//
// # Writing a transport
//
// A transport implements [Channel] and reports to the PeerManager what
// happens to connections, in this order:
//
//  1. Ask whom to dial: [PeerManager.DialNext] blocks until an address is
//     due; [PeerManager.TryDialNext] does not block.
//  2. Report the outcome of the dial. Call [PeerManager.Dialed] once the
//     handshake has proved the node ID, or [PeerManager.DialFailed] if it
//     did not. If Dialed returns an error, hang up. With
//     [ErrDuplicateConnection] the peer's own connection to us won.
//  3. For a peer that dials us, call [PeerManager.Accepted] with the
//     listen address it announced in its handshake, so that the book
//     learns where to reach it. If Accepted fails, close the connection.
//  4. When the handshake is done, call [PeerManager.Ready] with the peer's
//     capabilities: [CapV2] for a pex or Tendermint v0.35 node. This
//     publishes Up.
//  5. When the connection closes, call [PeerManager.Disconnected]. This
//     publishes Down.
//  6. Pass each [PeerError] the Reactor reports through
//     [Channel.ReportError] to [PeerManager.Errored], and disconnect the
//     peer when [PeerError.Fatal] is set.
//  7. After Accepted, a dial or Errored, close the peers that
//     [PeerManager.EvictNext] names.
//
// Receive must return the same Go channel on every call. Deliver each
// message's raw bytes in [Envelope.Message] with From set: the Reactor
// decodes and judges them itself. The Reactor calls Send and ReportError
// from one goroutine, and they should not block for long. Size the PEX
// channel ([PexChannel]) with [Config.ChannelDescriptor], so that the
// transport and the Reactor refuse messages at the same size.
//
// # Testing with the in-memory network
//
// [NewMemoryNetwork] connects any number of nodes in one process. Each
// [MemoryNode] is a Channel. [MemoryNode.RunDialer] dials what its
// PeerManager chooses, and [MemoryNode.Dial] connects two nodes directly.
// Run the network inside a testing/synctest bubble. The Reactor's timers
// then use the bubble's fake clock, so a network that polls every ten
// seconds is tested in milliseconds, and a goroutine still running when
// the bubble ends fails the test:
//
//	synctest.Test(t, func(t *testing.T) {
//		net := pex.NewMemoryNetwork()
//		node, _ := net.AddNode(pm, pex.MemoryNodeOptions{Caps: pex.CapV2})
//		go node.RunDialer(ctx)
//		r, _ := pex.NewReactor(pex.Config{}, pm, pm.Subscribe(ctx).Updates(), node)
//		// start r, connect nodes, then synctest.Wait() and check the books
//	})
//
// # Interoperability
//
// CometBFT nodes speak V1 only. They drop a peer that sends an unknown
// message, and they punish requests less than 10 s apart. So the Reactor
// sends V2 requests only to peers that are known to speak V2: those
// reported with [CapV2], those that have sent us a V2 message, or every
// peer when [Config.NetworkV2] is set. Other peers get V1 requests, at
// most one per [Config.V1RequestInterval]. Each request is answered in its
// own version. A V1 answer carries IPs: host names are resolved through
// [Config.Resolver], and memory addresses are left out. A V2 answer
// carries URLs. The module github.com/pexnet/pex/cometbft runs a Reactor
// on a CometBFT v0.38 switch, in place of CometBFT's own PEX reactor.
//
// # Defences
//
// Bad input from a peer is refused without panicking, and is reported as
// a [PeerError] wrapping one of the Err sentinels. Bad input means
// oversize or undecodable bytes, an empty or unknown message, an
// unsolicited response, more than [MaxAddresses] entries, or requests
// faster than the per-peer token bucket allows. A refused message adds
// nothing to the address book. Within an accepted response, only valid
// entries are added, and a response that is mostly unusable is reported
// as [ErrMostlyInvalid]. The address book never stores our own address,
// never advertises private peers, and refuses unroutable addresses in
// strict mode. It counts every gossiped address against the network
// group of its source and of its own, so that one subnet cannot fill the
// book. It dials few peers of any one subnet. When connections are full,
// a newcomer displaces an inbound peer from the most crowded subnet.
package pex
