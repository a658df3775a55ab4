package pex

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
)

// NodeIDFromPublicKey returns the NodeID of the node whose ed25519 public
// key is pub, as CometBFT and Tendermint derive it: the lowercase hex of
// the first 20 bytes of the key's SHA-256 hash (the key's address). A
// transport proves a peer's NodeID by checking, in its handshake, that the
// peer holds the private key of a public key with this ID.
func NodeIDFromPublicKey(pub ed25519.PublicKey) NodeID {
	sum := sha256.Sum256(pub)
	return NodeID(hex.EncodeToString(sum[:20]))
}
