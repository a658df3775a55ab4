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
// happens to connections. The program in examples/tcpnode does all of
// this over TCP, as a template to copy (its README says what to keep).
// The calls, in order:
//
//  1. Ask whom to dial: [PeerManager.DialNext] blocks until an address is
//     due, and marks its peer dialing. [PeerManager.TryDialNext] does not
//     block. DialNext fails only when its ctx ends: stop dialling then.
//  2. Dial, and run your handshake. It must prove the peer's key, and you
//     must check that the NodeID of that key ([NodeIDFromPublicKey]) is
//     the NodeID of the address you dialled. pex does not check this: it
//     trusts the IDs the transport gives it.
//  3. Report the dial: [PeerManager.Dialed] once the handshake has proved
//     the ID; [PeerManager.DialMismatch] if it proved another ID (the
//     address is dropped and charged to whoever told us of it);
//     [PeerManager.DialRefused] if it proved the ID and the node then
//     refused the connection (full, or connected to us already: the
//     address is live); [PeerManager.DialFailed] if nobody proved an ID
//     there (the address backs off; one we never reached goes after two
//     failures). Call Dialed only after the handshake: it counts the
//     connection and scores the address.
//  4. For a peer that dials us, run the same handshake, then call
//     [PeerManager.AcceptedFrom] with the peer's proved ID, the
//     connection's remote address as you observed it, and the listen
//     address the peer announced, so that the book learns where to reach
//     it. What the peer tells us counts against the network group of the
//     observed address, never of the one it announces.
//  5. Call [PeerManager.Ready] with the peer's capabilities ([CapV2] for a
//     pex or Tendermint v0.35 node). This publishes Up, and the Reactor
//     may send to the peer at once. Ready does nothing unless Dialed or
//     Accepted succeeded.
//  6. Read the connection, and deliver each message in an [Envelope] on
//     the channel [Channel.Receive] returns.
//  7. When a connection that Dialed or Accepted counted closes, however it
//     closes, call [PeerManager.Disconnected]. This publishes Down.
//
// If Dialed or Accepted returns an error, close the connection and call
// neither DialFailed nor Disconnected: the PeerManager did not count it.
// The errors:
//
//   - [ErrDuplicateConnection]: the peer is already connected by another
//     connection. For Dialed, the peer dialled us while we dialled it, and
//     its connection won. It says nothing against the address. When two
//     nodes dial each other at once, each side may keep a different one,
//     and then both connections close; the nodes dial again later.
//   - [ErrTooManyPeers]: connections are at MaxConnected. Accepted found
//     no inbound peer to displace (or the peer's subnet lately broke the
//     protocol). Dialed returns it only for a peer that is not dialing,
//     such as one whose address did not come from DialNext or TryDialNext.
//   - [ErrSelfAddress]: the peer is this node.
//   - [ErrInvalidNodeID] (Accepted): the ID is not a valid NodeID.
//   - For an address not from DialNext or TryDialNext, Dialed also refuses
//     what [PeerManager.Add] would refuse ([ErrInvalidAddress],
//     [ErrUnroutableAddress], [ErrAddressBookFull]).
//
// DialFailed, Ready, Disconnected, Errored and EvictNext return no error.
//
// Pass each [PeerError] the Reactor reports through [Channel.ReportError]
// to [PeerManager.Errored], and close the connection when
// [PeerError.Fatal] is set. Report protocol errors the transport finds
// itself (an oversize frame, say) the same way.
//
// [PeerManager.EvictNext] names connected peers to close: an inbound peer
// displaced by a newcomer, a peer whose score fell to EvictScore, or a
// feeler (a test dial of an address nobody has shown to work, made while
// outbound slots are full) once it is made.
// Nothing notifies you when it has one. Drain it (call it until it
// returns false) after each call that can queue an eviction: Accepted,
// Dialed, DialNext or TryDialNext (a persistent peer's dial displaces an
// inbound peer when connections are full), Errored, and each Send (a
// displaced peer that had not had its first answer stays until it is
// sent). Close each connection it names, letting what was sent on it go
// first; its Disconnected follows as for any other close.
//
// Receive must return the same Go channel on every call. Deliver each
// message's raw bytes in [Envelope.Message] with From set: the Reactor
// decodes and judges them itself. The Reactor calls Send and ReportError
// from one goroutine, and they should not block for long. Size the PEX
// channel ([PexChannel]) with [Config.ChannelDescriptor], so that the
// transport and the Reactor refuse messages at the same size.
//
// The Reactor answers a request only from a peer that the PeerManager
// counts connected: after Dialed or Accepted succeeded and before
// Disconnected, even before the Reactor has seen the peer's Up. A request
// from any other peer is dropped, without an answer and without a
// PeerError. So call Dialed or Accepted before you deliver a peer's first
// message.
//
// After [Reactor.Stop], the Reactor no longer reads the Receive channel
// and no longer calls Send or ReportError. Messages still in the channel
// are never handled, and a transport that goes on sending to it blocks
// once its buffer is full: deliver with a select on your own shutdown
// signal (or drop the message), and close your connections. Close the
// Receive channel, if at all, only once nothing sends to it: a running
// Reactor stops when it sees it closed. The PeerManager outlives the
// Reactor: go on calling Disconnected as connections close. Stop does
// not end a [PeerManager.Subscribe] subscription; cancel its context.
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
