package testnet

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pexnet/pex"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestIsMisbehaviour(t *testing.T) {
	for _, reason := range []any{
		// CometBFT's PEX reactor and connection.
		errors.New("peer (ab) sent next PEX request too soon. lastReceived: x, now: y, minInterval: 10s. Disconnecting"),
		errors.New("unsolicited pexAddrsMessage"),
		fmt.Errorf("unmarshaling message: %w into type: *p2p.Message", io.ErrUnexpectedEOF),
		"Unknown channel 1",
		// pex, through the adapter.
		pex.PeerError{NodeID: "ab", Err: pex.ErrUnsolicitedResponse, Fatal: true},
		struct{}{},
	} {
		require.True(t, IsMisbehaviour(reason), "%v", reason)
	}
	for _, reason := range []any{io.EOF, errors.New("read tcp 127.0.0.1:1->127.2.0.1:2: use of closed network connection"), nil} {
		require.False(t, IsMisbehaviour(reason), "%v", reason)
	}
}

func TestCountsAdd(t *testing.T) {
	a := Counts{Requests: 1, RequestsV2: 1, Responses: 2, Bytes: 10}
	require.Equal(t, Counts{Requests: 2, RequestsV2: 2, Responses: 4, Bytes: 20}, a.Add(a))
}
