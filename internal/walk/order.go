// Package walk is the order in which a node serves its book to one
// requester, and how the requester reads it back.
//
// Every node ranks the entries of its book for a requester q by
// Rank(Key(entry), Key(q)): a bijective mix of both IDs' hashes, so each
// requester gets its own pseudo-random order of the network, the same on
// every node, and no node ID ranks first for everyone. A server walks its
// book for q once round in that order, from Start(Key(server), Key(q)),
// a place fixed for the pair, a run per answer (Cursor, Server). Because
// every node walks the same order for q, q can tell from the ranks of the
// entries a peer sent where that peer's walk stands, how far its next run
// will reach, and how many nodes its book holds (Reading); and before
// asking a peer at all, where its first run lies.
//
// The serving side and the reading side must agree on Key, Rank and
// Start: they live here, once.
package walk

import "github.com/pexnet/pex/internal/addr"

// Key hashes a node ID to 64 bits (FNV-1a), the same on every node.
func Key(id addr.NodeID) uint64 { return addr.FNV1a(addr.FNVBasis, id) }

// Rank places entry e in requester q's order: a bijective mix of e ^ q,
// so every requester gets its own pseudo-random order of the book, the
// same on every node, and no node ID can rank first for everyone.
func Rank(e, q uint64) uint64 { return addr.Mix(e ^ q) }

// Start is where node e's walk for requester q begins, as a rank in q's
// order: fixed for the pair, so q can tell where a peer's first answer
// lies before asking, and spread independently of e's own rank there, so
// the peers q learnt of from one run (neighbours in its order) do not all
// begin in one place.
func Start(e, q uint64) uint64 { return addr.Mix(e ^ q ^ startSalt) }

// startSalt sets walk starts apart from ranks (see Start).
const startSalt = 0x6a09e667f3bcc908
