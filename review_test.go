package pex

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// reviewID returns a deterministic node ID for these tests.
func reviewID(i int) NodeID { return NodeID(fmt.Sprintf("%040x", 0xbeef0000+i)) }

func reviewPM(t *testing.T, i int) *PeerManager {
	t.Helper()
	pm, err := NewPeerManager(reviewID(i), PeerManagerOptions{})
	require.NoError(t, err)
	return pm
}

func TestReviewMemoryQueueFullWrapsErrQueueFull(t *testing.T) {
	net := NewMemoryNetwork()
	a, err := net.AddNode(reviewPM(t, 1), MemoryNodeOptions{QueueSize: 1})
	require.NoError(t, err)
	defer a.Close()
	b, err := net.AddNode(reviewPM(t, 2), MemoryNodeOptions{QueueSize: 1})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, a.Dial(NodeAddress{Protocol: ProtocolMemory, NodeID: b.ID()}))

	ctx := context.Background()
	require.NoError(t, a.Send(ctx, Envelope{To: b.ID(), Message: []byte{0x1a, 0x00}}))
	err = a.Send(ctx, Envelope{To: b.ID(), Message: []byte{0x1a, 0x00}})
	require.ErrorIs(t, err, ErrQueueFull)
	require.True(t, strings.HasPrefix(err.Error(), "pex: "), err.Error())
	require.Contains(t, err.Error(), string(b.ID()))
}

type failingResolver struct{ err error }

func (r failingResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return nil, r.err
}

func TestReviewResolveWrapsErrResolveAndCause(t *testing.T) {
	a, err := ParseNodeAddress("mconn://" + string(reviewID(1)) + "@seed.example.com:26656")
	require.NoError(t, err)
	cause := errors.New("no such host")
	_, err = a.Resolve(context.Background(), failingResolver{cause})
	require.ErrorIs(t, err, ErrResolve)
	require.ErrorIs(t, err, cause)
	require.True(t, strings.HasPrefix(err.Error(), "pex: "), err.Error())
	require.Contains(t, err.Error(), "seed.example.com")

	// A context's error is kept as the cause, so errors.Is finds it too.
	_, err = a.Resolve(context.Background(), failingResolver{context.DeadlineExceeded})
	require.ErrorIs(t, err, ErrResolve)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestReviewDialNextReturnsContextErrorUnwrapped(t *testing.T) {
	pm := reviewPM(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := pm.DialNext(ctx)
	require.Equal(t, context.Canceled, err, "documented as returned as it is")
}

func TestReviewPeerErrorText(t *testing.T) {
	id := reviewID(7)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{ErrRequestTooSoon, "pex: peer " + string(id) + ": peer requests too often"},
		{fmt.Errorf("%w: 5 of 8 entries unusable", ErrMostlyInvalid), "pex: peer " + string(id) + ": response mostly invalid: 5 of 8 entries unusable"},
		{errors.New("boom"), "pex: peer " + string(id) + ": boom"},
		{nil, "pex: peer " + string(id) + ": <nil>"},
	} {
		pe := PeerError{NodeID: id, Err: tc.err}
		require.Equal(t, tc.want, pe.Error())
		require.Equal(t, 1, strings.Count(pe.Error(), "pex: "), pe.Error())
		if tc.err != nil {
			require.ErrorIs(t, pe, tc.err)
		}
	}
	var target PeerError
	require.ErrorAs(t, fmt.Errorf("wrapped: %w", PeerError{NodeID: id, Err: ErrTooManyAddresses}), &target)
	require.ErrorIs(t, target, ErrTooManyAddresses)
}

func TestReviewMemoryNodeKeepsLast1024PeerErrors(t *testing.T) {
	net := NewMemoryNetwork()
	node, err := net.AddNode(reviewPM(t, 1), MemoryNodeOptions{})
	require.NoError(t, err)
	defer node.Close()

	const total = 5000
	ctx := context.Background()
	for i := range total {
		require.NoError(t, node.ReportError(ctx, PeerError{NodeID: reviewID(100), Err: fmt.Errorf("%w: #%d", ErrMalformedMessage, i)}))
		net.mu.Lock()
		kept := len(node.errs)
		net.mu.Unlock()
		require.Less(t, kept, 2*maxPeerErrors, "storage must stay bounded")
	}
	got := node.PeerErrors()
	require.Len(t, got, 1024)
	for i, pe := range got {
		require.Equal(t, fmt.Sprintf("pex: malformed message: #%d", total-1024+i), pe.Err.Error(), "the most recent, oldest first")
	}

	// Fewer than the bound: all of them.
	other, err := net.AddNode(reviewPM(t, 2), MemoryNodeOptions{})
	require.NoError(t, err)
	defer other.Close()
	for i := range 3 {
		require.NoError(t, other.ReportError(ctx, PeerError{NodeID: reviewID(100), Err: fmt.Errorf("%w: #%d", ErrMalformedMessage, i)}))
	}
	require.Len(t, other.PeerErrors(), 3)
}

func TestReviewConfigChannelDescriptor(t *testing.T) {
	def := ChannelDescriptor()
	require.Equal(t, DefaultMaxMessageSize, def.RecvMessageCapacity)
	require.Equal(t, def, Config{}.ChannelDescriptor(), "zero Config: the defaults")
	require.Equal(t, def, DefaultConfig().ChannelDescriptor())

	cfg := Config{MaxMessageSize: 1 << 20}
	got := cfg.ChannelDescriptor()
	require.Equal(t, 1<<20, got.RecvMessageCapacity)
	got.RecvMessageCapacity = def.RecvMessageCapacity
	require.Equal(t, def, got, "only the receive capacity differs")
	validated, err := cfg.WithDefaults()
	require.NoError(t, err)
	require.Equal(t, validated.MaxMessageSize, cfg.ChannelDescriptor().RecvMessageCapacity)
}
