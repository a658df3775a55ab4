package cometbft

import (
	stded25519 "crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/p2p"
	"github.com/stretchr/testify/require"

	"github.com/pexnet/pex"
)

// pex derives a node's ID from its ed25519 key as CometBFT does, for the
// root package's fixed vector and for random keys.
func TestNodeIDFromPublicKeyMatchesCometBFT(t *testing.T) {
	seed := stded25519.NewKeyFromSeed(make([]byte, stded25519.SeedSize)).Public().(stded25519.PublicKey)
	keys := []stded25519.PublicKey{seed}
	for range 20 {
		pub, _, err := stded25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		keys = append(keys, pub)
	}
	for _, pub := range keys {
		want := p2p.PubKeyToID(ed25519.PubKey(pub))
		require.Equal(t, string(want), string(pex.NodeIDFromPublicKey(pub)))
	}
}
