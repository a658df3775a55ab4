package pex

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// testID is a valid node ID for tests; testIDUpper is it in uppercase.
const (
	testID      = "0123456789abcdef0123456789abcdef01234567"
	testIDUpper = "0123456789ABCDEF0123456789ABCDEF01234567"
)

func mustAddr(t testing.TB, s string) NodeAddress {
	t.Helper()
	a, err := ParseNodeAddress(s)
	require.NoError(t, err)
	return a
}
