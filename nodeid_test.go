package pex

import (
	"crypto/ed25519"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/require"
)

// The vector: the ed25519 key of seed 32 zero bytes, whose ID CometBFT's
// p2p.PubKeyToID gives as below (the adapter module's tests check the two
// derivations agree on random keys too).
func TestNodeIDFromPublicKey(t *testing.T) {
	pub := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	require.Equal(t, "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29", hex.EncodeToString(pub))
	id := NodeIDFromPublicKey(pub)
	require.NoError(t, id.Validate())
	require.Equal(t, NodeID("139e3940e64b5491722088d9a0d741628fc826e0"), id)
}
