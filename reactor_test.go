package pex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pexnet/pex/internal/testkit"
	"github.com/pexnet/pex/pb"
)

// Behaviour tests of the Reactor (SPEC sections 5 and 6), at two levels:
// the Core, driven by scripted transcripts at explicit times, and the
// Reactor shell, driven over a fake Channel inside synctest bubbles.
// Helpers are prefixed rx so they do not clash with other test files.

// ---------------------------------------------------------------------------
// Shared helpers

// rxSelfAddr is what the node under test (nodeID(0)) advertises.
var rxSelfAddr = NodeAddress{Protocol: ProtocolMConn, NodeID: nodeID(0), Hostname: "192.0.2.1", Port: 26656}

// rxAddr is a distinct IPv4 address for node i.
func rxAddr(i int) NodeAddress {
	return NodeAddress{Protocol: ProtocolMConn, NodeID: nodeID(i), Hostname: fmt.Sprintf("10.%d.%d.1", i/256, i%256), Port: 26656}
}

func rxPM(t testing.TB, opts PeerManagerOptions) *PeerManager {
	t.Helper()
	if opts.SelfAddresses == nil {
		opts.SelfAddresses = []NodeAddress{rxSelfAddr}
	}
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewPCG(1, 2))
	}
	pm, err := NewPeerManager(nodeID(0), opts)
	require.NoError(t, err)
	return pm
}

func rxFill(t testing.TB, pm *PeerManager, addrs ...NodeAddress) {
	t.Helper()
	for _, a := range addrs {
		isNew, err := pm.Add(a)
		require.NoError(t, err)
		require.True(t, isNew, "%s", a)
	}
}

func rxRange(from, to int) []NodeAddress {
	var out []NodeAddress
	for i := from; i <= to; i++ {
		out = append(out, rxAddr(i))
	}
	return out
}

func TestConfigValidation(t *testing.T) {
	d := DefaultConfig()
	require.Equal(t, 200*time.Millisecond, d.MinInterval)
	require.Equal(t, 10*time.Minute, d.MaxInterval)
	require.Equal(t, 10*time.Second, d.ResponseTimeout)
	require.Equal(t, 250*time.Millisecond, d.V2RequestInterval)
	require.Equal(t, 11*time.Second, d.V1RequestInterval)
	require.Equal(t, 200*time.Millisecond, d.MinReceiveInterval)
	require.Equal(t, 4, d.RequestBurst)
	require.Equal(t, DefaultMaxMessageSize, d.MaxMessageSize)
	require.Equal(t, time.Minute, d.NoPeersMaxBackoff)
	require.Zero(t, d.NoPeersRestartWindow)
	require.Equal(t, 10*time.Minute, d.RestartCooldown)
	require.NotNil(t, d.Logger)

	pm := rxPM(t, PeerManagerOptions{})
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{V2RequestInterval: 100 * time.Millisecond}, false},
		{Config{V2RequestInterval: 199 * time.Millisecond}, false},
		{Config{V2RequestInterval: -time.Second}, false},
		{Config{V2RequestInterval: 200 * time.Millisecond}, true},
		{Config{V1RequestInterval: 5 * time.Second}, false},
		{Config{V1RequestInterval: 10*time.Second - 1}, false},
		{Config{V1RequestInterval: 10 * time.Second}, true},
		{Config{MinInterval: time.Hour}, false}, // above MaxInterval
		{Config{RequestBurst: -1}, false},
		{Config{MaxMessageSize: 10}, false},
	} {
		_, err := tc.cfg.WithDefaults()
		_, rerr := NewReactor(tc.cfg, pm, make(chan PeerUpdate), newRxChannel())
		if tc.ok {
			require.NoError(t, err, "%+v", tc.cfg)
			require.NoError(t, rerr, "%+v", tc.cfg)
			continue
		}
		require.ErrorIs(t, err, ErrInvalidConfig, "%+v", tc.cfg)
		require.ErrorIs(t, rerr, ErrInvalidConfig, "%+v", tc.cfg)
		require.True(t, strings.HasPrefix(err.Error(), "pex: "))
	}
	_, err := NewReactor(Config{}, nil, make(chan PeerUpdate), newRxChannel())
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewReactor(Config{}, pm, nil, newRxChannel())
	require.ErrorIs(t, err, ErrInvalidConfig)
	_, err = NewReactor(Config{}, pm, make(chan PeerUpdate), nil)
	require.ErrorIs(t, err, ErrInvalidConfig)
}

// ---------------------------------------------------------------------------
// Reactor shell

// rxChannel is a Channel double: it records what the reactor sends and
// reports, can fail sends, hold them at a gate, and answer them.
type rxChannel struct {
	in chan Envelope

	mu       sync.Mutex
	sent     []rxSent
	errs     []PeerError
	failNext int
	respond  func(e Envelope) []byte
	gate     func(e Envelope) <-chan struct{}

	active, maxActive atomic.Int32
}

type rxSent struct {
	at   time.Time
	to   NodeID
	kind string
	msg  []byte
}

var _ Channel = (*rxChannel)(nil)

func newRxChannel() *rxChannel { return &rxChannel{in: make(chan Envelope, 1024)} }

func (f *rxChannel) enter() func() {
	n := f.active.Add(1)
	for {
		m := f.maxActive.Load()
		if n <= m || f.maxActive.CompareAndSwap(m, n) {
			break
		}
	}
	return func() { f.active.Add(-1) }
}

func (f *rxChannel) Send(ctx context.Context, e Envelope) error {
	defer f.enter()()
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		if g := gate(e); g != nil {
			select {
			case <-g:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	var m pb.PexMessage
	kind := "undecodable"
	if proto.Unmarshal(e.Message, &m) == nil {
		kind = testkit.KindOf(&m)
	}
	f.mu.Lock()
	f.sent = append(f.sent, rxSent{at: time.Now(), to: e.To, kind: kind, msg: e.Message})
	if f.failNext > 0 {
		f.failNext--
		f.mu.Unlock()
		return errors.New("rxChannel: send failed")
	}
	respond := f.respond
	f.mu.Unlock()
	if respond != nil {
		if r := respond(e); r != nil {
			f.in <- Envelope{From: e.To, Message: r}
		}
	}
	return nil
}

func (f *rxChannel) Receive() <-chan Envelope { return f.in }

func (f *rxChannel) ReportError(_ context.Context, pe PeerError) error {
	defer f.enter()()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, pe)
	return nil
}

// take returns what was sent since the last call.
func (f *rxChannel) take() []rxSent {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.sent
	f.sent = nil
	return out
}

func (f *rxChannel) peerErrors() []PeerError {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]PeerError(nil), f.errs...)
}

func (f *rxChannel) set(fn func(f *rxChannel)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *rxChannel) deliver(from int, msg []byte) {
	f.in <- Envelope{From: nodeID(from), Message: msg}
}

type rxHarness struct {
	t  *testing.T
	pm *PeerManager
	ch *rxChannel
	r  *Reactor
	t0 time.Time
}

// rxStart runs a Reactor for node 0 on a fake channel, fed by a
// PeerManager subscription. Call it inside a synctest bubble.
func rxStart(t *testing.T, cfg Config, opts PeerManagerOptions) *rxHarness {
	t.Helper()
	pm := rxPM(t, opts)
	ch := newRxChannel()
	ctx, cancel := context.WithCancel(t.Context())
	sub := pm.Subscribe(ctx)
	r, err := NewReactor(cfg, pm, sub.Updates(), ch)
	require.NoError(t, err)
	require.NoError(t, r.Start(ctx))
	t.Cleanup(func() {
		cancel()
		r.Stop()
	})
	h := &rxHarness{t: t, pm: pm, ch: ch, r: r, t0: time.Now()}
	synctest.Wait()
	return h
}

// up connects peer i through the PeerManager, which publishes Up.
func (h *rxHarness) up(i int, caps PeerCaps) {
	h.t.Helper()
	require.NoError(h.t, h.pm.Accepted(nodeID(i)))
	h.pm.Ready(nodeID(i), caps)
}

func (h *rxHarness) down(i int) { h.pm.Disconnected(nodeID(i)) }

// sleep advances the bubble's clock and lets every goroutine settle.
func (h *rxHarness) sleep(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func (h *rxHarness) since() time.Duration { return time.Since(h.t0) }

func (h *rxHarness) kinds(sent []rxSent) []string {
	var out []string
	for _, s := range sent {
		out = append(out, fmt.Sprintf("%d:%s", rxIndex(h.t, s.to), s.kind))
	}
	return out
}

func TestReactorPollsPeersInRotation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := rxStart(t, Config{Policy: PolicyTendermint, MinInterval: 150 * time.Millisecond}, PeerManagerOptions{}) // 200 ms
		h.up(1, CapV2)
		h.up(2, CapV2)
		h.up(3, CapV2)
		synctest.Wait()
		next := 100
		for round := range 9 {
			sent := h.ch.take()
			want := 1 + round%3
			require.Equal(t, []string{fmt.Sprintf("%d:v2req", want)}, h.kinds(sent), "round %d at %s", round, h.since())
			require.Equal(t, time.Duration(round)*200*time.Millisecond, sent[0].at.Sub(h.t0))
			// The peer answers at once with an address we did not know.
			h.ch.deliver(want, testkit.V2RespAddrs(rxAddr(next)))
			next++
			synctest.Wait()
			require.Empty(t, h.ch.take())
			h.sleep(200 * time.Millisecond)
		}
		for i := 100; i < next; i++ {
			require.True(t, h.pm.Has(nodeID(i)))
		}
		require.Empty(t, h.ch.peerErrors())
		st := h.r.Stats()
		require.Equal(t, 10, st.RequestsSent)
		require.Equal(t, 9, st.AddressesNew)
		require.Equal(t, 200*time.Millisecond, st.Interval)
	})
}

func TestReactorTimeoutAndDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := rxStart(t, Config{}, PeerManagerOptions{})
		h.up(1, CapV2)
		synctest.Wait()
		require.Equal(t, []string{"1:v2req"}, h.kinds(h.ch.take()))
		// No answer: nothing more until the timeout, then a non-fatal
		// error and a new request.
		h.sleep(10*time.Second - time.Millisecond)
		require.Empty(t, h.ch.take())
		require.Empty(t, h.ch.peerErrors())
		h.sleep(time.Millisecond)
		require.Equal(t, []string{"1:v2req"}, h.kinds(h.ch.take()))
		errs := h.ch.peerErrors()
		require.Len(t, errs, 1)
		testkit.RequirePeerError(t, errs[0], nodeID(1), ErrResponseTimeout, false)
		// It goes down while pending: no timeout, no request, and its late
		// response is unsolicited.
		h.sleep(time.Second)
		h.down(1)
		h.sleep(time.Minute)
		require.Empty(t, h.ch.take())
		require.Len(t, h.ch.peerErrors(), 1)
		h.ch.deliver(1, testkit.V2RespAddrs(rxAddr(100)))
		synctest.Wait()
		errs = h.ch.peerErrors()
		require.Len(t, errs, 2)
		testkit.RequirePeerError(t, errs[1], nodeID(1), ErrUnsolicitedResponse, true)
		require.False(t, h.pm.Has(nodeID(100)))
	})
}

// TestReactorReadsAnswerBeforeDown: a peer that answers and hangs up at
// once (a CometBFT seed) has its answer queued before its Down; the
// reactor reads the answer first, so it is used, not taken for
// unsolicited. Eight peers, as the reactor's select would otherwise pick
// either at random.
func TestReactorReadsAnswerBeforeDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := rxStart(t, Config{}, PeerManagerOptions{})
		for i := 1; i <= 8; i++ {
			_, err := h.pm.Add(rxAddr(i))
			require.NoError(t, err)
			h.up(i, CapV2)
			synctest.Wait()
			require.Equal(t, []string{fmt.Sprintf("%d:v2req", i)}, h.kinds(h.ch.take()))
			h.ch.deliver(i, testkit.V2RespAddrs(rxAddr(100+i)))
			h.down(i)
			synctest.Wait()
			require.True(t, h.pm.Has(nodeID(100+i)), "peer %d's answer was lost", i)
			h.sleep(11 * time.Second) // past V2RequestInterval and a timeout
		}
		require.Empty(t, h.ch.peerErrors())
	})
}

func TestReactorPerPeerSpacing(t *testing.T) {
	for _, tc := range []struct {
		name string
		caps PeerCaps
		cfg  Config
		req  string
		gap  time.Duration
	}{
		{"v1 peer", 0, Config{}, "v1req", 11 * time.Second},
		{"v2 peer", CapV2, Config{}, "v2req", 250 * time.Millisecond},
		{"v2 network", 0, Config{NetworkV2: true}, "v2req", 250 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// A book with room for all the peer sends, from its one
				// source group (groups.go): every answer brings news.
				h := rxStart(t, tc.cfg, PeerManagerOptions{MaxPeers: 100_000})
				fresh := rxFresh(MaxAddresses)
				h.ch.set(func(f *rxChannel) {
					f.respond = func(e Envelope) []byte {
						if k := testkit.Kind(t, e.Message); k == "v1req" || k == "v2req" {
							return fresh(e.To, e.Message)
						}
						return nil
					}
				})
				h.up(1, tc.caps)
				h.sleep(60 * time.Second)
				sent := h.ch.take()
				require.Equal(t, int(60*time.Second/tc.gap)+1, len(sent), "requests in 60 s")
				for i, s := range sent {
					require.Equal(t, tc.req, s.kind)
					require.Equal(t, time.Duration(i)*tc.gap, s.at.Sub(h.t0), "request %d", i)
				}
				require.Empty(t, h.ch.peerErrors())
			})
		})
	}
}

// A peer without CapV2 that speaks V2 to us is asked in V2 from then on.
func TestReactorUpgradesPeerThatSpeaksV2(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := rxStart(t, Config{}, PeerManagerOptions{})
		h.up(1, 0)
		synctest.Wait()
		require.Equal(t, []string{"1:v1req"}, h.kinds(h.ch.take()))
		h.ch.deliver(1, testkit.V1RespAddrs(rxRange(300, 399)...))
		h.sleep(time.Second)
		require.Empty(t, h.ch.take())
		h.ch.deliver(1, testkit.V2Req)
		synctest.Wait()
		require.Equal(t, []string{"1:v2resp"}, h.kinds(h.ch.take()), "answered in its own version")
		h.sleep(10 * time.Second)
		sent := h.ch.take()
		require.Equal(t, []string{"1:v2req"}, h.kinds(sent), "asked in V2 from now on")
		h.ch.deliver(1, testkit.V2RespAddrs(rxRange(101, 200)...))
		h.sleep(250 * time.Millisecond)
		require.Equal(t, []string{"1:v2req"}, h.kinds(h.ch.take()), "at V2 spacing")
	})
}

// rxResolver resolves from a map; other names hang until the context ends.
type rxResolver struct {
	hosts    map[string][]netip.Addr
	waiting  atomic.Int32
	returned atomic.Bool
}

func (r *rxResolver) LookupNetIP(ctx context.Context, _ string, host string) ([]netip.Addr, error) {
	if ips, ok := r.hosts[host]; ok {
		return ips, nil
	}
	r.waiting.Add(1)
	<-ctx.Done()
	r.returned.Store(true)
	return nil, ctx.Err()
}

// The Reactor's resolution step encodes one entry per node ID (the first
// IP a name resolves to, even when it resolves to a hundred: an answer is
// not an amplifier), and leaves out memory addresses.
func TestResolveV1AnswerOneEntryPerNodeID(t *testing.T) {
	host := NodeAddress{Protocol: ProtocolMConn, NodeID: nodeID(5), Hostname: "seed.example.com", Port: 26656}
	many := []netip.Addr{netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("2001:db8::5")}
	for i := range 98 {
		many = append(many, netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}))
	}
	res := &rxResolver{hosts: map[string][]netip.Addr{"seed.example.com": many}}
	msg := resolveV1Answer(t.Context(), res, time.Second, []NodeAddress{host, rxAddr(6), {Protocol: ProtocolMemory, NodeID: nodeID(7)}})
	require.ElementsMatch(t, []string{
		testkit.V1Str(nodeID(5), "203.0.113.5:26656"),
		testkit.V1Str(nodeID(6), "10.0.6.1:26656"),
	}, testkit.V1Entries(t, msg))
}

func TestReactorResolvesHostNamesForV1(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		res := &rxResolver{hosts: map[string][]netip.Addr{
			"seed.example.com": {netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("2001:db8::5")},
		}}
		h := rxStart(t, Config{Resolver: res}, PeerManagerOptions{})
		rxFill(t, h.pm,
			NodeAddress{Protocol: ProtocolMConn, NodeID: nodeID(5), Hostname: "seed.example.com", Port: 26656},
			rxAddr(6),
			NodeAddress{Protocol: ProtocolMemory, NodeID: nodeID(7)},
		)
		h.up(1, 0)
		synctest.Wait()
		require.Equal(t, []string{"1:v1req"}, h.kinds(h.ch.take()))
		h.ch.deliver(1, testkit.V1Req)
		synctest.Wait()
		sent := h.ch.take()
		require.Equal(t, []string{"1:v1resp"}, h.kinds(sent))
		require.ElementsMatch(t, []string{
			testkit.V1Str(nodeID(0), "192.0.2.1:26656"),
			testkit.V1Str(nodeID(5), "203.0.113.5:26656"),
			testkit.V1Str(nodeID(6), "10.0.6.1:26656"),
		}, testkit.V1Entries(t, sent[0].msg))
	})
}

func TestReactorResolveTimeout(t *testing.T) {
	for _, timeout := range []time.Duration{0, 500 * time.Millisecond} {
		t.Run(fmt.Sprint(timeout), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				res := &rxResolver{}
				h := rxStart(t, Config{Resolver: res, ResolveTimeout: timeout}, PeerManagerOptions{})
				want := timeout
				if want == 0 {
					want = 3 * time.Second
				}
				rxFill(t, h.pm, NodeAddress{Protocol: ProtocolMConn, NodeID: nodeID(5), Hostname: "slow.example.com", Port: 26656}, rxAddr(6))
				h.up(1, 0)
				synctest.Wait()
				h.ch.take()
				h.ch.deliver(1, testkit.V1Req)
				synctest.Wait()
				start := time.Now()
				require.Equal(t, int32(1), res.waiting.Load())
				h.sleep(want - time.Millisecond)
				require.Empty(t, h.ch.take(), "the answer waits on the resolver")
				h.sleep(time.Millisecond)
				sent := h.ch.take()
				require.Equal(t, []string{"1:v1resp"}, h.kinds(sent))
				require.Equal(t, want, sent[0].at.Sub(start))
				require.ElementsMatch(t, []string{
					testkit.V1Str(nodeID(0), "192.0.2.1:26656"),
					testkit.V1Str(nodeID(6), "10.0.6.1:26656"),
				}, testkit.V1Entries(t, sent[0].msg), "the name that did not resolve in time is left out")
				require.True(t, res.returned.Load())
			})
		})
	}
}

// The Channel's Send and ReportError are called from one goroutine at a
// time, even while a V1 answer waits on name resolution.
func TestReactorChannelCallsNotConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		res := &rxResolver{hosts: map[string][]netip.Addr{"seed.example.com": {netip.MustParseAddr("203.0.113.5")}}}
		h := rxStart(t, Config{Resolver: res}, PeerManagerOptions{})
		rxFill(t, h.pm, NodeAddress{Protocol: ProtocolMConn, NodeID: nodeID(5), Hostname: "seed.example.com", Port: 26656})
		gate := make(chan struct{})
		h.ch.set(func(f *rxChannel) {
			f.gate = func(e Envelope) <-chan struct{} {
				if e.To == nodeID(1) && bytes.HasPrefix(e.Message, []byte{0x12}) { // a V1 response
					return gate
				}
				return nil
			}
		})
		h.up(1, 0)
		h.up(2, CapV2)
		synctest.Wait()
		h.ch.deliver(1, testkit.V1Req) // its answer is held at the gate
		synctest.Wait()
		h.ch.deliver(2, testkit.V2Req)
		h.ch.deliver(2, []byte{0xff}) // a peer error to report
		h.sleep(time.Second)
		close(gate)
		synctest.Wait()
		require.Equal(t, int32(1), h.ch.maxActive.Load(), "Channel calls overlapped")
		kinds := h.kinds(h.ch.take())
		require.Contains(t, kinds, "1:v1resp")
		require.Contains(t, kinds, "2:v2resp")
		require.Len(t, h.ch.peerErrors(), 1)
	})
}

func TestReactorRestartSignal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		restart := make(chan struct{}, 1)
		h := rxStart(t, Config{NoPeersRestartWindow: time.Minute, Restart: restart}, PeerManagerOptions{})
		h.sleep(time.Minute - time.Millisecond)
		require.Empty(t, restart, "no signal before the window")
		h.sleep(time.Millisecond)
		require.Len(t, restart, 1, "one signal at the end of the window")
		<-restart
		h.sleep(10*time.Minute - time.Millisecond)
		require.Empty(t, restart, "not again within the cooldown")
		h.sleep(time.Millisecond)
		require.Len(t, restart, 1)
		<-restart
		// Peers reset the window.
		h.up(1, CapV2)
		h.sleep(30 * time.Minute)
		require.Empty(t, restart)
		h.down(1)
		h.sleep(time.Minute - time.Millisecond)
		require.Empty(t, restart)
		h.sleep(time.Millisecond)
		require.Len(t, restart, 1)
		require.NotNil(t, h.r.Stats().NoPeers)
	})
}

func TestReactorRestartSignalNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		restart := make(chan struct{}) // unbuffered, nobody reads
		h := rxStart(t, Config{NoPeersRestartWindow: time.Minute, Restart: restart}, PeerManagerOptions{})
		h.sleep(30 * time.Minute)
		// The reactor still serves.
		h.up(1, CapV2)
		synctest.Wait()
		h.ch.deliver(1, testkit.V2Req)
		synctest.Wait()
		require.ElementsMatch(t, []string{"1:v2req", "1:v2resp"}, h.kinds(h.ch.take()))
	})
}

func TestReactorRestartOffByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		restart := make(chan struct{}, 1)
		rxStart(t, Config{Restart: restart}, PeerManagerOptions{})
		time.Sleep(5 * time.Hour)
		synctest.Wait()
		require.Empty(t, restart)
	})
}

func TestReactorNoPeersStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := rxStart(t, Config{}, PeerManagerOptions{})
		for _, want := range []time.Duration{1, 2, 4, 8, 16, 32, 60, 60} {
			want *= time.Second
			st := h.r.Stats()
			require.NotNil(t, st.NoPeers, "at %s", h.since())
			require.Equal(t, want, st.NoPeers.Backoff, "at %s", h.since())
			require.Equal(t, want, st.Interval)
			h.sleep(want)
		}
		h.up(1, CapV2)
		synctest.Wait()
		require.Equal(t, []string{"1:v2req"}, h.kinds(h.ch.take()), "a peer that comes up is asked at once")
		require.Nil(t, h.r.Stats().NoPeers)
	})
}

func TestReactorReportsBadInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := rxStart(t, Config{}, PeerManagerOptions{})
		h.up(1, CapV2)
		synctest.Wait()
		h.ch.take()
		before := h.pm.Known()
		h.ch.deliver(1, make([]byte, DefaultMaxMessageSize+1))
		h.ch.deliver(1, []byte{0xff, 0xff})
		h.ch.deliver(1, []byte{0x2a, 0x00})
		h.ch.deliver(2, testkit.V2RespAddrs(rxAddr(100)))
		synctest.Wait()
		errs := h.ch.peerErrors()
		require.Len(t, errs, 4)
		testkit.RequirePeerError(t, errs[0], nodeID(1), ErrMessageTooLarge, true)
		testkit.RequirePeerError(t, errs[1], nodeID(1), ErrMalformedMessage, true)
		testkit.RequirePeerError(t, errs[2], nodeID(1), ErrUnknownMessage, true)
		testkit.RequirePeerError(t, errs[3], nodeID(2), ErrUnsolicitedResponse, true)
		require.Equal(t, before, h.pm.Known())
		require.Empty(t, h.ch.take())
		// Still serving.
		h.ch.deliver(1, testkit.V2Req)
		synctest.Wait()
		require.Equal(t, []string{"1:v2resp"}, h.kinds(h.ch.take()))
	})
}

// ---------------------------------------------------------------------------
// Reactor lifecycle

func TestReactorStartTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := rxStart(t, Config{}, PeerManagerOptions{})
		require.Error(t, h.r.Start(t.Context()))
		h.r.Stop()
		require.Error(t, h.r.Start(t.Context()), "a stopped reactor does not start again")
	})
}

func TestReactorStopIdempotentAndBeforeStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pm := rxPM(t, PeerManagerOptions{})
		r, err := NewReactor(Config{}, pm, make(chan PeerUpdate), newRxChannel())
		require.NoError(t, err)
		r.Stop()
		r.Stop()
		require.Error(t, r.Start(t.Context()))

		h := rxStart(t, Config{}, PeerManagerOptions{})
		h.r.Stop()
		h.r.Stop()
		// Stopped: a peer coming up is not asked.
		h.up(1, CapV2)
		h.sleep(time.Minute)
		require.Empty(t, h.ch.take())
	})
}

// Stop returns only after every goroutine has exited, including one
// waiting on a resolver that only returns when cancelled.
func TestReactorStopWaitsForGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		res := &rxResolver{}
		h := rxStart(t, Config{Resolver: res, ResolveTimeout: time.Hour}, PeerManagerOptions{})
		rxFill(t, h.pm, NodeAddress{Protocol: ProtocolMConn, NodeID: nodeID(5), Hostname: "slow.example.com", Port: 26656})
		h.up(1, 0)
		synctest.Wait()
		h.ch.deliver(1, testkit.V1Req)
		h.sleep(time.Minute)
		require.Equal(t, int32(1), res.waiting.Load())
		require.False(t, res.returned.Load())
		h.r.Stop()
		require.True(t, res.returned.Load(), "Stop returned before the resolving goroutine")
	})
}

func TestReactorClosedReceiveEndsRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := rxStart(t, Config{}, PeerManagerOptions{})
		close(h.ch.in)
		synctest.Wait()
		h.up(1, CapV2)
		h.sleep(time.Minute)
		require.Empty(t, h.ch.take(), "the run loop has ended")
		h.r.Stop()
	})
}

// rxLog is a goroutine-safe log sink.
type rxLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *rxLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *rxLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func TestReactorSendErrorLoggedAndLoopContinues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs rxLog
		logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		h := rxStart(t, Config{Logger: logger}, PeerManagerOptions{})
		h.ch.set(func(f *rxChannel) { f.failNext = 1 })
		h.up(1, CapV2)
		synctest.Wait()
		require.Equal(t, []string{"1:v2req"}, h.kinds(h.ch.take()), "attempted")
		require.Contains(t, logs.String(), "send failed")
		// The loop goes on: it serves, and asks again after the timeout.
		h.ch.deliver(1, testkit.V2Req)
		synctest.Wait()
		require.Equal(t, []string{"1:v2resp"}, h.kinds(h.ch.take()))
		h.sleep(10 * time.Second)
		require.Equal(t, []string{"1:v2req"}, h.kinds(h.ch.take()))
	})
}

func TestReactorSubscriptionEndKeepsServing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		pm := rxPM(t, PeerManagerOptions{})
		ch := newRxChannel()
		updates := make(chan PeerUpdate)
		r, err := NewReactor(Config{}, pm, updates, ch)
		require.NoError(t, err)
		require.NoError(t, r.Start(t.Context()))
		defer r.Stop()
		updates <- PeerUpdate{NodeID: nodeID(1), Status: PeerStatusUp, Caps: CapV2}
		close(updates)
		synctest.Wait()
		ch.take()
		ch.deliver(1, testkit.V2Req)
		synctest.Wait()
		sent := ch.take()
		require.Len(t, sent, 1)
		require.Equal(t, "v2resp", sent[0].kind)
	})
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

var (
	v1Request = mustMarshal(&pb.PexMessage{Sum: &pb.PexMessage_PexRequest{PexRequest: &pb.PexRequest{}}})
	v2Request = mustMarshal(&pb.PexMessage{Sum: &pb.PexMessage_PexRequestV2{PexRequestV2: &pb.PexRequestV2{}}})
)

func rxIndex(t testing.TB, id NodeID) int {
	t.Helper()
	var i int
	_, err := fmt.Sscanf(string(id), "%x", &i)
	require.NoError(t, err)
	return i - 1
}

// rxFresh answers every request with n addresses never seen before, in
// the request's version.
func rxFresh(n int) func(NodeID, []byte) []byte {
	next := 10_000
	return func(_ NodeID, req []byte) []byte {
		addrs := rxRange(next, next+n-1)
		next += n
		if bytes.Equal(req, testkit.V1Req) {
			return testkit.V1RespAddrs(addrs...)
		}
		return testkit.V2RespAddrs(addrs...)
	}
}
