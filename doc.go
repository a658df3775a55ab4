// Package pex lets the nodes of a peer-to-peer network discover each other
// by exchanging peer addresses (PEX, peer exchange). It is wire-compatible
// with CometBFT and Tendermint v0.34 (V1 messages: node ID, IP, port) and
// with Tendermint v0.35 (V2 messages: URLs), and a node speaking V2 still
// answers V1 peers.
//
// # Embedding
//
// A node needs three things from pex: a PeerManager (the address book and
// the lifecycle of connections), a Channel (how PEX messages reach peers:
// implement it over your transport, or use the in-memory MemoryNetwork in
// tests), and a Reactor (the PEX service):
//
//	pm, _ := pex.NewPeerManager(selfID, pex.PeerManagerOptions{
//		SelfAddresses: []pex.NodeAddress{self},
//	})
//	sub := pm.Subscribe(ctx)
//	r, _ := pex.NewReactor(pex.Config{}, pm, sub.Updates(), channel)
//	_ = r.Start(ctx)
//	defer r.Stop()
//
// The transport reports connections to the PeerManager (Dialed, Accepted,
// Ready, Disconnected), which publishes peer Up and Down events; it asks
// the PeerManager whom to dial next (DialNext); and it acts on the peer
// errors the Reactor reports (PeerManager.Errored, and a disconnect when
// PeerError.Fatal).
//
// # How discovery works
//
// Connected peers form a rotation: the Reactor sends a request to the peer
// at the front, and the peer goes to the back when it answers (or fails to
// answer within Config.ResponseTimeout, which counts against it). The wait
// between requests adapts to how many addresses in each response were new:
// Config.MinInterval while the network is unknown, growing as responses
// repeat what the book holds, Config.MaxInterval once the book is 95%
// full. Requests are spaced per peer as the peer requires: Tendermint v0.35
// peers accept one per 200 ms, CometBFT peers punish more than one per
// 10 s and speak only V1.
//
// Answers come from PeerManager.Advertise, which walks the book in node-ID
// order from a random place for each connected peer and continues where it
// stopped, so a peer is never sent the same sample twice and the answers
// of several peers complement each other.
//
// # Decisions without I/O
//
// Every decision lives in Core, which takes the current time and events
// and returns Actions. The Reactor is a goroutine shell around it; the
// simulator drives Cores on virtual time; tests can drive either.
//
// # Defences
//
// Every bad input from a peer (oversize or undecodable bytes, an empty or
// unknown message, an unsolicited response, more than MaxAddresses
// entries, requests too often, malformed addresses, our own address) is
// refused without panicking, leaves the address book as it was, and is
// reported as a PeerError wrapping one of the Err sentinels.
package pex
