package poller

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pexnet/pex/internal/book"
	"github.com/pexnet/pex/internal/testkit"
)

// Behaviour tests of the Reactor (SPEC sections 5 and 6), at two levels:
// the Core, driven by scripted transcripts at explicit times, and the
// Reactor shell, driven over a fake Channel inside synctest bubbles.
// Helpers are prefixed rx so they do not clash with other test files.

// ---------------------------------------------------------------------------
// Shared helpers

var rxBase = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func rxAt(d time.Duration) time.Time { return rxBase.Add(d) }

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

func rxCore(t testing.TB, cfg Config, pm *PeerManager) *Core {
	t.Helper()
	if pm == nil {
		pm = rxPM(t, PeerManagerOptions{})
	}
	c, err := New(cfg, pm.Book)
	require.NoError(t, err)
	return c
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

// ---------------------------------------------------------------------------
// Core transcripts

type rxEvent func(c *Core, now time.Time) Actions

func rxUp(i int, caps PeerCaps) rxEvent {
	return func(c *Core, now time.Time) Actions {
		return c.PeerUpdate(now, PeerUpdate{NodeID: nodeID(i), Status: PeerStatusUp, Caps: caps})
	}
}

func rxDown(i int) rxEvent {
	return func(c *Core, now time.Time) Actions {
		return c.PeerUpdate(now, PeerUpdate{NodeID: nodeID(i), Status: PeerStatusDown})
	}
}

func rxRecv(i int, msg []byte) rxEvent {
	return func(c *Core, now time.Time) Actions {
		return c.Receive(now, Envelope{From: nodeID(i), Message: msg})
	}
}

func rxTick() rxEvent {
	return func(c *Core, now time.Time) Actions { return c.Tick(now) }
}

type rxOut struct {
	to   int
	kind string
}

type rxErr struct {
	from  int
	is    error
	fatal bool
}

// rxStep is one line of a transcript: an event at a time, and what the
// Core must answer.
type rxStep struct {
	at   time.Duration
	ev   rxEvent
	send []rxOut
	errs []rxErr
	// wake, when set, is what NextWake must return after the step.
	wake time.Duration
}

func rxRun(t *testing.T, c *Core, steps []rxStep) {
	t.Helper()
	for i, s := range steps {
		acts := s.ev(c, rxAt(s.at))
		var got []rxOut
		for _, e := range acts.Send {
			got = append(got, rxOut{to: rxIndex(t, e.To), kind: testkit.Kind(t, e.Message)})
		}
		require.Equal(t, s.send, got, "step %d at %s: sends", i, s.at)
		require.Len(t, acts.Errors, len(s.errs), "step %d at %s: errors %v", i, s.at, acts.Errors)
		for j, want := range s.errs {
			testkit.RequirePeerError(t, acts.Errors[j], nodeID(want.from), want.is, want.fatal)
		}
		if s.wake != 0 {
			require.Equal(t, rxAt(s.wake), c.NextWake(), "step %d at %s: next wake", i, s.at)
		}
	}
}

// rxIndex inverts nodeID.
func rxIndex(t testing.TB, id NodeID) int {
	t.Helper()
	var i int
	_, err := fmt.Sscanf(string(id), "%x", &i)
	require.NoError(t, err)
	return i - 1
}

type rxReq struct {
	at  time.Duration
	to  NodeID
	msg []byte
}

// rxDrive runs c on its own schedule: start at time 0, then Tick at each
// NextWake until `until`. Each request sent is answered at the same
// instant with respond's message (no answer if nil). It stops after
// maxReqs requests (0: no limit) and returns the requests and peer errors.
func rxDrive(t *testing.T, c *Core, start rxEvent, until time.Duration, maxReqs int, respond func(to NodeID, req []byte) []byte) ([]rxReq, []PeerError) {
	t.Helper()
	var reqs []rxReq
	var errs []PeerError
	now := rxBase
	handle := func(acts Actions) bool {
		errs = append(errs, acts.Errors...)
		for _, e := range acts.Send {
			reqs = append(reqs, rxReq{at: now.Sub(rxBase), to: e.To, msg: e.Message})
			if resp := respond(e.To, e.Message); resp != nil {
				errs = append(errs, c.Receive(now, Envelope{From: e.To, Message: resp}).Errors...)
			}
			if maxReqs > 0 && len(reqs) >= maxReqs {
				return true
			}
		}
		return false
	}
	if handle(start(c, now)) {
		return reqs, errs
	}
	for range 1_000_000 {
		wake := c.NextWake()
		if wake.IsZero() || wake.After(rxAt(until)) {
			return reqs, errs
		}
		if wake.After(now) {
			now = wake
		}
		if handle(c.Tick(now)) {
			return reqs, errs
		}
	}
	t.Fatal("rxDrive: the Core keeps waking without progress")
	return nil, nil
}

func rxUpAll(caps PeerCaps, ids ...int) rxEvent {
	return func(c *Core, now time.Time) Actions {
		var all Actions
		for _, i := range ids {
			a := rxUp(i, caps)(c, now)
			all.Send = append(all.Send, a.Send...)
			all.Errors = append(all.Errors, a.Errors...)
		}
		return all
	}
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

func rxGaps(reqs []rxReq) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(reqs); i++ {
		out = append(out, reqs[i].at-reqs[i-1].at)
	}
	return out
}

// ---------------------------------------------------------------------------
// Core: polling

func TestCorePollingRotation(t *testing.T) {
	// Strict rotation, as SPEC section 5 describes it and Tendermint does;
	// PolicyAdaptive chooses by expected news (TestCoreAdaptiveChoice).
	const a, b, c = 1, 2, 3
	core := rxCore(t, Config{Policy: PolicyTendermint, MinInterval: 150 * time.Millisecond}, nil) // 150/3+150 = 200 ms
	ms := time.Millisecond
	rxRun(t, core, []rxStep{
		{at: 0, ev: rxUp(a, CapV2), send: []rxOut{{a, "v2req"}}},
		{at: 0, ev: rxUp(b, CapV2)},
		{at: 0, ev: rxUp(c, CapV2)},
		{at: 100 * ms, ev: rxRecv(a, testkit.V2RespAddrs(rxAddr(100)))},
		{at: 150 * ms, ev: rxTick()},
		{at: 200 * ms, ev: rxTick(), send: []rxOut{{b, "v2req"}}},
		{at: 250 * ms, ev: rxRecv(b, testkit.V2RespAddrs(rxAddr(101)))},
		{at: 400 * ms, ev: rxTick(), send: []rxOut{{c, "v2req"}}},
		{at: 450 * ms, ev: rxRecv(c, testkit.V2RespAddrs(rxAddr(102)))},
		{at: 600 * ms, ev: rxTick(), send: []rxOut{{a, "v2req"}}},
		{at: 650 * ms, ev: rxRecv(a, testkit.V2RespAddrs(rxAddr(103)))},
		{at: 800 * ms, ev: rxTick(), send: []rxOut{{b, "v2req"}}},
		{at: 850 * ms, ev: rxRecv(b, testkit.V2RespAddrs(rxAddr(104)))},
		{at: 1000 * ms, ev: rxTick(), send: []rxOut{{c, "v2req"}}},
	})
	require.Equal(t, 6, core.Stats().RequestsSent)
	require.Equal(t, 5, core.Stats().Responses)
}

func TestCorePendingPeerNotAskedAgainUntilItAnswers(t *testing.T) {
	const a = 1
	core := rxCore(t, Config{}, nil)
	steps := []rxStep{{at: 0, ev: rxUp(a, CapV2), send: []rxOut{{a, "v2req"}}, wake: 10 * time.Second}}
	for s := time.Second; s < 10*time.Second; s += time.Second {
		steps = append(steps, rxStep{at: s, ev: rxTick()})
	}
	steps = append(steps,
		rxStep{at: 9500 * time.Millisecond, ev: rxRecv(a, testkit.V2RespAddrs(rxAddr(100)))},
		rxStep{at: 9500 * time.Millisecond, ev: rxTick(), send: []rxOut{{a, "v2req"}}},
	)
	rxRun(t, core, steps)
	require.Zero(t, core.Stats().Timeouts)
}

func TestCoreResponseTimeoutRequeuesPeer(t *testing.T) {
	const a = 1
	core := rxCore(t, Config{}, nil)
	rxRun(t, core, []rxStep{
		{at: 0, ev: rxUp(a, CapV2), send: []rxOut{{a, "v2req"}}, wake: 10 * time.Second},
		{at: 5 * time.Second, ev: rxTick()},
		{at: 9999 * time.Millisecond, ev: rxTick()},
		// The miss is reported, not fatal, and the peer is asked again:
		// it is back in rotation, not forgotten.
		{at: 10 * time.Second, ev: rxTick(), send: []rxOut{{a, "v2req"}}, errs: []rxErr{{a, ErrResponseTimeout, false}}, wake: 20 * time.Second},
		// The answer to the new request is welcome.
		{at: 11 * time.Second, ev: rxRecv(a, testkit.V2RespAddrs(rxAddr(100)))},
		{at: 11 * time.Second, ev: rxTick(), send: []rxOut{{a, "v2req"}}},
	})
	st := core.Stats()
	require.Equal(t, 1, st.Timeouts)
	require.Equal(t, 1, st.PeerErrors)
	require.True(t, core.bk.Has(nodeID(100)))
}

func TestCoreResponseTimeoutCustom(t *testing.T) {
	const a = 1
	core := rxCore(t, Config{ResponseTimeout: 2 * time.Second}, nil)
	rxRun(t, core, []rxStep{
		{at: 0, ev: rxUp(a, CapV2), send: []rxOut{{a, "v2req"}}, wake: 2 * time.Second},
		{at: 2 * time.Second, ev: rxTick(), send: []rxOut{{a, "v2req"}}, errs: []rxErr{{a, ErrResponseTimeout, false}}},
	})
}

// Peers whose requests expire in the same Tick go back into rotation in
// the order they were asked, so a run is reproducible (the simulator
// depends on it).
func TestCoreTimeoutsRequeueInRequestOrder(t *testing.T) {
	const a, b = 1, 2
	for range 30 {
		core := rxCore(t, Config{}, nil)
		rxRun(t, core, []rxStep{
			{at: 0, ev: rxUp(a, CapV2), send: []rxOut{{a, "v2req"}}},
			{at: 0, ev: rxUp(b, CapV2)},
			{at: 200 * time.Millisecond, ev: rxTick(), send: []rxOut{{b, "v2req"}}},
			// A late Tick, as a simulator on coarse steps makes.
			{at: 30 * time.Second, ev: rxTick(), send: []rxOut{{a, "v2req"}}, errs: []rxErr{{a, ErrResponseTimeout, false}, {b, ErrResponseTimeout, false}}},
			{at: 30*time.Second + 200*time.Millisecond, ev: rxTick(), send: []rxOut{{b, "v2req"}}},
		})
	}
}

func TestCoreDownPeerStateDeleted(t *testing.T) {
	const a, b = 1, 2
	core := rxCore(t, Config{}, nil)
	rxRun(t, core, []rxStep{
		{at: 0, ev: rxUp(a, CapV2), send: []rxOut{{a, "v2req"}}},
		{at: 0, ev: rxUp(b, CapV2)},
		{at: 50 * time.Millisecond, ev: rxDown(a)},
		// A response from a peer that went down is unsolicited.
		{at: 100 * time.Millisecond, ev: rxRecv(a, testkit.V2RespAddrs(rxAddr(100))), errs: []rxErr{{a, ErrUnsolicitedResponse, true}}},
		{at: 200 * time.Millisecond, ev: rxTick(), send: []rxOut{{b, "v2req"}}},
		{at: 250 * time.Millisecond, ev: rxRecv(b, testkit.V2RespAddrs(rxRange(101, 200)...))},
		{at: 450 * time.Millisecond, ev: rxTick(), send: []rxOut{{b, "v2req"}}},
		// The timeout of a's request never fires.
		{at: 15 * time.Second, ev: rxTick(), errs: []rxErr{{b, ErrResponseTimeout, false}}, send: []rxOut{{b, "v2req"}}},
	})
	require.NotContains(t, core.peers, nodeID(a))
	require.Len(t, core.peers, 1)
	require.Equal(t, 1, core.rotation.Len()+boolInt(core.peers[nodeID(b)].pending))
	require.False(t, core.bk.Has(nodeID(100)), "nothing from the unsolicited response is stored")
	require.True(t, core.bk.Has(nodeID(101)))

	// A peer that comes back starts afresh and is asked again.
	rxRun(t, core, []rxStep{
		{at: 16 * time.Second, ev: rxUp(a, CapV2), send: []rxOut{{a, "v2req"}}},
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ---------------------------------------------------------------------------
// Core: interval

func TestCoreIntervalMinimalWhileResponsesAreNew(t *testing.T) {
	// The peers' own addresses are in the book, as a transport that
	// dialled them puts them there: each is a source group of its own, and
	// 100 addresses each fit its share (groups.go).
	pm := rxPM(t, PeerManagerOptions{Options: book.Options{MaxPeers: 100_000}})
	rxFill(t, pm, rxAddr(1), rxAddr(2), rxAddr(3))
	core := rxCore(t, Config{}, pm)
	// Full answers, all new: the interval is counted against what an
	// answer can hold (see TestCoreIntervalWaitsForNewsToGather).
	reqs, errs := rxDrive(t, core, rxUpAll(CapV2, 1, 2, 3), time.Minute, 30, rxFresh(MaxAddresses))
	require.Empty(t, errs)
	require.Len(t, reqs, 30)
	for i, g := range rxGaps(reqs) {
		require.Equal(t, 200*time.Millisecond, g, "gap %d", i)
	}
	asked := map[NodeID]int{}
	for _, r := range reqs {
		asked[r.to]++
	}
	require.Len(t, asked, 3, "every peer is asked")
	require.Equal(t, 200*time.Millisecond, core.Stats().Interval)
}

// The share of new addresses that sets the interval is counted, for a pex
// peer (its answers walk our order), out of what an answer can hold: half
// new of 10 entries (a done peer's news, say) is less to come than half new
// of 100, and the wait is longer, so news gathers before the next request.
// A peer that samples sends a sample of its book, whatever its size: its
// share is out of what it sent.
func TestCoreIntervalWaitsForNewsToGather(t *testing.T) {
	interval := func(known, fresh int, walks bool) time.Duration {
		pm := rxPM(t, PeerManagerOptions{Options: book.Options{MaxPeers: 100_000}})
		bk := rxRange(1000, 1999)
		rxFill(t, pm, bk...)
		core := rxCore(t, Config{}, pm)
		require.Len(t, core.PeerUpdate(rxAt(0), PeerUpdate{NodeID: nodeID(1), Status: PeerStatusUp, Caps: CapV2}).Send, 1)
		answer := append(slices.Clone(bk[:known]), rxRange(5000, 5000+fresh-1)...)
		slices.SortFunc(answer, func(a, b NodeAddress) int { return cmp.Compare(pm.RankOf(a.NodeID), pm.RankOf(b.NodeID)) })
		if !walks {
			slices.Reverse(answer)
		}
		require.Empty(t, core.Receive(rxAt(100*time.Millisecond), Envelope{From: nodeID(1), Message: testkit.V2RespAddrs(answer...)}).Errors)
		require.Equal(t, 1000+fresh, pm.Len())
		require.Equal(t, walks, core.peers[nodeID(1)].w.Seen)
		return core.Stats().Interval
	}
	short, full := interval(5, 5, true), interval(50, 50, true)
	require.Greater(t, short, full+full/4, "a walker: 5 new of 10 against 50 new of 100")
	require.Equal(t, 200*time.Millisecond, interval(0, MaxAddresses, true), "a full answer, all new")
	require.Equal(t, interval(50, 50, false), interval(5, 5, false), "a sampler: half new either way")
}

func TestCoreIntervalGrowsWhenResponsesAreKnown(t *testing.T) {
	pm := rxPM(t, PeerManagerOptions{})
	known := rxRange(100, 199)
	rxFill(t, pm, known...)
	core := rxCore(t, Config{}, pm)
	var intervals []time.Duration // Stats().Interval after each response
	reqs, errs := rxDrive(t, core, rxUpAll(CapV2, 1, 2, 3), 24*time.Hour, 20, func(NodeID, []byte) []byte {
		if core.Stats().Responses > 0 {
			intervals = append(intervals, core.Stats().Interval)
		}
		return testkit.V2RespAddrs(known...)
	})
	require.Empty(t, errs)
	require.Len(t, reqs, 20)
	require.Greater(t, intervals[0], 200*time.Millisecond, "one response of only known addresses already slows down")
	saturated := DefaultConfig().SaturatedInterval
	for i := 1; i < len(intervals); i++ {
		if intervals[i-1] < saturated {
			require.Greater(t, intervals[i], intervals[i-1], "interval %d", i)
		} else {
			require.Equal(t, saturated, intervals[i], "interval %d stays at SaturatedInterval", i)
		}
	}
	require.Equal(t, saturated, intervals[len(intervals)-1], "reaches SaturatedInterval (the book is not full)")
	// Each request waits the interval chosen after the previous response.
	for i, g := range rxGaps(reqs) {
		require.Equal(t, intervals[i], g, "gap %d", i)
	}
	st := core.Stats()
	require.Equal(t, 0, st.AddressesNew)
	require.Equal(t, 100*20, st.AddressesReceived)
}

func TestCoreIntervalRecoversWhenResponsesAreNewAgain(t *testing.T) {
	pm := rxPM(t, PeerManagerOptions{})
	known := rxRange(100, 199)
	rxFill(t, pm, known...)
	core := rxCore(t, Config{}, pm)
	rxRun(t, core, []rxStep{
		{at: 0, ev: rxUp(1, CapV2), send: []rxOut{{1, "v2req"}}},
		{at: 0, ev: rxRecv(1, testkit.V2RespAddrs(known...))},
	})
	slow := core.Stats().Interval
	require.Greater(t, slow, 200*time.Millisecond)
	rxRun(t, core, []rxStep{
		{at: slow, ev: rxTick(), send: []rxOut{{1, "v2req"}}},
		{at: slow, ev: rxRecv(1, testkit.V2RespAddrs(rxRange(300, 399)...))},
	})
	require.Less(t, core.Stats().Interval, slow)
}

func TestCoreOneSubnetAnswersDoNotPace(t *testing.T) {
	// A sybil answers with its own subnet, known or over the subnet's
	// share: its answers neither slow us down as saturation nor move the
	// size estimate. The same answers from all over the internet would
	// (TestCoreIntervalGrowsWhenResponsesAreKnown). And each adds only as
	// many of the subnet as we would dial at once.
	pm := rxPM(t, PeerManagerOptions{})
	rxFill(t, pm, rxRange(100, 199)...)
	core := rxCore(t, Config{}, pm)
	answer := func(k int) []NodeAddress { // the k-th answer: 100 new addresses of the subnet
		var subnet []NodeAddress
		for i := range MaxAddresses {
			subnet = append(subnet, sybilAddr(k*MaxAddresses+i))
		}
		return subnet
	}
	perAnswer := pm.Options().MaxOutboundPerGroup
	share := min(book.BucketCap(pm.Options().MaxPeers), pm.CrowdShare()) // the subnet's share of the book
	var lens []int                                                       // the book's size before each answer
	reqs, errs := rxDrive(t, core, rxUpAll(CapV2, 1), time.Minute, 20, func(NodeID, []byte) []byte {
		lens = append(lens, pm.Len())
		return testkit.V2RespAddrs(answer(len(lens))...)
	})
	require.Empty(t, errs)
	require.Len(t, reqs, 20)
	for i, g := range rxGaps(reqs) {
		require.Equal(t, DefaultConfig().V2RequestInterval, g, "gap %d: as fast as one peer may be asked", i)
	}
	for i := 1; i < len(lens) && lens[i] < 100+share; i++ {
		require.Equal(t, min(perAnswer, 100+share-lens[i-1]), lens[i]-lens[i-1], "answer %d adds MaxOutboundPerGroup of the subnet", i)
	}
	require.Equal(t, 100+min(20*perAnswer, share), pm.Len(), "the subnet gets no more than its share of the book")
	require.Equal(t, pm.Len(), core.NetworkSizeEstimate(), "no estimate beyond the book")

	// With MaxOutboundPerGroup -1 (a network in one public subnet) they
	// are answers like any other.
	pm = rxPM(t, PeerManagerOptions{Options: book.Options{MaxOutboundPerGroup: -1}})
	rxFill(t, pm, rxRange(100, 199)...)
	core = rxCore(t, Config{}, pm)
	reqs, errs = rxDrive(t, core, rxUpAll(CapV2, 1), time.Hour, 10, func(NodeID, []byte) []byte {
		return testkit.V2RespAddrs(answer(0)...)
	})
	require.Empty(t, errs)
	gaps := rxGaps(reqs)
	require.Greater(t, gaps[len(gaps)-1], DefaultConfig().V2RequestInterval, "answers bringing nothing slow us down")
}

// rxUpTwo brings peers 1 and 2 up at 0 and 10 ms: 1 is asked at once, 2
// at 1 s. It returns the clock and a reader of whom a request went to.
func rxUpTwo(t *testing.T, core *Core) (func(time.Duration) time.Time, func(Actions) NodeID) {
	t.Helper()
	now := time.Unix(1_700_000_000, 0)
	at := func(d time.Duration) time.Time { return now.Add(d) }
	sent := func(acts Actions) NodeID { return rxSentTo(t, acts) }
	require.Equal(t, nodeID(1), sent(core.PeerUpdate(at(0), PeerUpdate{NodeID: nodeID(1), Status: PeerStatusUp, Caps: CapV2})))
	core.PeerUpdate(at(10*time.Millisecond), PeerUpdate{NodeID: nodeID(2), Status: PeerStatusUp, Caps: CapV2})
	require.Equal(t, nodeID(2), sent(core.Tick(at(time.Second))))
	return at, sent
}

// rxSubnetStart returns a Core whose book holds peer 1, dialled, and the
// address of peer i in one public /16.
func rxSubnetStart(t *testing.T) (*PeerManager, *Core, func(int) NodeAddress) {
	t.Helper()
	pm := rxPM(t, PeerManagerOptions{})
	rxFill(t, pm, rxAddr(1))
	a, ok := pm.TryDialNext()
	require.True(t, ok)
	require.NoError(t, pm.Dialed(a))
	subnet := func(i int) NodeAddress {
		a, err := NodeAddressFromIP(nodeID(i), netip.AddrFrom4([4]byte{66, 66, 0, byte(i)}), 26656)
		require.NoError(t, err)
		return a
	}
	return pm, rxCore(t, Config{}, pm), subnet
}

func TestCoreDoesNotAskCrowdedInboundFirst(t *testing.T) {
	// Peer 1 is up. Peers 2 and 3 dial us from one public /16: 2, the
	// first of its subnet, is asked first; 3, a second from it, waits its
	// turn behind 1. Peer 4, that we dial, is asked first whatever its
	// subnet.
	pm, core, subnet := rxSubnetStart(t)
	// Full answers: a short one would mean its lap is done (see
	// TestCoreWeighsAShortAnswerByItsSize).
	fresh := rxFresh(MaxAddresses)
	require.NoError(t, pm.Accepted(nodeID(2), subnet(2)))
	rxRun(t, core, []rxStep{
		{at: 0, ev: rxUp(1, CapV2), send: []rxOut{{1, "v2req"}}},
		{at: 0, ev: rxRecv(1, fresh(nodeID(1), nil))},
		{at: 10 * time.Millisecond, ev: rxUp(2, CapV2)},
		{at: 200 * time.Millisecond, ev: rxTick(), send: []rxOut{{2, "v2req"}}},
		{at: 210 * time.Millisecond, ev: rxRecv(2, fresh(nodeID(2), nil))},
	})
	require.NoError(t, pm.Accepted(nodeID(3), subnet(3)))
	rxRun(t, core, []rxStep{
		{at: 220 * time.Millisecond, ev: rxUp(3, CapV2)},
		{at: 400 * time.Millisecond, ev: rxTick(), send: []rxOut{{1, "v2req"}}},
		{at: 410 * time.Millisecond, ev: rxRecv(1, fresh(nodeID(1), nil))},
	})
	require.NoError(t, pm.Dialed(subnet(4)))
	rxRun(t, core, []rxStep{
		{at: 420 * time.Millisecond, ev: rxUp(4, CapV2)},
		{at: 620 * time.Millisecond, ev: rxTick(), send: []rxOut{{4, "v2req"}}},
	})
}

func TestCoreDoubtsCrowdedInboundUntilItAsks(t *testing.T) {
	// Peer 2 dials us from a public /16 and breaks the protocol with its
	// first message, as the simulator's flooders do. Peers 3 and 4 then
	// dial in from the same /16: even with nobody else to ask (1 does not
	// answer), neither is asked until it asks us (3) or for doubtFor (4).
	pm, core, subnet := rxSubnetStart(t)
	require.NoError(t, pm.Accepted(nodeID(2), subnet(2)))
	rxRun(t, core, []rxStep{
		{at: 0, ev: rxUp(1, CapV2), send: []rxOut{{1, "v2req"}}},
		{at: 10 * time.Millisecond, ev: rxUp(2, CapV2)},
		{at: 20 * time.Millisecond, ev: rxRecv(2, testkit.V2RespAddrs(rxRange(100, 110)...)), errs: []rxErr{{2, ErrUnsolicitedResponse, true}}},
	})
	pm.Errored(PeerError{NodeID: nodeID(2), Err: ErrUnsolicitedResponse, Fatal: true})
	pm.Disconnected(nodeID(2))
	require.NoError(t, pm.Accepted(nodeID(3), subnet(3)))
	require.NoError(t, pm.Accepted(nodeID(4), subnet(4)))
	const up = 30 * time.Millisecond
	rxRun(t, core, []rxStep{
		{at: 25 * time.Millisecond, ev: rxDown(2)},
		{at: up, ev: rxUp(3, CapV2)},
		{at: up, ev: rxUp(4, CapV2)},
		{at: 400 * time.Millisecond, ev: rxTick(), wake: up + doubtFor},
		{at: 500 * time.Millisecond, ev: rxRecv(3, testkit.V2Req), send: []rxOut{{3, "v2resp"}}},
		{at: 500 * time.Millisecond, ev: rxTick(), wake: 700 * time.Millisecond},
		{at: 700 * time.Millisecond, ev: rxTick(), send: []rxOut{{3, "v2req"}}},
		{at: up + doubtFor - time.Millisecond, ev: rxTick()},
		{at: up + doubtFor, ev: rxTick(), send: []rxOut{{4, "v2req"}}},
	})
}

// A nearly full book waits MaxInterval once an answer brings nothing new
// and every connected peer has answered, not while answers still bring
// news or a peer has not answered yet: junk that a few peers filled the
// book with must not freeze discovery while the peer that knows the
// network waits its turn (SPEC 6a).
func TestCoreIntervalMaxWhenBookNearlyFullAndQuiet(t *testing.T) {
	pm := rxPM(t, PeerManagerOptions{Options: book.Options{MaxPeers: 20}})
	core := rxCore(t, Config{}, pm)
	rxRun(t, core, []rxStep{
		{at: 0, ev: rxUp(1, CapV2), send: []rxOut{{1, "v2req"}}},
		{at: 0, ev: rxUp(2, CapV2)},
		// All new: the book is now 19/20 = 95% full, and polling goes on.
		{at: 100 * time.Millisecond, ev: rxRecv(1, testkit.V2RespAddrs(rxRange(100, 118)...)), wake: 200 * time.Millisecond},
	})
	require.InDelta(t, 0.95, pm.PeerRatio(), 1e-9)
	require.Less(t, core.Stats().Interval, time.Second)
	rxRun(t, core, []rxStep{
		{at: 200 * time.Millisecond, ev: rxTick(), send: []rxOut{{2, "v2req"}}},
		{at: 210 * time.Millisecond, ev: rxUp(3, CapV2)},
		// Nothing new, but 3 has not been asked yet: it is, at once.
		{at: 300 * time.Millisecond, ev: rxRecv(2, testkit.V2RespAddrs(rxRange(100, 101)...))},
	})
	require.Equal(t, core.cfg.MinInterval, core.Stats().Interval)
	require.Equal(t, nodeID(3), rxSentTo(t, core.Tick(core.NextWake())))
	// Nothing new, and every peer has answered: the book's fullness
	// stops polling.
	core.Receive(core.NextWake(), Envelope{From: nodeID(3), Message: testkit.V2RespAddrs(rxRange(100, 101)...)})
	require.Equal(t, 10*time.Minute, core.Stats().Interval)
}

func TestCoreNoPeersBackoff(t *testing.T) {
	for _, tc := range []struct {
		name    string
		max     time.Duration
		backoff []time.Duration
	}{
		{"default cap 1 min", 0, []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}},
		{"cap 5 s", 5 * time.Second, []time.Duration{1, 2, 4, 5, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core := rxCore(t, Config{NoPeersMaxBackoff: tc.max}, nil)
			now := time.Duration(0)
			for i, b := range tc.backoff {
				b *= time.Second
				if i > 0 {
					// Nothing before the back-off ends.
					acts := core.Tick(rxAt(now - time.Millisecond))
					require.Nil(t, acts.NoPeers, "round %d: early", i)
				}
				acts := core.Tick(rxAt(now))
				require.Empty(t, acts.Send)
				require.NotNil(t, acts.NoPeers, "round %d", i)
				require.Equal(t, b, acts.NoPeers.Backoff, "round %d", i)
				require.True(t, strings.HasPrefix(acts.NoPeers.Error(), "pex: no peers available"))
				var npe *NoPeersAvailableError
				require.ErrorAs(t, error(acts.NoPeers), &npe)
				st := core.Stats()
				require.Equal(t, b, st.Interval, "round %d: Stats().Interval shows the back-off", i)
				require.NotNil(t, st.NoPeers, "round %d", i)
				require.Equal(t, b, st.NoPeers.Backoff)
				require.Equal(t, rxAt(now+b), core.NextWake())
				now += b
			}
			// The first peer to come up is asked at once, not at the end of
			// the back-off, and the condition is over.
			rxRun(t, core, []rxStep{
				{at: now - 500*time.Millisecond, ev: rxUp(1, CapV2), send: []rxOut{{1, "v2req"}}},
			})
			st := core.Stats()
			require.Nil(t, st.NoPeers)
			require.Equal(t, 200*time.Millisecond, st.Interval)
		})
	}
}

// After every peer has gone, the back-off starts again from 1 s.
func TestCoreNoPeersBackoffRestartsAfterPeersLeave(t *testing.T) {
	core := rxCore(t, Config{}, nil)
	rxRun(t, core, []rxStep{
		{at: 0, ev: rxTick()},
		{at: time.Second, ev: rxTick()},
		{at: 2 * time.Second, ev: rxUp(1, CapV2), send: []rxOut{{1, "v2req"}}},
		{at: 2 * time.Second, ev: rxRecv(1, testkit.V2RespAddrs(rxRange(100, 199)...))},
		{at: 2*time.Second + 100*time.Millisecond, ev: rxDown(1)},
	})
	acts := core.Tick(rxAt(2*time.Second + 200*time.Millisecond))
	require.NotNil(t, acts.NoPeers)
	require.Equal(t, time.Second, acts.NoPeers.Backoff)
}

// ---------------------------------------------------------------------------
// Core: per-peer spacing and versions

func TestCoreV1PeerSpacing(t *testing.T) {
	core := rxCore(t, Config{}, nil)
	// The only peer, a V1 (CometBFT) node, answers at once with news.
	reqs, errs := rxDrive(t, core, rxUpAll(0, 1), 60*time.Second, 0, rxFresh(5))
	require.Empty(t, errs)
	var at []time.Duration
	for _, r := range reqs {
		require.Equal(t, testkit.V1Req, r.msg, "V1 peers get V1 requests only")
		at = append(at, r.at)
	}
	require.Equal(t, []time.Duration{0, 11 * time.Second, 22 * time.Second, 33 * time.Second, 44 * time.Second, 55 * time.Second}, at)
	for _, g := range rxGaps(reqs) {
		require.GreaterOrEqual(t, g, CometBFTMinReceiveInterval)
	}
}

func TestCoreV1PeerSpacingCustom(t *testing.T) {
	core := rxCore(t, Config{V1RequestInterval: 30 * time.Second}, nil)
	reqs, errs := rxDrive(t, core, rxUpAll(0, 1), 100*time.Second, 0, rxFresh(5))
	require.Empty(t, errs)
	require.Len(t, reqs, 4) // 0, 30, 60, 90 s
	for _, g := range rxGaps(reqs) {
		require.Equal(t, 30*time.Second, g)
	}
}

func TestCoreV2PeerSpacing(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		caps PeerCaps
		gap  time.Duration
		n    int
	}{
		{Config{}, CapV2, 250 * time.Millisecond, 21},
		{Config{V2RequestInterval: time.Second}, CapV2, time.Second, 6},
		// A network declared V2 treats peers without CapV2 as V2.
		{Config{NetworkV2: true}, 0, 250 * time.Millisecond, 21},
	} {
		t.Run(fmt.Sprintf("%s/caps%d", tc.gap, tc.caps), func(t *testing.T) {
			// Full answers, all new, so the interval is MinInterval and
			// the peer's spacing is what holds requests back.
			core := rxCore(t, tc.cfg, rxPM(t, PeerManagerOptions{Options: book.Options{MaxPeers: 100_000}}))
			reqs, errs := rxDrive(t, core, rxUpAll(tc.caps, 1), 5*time.Second, 0, rxFresh(MaxAddresses))
			require.Empty(t, errs)
			require.Len(t, reqs, tc.n)
			for _, r := range reqs {
				require.Equal(t, testkit.V2Req, r.msg)
			}
			for _, g := range rxGaps(reqs) {
				require.Equal(t, tc.gap, g)
			}
		})
	}
}

func TestCoreV1PeerUpgradedByV2Message(t *testing.T) {
	const a = 1
	for _, tc := range []struct {
		name string
		msg  []byte
		send []rxOut
	}{
		{"v2 request", testkit.V2Req, []rxOut{{a, "v2resp"}}},
		{"empty v2 response", []byte{0x22, 0x00}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core := rxCore(t, Config{}, nil)
			steps := []rxStep{
				{at: 0, ev: rxUp(a, 0), send: []rxOut{{a, "v1req"}}},
			}
			if tc.send != nil {
				// It answers V1 in V1, then asks in V2.
				steps = append(steps,
					rxStep{at: 100 * time.Millisecond, ev: rxRecv(a, testkit.V1RespAddrs(rxAddr(100)))},
					rxStep{at: time.Second, ev: rxRecv(a, tc.msg), send: tc.send},
				)
			} else {
				steps = append(steps, rxStep{at: time.Second, ev: rxRecv(a, tc.msg)})
			}
			steps = append(steps,
				// Now it is asked in V2, at V2 spacing.
				rxStep{at: time.Second, ev: rxTick(), send: []rxOut{{a, "v2req"}}},
				rxStep{at: time.Second, ev: rxRecv(a, testkit.V2RespAddrs(rxRange(101, 200)...))},
				rxStep{at: 1500 * time.Millisecond, ev: rxTick(), send: []rxOut{{a, "v2req"}}},
			)
			rxRun(t, core, steps)
		})
	}
}

// ---------------------------------------------------------------------------
// Core: serving

// rxServe sends one request from peer `from` (which is up) and returns the
// Actions.
func rxServe(t *testing.T, core *Core, from int, caps PeerCaps, req []byte) Actions {
	t.Helper()
	core.PeerUpdate(rxAt(0), PeerUpdate{NodeID: nodeID(from), Status: PeerStatusUp, Caps: caps})
	acts := core.Receive(rxAt(time.Second), Envelope{From: nodeID(from), Message: req})
	require.Empty(t, acts.Errors)
	return acts
}

func TestCoreServeInRequestVersion(t *testing.T) {
	for _, tc := range []struct {
		name string
		caps PeerCaps
		req  []byte
		kind string
	}{
		{"v1 from v1 peer", 0, testkit.V1Req, "v1resp"},
		{"v1 from v2 peer", CapV2, testkit.V1Req, "v1resp"},
		{"v2 from v2 peer", CapV2, testkit.V2Req, "v2resp"},
		{"v2 from v1 peer", 0, testkit.V2Req, "v2resp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pm := rxPM(t, PeerManagerOptions{})
			rxFill(t, pm, rxRange(10, 14)...)
			core := rxCore(t, Config{}, pm)
			acts := rxServe(t, core, 1, tc.caps, tc.req)
			require.Len(t, acts.Send, 1)
			require.Equal(t, nodeID(1), acts.Send[0].To)
			require.Equal(t, tc.kind, testkit.Kind(t, acts.Send[0].Message))
			require.Equal(t, 1, core.Stats().RequestsServed)
		})
	}
}

func TestCoreServeAtMostMaxAddresses(t *testing.T) {
	pm := rxPM(t, PeerManagerOptions{})
	rxFill(t, pm, rxRange(10, 309)...)
	require.Equal(t, 300, pm.Len())
	core := rxCore(t, Config{}, pm)

	acts := rxServe(t, core, 1, CapV2, testkit.V2Req)
	urls := testkit.V2URLs(t, acts.Send[0].Message)
	require.Len(t, urls, MaxAddresses)
	require.Contains(t, urls, rxSelfAddr.String())
	seen := map[string]bool{}
	for _, u := range urls {
		a, err := ParseNodeAddress(u)
		require.NoError(t, err)
		require.False(t, seen[u], "duplicate %s", u)
		seen[u] = true
		require.NotEqual(t, nodeID(1), a.NodeID)
	}

	acts = core.Receive(rxAt(2*time.Second), Envelope{From: nodeID(1), Message: testkit.V1Req})
	require.Empty(t, acts.Errors)
	require.Empty(t, acts.Resolve)
	entries := testkit.V1Entries(t, acts.Send[0].Message)
	require.Len(t, entries, MaxAddresses)
	require.Contains(t, entries, testkit.V1Str(nodeID(0), "192.0.2.1:26656"))
}

func TestCoreServeSelfIncludedRequesterExcluded(t *testing.T) {
	for _, req := range [][]byte{testkit.V1Req, testkit.V2Req} {
		pm := rxPM(t, PeerManagerOptions{})
		rxFill(t, pm, rxRange(1, 5)...) // includes the requester, node 1
		core := rxCore(t, Config{}, pm)
		acts := rxServe(t, core, 1, CapV2, req)
		require.Len(t, acts.Send, 1)
		var ids []NodeID
		if bytes.Equal(req, testkit.V2Req) {
			for _, u := range testkit.V2URLs(t, acts.Send[0].Message) {
				a, err := ParseNodeAddress(u)
				require.NoError(t, err)
				ids = append(ids, a.NodeID)
			}
		} else {
			for _, a := range testkit.Decode(t, acts.Send[0].Message).GetPexResponse().GetAddresses() {
				ids = append(ids, NodeID(a.GetId()))
			}
		}
		require.ElementsMatch(t, []NodeID{nodeID(0), nodeID(2), nodeID(3), nodeID(4), nodeID(5)}, ids, "kind %s", testkit.Kind(t, req))
	}
}

func TestCoreServeV1LeavesOutMemoryKeepsIPv6(t *testing.T) {
	selfMem := NodeAddress{Protocol: ProtocolMemory, NodeID: nodeID(0)}
	pm := rxPM(t, PeerManagerOptions{Options: book.Options{SelfAddresses: []NodeAddress{rxSelfAddr, selfMem}}})
	mem := NodeAddress{Protocol: ProtocolMemory, NodeID: nodeID(2)}
	v6 := NodeAddress{Protocol: ProtocolMConn, NodeID: nodeID(3), Hostname: "2001:db8::3", Port: 26656}
	tcp := NodeAddress{Protocol: ProtocolTCP, NodeID: nodeID(5), Hostname: "198.51.100.5", Port: 26657}
	rxFill(t, pm, mem, v6, rxAddr(4), tcp)
	core := rxCore(t, Config{}, pm)

	acts := rxServe(t, core, 1, 0, testkit.V1Req)
	require.Empty(t, acts.Resolve)
	require.Len(t, acts.Send, 1)
	require.ElementsMatch(t, []string{
		testkit.V1Str(nodeID(0), "192.0.2.1:26656"),
		testkit.V1Str(nodeID(3), "[2001:db8::3]:26656"),
		testkit.V1Str(nodeID(4), "10.0.4.1:26656"),
		testkit.V1Str(nodeID(5), "198.51.100.5:26657"),
	}, testkit.V1Entries(t, acts.Send[0].Message))

	// V2 carries every form.
	acts = core.Receive(rxAt(2*time.Second), Envelope{From: nodeID(1), Message: testkit.V2Req})
	require.ElementsMatch(t, []string{
		rxSelfAddr.String(), selfMem.String(), mem.String(), v6.String(), rxAddr(4).String(), tcp.String(),
	}, testkit.V2URLs(t, acts.Send[0].Message))
}

// V2 answers leave mconn:// out of mconn addresses, which both pex and
// Tendermint v0.35 read as mconn: Tendermint parses a URL with net/url and,
// when that finds no scheme and the URL holds no "://" (or looks like
// host:port), parses it again with mconn:// in front. Config.V2Scheme
// writes the scheme as Tendermint does.
func TestCoreServeV2URLsWithoutScheme(t *testing.T) {
	mem := NodeAddress{Protocol: ProtocolMemory, NodeID: nodeID(2)}
	v6 := NodeAddress{Protocol: ProtocolMConn, NodeID: nodeID(3), Hostname: "2001:db8::3", Port: 26656}
	tcp := NodeAddress{Protocol: ProtocolTCP, NodeID: nodeID(5), Hostname: "198.51.100.5", Port: 26657}
	dns := NodeAddress{Protocol: ProtocolMConn, NodeID: nodeID(6), Hostname: "seed.example.com", Port: 26656}
	// net/url stops at a leading digit, and reads a leading letter up to
	// the @: neither finds a scheme.
	letter := NodeAddress{Protocol: ProtocolMConn, NodeID: NodeID(strings.Repeat("ab", 20)), Hostname: "1e100.net", Port: 1}
	known := []NodeAddress{rxSelfAddr, mem, v6, rxAddr(4), tcp, dns, letter}
	answer := func(cfg Config) []byte {
		pm := rxPM(t, PeerManagerOptions{Options: book.Options{SelfAddresses: []NodeAddress{rxSelfAddr}}})
		rxFill(t, pm, known[1:]...)
		acts := rxServe(t, rxCore(t, cfg, pm), 1, 0, testkit.V2Req)
		require.Len(t, acts.Send, 1)
		return acts.Send[0].Message
	}

	short := answer(Config{})
	sent := testkit.V2RawURLs(t, short)
	require.Len(t, sent, len(known))
	mconns := 0
	for _, u := range sent {
		a, err := ParseNodeAddress(u)
		require.NoError(t, err)
		require.Contains(t, known, a, "sent %q", u)
		if a.Protocol != ProtocolMConn {
			require.Equal(t, a.String(), u, "other schemes as String writes them")
			continue
		}
		mconns++
		require.Equal(t, strings.TrimPrefix(a.String(), "mconn://"), u)
		// As Tendermint v0.35 reads it.
		p, err := url.Parse(u)
		require.True(t, (err != nil || p.Scheme == "") && !strings.Contains(u, "://"), "%q has no scheme", u)
		p, err = url.Parse("mconn://" + u)
		require.NoError(t, err)
		require.Equal(t, string(a.NodeID), p.User.Username())
		require.Equal(t, a.Hostname, p.Hostname())
		require.Equal(t, strconv.Itoa(int(a.Port)), p.Port())
	}
	require.Equal(t, 5, mconns)

	long := answer(Config{V2Scheme: true})
	var want []string
	for _, a := range known {
		want = append(want, a.String())
	}
	require.ElementsMatch(t, want, testkit.V2RawURLs(t, long))
	require.Equal(t, len(long)-8*mconns, len(short), "8 bytes less per mconn entry")
}

func TestCoreServeV1HostnameAsksForResolution(t *testing.T) {
	pm := rxPM(t, PeerManagerOptions{})
	host := NodeAddress{Protocol: ProtocolMConn, NodeID: nodeID(5), Hostname: "seed.example.com", Port: 26656}
	rxFill(t, pm, host, rxAddr(6))
	core := rxCore(t, Config{}, pm)
	acts := rxServe(t, core, 1, 0, testkit.V1Req)
	require.Empty(t, acts.Send, "a V1 answer with a host name waits on resolution")
	require.Len(t, acts.Resolve, 1)
	require.Equal(t, nodeID(1), acts.Resolve[0].To)
	require.ElementsMatch(t, []NodeAddress{rxSelfAddr, host, rxAddr(6)}, acts.Resolve[0].Addrs)

	// A V2 answer needs no resolution.
	acts = core.Receive(rxAt(2*time.Second), Envelope{From: nodeID(1), Message: testkit.V2Req})
	require.Empty(t, acts.Resolve)
	require.Contains(t, testkit.V2URLs(t, acts.Send[0].Message), host.String())

}

// A request from a peer that is not connected (never was, or already went
// down) has nobody to answer. One from a connected peer whose Up has not
// reached the Core yet (messages and peer events travel separately) is
// answered, without keeping state for it.
func TestCoreRequestBeforeUp(t *testing.T) {
	pm := rxPM(t, PeerManagerOptions{})
	core := rxCore(t, Config{}, pm)
	acts := core.Receive(rxAt(0), Envelope{From: nodeID(9), Message: testkit.V2Req})
	require.Empty(t, acts.Send)
	require.Empty(t, acts.Errors)

	require.NoError(t, pm.Accepted(nodeID(9)))
	acts = core.Receive(rxAt(0), Envelope{From: nodeID(9), Message: testkit.V1Req})
	require.Empty(t, acts.Errors)
	require.Len(t, acts.Send, 1)
	require.Equal(t, "v1resp", testkit.Kind(t, acts.Send[0].Message))
	require.Empty(t, core.peers, "no state before Up")

	pm.Disconnected(nodeID(9))
	acts = core.Receive(rxAt(0), Envelope{From: nodeID(9), Message: testkit.V2Req})
	require.Empty(t, acts.Send)
	require.Empty(t, core.peers)
}

// ---------------------------------------------------------------------------
// Core: request rate limiting

func TestCoreRequestBurstTolerated(t *testing.T) {
	for _, req := range [][]byte{testkit.V1Req, testkit.V2Req} {
		core := rxCore(t, Config{}, nil)
		core.PeerUpdate(rxAt(0), PeerUpdate{NodeID: nodeID(1), Status: PeerStatusUp, Caps: CapV2})
		// An honest node that reconnects asks four times back to back.
		for i := range 4 {
			acts := core.Receive(rxAt(time.Second), Envelope{From: nodeID(1), Message: req})
			require.Empty(t, acts.Errors, "request %d", i)
			require.Len(t, acts.Send, 1, "request %d", i)
		}
		// The fifth at the same instant exceeds the burst.
		acts := core.Receive(rxAt(time.Second), Envelope{From: nodeID(1), Message: req})
		require.Empty(t, acts.Send, "a flood gets no answer")
		require.Len(t, acts.Errors, 1)
		testkit.RequirePeerError(t, acts.Errors[0], nodeID(1), ErrRequestTooSoon, true)
		require.Equal(t, 4, core.Stats().RequestsServed)
	}
}

func TestCoreSustainedRequestFloodRefused(t *testing.T) {
	core := rxCore(t, Config{}, nil)
	core.PeerUpdate(rxAt(0), PeerUpdate{NodeID: nodeID(1), Status: PeerStatusUp, Caps: CapV2})
	// One request every 150 ms: faster than one per 200 ms.
	const every = 150 * time.Millisecond
	answered, refused, firstErr := 0, 0, -1
	for i := range 100 {
		acts := core.Receive(rxAt(time.Duration(i)*every), Envelope{From: nodeID(1), Message: testkit.V2Req})
		if len(acts.Errors) > 0 {
			require.Empty(t, acts.Send, "request %d: refused and answered", i)
			require.Len(t, acts.Errors, 1)
			testkit.RequirePeerError(t, acts.Errors[0], nodeID(1), ErrRequestTooSoon, true)
			if firstErr < 0 {
				firstErr = i
			}
			refused++
			continue
		}
		require.Len(t, acts.Send, 1)
		answered++
		// The bucket never lets more through than the burst plus the rate.
		elapsed := time.Duration(i) * every
		require.LessOrEqual(t, answered, 4+int(elapsed/(200*time.Millisecond)), "request %d", i)
	}
	require.Positive(t, firstErr, "a sustained flood must be refused")
	require.Less(t, firstErr, 20, "the burst allowance is small")
	require.Equal(t, answered, core.Stats().RequestsServed)
	require.Equal(t, refused, core.Stats().PeerErrors)
}

func TestCoreRequestsAtAllowedRateAlwaysAnswered(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		every time.Duration
	}{
		{"default 200ms", Config{}, 200 * time.Millisecond},
		{"1s", Config{MinReceiveInterval: time.Second}, time.Second},
		{"cometbft pace", Config{}, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core := rxCore(t, tc.cfg, nil)
			core.PeerUpdate(rxAt(0), PeerUpdate{NodeID: nodeID(1), Status: PeerStatusUp, Caps: CapV2})
			now := time.Second
			// Start with a full burst (a reconnect), then keep to the rate.
			for range 4 {
				acts := core.Receive(rxAt(now), Envelope{From: nodeID(1), Message: testkit.V2Req})
				require.Empty(t, acts.Errors)
			}
			for i := range 200 {
				now += tc.every
				acts := core.Receive(rxAt(now), Envelope{From: nodeID(1), Message: testkit.V2Req})
				require.Empty(t, acts.Errors, "request %d at %s", i, now)
				require.Len(t, acts.Send, 1)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Core: bad input

func TestCoreBadInput(t *testing.T) {
	const a, b = 1, 2
	self := nodeID(0)
	v := func(i int) string { return rxAddr(i).String() }
	id := func(i int) string { return string(nodeID(i)) }
	tooMany := make([]NodeAddress, MaxAddresses+1)
	for i := range tooMany {
		tooMany[i] = rxAddr(100 + i)
	}
	big := make([]string, 40)
	for i := range big {
		big[i] = v(100 + i)
	}
	for _, tc := range []struct {
		name  string
		cfg   Config
		from  int    // default a, whose request is pending
		msg   []byte // what it sends
		is    []error
		fatal bool
		noErr bool
		added []int // node IDs the book gains
	}{
		{name: "oversize refused before decode", cfg: Config{MaxMessageSize: 1024}, msg: testkit.V2Resp(big...), is: []error{ErrMessageTooLarge}, fatal: true},
		{name: "undecodable", msg: []byte{0xff, 0xff, 0xff, 0xff}, is: []error{ErrMalformedMessage}, fatal: true},
		{name: "truncated", msg: testkit.V2RespAddrs(rxAddr(100))[:10], is: []error{ErrMalformedMessage}, fatal: true},
		{name: "empty message", msg: []byte{}, is: []error{ErrUnknownMessage}, fatal: true},
		{name: "unknown oneof field 5", msg: []byte{0x2a, 0x00}, is: []error{ErrUnknownMessage}, fatal: true},
		{name: "unsolicited from peer not asked", from: b, msg: testkit.V2RespAddrs(rxAddr(100)), is: []error{ErrUnsolicitedResponse}, fatal: true},
		{name: "unsolicited from unknown peer", from: 9, msg: testkit.V2RespAddrs(rxAddr(100)), is: []error{ErrUnsolicitedResponse}, fatal: true},
		{name: "unsolicited v1", from: b, msg: testkit.V1RespAddrs(rxAddr(100)), is: []error{ErrUnsolicitedResponse}, fatal: true},
		{name: "101 addresses", msg: testkit.V2RespAddrs(tooMany...), is: []error{ErrTooManyAddresses}, fatal: true},
		{name: "101 v1 addresses", msg: testkit.V1RespAddrs(tooMany...), is: []error{ErrTooManyAddresses}, fatal: true},
		{
			name: "mostly invalid", fatal: true, is: []error{ErrMostlyInvalid, ErrInvalidAddress}, added: []int{10, 11, 12},
			msg: testkit.V2Resp(v(10), "junk", v(11), "mconn://zz@1.2.3.4:1", "", "::::", v(12), "x://y", "memory:", "tcp://"),
		},
		{
			name: "a few invalid", is: []error{ErrInvalidAddress}, added: []int{10, 11, 12, 13, 14, 15, 16, 17},
			msg: testkit.V2Resp(v(10), v(11), "junk", v(12), v(13), v(14), v(15), "also junk", v(16), v(17)),
		},
		{name: "malformed URL", is: []error{ErrInvalidAddress}, added: []int{10, 11, 12}, msg: testkit.V2Resp(v(10), "http://%zz", v(11), v(12))},
		{name: "bad node ID", is: []error{ErrInvalidAddress, ErrInvalidNodeID}, added: []int{10, 11, 12}, msg: testkit.V2Resp(v(10), "mconn://"+strings.Repeat("g", 40)+"@1.2.3.4:26656", v(11), v(12))},
		{name: "port 0", is: []error{ErrInvalidAddress}, added: []int{10, 11, 12}, msg: testkit.V2Resp(v(10), "mconn://"+id(20)+"@1.2.3.4:0", v(11), v(12))},
		{name: "port too large", is: []error{ErrInvalidAddress}, added: []int{10, 11, 12}, msg: testkit.V2Resp(v(10), "mconn://"+id(20)+"@1.2.3.4:65536", v(11), v(12))},
		{name: "IPv6 without brackets", is: []error{ErrInvalidAddress}, added: []int{10, 11, 12}, msg: testkit.V2Resp(v(10), "mconn://"+id(20)+"@2001:db8::1:26656", v(11), v(12))},
		{
			name: "v1 bad entries", is: []error{ErrInvalidAddress}, added: []int{10, 11, 12, 13, 14, 15},
			msg: testkit.V1Resp(
				testkit.V1Entry(nodeID(10), "10.0.10.1", 26656), testkit.V1Entry(nodeID(11), "10.0.11.1", 26656), testkit.V1Entry(nodeID(12), "10.0.12.1", 26656),
				testkit.V1Entry(nodeID(20), "", 26656), testkit.V1Entry(nodeID(21), "10.0.0.21", 0),
				testkit.V1Entry(nodeID(13), "10.0.13.1", 26656), testkit.V1Entry(nodeID(14), "2001:db8::14", 26656), testkit.V1Entry(nodeID(15), "10.0.15.1", 26656),
			),
		},
		{
			name: "v1 bad port and ID", is: []error{ErrInvalidAddress}, added: []int{10, 11, 12, 13, 14},
			msg: testkit.V1Resp(
				testkit.V1Entry(nodeID(10), "10.0.10.1", 26656), testkit.V1Entry(nodeID(11), "10.0.11.1", 26656), testkit.V1Entry(nodeID(12), "10.0.12.1", 26656),
				testkit.V1Entry(nodeID(20), "10.0.0.20", 70000), testkit.V1Entry("xyz", "10.0.0.21", 26656),
				testkit.V1Entry(nodeID(13), "10.0.13.1", 26656), testkit.V1Entry(nodeID(14), "10.0.14.1", 26656),
			),
		},
		{
			name: "our own address among others", noErr: true, added: []int{10, 11, 12, 13},
			msg: testkit.V2Resp(v(10), rxSelfAddr.String(), v(11), v(12), v(13)),
		},
		{
			name: "our own endpoint under another ID", noErr: true, added: []int{10, 11, 12},
			msg: testkit.V2Resp(v(10), "mconn://"+id(20)+"@192.0.2.1:26656", v(11), v(12)),
		},
		{
			name: "our own address in every form", fatal: true, is: []error{ErrMostlyInvalid, ErrSelfAddress}, added: []int{10},
			msg: testkit.V2Resp("memory:"+string(self), "tcp://"+string(self)+"@203.0.113.9:1", rxSelfAddr.String(), "mconn://"+id(20)+"@192.0.2.1:26656", v(10)),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pm := rxPM(t, PeerManagerOptions{})
			rxFill(t, pm, rxRange(500, 519)...) // what the book held before
			core := rxCore(t, tc.cfg, pm)
			rxRun(t, core, []rxStep{
				{at: 0, ev: rxUp(a, CapV2), send: []rxOut{{a, "v2req"}}},
				{at: 0, ev: rxUp(b, CapV2)},
			})
			before := pm.Known()
			require.Len(t, before, 20)
			from := tc.from
			if from == 0 {
				from = a
			}
			acts := core.Receive(rxAt(100*time.Millisecond), Envelope{From: nodeID(from), Message: tc.msg})
			require.Empty(t, acts.Send)
			if tc.noErr {
				require.Empty(t, acts.Errors)
			} else {
				require.Len(t, acts.Errors, 1, "%v", acts.Errors)
				for _, s := range tc.is {
					testkit.RequirePeerError(t, acts.Errors[0], nodeID(from), s, tc.fatal)
				}
			}
			want := append([]NodeID(nil), before...)
			for _, i := range tc.added {
				want = append(want, nodeID(i))
			}
			require.ElementsMatch(t, want, pm.Known())
			require.False(t, pm.Has(self), "never store ourselves")
			require.Equal(t, len(acts.Errors), core.Stats().PeerErrors)
		})
	}
}

// ---------------------------------------------------------------------------
// Core: responses

func TestCoreResponseStatsAndBook(t *testing.T) {
	pm := rxPM(t, PeerManagerOptions{})
	rxFill(t, pm, rxAddr(10), rxAddr(11))
	core := rxCore(t, Config{}, pm)
	resp := testkit.V2Resp(rxAddr(10).String(), rxAddr(11).String(), rxAddr(12).String(), rxAddr(13).String(), rxAddr(14).String(), "junk")
	rxRun(t, core, []rxStep{
		{at: 0, ev: rxUp(1, CapV2), send: []rxOut{{1, "v2req"}}},
		{at: 0, ev: rxUp(2, 0)},
		{at: 10 * time.Millisecond, ev: rxRecv(1, resp), errs: []rxErr{{1, ErrInvalidAddress, false}}},
		{at: 20 * time.Millisecond, ev: rxRecv(2, testkit.V1Req), send: []rxOut{{2, "v1resp"}}},
		{at: 300 * time.Millisecond, ev: rxTick()}, // 3 new, of the 100 an answer holds: slower
		{at: 400 * time.Millisecond, ev: rxTick(), send: []rxOut{{2, "v1req"}}},
		{at: 500 * time.Millisecond, ev: rxRecv(2, testkit.V1RespAddrs(rxAddr(15), rxAddr(12)))},
	})
	for i := 10; i <= 15; i++ {
		require.True(t, pm.Has(nodeID(i)), "node %d", i)
	}
	st := core.Stats()
	require.Equal(t, 2, st.RequestsSent)
	require.Equal(t, 1, st.RequestsServed)
	require.Equal(t, 2, st.Responses)
	require.Equal(t, 7, st.AddressesReceived)
	require.Equal(t, 4, st.AddressesNew)
	require.Equal(t, 1, st.InvalidEntries)
	require.Equal(t, 1, st.PeerErrors)
	require.Equal(t, 0, st.Timeouts)
	require.Equal(t, len(resp)+len(testkit.V1Req)+len(testkit.V1RespAddrs(rxAddr(15), rxAddr(12))), st.BytesReceived)
	served := testkit.V1RespAddrs(rxSelfAddr, rxAddr(10), rxAddr(11), rxAddr(12), rxAddr(13), rxAddr(14))
	require.Equal(t, len(testkit.V2Req)+len(testkit.V1Req)+len(served), st.BytesSent)
	require.GreaterOrEqual(t, st.NetworkSize, pm.Len())
}

// The estimate of the network's size comes from how often responses repeat
// what we know: fed uniform samples of a 500-node network, it must be near
// 500 long before we know everyone, and stay there.
func TestCoreNetworkSizeEstimate(t *testing.T) {
	const n = 500
	pm := rxPM(t, PeerManagerOptions{})
	core := rxCore(t, Config{}, pm)
	require.Zero(t, core.NetworkSizeEstimate())
	rng := rand.New(rand.NewPCG(3, 4))
	early := 0
	_, errs := rxDrive(t, core, rxUpAll(CapV2, 1, 2, 3), 1000*time.Hour, 40, func(NodeID, []byte) []byte {
		// Check the estimate left by the responses so far.
		if est, known := core.NetworkSizeEstimate(), pm.Len(); core.Stats().Responses >= 3 && known < 4*n/5 {
			early++
			require.InDelta(t, n, est, 0.3*n, "after %d responses: estimate %d with %d known", core.Stats().Responses, est, known)
		}
		var addrs []NodeAddress
		for _, i := range rng.Perm(n)[:MaxAddresses] {
			addrs = append(addrs, rxAddr(1+i))
		}
		return testkit.V2RespAddrs(addrs...)
	})
	require.Empty(t, errs)
	require.Positive(t, early, "checked the estimate before the book knew 80%%")
	est := core.NetworkSizeEstimate()
	require.InDelta(t, n, est, 0.3*n, "final estimate %d", est)
	require.Equal(t, est, core.Stats().NetworkSize)
	require.Equal(t, n, pm.Len())
}

// ---------------------------------------------------------------------------
// Core: self-remediation

func TestCoreRestartSignal(t *testing.T) {
	restartAt := func(core *Core, d time.Duration) bool { return core.Tick(rxAt(d)).Restart }
	t.Run("window", func(t *testing.T) {
		core := rxCore(t, Config{NoPeersRestartWindow: time.Minute}, nil)
		require.False(t, restartAt(core, 0))
		require.Equal(t, rxAt(time.Second), core.NextWake())
		require.False(t, restartAt(core, time.Minute-time.Millisecond))
		require.True(t, restartAt(core, time.Minute))
		require.False(t, restartAt(core, time.Minute+time.Second))
		require.False(t, restartAt(core, 11*time.Minute-time.Millisecond), "not again within the cooldown")
		require.True(t, restartAt(core, 11*time.Minute))
		// A peer resets the window; the cooldown still holds.
		core.PeerUpdate(rxAt(11*time.Minute+time.Second), PeerUpdate{NodeID: nodeID(1), Status: PeerStatusUp, Caps: CapV2})
		require.False(t, restartAt(core, 15*time.Minute))
		core.PeerUpdate(rxAt(16*time.Minute), PeerUpdate{NodeID: nodeID(1), Status: PeerStatusDown})
		require.False(t, restartAt(core, 17*time.Minute-time.Millisecond))
		require.False(t, restartAt(core, 21*time.Minute-time.Millisecond), "cooldown from the last signal")
		require.True(t, restartAt(core, 21*time.Minute))
	})
	t.Run("peers present", func(t *testing.T) {
		core := rxCore(t, Config{NoPeersRestartWindow: time.Minute}, nil)
		core.PeerUpdate(rxAt(0), PeerUpdate{NodeID: nodeID(1), Status: PeerStatusUp, Caps: CapV2})
		for d := time.Duration(0); d < time.Hour; d += 10 * time.Second {
			require.False(t, restartAt(core, d))
		}
	})
	t.Run("off by default", func(t *testing.T) {
		core := rxCore(t, Config{}, nil)
		for d := time.Duration(0); d < 3*time.Hour; d += 10 * time.Second {
			require.False(t, restartAt(core, d))
		}
	})
}

func TestCoreLateResponseIsUsedNotPunished(t *testing.T) {
	const a, b = 1, 2
	core := rxCore(t, Config{}, nil)
	rxRun(t, core, []rxStep{
		{at: 0, ev: rxUp(a, CapV2), send: []rxOut{{a, "v2req"}}},
		{at: 0, ev: rxUp(b, CapV2)},
		{at: 200 * time.Millisecond, ev: rxTick(), send: []rxOut{{b, "v2req"}}},
		// A full answer, so b is not taken for a peer whose lap is done.
		{at: 300 * time.Millisecond, ev: rxRecv(b, testkit.V2RespAddrs(rxRange(200, 299)...))},
		// a misses its deadline and goes behind b; b is asked next.
		{at: 10 * time.Second, ev: rxTick(), errs: []rxErr{{a, ErrResponseTimeout, false}}, send: []rxOut{{b, "v2req"}}},
		// a's answer then arrives: late, not unsolicited.
		{at: 10*time.Second + 500*time.Millisecond, ev: rxRecv(a, testkit.V2RespAddrs(rxAddr(100)))},
		// A second one is unsolicited.
		{at: 10*time.Second + 600*time.Millisecond, ev: rxRecv(a, testkit.V2RespAddrs(rxAddr(102))), errs: []rxErr{{a, ErrUnsolicitedResponse, true}}},
	})
	require.True(t, core.bk.Has(nodeID(100)), "the late answer is used")
	require.False(t, core.bk.Has(nodeID(102)))
}

func TestCoreRateLimitsRequestsBeforeUp(t *testing.T) {
	core := rxCore(t, Config{}, nil)
	from := nodeID(9)
	require.NoError(t, core.bk.Accepted(rxAt(0), from)) // connected, Up not yet seen
	now := time.Unix(1_700_000_000, 0)
	answered, refused := 0, 0
	for range 100 {
		acts := core.Receive(now, Envelope{From: from, Message: v2Request})
		answered += len(acts.Send)
		for _, pe := range acts.Errors {
			require.ErrorIs(t, pe.Err, ErrRequestTooSoon)
			refused++
		}
	}
	require.Equal(t, core.cfg.RequestBurst, answered, "the burst, then nothing")
	require.Equal(t, 100-core.cfg.RequestBurst, refused)
	// The bucket carries over to the peer once it is up.
	core.PeerUpdate(now, PeerUpdate{NodeID: from, Status: PeerStatusUp, Caps: CapV2})
	acts := core.Receive(now, Envelope{From: from, Message: v2Request})
	require.Empty(t, acts.Send)
	require.Len(t, acts.Errors, 1)
	// And a peer that leaves before its Up leaves no state behind.
	require.NoError(t, core.bk.Accepted(rxAt(0), nodeID(10)))
	core.Receive(now, Envelope{From: nodeID(10), Message: v2Request})
	require.Contains(t, core.early, nodeID(10))
	core.bk.Disconnected(rxAt(0), nodeID(10))
	core.Tick(now)
	require.NotContains(t, core.early, nodeID(10))
}

func TestCoreAdaptiveChoice(t *testing.T) {
	const a, b, c = 1, 2, 3
	core := rxCore(t, Config{}, nil)
	now := time.Unix(1_700_000_000, 0)
	at := func(d time.Duration) time.Time { return now.Add(d) }
	sent := func(acts Actions) NodeID { return rxSentTo(t, acts) }
	// a comes up and is asked; it answers with news.
	require.Equal(t, nodeID(a), sent(core.PeerUpdate(at(0), PeerUpdate{NodeID: nodeID(a), Status: PeerStatusUp, Caps: CapV2})))
	core.Receive(at(50*time.Millisecond), Envelope{From: nodeID(a), Message: testkit.V2RespAddrs(rxRange(100, 110)...)})
	// b comes up: a new peer is asked next, before a is asked again.
	core.PeerUpdate(at(60*time.Millisecond), PeerUpdate{NodeID: nodeID(b), Status: PeerStatusUp, Caps: CapV2})
	require.Equal(t, nodeID(b), sent(core.Tick(at(300*time.Millisecond))))
	// b has nothing to tell; c comes up and answers with news.
	core.Receive(at(350*time.Millisecond), Envelope{From: nodeID(b), Message: testkit.V2RespAddrs()})
	core.PeerUpdate(at(360*time.Millisecond), PeerUpdate{NodeID: nodeID(c), Status: PeerStatusUp, Caps: CapV2})
	// From then on the exhausted b waits while a and c still bring news
	// (a, whose last answer was all news, outranks the unasked c at first).
	asked := map[NodeID]int{}
	for i := range 8 {
		to := sent(core.Tick(at(time.Second + time.Duration(i)*time.Second)))
		require.NotEqual(t, nodeID(b), to, "request %d", i)
		asked[to]++
		news := rxRange(300+20*i, 310+20*i)
		if to == nodeID(a) && asked[to] > 3 {
			news = nil // a runs dry
		}
		core.Receive(at(time.Second+time.Duration(i)*time.Second+50*time.Millisecond), Envelope{From: to, Message: testkit.V2RespAddrs(news...)})
	}
	require.Positive(t, asked[nodeID(a)])
	require.Positive(t, asked[nodeID(c)], "the new peer gets its turn once a runs dry")
}

// rxAskedSoon brings peer id (V2) up at at, and requires that it is asked
// next, within MinInterval.
func rxAskedSoon(t testing.TB, core *Core, at time.Time, id int) {
	t.Helper()
	acts := core.PeerUpdate(at, PeerUpdate{NodeID: nodeID(id), Status: PeerStatusUp, Caps: CapV2})
	if len(acts.Send) == 0 {
		acts = core.Tick(at.Add(core.cfg.MinInterval))
	}
	require.Equal(t, nodeID(id), rxSentTo(t, acts))
}

// rxSentTo returns whom the one message acts sends goes to.
func rxSentTo(t testing.TB, acts Actions) NodeID {
	t.Helper()
	require.Len(t, acts.Send, 1)
	return acts.Send[0].To
}

// rxInOrder returns n addresses from rxAddr(from) on, in pm's order.
func rxInOrder(pm *PeerManager, from, n int) []NodeAddress {
	ids := make([]NodeAddress, 0, n)
	for i := from; i < from+n; i++ {
		ids = append(ids, rxAddr(i))
	}
	slices.SortFunc(ids, func(x, y NodeAddress) int { return cmp.Compare(pm.RankOf(x.NodeID), pm.RankOf(y.NodeID)) })
	return ids
}

func TestCoreJudgesANewPeerByWhereItsWalkBegins(t *testing.T) {
	// A network of 1,000 in our order, of which we know the first 300: a
	// walking peer has shown us a book of about 1,000 (well ahead of
	// ours). Of two new peers, a's walk for us begins where we know
	// nothing and b's where we know everything: a is asked, not b (which
	// came up last, to the front of the rotation), nor the walking peer,
	// whose walk reaches what we miss in two more answers (without the
	// walk starts, a and b would look alike, and it would be asked).
	pm := rxPM(t, PeerManagerOptions{})
	core := rxCore(t, Config{}, pm)
	ids := rxInOrder(pm, 100, 1000)
	rxFill(t, pm, ids[:300]...)
	rank := func(i int) uint64 { return pm.RankOf(ids[i].NodeID) }
	startIn := func(from, to int) int { // a peer whose walk begins in ids[from:to]
		for i := 2000; ; i++ {
			if s := pm.WalkStartOf(nodeID(i)); s > rank(from) && s < rank(to) {
				return i
			}
		}
	}
	a, b := startIn(500, 800), startIn(20, 150)
	const w = 1
	now := time.Unix(1_700_000_000, 0)
	at := func(d time.Duration) time.Time { return now.Add(d) }
	require.Equal(t, nodeID(w), rxSentTo(t, core.PeerUpdate(at(0), PeerUpdate{NodeID: nodeID(w), Status: PeerStatusUp, Caps: CapV2})))
	core.Receive(at(100*time.Millisecond), Envelope{From: nodeID(w), Message: testkit.V2RespAddrs(ids[:100]...)})
	core.PeerUpdate(at(200*time.Millisecond), PeerUpdate{NodeID: nodeID(a), Status: PeerStatusUp, Caps: CapV2})
	core.PeerUpdate(at(200*time.Millisecond), PeerUpdate{NodeID: nodeID(b), Status: PeerStatusUp, Caps: CapV2})
	require.Equal(t, nodeID(a), rxSentTo(t, core.Tick(at(time.Second))))
}

// rxThinSource returns a Core that knows all but every twentieth of a
// network of 1,000 in its order (ids), whose one source, peer 1, has
// answered once with a run of 100 in which 5 were new; and the time.
func rxThinSource(t *testing.T) (*PeerManager, *Core, []NodeAddress, time.Time) {
	t.Helper()
	pm := rxPM(t, PeerManagerOptions{Options: book.Options{MaxPeers: 10_000}})
	core := rxCore(t, Config{}, pm)
	ids := rxInOrder(pm, 100, 1000)
	for i, a := range ids {
		if i%20 != 7 {
			rxFill(t, pm, a)
		}
	}
	now := time.Unix(1_700_000_000, 0)
	require.Equal(t, nodeID(1), rxSentTo(t, core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(1), Status: PeerStatusUp, Caps: CapV2})))
	core.Receive(now.Add(50*time.Millisecond), Envelope{From: nodeID(1), Message: testkit.V2RespAddrs(ids[:100]...)})
	require.Equal(t, 955, pm.Len())
	return pm, core, ids, now
}

// rxAskedOnUp brings peer id up at now and returns whom the request that
// follows within MinInterval goes to.
func rxAskedOnUp(t *testing.T, core *Core, now time.Time, id int) NodeID {
	t.Helper()
	acts := core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(id), Status: PeerStatusUp, Caps: CapV2})
	if len(acts.Send) == 0 {
		acts = core.Tick(now.Add(core.cfg.MinInterval))
	}
	return rxSentTo(t, acts)
}

func TestCoreSeeksASecondSource(t *testing.T) {
	// Our one source, d, walks where we know 95 of each 100: its next run
	// is worth about 5 new. A new peer s would be worth nothing by the
	// walks (they show a book no larger than ours), but d's book is all
	// we have seen: s is asked. Once s has answered, as thinly, a third
	// peer t is judged by the walks again, and is not asked before them;
	// unless s answered with one subnet (a sybil's), which is no source.
	for _, sybil := range []bool{false, true} {
		_, core, ids, now := rxThinSource(t)
		const d, s, tp = 1, 2, 3
		now = now.Add(100 * time.Millisecond)
		require.Equal(t, nodeID(s), rxAskedOnUp(t, core, now, s))
		answer := ids[500:600]
		if sybil {
			answer = nil
			for i := range MaxAddresses {
				answer = append(answer, sybilAddr(i))
			}
		}
		core.Receive(now.Add(core.cfg.MinInterval+50*time.Millisecond), Envelope{From: nodeID(s), Message: testkit.V2RespAddrs(answer...)})
		asked := rxAskedOnUp(t, core, now.Add(time.Second), tp)
		if sybil {
			require.Equal(t, nodeID(tp), asked, "a sybil is no source: t is asked")
		} else {
			require.NotEqual(t, nodeID(tp), asked, "a third source is judged by the walks")
		}
	}
}

func TestCoreCountsEachSourceOnceWhileConnected(t *testing.T) {
	// As in TestCoreSeeksASecondSource: d is our one thin source. A new
	// peer is asked, as d's book is all we have seen, whenever
	// - d has answered again (it is still one source),
	// - a second source s has gone down,
	// - or s sent nothing we could take (an empty answer shows nothing).
	const d, s, tp = 1, 2, 3
	t.Run("answered twice", func(t *testing.T) {
		_, core, ids, now := rxThinSource(t)
		now = now.Add(time.Second)
		require.Equal(t, nodeID(d), rxSentTo(t, core.Tick(now)))
		core.Receive(now.Add(50*time.Millisecond), Envelope{From: nodeID(d), Message: testkit.V2RespAddrs(ids[100:200]...)})
		require.Equal(t, nodeID(tp), rxAskedOnUp(t, core, now.Add(time.Second), tp))
	})
	for _, tc := range []struct {
		name string
		down bool
		ans  func(ids []NodeAddress) []NodeAddress
	}{
		{"source gone", true, func(ids []NodeAddress) []NodeAddress { return ids[500:600] }},
		{"empty answer", false, func([]NodeAddress) []NodeAddress { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, core, ids, now := rxThinSource(t)
			now = now.Add(100 * time.Millisecond)
			require.Equal(t, nodeID(s), rxAskedOnUp(t, core, now, s))
			core.Receive(now.Add(core.cfg.MinInterval+50*time.Millisecond), Envelope{From: nodeID(s), Message: testkit.V2RespAddrs(tc.ans(ids)...)})
			now = now.Add(time.Second)
			if tc.down {
				acts := core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(s), Status: PeerStatusDown})
				if len(acts.Send) > 0 {
					// d was due: it answers, thinly again, and is free.
					require.Equal(t, nodeID(d), rxSentTo(t, acts))
					core.Receive(now.Add(50*time.Millisecond), Envelope{From: nodeID(d), Message: testkit.V2RespAddrs(ids[100:200]...)})
				}
			}
			require.Equal(t, nodeID(tp), rxAskedOnUp(t, core, now.Add(time.Second), tp))
		})
	}
}

// rxPeerStartingOutside returns a peer, from id on, whose walk for us
// (PeerManager.WalkStartOf) begins outside the ranks that ids, in pm's
// order, span: before all of them.
func rxPeerStartingOutside(pm *PeerManager, ids []NodeAddress, id int) int {
	lo, hi := pm.RankOf(ids[0].NodeID), pm.RankOf(ids[len(ids)-1].NodeID)
	for ; ; id++ {
		if s := pm.WalkStartOf(nodeID(id)); s < lo || s > hi {
			return id
		}
	}
}

// rxWalkAfterNews drives a peer w whose walk for us begins before a
// network of 1,000 in our order (ids), of which we know the first 300:
// its first answer is ids[:100]; if lose, the answer to our second
// request is lost (the walk goes on without us); then it answers
// run followed by news. It checks that the run is read as the walk
// (where it ends, how long it is) and the network size the run shows:
// about 1,000, taken two standard errors low. Read on into the news, the
// run would seem to reach round to its own start, a book of about 100,
// and the estimate would stay at ours, 300.
func rxWalkAfterNews(t *testing.T, lose bool, run, news func([]NodeAddress) []NodeAddress) (*Core, NodeID, []NodeAddress) {
	t.Helper()
	pm := rxPM(t, PeerManagerOptions{Options: book.Options{MaxPeers: 10_000}})
	core := rxCore(t, Config{}, pm)
	ids := rxInOrder(pm, 100, 1000)
	rxFill(t, pm, ids[:300]...)
	w := rxPeerStartingOutside(pm, ids, 2000)
	now := time.Unix(1_700_000_000, 0)
	require.Equal(t, nodeID(w), rxSentTo(t, core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(w), Status: PeerStatusUp, Caps: CapV2})))
	core.Receive(now.Add(50*time.Millisecond), Envelope{From: nodeID(w), Message: testkit.V2RespAddrs(ids[:100]...)})
	now = core.NextWake()
	require.Equal(t, nodeID(w), rxSentTo(t, core.Tick(now)))
	if lose {
		now = now.Add(core.cfg.ResponseTimeout)
		require.Len(t, core.Tick(now).Errors, 1, "the request timed out")
		now = core.NextWake()
		require.Equal(t, nodeID(w), rxSentTo(t, core.Tick(now)))
	}
	r := run(ids)
	answer := append(slices.Clone(r), news(ids)...)
	acts := core.Receive(now.Add(50*time.Millisecond), Envelope{From: nodeID(w), Message: testkit.V2RespAddrs(answer...)})
	require.Empty(t, acts.Errors)
	require.Equal(t, 300, pm.Len())
	require.Equal(t, pm.RankOf(r[len(r)-1].NodeID), core.peers[nodeID(w)].w.At, "the run ends before the news")
	require.Equal(t, len(r), core.peers[nodeID(w)].w.Len)
	require.InDelta(t, 800, core.NetworkSizeEstimate(), 150)
	return core, nodeID(w), ids
}

func TestCoreReadsTheNewsAfterARunAsNews(t *testing.T) {
	// The second answer is the next 90 and, after them, 10 entries the
	// walk had passed (news, sent after the run).
	core, w, ids := rxWalkAfterNews(t, false,
		func(ids []NodeAddress) []NodeAddress { return ids[100:190] },
		func(ids []NodeAddress) []NodeAddress { return ids[10:20] })
	// Its next answer is news alone, in increasing rank: it leaves the
	// walk where it stood.
	at, n := core.peers[w].w.At, core.peers[w].w.Len
	now := core.NextWake()
	require.Equal(t, w, rxSentTo(t, core.Tick(now)))
	core.Receive(now.Add(50*time.Millisecond), Envelope{From: w, Message: testkit.V2RespAddrs(ids[20:30]...)})
	require.Equal(t, at, core.peers[w].w.At, "news alone")
	require.Equal(t, n, core.peers[w].w.Len)
}

func TestCoreReadsARunAfterALostAnswer(t *testing.T) {
	// The answer to our second request is lost: the walk went on to
	// ids[199] while we think it stands at ids[99]. The third answer is
	// the run ids[200:290] and then news the walk had passed, ids[150:160],
	// which lie beyond where we think the walk stands: the run still ends
	// before them.
	rxWalkAfterNews(t, true,
		func(ids []NodeAddress) []NodeAddress { return ids[200:290] },
		func(ids []NodeAddress) []NodeAddress { return ids[150:160] })
}

// rxSourcesOfOurBook returns a Core that knows every other node of a
// network of 1,200 in its order (600), with a size estimate of about
// 1,200, whose two sources a and b have answered once each with a walk
// of its own book (run: the next 100 of the book for a peer, so nothing
// new); and the time of b's answer.
func rxSourcesOfOurBook(t *testing.T) (pm *PeerManager, core *Core, a, b int, run func(NodeID) []NodeAddress, now time.Time) {
	t.Helper()
	pm = rxPM(t, PeerManagerOptions{Options: book.Options{MaxPeers: 10_000}})
	core = rxCore(t, Config{}, pm)
	ids := rxInOrder(pm, 100, 1200)
	var ours []NodeAddress
	for i := 0; i < len(ids); i += 2 {
		ours = append(ours, ids[i])
	}
	rxFill(t, pm, ours...)
	core.estimate = sizeEstimator{sumCM: 1200 * 1e4, sumR: 1e4}
	a = rxPeerStartingOutside(pm, ids, 2000)
	b = rxPeerStartingOutside(pm, ids, a+1)
	answers := map[NodeID]int{}
	run = func(id NodeID) []NodeAddress {
		k := answers[id]
		require.Less(t, k, 6, "a walk of our book")
		answers[id]++
		return ours[100*k : 100*k+100]
	}
	now = time.Unix(1_700_000_000, 0)
	require.Equal(t, nodeID(a), rxSentTo(t, core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(a), Status: PeerStatusUp, Caps: CapV2})))
	core.Receive(now.Add(50*time.Millisecond), Envelope{From: nodeID(a), Message: testkit.V2RespAddrs(run(nodeID(a))...)})
	now = now.Add(100 * time.Millisecond)
	rxAskedSoon(t, core, now, b)
	now = now.Add(core.cfg.MinInterval + 50*time.Millisecond)
	core.Receive(now, Envelope{From: nodeID(b), Message: testkit.V2RespAddrs(run(nodeID(b))...)})
	require.Equal(t, 2, core.idle)
	return pm, core, a, b, run, now
}

func TestCoreLooksPastSourcesThatKnowNoMore(t *testing.T) {
	// Our two sources, a and b, hold just what we hold (rxSourcesOfOurBook):
	// their walks show books of our size, and each of their answers brings
	// nothing new, while earlier answers showed a network of about 1,200
	// (the size estimate). After five answers each, a new peer n is asked,
	// not a or b: the floor for news from them (newsFloor) halves with each
	// answer that brought nothing, and a peer that has not answered is
	// worth what the estimate says we miss, as answers bring nothing.
	pm, core, a, b, run, now := rxSourcesOfOurBook(t)
	const n = 3
	for asked := map[NodeID]int{nodeID(a): 1, nodeID(b): 1}; asked[nodeID(a)] < 5 || asked[nodeID(b)] < 5; {
		now = core.NextWake()
		to := rxSentTo(t, core.Tick(now))
		asked[to]++
		core.Receive(now.Add(50*time.Millisecond), Envelope{From: to, Message: testkit.V2RespAddrs(run(to)...)})
	}
	require.Equal(t, 600, pm.Len())
	require.Equal(t, 600, core.NetworkSizeEstimate(), "the walks show books of our size")
	require.Equal(t, nodeID(n), rxAskedOnUp(t, core, now.Add(30*time.Second), n))
}

func TestCoreLooksPastSourcesAfterThreeEmptyAnswers(t *testing.T) {
	// As in TestCoreLooksPastSourcesThatKnowNoMore, but a and b have just
	// answered, once each: the floor for their news is still small (they
	// were asked a moment ago: see newsFloorRamp). After
	// two answers in a row that brought nothing, the new peer n is worth
	// nothing by the walks, and a source is asked; after a third, the
	// size estimate counts (stallAnswers), and n is asked.
	_, core, a, b, run, now := rxSourcesOfOurBook(t)
	const n = 3
	now = now.Add(time.Second)
	to := rxAskedOnUp(t, core, now, n)
	require.Contains(t, []NodeID{nodeID(a), nodeID(b)}, to, "two empty answers")
	core.Receive(now.Add(core.cfg.MinInterval+50*time.Millisecond), Envelope{From: to, Message: testkit.V2RespAddrs(run(to)...)})
	require.Equal(t, 3, core.idle)
	require.Equal(t, nodeID(n), rxSentTo(t, core.Tick(core.NextWake())), "three empty answers")
}

func TestCoreTrustsTheMarkRecaptureEstimateOnlySoFar(t *testing.T) {
	// We know 600 nodes. A mark-recapture estimate of 700 is what we may
	// miss against; one of 5,000 (answers that leave out what we told the
	// peer read so) counts for 1.5 times our book, or the walked size if
	// larger.
	pm := rxPM(t, PeerManagerOptions{Options: book.Options{MaxPeers: 10_000}})
	core := rxCore(t, Config{}, pm)
	rxFill(t, pm, rxRange(100, 699)...)
	require.Equal(t, 600, pm.Len())
	for _, tc := range []struct {
		estimate, walked int
		want             float64
	}{
		{700, 0, 1 - 600.0/700},
		{5000, 0, 1 - 600.0/900},
		{5000, 800, 1 - 600.0/1200},
		{700, 800, 1 - 600.0/800},
	} {
		core.estimate = sizeEstimator{sumCM: float64(tc.estimate) * 1e4, sumR: 1e4 - 1}
		require.Equal(t, tc.estimate, core.estimate.value())
		require.InDelta(t, tc.want, core.missingAtMost(tc.walked), 1e-9, "estimate %d, walked %d", tc.estimate, tc.walked)
	}
}

func TestCoreAsksANewPeerThatAskedUsFirst(t *testing.T) {
	// Our one source, 1, is thin (rxThinSource), and fewer than two peers
	// are sources: any new peer is worth one half. y comes up, then x, to
	// the front of the rotation; y asks us, x does not. y is asked first
	// if it has asked us twice (before its Up counts too), as our second
	// source. Once peer 4 is that source, new peers are judged by the walks
	// (a source is asked first: see TestCoreSeeksASecondSource), and y is
	// worth no more than x.
	const x, y = 2, 3
	for _, tc := range []struct {
		name     string
		asks     int
		beforeUp bool
		second   bool // peer 4 has answered: two sources
		want     int  // whom we ask first
	}{
		{"asked twice", 2, false, false, y},
		{"asked twice before its Up", 2, true, false, y},
		{"asked once", 1, false, false, x},
		{"with two sources", 2, false, true, 0}, // want unused: yields compared
	} {
		t.Run(tc.name, func(t *testing.T) {
			pm, core, ids, now := rxThinSource(t)
			now = now.Add(100 * time.Millisecond)
			if tc.second {
				const s = 4
				require.Equal(t, nodeID(s), rxAskedOnUp(t, core, now, s))
				now = now.Add(core.cfg.MinInterval + 50*time.Millisecond)
				core.Receive(now, Envelope{From: nodeID(s), Message: testkit.V2RespAddrs(ids[500:600]...)})
				require.Equal(t, 2, core.sources)
			}
			require.NoError(t, pm.Accepted(nodeID(y), rxAddr(y)))
			ask := func(i int) {
				acts := core.Receive(now.Add(time.Duration(i)*time.Millisecond), Envelope{From: nodeID(y), Message: testkit.V2Req})
				require.Empty(t, acts.Errors)
				require.Equal(t, "v2resp", testkit.Kind(t, acts.Send[0].Message))
			}
			if tc.beforeUp {
				for i := range tc.asks {
					ask(i + 1)
				}
			}
			now = now.Add(10 * time.Millisecond)
			for _, id := range []int{y, x} {
				require.Empty(t, core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(id), Status: PeerStatusUp, Caps: CapV2}).Send, "no request is due yet")
			}
			if !tc.beforeUp {
				for i := range tc.asks {
					ask(i + 1)
				}
			}
			if tc.second {
				yield := func(id int) float64 {
					return core.expectedYield(now, core.peers[nodeID(id)], core.walkedSize())
				}
				require.Positive(t, yield(x))
				require.Equal(t, yield(x), yield(y))
				return
			}
			require.Equal(t, nodeID(tc.want), rxSentTo(t, core.Tick(core.NextWake())))
		})
	}
}

func TestCoreCountsOnlyAnsweredRequestsForTheMutualBonus(t *testing.T) {
	// As in TestCoreAsksANewPeerThatAskedUsFirst, but y's second request
	// comes too soon (a burst of one) and is refused: y has had one
	// request answered, and x is asked first.
	pm, core, _, now := rxThinSource(t)
	core.cfg.RequestBurst = 1
	const x, y = 2, 3
	require.NoError(t, pm.Accepted(nodeID(y), rxAddr(y)))
	now = now.Add(100 * time.Millisecond)
	for _, id := range []int{y, x} {
		require.Empty(t, core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(id), Status: PeerStatusUp, Caps: CapV2}).Send)
	}
	require.Empty(t, core.Receive(now.Add(time.Millisecond), Envelope{From: nodeID(y), Message: testkit.V2Req}).Errors)
	acts := core.Receive(now.Add(2*time.Millisecond), Envelope{From: nodeID(y), Message: testkit.V2Req})
	require.Len(t, acts.Errors, 1)
	require.ErrorIs(t, acts.Errors[0].Err, ErrRequestTooSoon)
	require.Equal(t, nodeID(x), rxSentTo(t, core.Tick(core.NextWake())))
}

func TestCoreGivesTheMutualBonusOncePerConnection(t *testing.T) {
	// y has asked us twice and is asked first, ahead of x (see
	// TestCoreAsksANewPeerThatAskedUsFirst), but never answers. After the
	// timeout, x is asked: a peer that never answers does not keep the
	// bonus (with it, y would be asked again and again).
	pm, core, _, now := rxThinSource(t)
	const x, y = 2, 3
	require.NoError(t, pm.Accepted(nodeID(y), rxAddr(y)))
	now = now.Add(100 * time.Millisecond)
	for _, id := range []int{y, x} {
		require.Empty(t, core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(id), Status: PeerStatusUp, Caps: CapV2}).Send)
	}
	for i := range 2 {
		require.Empty(t, core.Receive(now.Add(time.Duration(i+1)*time.Millisecond), Envelope{From: nodeID(y), Message: testkit.V2Req}).Errors)
	}
	require.Equal(t, nodeID(y), rxSentTo(t, core.Tick(core.NextWake())))
	acts := core.Tick(now.Add(core.cfg.ResponseTimeout + time.Second))
	require.Len(t, acts.Errors, 1)
	require.ErrorIs(t, acts.Errors[0].Err, ErrResponseTimeout)
	if len(acts.Send) == 0 {
		acts = core.Tick(core.NextWake())
	}
	require.Equal(t, nodeID(x), rxSentTo(t, acts))
}

func TestCoreGivesNoMutualBonusToCrowdedInbound(t *testing.T) {
	// Peer 1, our one source so far, has answered. Peer 3 dials us from a
	// public /16 and asks us twice; then peer 4 dials us from another /16,
	// to the front of the rotation. 3 is asked first, for having asked us
	// (mutualAsks), unless peer 2 of its /16 was connected already when it
	// came up: then 3 is crowded, as sybils of one subnet are, and its
	// requests earn it nothing.
	for _, crowded := range []bool{false, true} {
		pm, core, subnet := rxSubnetStart(t)
		now := time.Unix(1_700_000_000, 0)
		require.Equal(t, nodeID(1), rxSentTo(t, core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(1), Status: PeerStatusUp, Caps: CapV2})))
		core.Receive(now.Add(50*time.Millisecond), Envelope{From: nodeID(1), Message: rxFresh(MaxAddresses)(nodeID(1), nil)})
		require.Equal(t, 1, core.sources)
		if crowded {
			require.NoError(t, pm.Accepted(nodeID(2), subnet(2)))
		}
		require.NoError(t, pm.Accepted(nodeID(3), subnet(3)))
		now = now.Add(100 * time.Millisecond)
		require.Empty(t, core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(3), Status: PeerStatusUp, Caps: CapV2}).Send)
		for i := range 2 {
			acts := core.Receive(now.Add(time.Duration(10*(i+1))*time.Millisecond), Envelope{From: nodeID(3), Message: testkit.V2Req})
			require.Empty(t, acts.Errors)
		}
		other, err := NodeAddressFromIP(nodeID(4), netip.AddrFrom4([4]byte{77, 77, 0, 4}), 26656)
		require.NoError(t, err)
		require.NoError(t, pm.Accepted(nodeID(4), other))
		require.Empty(t, core.PeerUpdate(now.Add(30*time.Millisecond), PeerUpdate{NodeID: nodeID(4), Status: PeerStatusUp, Caps: CapV2}).Send)
		want := nodeID(3)
		if crowded {
			want = nodeID(4)
		}
		require.Equal(t, want, rxSentTo(t, core.Tick(core.NextWake())), "crowded %v", crowded)
	}
}

func TestCoreAsksTheWalkNearestAGap(t *testing.T) {
	// A network of 1,000 in our order; we know all of it but one stretch
	// of 100 ranks. a and b have walked 100 entries each, all known to us:
	// a's walk reaches the gap in 3 more answers, b's in 7.
	pm := rxPM(t, PeerManagerOptions{})
	core := rxCore(t, Config{}, pm)
	ids := rxInOrder(pm, 100, 1000)
	rxFill(t, pm, ids[:500]...)
	rxFill(t, pm, ids[600:]...)
	const a, b = 1, 2
	at, sent := rxUpTwo(t, core) // a asked at 0, b at 1 s
	// b answers first, so it is ahead of a in the rotation.
	core.Receive(at(1100*time.Millisecond), Envelope{From: nodeID(b), Message: testkit.V2RespAddrs(ids[800:900]...)})
	core.Receive(at(1200*time.Millisecond), Envelope{From: nodeID(a), Message: testkit.V2RespAddrs(ids[200:300]...)})
	for i := range 3 {
		d := time.Duration(i+1) * time.Minute
		require.Equal(t, nodeID(a), sent(core.Tick(at(d))), "answer %d: the walk nearer the gap is asked", i)
		core.Receive(at(d+100*time.Millisecond), Envelope{From: nodeID(a), Message: testkit.V2RespAddrs(ids[300+100*i : 400+100*i]...)})
	}
	require.Equal(t, 1000, pm.Len())
}

func TestCoreSaturatesWhenNoPeerMayTell(t *testing.T) {
	// Our only peer's walk showed a book of about 2,000 in our order, so
	// our book of 1,000 is far short of the network size estimate. But its
	// lap is done and its answers bring nothing: polling it fast cannot
	// help, so the interval saturates as for a book that lacks nothing:
	// what we miss has not reached our peers yet, and polling them fast
	// would not bring it sooner.
	pm := rxPM(t, PeerManagerOptions{Options: book.Options{MaxPeers: 10_000}})
	core := rxCore(t, Config{}, pm)
	ids := rxInOrder(pm, 100, 2000)
	rxFill(t, pm, ids[:1000]...)
	const a = 1
	now := time.Unix(1_700_000_000, 0)
	acts := core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(a), Status: PeerStatusUp, Caps: CapV2})
	require.Len(t, acts.Send, 1)
	// The last run of its lap: 50 entries we know, dense in our order.
	core.Receive(now.Add(50*time.Millisecond), Envelope{From: nodeID(a), Message: testkit.V2RespAddrs(ids[:50]...)})
	require.Greater(t, core.NetworkSizeEstimate(), 1500, "its walk shows a book well beyond ours")
	for range 12 {
		now = core.NextWake()
		acts := core.Tick(now)
		require.Len(t, acts.Send, 1)
		core.Receive(now.Add(50*time.Millisecond), Envelope{From: nodeID(a), Message: testkit.V2RespAddrs()})
	}
	require.Equal(t, 1000, pm.Len())
	require.Greater(t, core.NetworkSizeEstimate(), 1500, "the estimate still says we miss a third or more")
	require.Equal(t, core.Config().SaturatedInterval, core.Stats().Interval)
}

func TestCoreKeepsItsPaceWhileAWalkHasMoreToShow(t *testing.T) {
	// We hold the whole network of 2,000 as far as anyone can tell (the
	// estimate is our book). Our only peer walks its book for us, and run
	// after run of 100 holds nothing new: the rest of its book is still to
	// come, so its empty runs do not slow the pace past
	// maxSlowdown*MinInterval (what we miss may be in the rest, and the
	// estimate, a lower bound, cannot show a gap of a few entries). Once
	// its lap is done, empty answers are taken for saturation again.
	pm := rxPM(t, PeerManagerOptions{Options: book.Options{MaxPeers: 10_000}})
	core := rxCore(t, Config{}, pm)
	ids := rxInOrder(pm, 100, 2000)
	rxFill(t, pm, ids...)
	const a = 1
	now := time.Unix(1_700_000_000, 0)
	acts := core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(a), Status: PeerStatusUp, Caps: CapV2})
	require.Len(t, acts.Send, 1)
	limit := maxSlowdown * core.Config().MinInterval
	for run := range 12 {
		core.Receive(now.Add(50*time.Millisecond), Envelope{From: nodeID(a), Message: testkit.V2RespAddrs(ids[100*run : 100*run+100]...)})
		require.LessOrEqual(t, core.Stats().Interval, limit, "after run %d of 20", run+1)
		now = core.NextWake()
		require.Len(t, core.Tick(now).Send, 1)
	}
	require.Equal(t, 2000, core.NetworkSizeEstimate())
	// The last run of its lap, then news only, and none comes.
	core.Receive(now.Add(50*time.Millisecond), Envelope{From: nodeID(a), Message: testkit.V2RespAddrs(ids[1200:1250]...)})
	for range 8 {
		now = core.NextWake()
		require.Len(t, core.Tick(now).Send, 1)
		core.Receive(now.Add(50*time.Millisecond), Envelope{From: nodeID(a), Message: testkit.V2RespAddrs()})
	}
	require.Equal(t, core.Config().SaturatedInterval, core.Stats().Interval)
}

func TestCoreSizeEstimatePoolsWalks(t *testing.T) {
	// A network of 1,150 in our order; we know all but its last 150. One
	// walking peer's run of 100 entries we know shows the density of a
	// network of 1,150, but one run is off by a tenth either way: the
	// estimate stays at our book, so that new peers are not asked, one
	// after another, for what a dense run made up (the median of the
	// peers' estimates read about 1,150 here). Runs from four peers, pooled,
	// are evidence enough.
	pm := rxPM(t, PeerManagerOptions{Options: book.Options{MaxPeers: 10_000}})
	core := rxCore(t, Config{}, pm)
	ids := rxInOrder(pm, 100, 1150)
	rxFill(t, pm, ids[:1000]...)
	now := time.Unix(1_700_000_000, 0)
	for i := range 4 {
		who := rxSentTo(t, core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(i + 1), Status: PeerStatusUp, Caps: CapV2}))
		core.Receive(now.Add(50*time.Millisecond), Envelope{From: who, Message: testkit.V2RespAddrs(ids[200*i : 200*i+100]...)})
		if i == 0 {
			require.Equal(t, 1000, core.NetworkSizeEstimate(), "one run of 100")
		}
		now = now.Add(time.Minute)
	}
	require.Equal(t, 1000, pm.Len())
	require.Greater(t, core.NetworkSizeEstimate(), 1000, "four runs of 100")
	require.LessOrEqual(t, core.NetworkSizeEstimate(), 1150, "a lower bound")
}

// rxFillBut adds to pm's book the addresses of ids but those whose index
// miss selects, and returns those, in order.
func rxFillBut(t *testing.T, pm *PeerManager, ids []NodeAddress, miss func(int) bool) []NodeAddress {
	t.Helper()
	var missing []NodeAddress
	for i, a := range ids {
		if miss(i) {
			missing = append(missing, a)
		} else {
			rxFill(t, pm, a)
		}
	}
	return missing
}

func TestCoreSizeEstimateCountsWhatAWalkLeftOutForUs(t *testing.T) {
	// A network of 2,000 in our order; we know every other entry. A
	// walking peer has had our book from us, so its walk leaves it out:
	// its run carries only what we miss, 100 entries over a stretch that
	// holds 200 of the network. Its own entries show a network of about
	// 1,000, less than our book; with what we hold in the same stretch,
	// the run shows the network.
	pm := rxPM(t, PeerManagerOptions{Options: book.Options{MaxPeers: 10_000}})
	core := rxCore(t, Config{}, pm)
	missing := rxFillBut(t, pm, rxInOrder(pm, 100, 2000), func(i int) bool { return i%2 == 1 })
	now := time.Unix(1_700_000_000, 0)
	who := rxSentTo(t, core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(1), Status: PeerStatusUp, Caps: CapV2}))
	core.Receive(now.Add(50*time.Millisecond), Envelope{From: who, Message: testkit.V2RespAddrs(missing[:100]...)})
	require.Equal(t, 1100, pm.Len(), "the run was news")
	// The stretch held about 200 entries of both books: two standard
	// errors of the run's 99 gaps below 2,000 is 1,600.
	require.Greater(t, core.NetworkSizeEstimate(), 1400)
	require.LessOrEqual(t, core.NetworkSizeEstimate(), 2000, "a lower bound")
}

func TestCoreAsksADonePeerForWhatTheNetworkLearntLast(t *testing.T) {
	// A network of 1,000 in our order; we know 900, and miss every tenth.
	// Peer d walked its lap for us: its run brought 10 of what we missed,
	// then its last answer, the end of the lap, nothing new; peer e sent a
	// sample of what we know. A minute on, a
	// new peer s connects and comes first in the rotation. What we miss,
	// the network is still spreading, and d has had a minute to learn it:
	// d is asked, not s, whose first run of 100 would be, like d's first,
	// nearly all known to us.
	pm := rxPM(t, PeerManagerOptions{Options: book.Options{MaxPeers: 10_000}})
	core := rxCore(t, Config{}, pm)
	ids := rxInOrder(pm, 100, 1000)
	missing := rxFillBut(t, pm, ids, func(i int) bool { return i%10 == 5 })
	const d, s, e = 1, 2, 3
	now := time.Unix(1_700_000_000, 0)
	require.Equal(t, nodeID(d), rxSentTo(t, core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(d), Status: PeerStatusUp, Caps: CapV2})))
	core.Receive(now.Add(50*time.Millisecond), Envelope{From: nodeID(d), Message: testkit.V2RespAddrs(ids[:100]...)})
	require.Equal(t, 910, pm.Len())
	// A second source (see minSources), e, sends a sample of what we know.
	now = now.Add(100 * time.Millisecond)
	rxAskedSoon(t, core, now, e)
	var known []NodeAddress
	for i := 299; i >= 200; i-- {
		if i%10 != 5 {
			known = append(known, ids[i])
		}
	}
	core.Receive(now.Add(core.cfg.MinInterval+50*time.Millisecond), Envelope{From: nodeID(e), Message: testkit.V2RespAddrs(known...)})
	require.Equal(t, 910, pm.Len())
	now = core.NextWake()
	require.Equal(t, nodeID(d), rxSentTo(t, core.Tick(now)))
	core.Receive(now.Add(50*time.Millisecond), Envelope{From: nodeID(d), Message: testkit.V2RespAddrs(ids[100:105]...)})
	now = now.Add(time.Minute)
	require.Equal(t, nodeID(d), rxSentTo(t, core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(s), Status: PeerStatusUp, Caps: CapV2})), "the peer that has had time to learn what we miss")
	core.Receive(now.Add(50*time.Millisecond), Envelope{From: nodeID(d), Message: testkit.V2RespAddrs(missing[10:40]...)})
	require.Equal(t, 940, pm.Len())
}

// rxHalfKnownSample returns a Core whose book holds the first 50 of 300
// addresses in our order (ids), and a sample answer of the first 100 of
// them, out of order (half new).
func rxHalfKnownSample(t *testing.T) (*PeerManager, *Core, []NodeAddress, []NodeAddress) {
	t.Helper()
	pm := rxPM(t, PeerManagerOptions{})
	// A MinInterval shorter than the peers' spacing: a peer that comes up
	// is asked (see rxAskedSoon) before the peer asked last may be again.
	core := rxCore(t, Config{MinInterval: 40 * time.Millisecond}, pm)
	ids := rxInOrder(pm, 100, 300)
	rxFill(t, pm, ids[:50]...)
	sample := slices.Clone(ids[:100])
	slices.Reverse(sample) // not in our order: a sample, not a walk
	return pm, core, ids, sample
}

func TestCoreWeighsAShortAnswerByItsSize(t *testing.T) {
	// a's lap is done: its last answer, 10 entries, all new, was all it had
	// learned since. b samples: half of its 100 were new. Asking a again
	// is likelier to bring a few addresses than b is to bring 50, and a
	// request costs a round either way.
	pm, core, ids, sample := rxHalfKnownSample(t)
	const a, b = 1, 2
	at, sent := rxUpTwo(t, core) // a asked at 0, b at 1 s
	core.Receive(at(1100*time.Millisecond), Envelope{From: nodeID(a), Message: testkit.V2RespAddrs(ids[200:210]...)})
	core.Receive(at(1200*time.Millisecond), Envelope{From: nodeID(b), Message: testkit.V2RespAddrs(sample...)})
	require.Equal(t, 110, pm.Len())
	require.Equal(t, nodeID(b), sent(core.Tick(at(5*time.Second))))
}

func TestCoreWeighsNewsByWhatOfItStays(t *testing.T) {
	// As in TestCoreWeighsAShortAnswerByItsSize (we dialled a and b), but
	// nine of the addresses b told us proved junk when dialled (nobody there; dropped at their
	// second failed dial) and none proved live: its news is worth a tenth
	// of its share (book.NewsLasts), 0.05, less than a's 0.1, and a is
	// asked.
	pm, core, ids, sample := rxHalfKnownSample(t)
	const a, b = 1, 2
	for _, id := range []int{a, b} {
		require.NoError(t, pm.Dialed(rxAddr(id)))
	}
	at, sent := rxUpTwo(t, core)
	core.Receive(at(1100*time.Millisecond), Envelope{From: nodeID(a), Message: testkit.V2RespAddrs(ids[200:210]...)})
	core.Receive(at(1200*time.Millisecond), Envelope{From: nodeID(b), Message: testkit.V2RespAddrs(sample...)})
	for _, x := range ids[50:59] {
		pm.Book.DialFailed(at(2*time.Second), x)
		pm.Book.DialFailed(at(3*time.Second), x)
	}
	require.Equal(t, 0.1, pm.NewsLasts(nodeID(b)))
	require.Equal(t, 1.0, pm.NewsLasts(nodeID(a)))
	require.Equal(t, nodeID(a), sent(core.Tick(at(5*time.Second))))
}

// rxDonePeerAndSampler returns a Core (see rxHalfKnownSample) whose peer 1
// has walked its lap: 10 new entries, then, asked again 20 s later, news
// new entries; and whose peer 2 then sent a sample, half of its 100 new.
// at(d) is the time d into the test.
func rxDonePeerAndSampler(t *testing.T, news int) (*Core, func(time.Duration) time.Time) {
	t.Helper()
	pm, core, ids, sample := rxHalfKnownSample(t)
	at := func(d time.Duration) time.Time { return rxBase.Add(d) }
	require.Equal(t, nodeID(1), rxSentTo(t, core.PeerUpdate(at(0), PeerUpdate{NodeID: nodeID(1), Status: PeerStatusUp, Caps: CapV2})))
	core.Receive(at(100*time.Millisecond), Envelope{From: nodeID(1), Message: testkit.V2RespAddrs(ids[200:210]...)})
	require.Equal(t, nodeID(1), rxSentTo(t, core.Tick(at(20*time.Second))))
	core.Receive(at(20*time.Second+100*time.Millisecond), Envelope{From: nodeID(1), Message: testkit.V2RespAddrs(ids[210 : 210+news]...)})
	rxAskedSoon(t, core, at(20*time.Second+200*time.Millisecond), 2)
	core.Receive(at(20*time.Second+300*time.Millisecond), Envelope{From: nodeID(2), Message: testkit.V2RespAddrs(sample...)})
	require.Equal(t, 110+news, pm.Len())
	return core, at
}

func TestCoreWeighsALapDonePeerByItsNewsRate(t *testing.T) {
	// a's lap is done and its news came at 0.5 a second lately (10 in the
	// 20 s between our requests). b samples: half of its 100 were new. A
	// second after we last asked a, a would bring about one address and b
	// fifty: b is asked. Five minutes later a has gathered a full answer
	// of news: a is asked.
	for _, tc := range []struct {
		after time.Duration
		want  NodeID
	}{{time.Second, nodeID(2)}, {5 * time.Minute, nodeID(1)}} {
		core, at := rxDonePeerAndSampler(t, 10)
		require.Equal(t, tc.want, rxSentTo(t, core.Tick(at(20*time.Second+tc.after))), "%s after", tc.after)
	}
}

func TestCoreDoesNotTakeASamplersShortAnswerForNews(t *testing.T) {
	// a samples (a CometBFT or Tendermint peer with a small book): two
	// short answers, out of our order, 20 s apart. However long since we
	// asked it, its next answer is a sample of about 40 again, not news
	// gathered over time: b, whose answer was 100 with half new, is asked.
	pm, core, ids, sample := rxHalfKnownSample(t)
	at := func(d time.Duration) time.Time { return rxBase.Add(d) }
	short := func(from int) []NodeAddress {
		s := slices.Clone(ids[from : from+40])
		slices.Reverse(s)
		return s
	}
	require.Equal(t, nodeID(1), rxSentTo(t, core.PeerUpdate(at(0), PeerUpdate{NodeID: nodeID(1), Status: PeerStatusUp, Caps: CapV2})))
	core.Receive(at(100*time.Millisecond), Envelope{From: nodeID(1), Message: testkit.V2RespAddrs(short(100)...)})
	require.Equal(t, nodeID(1), rxSentTo(t, core.Tick(at(20*time.Second))))
	core.Receive(at(20*time.Second+100*time.Millisecond), Envelope{From: nodeID(1), Message: testkit.V2RespAddrs(short(140)...)})
	rxAskedSoon(t, core, at(20*time.Second+200*time.Millisecond), 2)
	core.Receive(at(20*time.Second+300*time.Millisecond), Envelope{From: nodeID(2), Message: testkit.V2RespAddrs(sample...)})
	require.Equal(t, 180, pm.Len())
	require.Equal(t, nodeID(2), rxSentTo(t, core.Tick(at(20*time.Second+5*time.Minute))))
}

func TestCoreAsksAPeerThatHadOurBookWhenSourcesStall(t *testing.T) {
	// As in TestCoreLooksPastSourcesAfterThreeEmptyAnswers: two answers in
	// a row brought nothing (core.idle is 2), and the size estimate says we
	// miss a third of the network. Of the new peers x and y (x ahead in the
	// rotation), y has asked us for our whole book: its answer leaves out
	// all we told it, so it holds only what we miss (toldBonus), and y is
	// asked at once. Not while the last answer brought news (idle set to 0:
	// y is asked after the next empty answer), nor while the estimate says
	// we miss less than stallMiss (a seventh). After a third empty answer,
	// when any new peer is worth what we miss, y is asked before x for the
	// bonus. If y has had a third of our book only, it is worth a third of
	// what we miss, less than our sources' news: a source is asked, then y,
	// for the bonus. If y last asked us longer ago than toldLately (it
	// likely knows just what we do), never asked, asked once only (like a
	// node that has just started), dialled us from a crowded subnet, or was
	// asked by us already and has not answered (as for mutualBonus), a
	// source is asked, then x, the first in rotation.
	const x, y = 3, 4
	const source, stop = 0, -1 // a or b; no further request checked
	for _, tc := range []struct {
		name        string
		asks        int
		ago         time.Duration // since y's last request
		peer        func(*corePeer)
		idle        int  // answers in a row that brought nothing
		small       bool // the size estimate says we miss a seventh of the network
		first, then int  // whom we ask, and after one more empty answer
	}{
		{"had our book, asked lately", 7, 0, nil, 2, false, y, stop},
		{"had our book, asked lately, news", 7, 0, nil, 0, false, source, y},
		{"had our book, asked lately, we miss little", 7, 0, nil, 2, true, source, stop},
		{"had our book, three empty answers", 7, 0, nil, stallAnswers + 1, false, y, stop},
		{"had a third of our book", 2, 0, nil, 2, false, source, y},
		{"had our book, asked long ago", 7, toldLately + time.Second, nil, 2, false, source, x},
		{"never asked", 0, 0, nil, 2, false, source, x},
		{"asked once", 1, 0, nil, 2, false, source, x},
		{"crowded", 7, 0, func(p *corePeer) { p.crowded = true }, 2, false, source, x},
		{"asked by us, no answer", 7, 0, func(p *corePeer) { p.lastSent = p.servedAt.Add(-time.Minute) }, 2, false, source, x},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pm, core, a, b, run, now := rxSourcesOfOurBook(t)
			for _, id := range []int{y, x} {
				require.NoError(t, pm.Accepted(nodeID(id), rxAddr(id)))
				acts := core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(id), Status: PeerStatusUp, Caps: CapV2})
				require.Empty(t, acts.Send, "no request is due yet")
			}
			for i := range tc.asks {
				acts := core.Receive(now.Add(time.Duration(i+1)*core.cfg.MinReceiveInterval), Envelope{From: nodeID(y), Message: testkit.V2Req})
				require.Empty(t, acts.Errors)
				require.Len(t, acts.Send, 1)
			}
			switch tc.asks {
			case 7:
				require.Equal(t, 1.0, pm.ToldShare(nodeID(y)), "y has had our whole book")
			case 2:
				require.InDelta(t, 1.0/3, pm.ToldShare(nodeID(y)), 0.05, "y has had 200 of our 602")
			}
			core.peers[nodeID(y)].servedAt = core.peers[nodeID(y)].servedAt.Add(-tc.ago)
			if tc.peer != nil {
				tc.peer(core.peers[nodeID(y)])
			}
			core.idle = tc.idle
			if tc.small {
				core.estimate = sizeEstimator{sumCM: 700 * 1e4, sumR: 1e4 - 1}
				require.InDelta(t, 1-602.0/700, core.missingAtMost(core.walkedSize()), 1e-9, "of 700 we know 602: x and y too")
			} else {
				require.InDelta(t, 1.0/3, core.missingAtMost(core.walkedSize()), 1e-9)
			}
			// Asked 1.5 s after b answered, once y's requests are in: the
			// floor for a's and b's news (newsFloor) is then about a sixth
			// of an answer, more than a third of what we miss (a ninth),
			// less than all of it, and still well below it at the next
			// request, 1.6 s later.
			now = now.Add(1500 * time.Millisecond)
			require.True(t, core.NextWake().Before(now))
			to := rxSentTo(t, core.Tick(now))
			if tc.first != source {
				require.Equal(t, nodeID(tc.first), to, "%d empty answers", core.idle)
				return
			}
			require.Contains(t, []NodeID{nodeID(a), nodeID(b)}, to, "%d empty answers", core.idle)
			if tc.then == stop {
				return
			}
			core.Receive(now.Add(50*time.Millisecond), Envelope{From: to, Message: testkit.V2RespAddrs(run(to)...)})
			require.Equal(t, tc.idle+1, core.idle)
			require.Equal(t, nodeID(tc.then), rxSentTo(t, core.Tick(core.NextWake())), "%d empty answers", core.idle)
		})
	}
}

func TestCoreAsksAPeerWeDialledWhenAnswersStall(t *testing.T) {
	// As in TestCoreAsksAPeerThatHadOurBookWhenSourcesStall, with the size
	// estimate saying we miss a seventh of the network (less than
	// stallMiss: a new peer is worth nothing by it). Peer x came up after
	// our sources a and b answered. Once answers keep bringing nothing
	// (past stallAnswers), x is asked before a and b if we dialled it:
	// books that copied each other read the same size from each other's
	// walks. Not before the stall, and not if x dialled us.
	const x = 3
	for _, tc := range []struct {
		name    string
		dialled bool
		idle    int
		x       bool // x is asked, not a source
	}{
		{"dialled, stalled", true, stallAnswers + 1, true},
		{"dialled, not stalled", true, stallAnswers, false},
		{"dialled us, stalled", false, stallAnswers + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pm, core, a, b, _, now := rxSourcesOfOurBook(t)
			if tc.dialled {
				require.NoError(t, pm.Dialed(rxAddr(x)))
			} else {
				require.NoError(t, pm.Accepted(nodeID(x), rxAddr(x)))
			}
			core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(x), Status: PeerStatusUp, Caps: CapV2})
			core.estimate = sizeEstimator{sumCM: 700 * 1e4, sumR: 1e4 - 1}
			require.Less(t, core.missingAtMost(core.walkedSize()), stallMiss)
			core.idle = tc.idle
			now = now.Add(1500 * time.Millisecond)
			require.True(t, core.NextWake().Before(now))
			to := rxSentTo(t, core.Tick(now))
			if tc.x {
				require.Equal(t, nodeID(x), to)
				return
			}
			require.Contains(t, []NodeID{nodeID(a), nodeID(b)}, to)
		})
	}
}

func TestCoreAsksAPeerWeDialledBeforeOneThatDialledUsWorthTheSame(t *testing.T) {
	// z and w, our first peers (we dialled both), are asked; some of them
	// answer with nothing. Then x (we dialled it) and y (it dialled us)
	// come up: y, the newest, stands first in rotation. Neither has
	// answered and nothing shows the network's size, so both are worth
	// the same, and y is asked first: news often comes through the peers
	// that dial us. But once more than idleAnswers answers from peers
	// that dialled us brought nothing new, or while fewer than
	// minSources peers we dialled have answered (one book is not the
	// network), x is asked first: attackers dialling in from many
	// groups, each the newest peer in turn, would otherwise stand before
	// the peers our book chose for ever.
	const z, w, x, y = 1, 4, 2, 3
	for _, tc := range []struct {
		answered    int // of z and w
		inboundIdle int
		want        NodeID
	}{
		{2, 0, nodeID(y)}, {2, idleAnswers, nodeID(y)}, {2, idleAnswers + 1, nodeID(x)},
		{1, 0, nodeID(x)}, {0, 0, nodeID(x)},
	} {
		t.Run(fmt.Sprint(tc.answered, tc.inboundIdle), func(t *testing.T) {
			pm := rxPM(t, PeerManagerOptions{})
			core := rxCore(t, Config{}, pm)
			now := time.Unix(1_700_000_000, 0)
			for i, id := range []int{z, w} {
				require.NoError(t, pm.Dialed(rxAddr(id)))
				acts := core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(id), Status: PeerStatusUp, Caps: CapV2})
				if i > 0 {
					now = core.NextWake()
					acts = core.Tick(now)
				}
				require.Equal(t, nodeID(id), rxSentTo(t, acts))
				now = now.Add(10 * time.Millisecond)
				if i < tc.answered {
					core.Receive(now, Envelope{From: nodeID(id), Message: testkit.V2RespAddrs()})
				}
			}
			require.NoError(t, pm.Dialed(rxAddr(x)))
			require.Empty(t, core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(x), Status: PeerStatusUp, Caps: CapV2}).Send)
			require.NoError(t, pm.Accepted(nodeID(y), rxAddr(y)))
			require.Empty(t, core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(y), Status: PeerStatusUp, Caps: CapV2}).Send)
			require.Equal(t, nodeID(y), core.rotation.Front().Value.(*corePeer).id)
			walked := core.walkedSize()
			require.Equal(t, core.expectedYield(now, core.peers[nodeID(x)], walked), core.expectedYield(now, core.peers[nodeID(y)], walked))
			core.inboundIdle = tc.inboundIdle
			require.Equal(t, tc.want, rxSentTo(t, core.Tick(core.NextWake())))
		})
	}
}

func TestCoreAsksAPeerWeDialledOnArrivalInASmallNetwork(t *testing.T) {
	// Our first peer a (we dialled it) is asked and answers with some
	// addresses. Then b comes up. While the network we know of is smaller
	// than our outbound slots (10, b included once we dial it), b, if we
	// dialled it, is asked at once, before the next paced request is due,
	// and the pace does not move until b answers: we dial such a network
	// node by node, and asking each as it comes up costs a request per
	// connection. Not a peer that dialled us, not before a source has
	// answered (nothing shows the network's size), not once our book
	// holds as many nodes as we have outbound slots, and not under
	// PolicyTendermint. A V1 peer is asked so too, and b's request times
	// out like any other.
	const a, b = 1, 2
	for _, tc := range []struct {
		name     string
		policy   Policy
		answer   int // addresses in a's answer, if it answers
		answered bool
		dialled  bool
		caps     PeerCaps // b's
		asked    bool
	}{
		{"book of 9", PolicyAdaptive, 7, true, true, CapV2, true},
		{"V1 peer", PolicyAdaptive, 7, true, true, 0, true},
		{"dialled us", PolicyAdaptive, 7, true, false, CapV2, false},
		{"no source yet", PolicyAdaptive, 7, false, true, CapV2, false},
		{"book of 10", PolicyAdaptive, 8, true, true, CapV2, false},
		{"PolicyTendermint", PolicyTendermint, 7, true, true, CapV2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pm := rxPM(t, PeerManagerOptions{Options: book.Options{MaxOutbound: 10}})
			core := rxCore(t, Config{Policy: tc.policy}, pm)
			now := time.Unix(1_700_000_000, 0)
			require.NoError(t, pm.Dialed(rxAddr(a)))
			require.Equal(t, nodeID(a), rxSentTo(t, core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(a), Status: PeerStatusUp, Caps: CapV2})))
			now = now.Add(10 * time.Millisecond)
			if tc.answered {
				core.Receive(now, Envelope{From: nodeID(a), Message: testkit.V2RespAddrs(rxInOrder(pm, 10, tc.answer)...)})
			}
			next, last := core.nextRequest, core.lastRequest
			require.True(t, next.After(now))
			if tc.dialled {
				require.NoError(t, pm.Dialed(rxAddr(b)))
			} else {
				require.NoError(t, pm.Accepted(nodeID(b), rxAddr(b)))
			}
			if tc.answered {
				require.Equal(t, 2+tc.answer, pm.Len(), "a, its answer and b")
			}
			acts := core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(b), Status: PeerStatusUp, Caps: tc.caps})
			if !tc.asked {
				require.Empty(t, acts.Send)
				return
			}
			require.Equal(t, nodeID(b), rxSentTo(t, acts))
			require.Equal(t, next, core.nextRequest)
			require.Equal(t, last, core.lastRequest)
			// A second Up while the request is pending sends nothing.
			require.Empty(t, core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(b), Status: PeerStatusUp, Caps: tc.caps}).Send)
			// Unanswered, it times out like any request.
			acts = core.Tick(now.Add(core.cfg.ResponseTimeout))
			require.Len(t, acts.Errors, 1)
			require.Equal(t, nodeID(b), acts.Errors[0].NodeID)
			require.ErrorIs(t, acts.Errors[0].Err, ErrResponseTimeout)
		})
	}
}

func TestCoreCountsEmptyAnswersOfPeersThatDialledUs(t *testing.T) {
	// rxSourcesOfOurBook's a and b answered with nothing new: counted
	// once they dialled us, not while we count them dialled by us; and an
	// answer with news starts the count again.
	pm, core, a, b, run, now := rxSourcesOfOurBook(t)
	require.Zero(t, core.inboundIdle)
	for _, id := range []int{a, b} {
		require.NoError(t, pm.Accepted(nodeID(id), rxAddr(id)))
	}
	for range 2 {
		now = core.NextWake()
		to := rxSentTo(t, core.Tick(now))
		require.Contains(t, []NodeID{nodeID(a), nodeID(b)}, to)
		core.Receive(now.Add(50*time.Millisecond), Envelope{From: to, Message: testkit.V2RespAddrs(run(to)...)})
	}
	require.Equal(t, 2, core.inboundIdle)
	now = core.NextWake()
	to := rxSentTo(t, core.Tick(now))
	core.Receive(now.Add(50*time.Millisecond), Envelope{From: to, Message: testkit.V2RespAddrs(rxAddr(5000))})
	require.Zero(t, core.inboundIdle)
}

// rxTwoDialledInAStall: as in rxSourcesOfOurBook, after a and b answered
// (peers that dialled us if sourcesDialledUs), x and z, two peers we
// dialled, come up; the size estimate says we miss a seventh of the
// network, answers have stalled (past stallAnswers), and the next request
// is due at now.
func rxTwoDialledInAStall(t *testing.T, sourcesDialledUs bool) (core *Core, a, b int, run func(NodeID) []NodeAddress, now time.Time, x, z NodeID) {
	t.Helper()
	pm, core, a, b, run, now := rxSourcesOfOurBook(t)
	if sourcesDialledUs {
		for _, id := range []int{a, b} {
			require.NoError(t, pm.Accepted(nodeID(id), rxAddr(id)))
		}
	}
	for _, id := range []int{3, 4} {
		require.NoError(t, pm.Dialed(rxAddr(id)))
		core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(id), Status: PeerStatusUp, Caps: CapV2})
	}
	core.estimate = sizeEstimator{sumCM: 700 * 1e4, sumR: 1e4 - 1}
	core.idle = stallAnswers + 1
	return core, a, b, run, now.Add(1500 * time.Millisecond), nodeID(3), nodeID(4)
}

func TestCoreAsksOnePeerWeDialledPerStall(t *testing.T) {
	// As in TestCoreAsksAPeerWeDialledWhenAnswersStall, with two peers we
	// dialled, x and z, after a and b answered. In a stall one of them is
	// asked first; when it brings nothing either, the stall is real: the
	// other is not put first, and once our sources may have news (a
	// minute on) they are asked before it.
	core, a, b, run, now, x, z := rxTwoDialledInAStall(t, false)
	first := rxSentTo(t, core.Tick(now))
	require.Contains(t, []NodeID{x, z}, first)
	// It answers with a run of our own book: nothing new.
	core.Receive(now.Add(50*time.Millisecond), Envelope{From: first, Message: testkit.V2RespAddrs(run(nodeID(a))...)})
	require.Equal(t, stallAnswers+2, core.idle)
	// The stall rule puts no other before the rest: the other is worth
	// what the estimate says we miss, as any peer we dialled in a stall,
	// and a and b the news they may have gathered.
	require.True(t, core.stallTried)
	require.Nil(t, core.stallBreaker(now.Add(time.Minute)))
	require.Contains(t, []NodeID{nodeID(a), nodeID(b)}, rxSentTo(t, core.Tick(now.Add(time.Minute))))
}

func TestCoreValuesAPeerWeDialledAtWhatWeMayMissInAStall(t *testing.T) {
	// Our sources a and b hold just what we hold (rxSourcesOfOurBook) and
	// answers have stalled (past stallAnswers); the size estimate says we
	// miss about a seventh of the network, less than stallMiss. So y, which
	// dialled us and never answered, is worth nothing: the estimate reads
	// that high when we miss nothing, and attackers dial in without end.
	// But x, which we dialled and never asked, is worth that share: our
	// book chose it, and its book is the second opinion a stall needs
	// however little the estimate says we miss (a node whose sources had
	// walked past the nodes the network learnt last asked nobody new for
	// minutes).
	pm, core, _, _, _, now := rxSourcesOfOurBook(t)
	const x, y = 3, 4
	require.NoError(t, pm.Dialed(rxAddr(x)))
	core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(x), Status: PeerStatusUp, Caps: CapV2})
	require.NoError(t, pm.Accepted(nodeID(y), rxAddr(y)))
	core.PeerUpdate(now, PeerUpdate{NodeID: nodeID(y), Status: PeerStatusUp, Caps: CapV2})
	core.estimate = sizeEstimator{sumCM: 700 * 1e4, sumR: 1e4 - 1}
	walked := core.walkedSize()
	miss := core.missingAtMost(walked)
	require.Greater(t, miss, 0.1)
	require.Less(t, miss, stallMiss)
	for _, tc := range []struct {
		idle int
		x    float64
	}{{stallAnswers, 0}, {stallAnswers + 1, miss}} {
		core.idle = tc.idle
		require.Equal(t, tc.x, core.expectedYield(now, core.peers[nodeID(x)], walked), "idle %d", tc.idle)
		require.Zero(t, core.expectedYield(now, core.peers[nodeID(y)], walked), "idle %d", tc.idle)
	}
}

func TestCoreHearsAPeerWeDialledBeforeSaturation(t *testing.T) {
	// As in TestCoreAsksOnePeerWeDialledPerStall, but our sources a and b
	// dialled us, and the peer we dialled that the stall asked first (x
	// or z) goes down before it answers. Every answer came from peers that
	// dialled us (attackers, say, showing us their own few addresses
	// again and again): the network they show is theirs. The floors for
	// news from a and b are whole (newsFloorRamp has passed), and worth
	// more than the other peer we dialled, which is worth what we may
	// miss (see expectedYield): they are asked first. But when a answers
	// with nothing new again, the wait stays MinInterval and the other
	// peer we dialled is asked before a or b.
	core, a, b, run, now, x, z := rxTwoDialledInAStall(t, true)
	first, other := x, z
	if rxSentTo(t, core.Tick(now)) == other {
		first, other = other, first
	}
	now = now.Add(10 * time.Millisecond)
	core.PeerUpdate(now, PeerUpdate{NodeID: first, Status: PeerStatusDown})
	now = now.Add(newsFloorRamp)
	for core.peers[nodeID(a)].pending == false {
		if w := core.NextWake(); w.After(now) {
			now = w
		}
		require.Contains(t, []NodeID{nodeID(a), nodeID(b)}, rxSentTo(t, core.Tick(now)))
		if core.peers[nodeID(b)].pending {
			core.Receive(now.Add(50*time.Millisecond), Envelope{From: nodeID(b), Message: testkit.V2RespAddrs(run(nodeID(b))...)})
		}
	}
	core.Receive(now.Add(50*time.Millisecond), Envelope{From: nodeID(a), Message: testkit.V2RespAddrs(run(nodeID(a))...)})
	require.Greater(t, core.idle, idleAnswers)
	require.Equal(t, core.cfg.MinInterval, core.interval)
	require.Equal(t, other, rxSentTo(t, core.Tick(core.NextWake())))
}

func TestCoreExpectsNoMoreNewsThanADonePeerGathers(t *testing.T) {
	// As in TestCoreWeighsALapDonePeerByItsNewsRate, but a's news came at
	// 0.1 a second (2 in 20 s); b samples, half of its 100 new. Now the
	// size estimate says we miss a third of the network, and the floor for
	// a's news (newsFloor), 8 times that ramped over newsFloorRamp, is 0.89
	// of an answer 10 s after we asked a: more than b's half. But at its
	// pace a has about one address to send, and newsRateSlack times that
	// is 0.04 of an answer: b is asked. Once newsFloorRamp has passed since
	// we asked a, the floor is whole again, and a is asked.
	for _, tc := range []struct {
		after time.Duration
		want  NodeID
	}{{10 * time.Second, nodeID(2)}, {newsFloorRamp + time.Second, nodeID(1)}} {
		t.Run(tc.after.String(), func(t *testing.T) {
			core, at := rxDonePeerAndSampler(t, 2)
			core.estimate = sizeEstimator{sumCM: 168 * 1e4, sumR: 1e4 - 1}
			require.InDelta(t, 1.0/3, core.missingAtMost(core.walkedSize()), 1e-9)
			require.Equal(t, tc.want, rxSentTo(t, core.Tick(at(20*time.Second+tc.after))), "%s after", tc.after)
		})
	}
}
