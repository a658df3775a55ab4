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
// Answers come from PeerManager.Advertise. Every answer carries our own
// SelfAddresses. For the rest, the book is walked for each connected
// requester in an order of its own (each entry ranked by a mix of the
// hashes of its node ID and the requester's, the same on every node), once
// round from a place fixed for the pair (PeerManager.WalkStartOf tells
// the requester where); each answer brings the next run of the walk, then
// the news (entries added since the last answer that the walk has already
// passed), and after one round only news, what came in last first. An
// address is never sent back to the peer it came from, nor to a connected
// peer that told us of it, and a connected peer is never sent the same
// address twice; the walk, and what the peer told us, are forgotten on
// disconnect.
//
// Connected peers form a rotation. Under PolicyTendermint the Reactor asks
// the peer at the front and moves it to the back when it answers. Under
// PolicyAdaptive, the default, it asks the due peer expected to bring the
// most news: since every peer walks the same order for us, the ranks of
// what a peer just sent show where its walk stands (the run ends at the
// first entry the walk had passed: news follows it), and the book shows how
// much of its next stretch we already know. New peers go to the front of
// the rotation, judged by the share of the network we miss; while fewer
// than two connected peers have answered with part of the network, a peer
// that has not answered yet is worth at least one half, as a book copied
// from one peer looks complete by that peer's walk; and while answers keep
// bringing nothing and the size estimate says we miss more than a quarter
// of the network, it is worth that share; one that has had our book from us
// and asked us lately is worth that share (if over a quarter) times the
// share of our book it has had as soon as one answer brought nothing, and
// after three, when any new peer is worth that share, up to 5% more than
// they (its answer leaves out what we told it, so it holds only what we
// miss; on the same terms as below). Until two peers are sources, a new
// peer that has had two requests or more answered by us, and that we have
// not asked on this connection, is preferred (worth 5% more; not one from a
// crowded subnet, as below): a pex peer leaves out of its answers what we
// sent it, as we leave out what it sent us, so between two peers that ask
// each other an address goes once. A new peer that dialled us from a subnet
// we are already connected to, or that lately broke the protocol, is not
// asked at all until it has asked us (or for a second). A peer that misses
// Config.ResponseTimeout goes back into the rotation, the miss reported,
// and its late answer is still used.
//
// The wait between requests is Config.MinInterval divided by the smoothed
// share of new addresses in answers (from a pex peer out of the
// MaxAddresses an answer can hold; from a peer that samples out of what it
// sent), up to 100 times it; after 3 answers in a row with nothing new it
// doubles, up to Config.SaturatedInterval;
// Config.MaxInterval once the book is 95% full. Requests are spaced per
// peer as the peer requires: Tendermint v0.35 peers accept one per 200 ms,
// CometBFT peers punish more than one per 10 s and speak only V1.
//
// # Decisions without I/O
//
// Every decision lives in Core, which takes the current time and events
// and returns Actions. The Reactor is a goroutine shell around it; the
// simulator drives Cores on virtual time; tests can drive either.
//
// # Defences
//
// Bad input from a peer (oversize or undecodable bytes, an empty or
// unknown message, an unsolicited response, more than MaxAddresses
// entries, requests too often) is refused without panicking and is
// reported as a PeerError wrapping one of the Err sentinels; a rejected
// message adds nothing to the address book. Within an accepted response,
// only valid entries are added: invalid ones (malformed, unroutable in
// strict mode) are skipped, counted and reported, and a response that is
// mostly unusable is reported as ErrMostlyInvalid, its valid entries still
// added. Our own address in a response is dropped without a PeerError, as
// a peer that knows us may honestly share it, unless most of the response
// is like it.
package pex
