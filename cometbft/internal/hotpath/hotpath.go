// Package hotpath holds the hot paths of SPEC section 8, pex beside
// CometBFT v0.38's address book on the same bytes: handling one full
// response (decode, validate, add 100 addresses), serving one request
// from a book of 100,000, and the memory a stored address costs. The
// adapter's benchmarks and cometbft/cmd/pexhot (which prints the ratios
// of one run) run them.
//
// pex is driven as its Reactor drives it: the decision core's Receive,
// under a lock standing for the PeerManager's, on a book whose sources
// are connected peers that were asked (Tick) before they answer.
// CometBFT is driven as its switch and PEX reactor drive its book:
// gogoproto decoding into tmp2p.Message, NetAddressesFromProto, then
// AddAddress of each entry with the sender's address as source.
package hotpath

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	cmtp2p "github.com/cometbft/cometbft/p2p"
	cmtpex "github.com/cometbft/cometbft/p2p/pex"
	tmp2p "github.com/cometbft/cometbft/proto/tendermint/p2p"
	"github.com/stretchr/testify/require"

	"github.com/pexnet/pex"
	"github.com/pexnet/pex/internal/book"
	"github.com/pexnet/pex/internal/event"
	"github.com/pexnet/pex/internal/poller"
)

const (
	PerResponse   = pex.MaxAddresses // entries in a full response
	Pool          = 200              // responses per book: it grows to 20,000
	Sources       = 50               // connected peers that answer, each in a /16 of its own
	ServeBook     = 100_000          // addresses in the book that serves
	hotRequesters = 50               // connected peers that ask
	hotPort       = 26656
)

var hotNow = time.Unix(1_700_000_000, 0)

// hotID is the node ID of the k-th address of the benchmarks.
func hotID(k int) string { return fmt.Sprintf("%040x", 1<<40+k) }

// hotIP is the k-th address's IP: consecutive addresses in different
// /16s, as a sample of a real network is (one subnet's answer is a
// sybil's, and both books keep little of it).
func hotIP(k int) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(11 + k%100), byte(k / 100), byte(k / 25600), 1})
}

func hotSourceID(s int) string { return fmt.Sprintf("%040x", 2<<40+s) }

func hotSourceIP(s int) netip.Addr { return netip.AddrFrom4([4]byte{150, byte(s), 0, 1}) }

func hotRequesterID(j int) string { return fmt.Sprintf("%040x", 3<<40+j) }

func hotRequesterIP(j int) netip.Addr { return netip.AddrFrom4([4]byte{160, byte(j), 0, 1}) }

// hotResponses returns Pool encoded V1 responses (CometBFT's
// tmp2p.PexAddrs, encoded by CometBFT's own types) of PerResponse
// distinct addresses each.
func hotResponses(tb testing.TB) [][]byte {
	out := make([][]byte, Pool)
	k := 0
	for i := range out {
		addrs := make([]tmp2p.NetAddress, PerResponse)
		for j := range addrs {
			k++
			addrs[j] = tmp2p.NetAddress{ID: hotID(k), IP: hotIP(k).String(), Port: hotPort}
		}
		m := tmp2p.Message{Sum: &tmp2p.Message_PexAddrs{PexAddrs: &tmp2p.PexAddrs{Addrs: addrs}}}
		b, err := m.Marshal()
		require.NoError(tb, err)
		out[i] = b
	}
	// The bytes are a V1 response to pex too, every entry valid.
	msg, err := pex.DecodeMessage(out[0])
	require.NoError(tb, err)
	require.Equal(tb, pex.ResponseV1, msg.Kind)
	require.Len(tb, msg.Addresses, PerResponse)
	return out
}

var (
	hotMsgsOnce sync.Once
	hotMsgs     [][]byte
)

func Messages(tb testing.TB) [][]byte {
	hotMsgsOnce.Do(func() { hotMsgs = hotResponses(tb) })
	return hotMsgs
}

// pexNode is a pex book and decision core, locked as a PeerManager locks
// them.
type pexNode struct {
	mu   sync.Mutex
	bk   *book.Book
	core *poller.Core
	now  time.Time
}

func newPexNode(tb testing.TB, maxPeers int) *pexNode {
	bk, err := book.New(pex.NodeID(fmt.Sprintf("%040x", 1)), book.Options{
		MaxPeers:     maxPeers,
		MaxConnected: 2 * (Sources + hotRequesters),
		MaxOutbound:  10,
		Rand:         rand.New(rand.NewPCG(1, 2)),
	})
	require.NoError(tb, err)
	core, err := poller.New(poller.Config{}, bk)
	require.NoError(tb, err)
	return &pexNode{bk: bk, core: core, now: hotNow}
}

// connect brings up an inbound CometBFT peer (no V2) that announced ip
// and connected from it, as the adapter reports one (AcceptedFrom with
// the socket's remote address).
func (n *pexNode) connect(tb testing.TB, id string, ip netip.Addr) {
	a, err := pex.NodeAddressFromIP(pex.NodeID(id), ip, hotPort)
	require.NoError(tb, err)
	require.NoError(tb, n.bk.AcceptedFrom(n.now, a.NodeID, netip.AddrPortFrom(ip, 40000), a))
	n.bk.Ready(a.NodeID, 0)
	n.core.PeerUpdate(n.now, event.PeerUpdate{NodeID: a.NodeID, Status: event.PeerStatusUp})
}

func (n *pexNode) disconnect(id string) {
	n.core.PeerUpdate(n.now, event.PeerUpdate{NodeID: pex.NodeID(id), Status: event.PeerStatusDown})
	n.bk.Disconnected(n.now, pex.NodeID(id))
}

// NewPexReceiver is a node with Sources connected peers to ask.
func NewPexReceiver(tb testing.TB) *pexNode {
	n := newPexNode(tb, 100_000)
	for s := range Sources {
		n.connect(tb, hotSourceID(s), hotSourceIP(s))
	}
	return n
}

// ask moves the clock on and returns the peer the core asks, as its
// timer would.
func (n *pexNode) ask(tb testing.TB) pex.NodeID {
	n.now = n.now.Add(time.Hour)
	acts := n.core.Tick(n.now)
	require.Len(tb, acts.Send, 1, "one request per tick")
	return acts.Send[0].To
}

// receive hands msg from peer from to the core, as the Reactor does.
func (n *pexNode) receive(from pex.NodeID, msg []byte) poller.Actions {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.core.Receive(n.now, pex.Envelope{From: from, Message: msg})
}

// cmtNode is CometBFT's address book, fed as its PEX reactor feeds it.
type cmtNode struct {
	book    cmtpex.AddrBook
	sources []*cmtp2p.NetAddress
}

func newCmtNode(tb testing.TB) *cmtNode {
	n := &cmtNode{book: cmtpex.NewAddrBook("", false)}
	for s := range Sources {
		na := cmtp2p.NewNetAddressIPPort(net.IP(hotSourceIP(s).AsSlice()), hotPort)
		na.ID = cmtp2p.ID(hotSourceID(s))
		n.sources = append(n.sources, na)
	}
	return n
}

// receive is CometBFT's PEX reactor on a response: the switch decodes it
// into the channel's message type and unwraps it, the reactor converts
// the entries and adds each to the book (ReceiveAddrs), whose errors it
// logs and skips.
func (n *cmtNode) receive(tb testing.TB, src int, msg []byte) {
	var m tmp2p.Message
	if err := m.Unmarshal(msg); err != nil {
		tb.Fatal(err)
	}
	inner, err := m.Unwrap()
	if err != nil {
		tb.Fatal(err)
	}
	addrs, err := cmtp2p.NetAddressesFromProto(inner.(*tmp2p.PexAddrs).Addrs)
	if err != nil {
		tb.Fatal(err)
	}
	for _, a := range addrs {
		_ = n.book.AddAddress(a, n.sources[src])
	}
}

// HandlePex is one full response to pex per op, the book renewed
// (outside the timer) every Pool responses.
func HandlePex(b *testing.B) {
	msgs := Messages(b)
	var n *pexNode
	b.ReportAllocs()
	b.SetBytes(int64(len(msgs[0])))
	i := 0
	for b.Loop() {
		b.StopTimer()
		if i%Pool == 0 {
			if n != nil && n.bk.Len() < Pool*PerResponse {
				b.Fatalf("the book holds %d addresses of %d", n.bk.Len(), Pool*PerResponse)
			}
			n = NewPexReceiver(b)
		}
		from := n.ask(b)
		b.StartTimer()
		acts := n.receive(from, msgs[i%Pool])
		if len(acts.Errors) != 0 {
			b.Fatalf("peer errors: %v", acts.Errors)
		}
		i++
	}
}

// HandleCmt is one full response to CometBFT per op, the book
// renewed (outside the timer) every Pool responses.
func HandleCmt(b *testing.B) {
	msgs := Messages(b)
	var n *cmtNode
	b.ReportAllocs()
	b.SetBytes(int64(len(msgs[0])))
	i := 0
	for b.Loop() {
		if i%Pool == 0 {
			b.StopTimer()
			n = newCmtNode(b)
			b.StartTimer()
		}
		n.receive(b, i%Sources, msgs[i%Pool])
		i++
	}
}

// hotAddress is the k-th address, its strings made afresh (as a decoder
// makes them).
func hotAddress(tb testing.TB, k int) pex.NodeAddress {
	a, err := pex.NodeAddressFromIP(pex.NodeID(hotID(k)), hotIP(k), hotPort)
	require.NoError(tb, err)
	return a
}

func hotNetAddress(k int) *cmtp2p.NetAddress {
	na := cmtp2p.NewNetAddressIPPort(net.IP(hotIP(k).AsSlice()), hotPort)
	na.ID = cmtp2p.ID(hotID(k))
	return na
}

// fillPex adds n addresses to a new pex node's book.
func fillPex(tb testing.TB, n int) *pexNode {
	node := newPexNode(tb, n)
	for k := range n {
		_, err := node.bk.Add(hotAddress(tb, k+1))
		require.NoError(tb, err)
	}
	require.Equal(tb, n, node.bk.Len())
	return node
}

// fillCmt offers n addresses to a new CometBFT book, from Sources
// sources; it keeps what its buckets hold (16,384 new entries at most).
func fillCmt(n int) *cmtNode {
	node := newCmtNode(nil)
	for k := range n {
		_ = node.book.AddAddress(hotNetAddress(k+1), node.sources[k%Sources])
	}
	return node
}

var (
	servePexOnce, serveCmtOnce sync.Once
	servePex                   *pexNode
	serveCmt                   *cmtNode
	serveAnswers               [hotRequesters]int // answers to each requester on its connection
	serveTurn                  int
)

// servingPex is a pex node with ServeBook addresses and hotRequesters
// connected peers, built once.
func servingPex(tb testing.TB) *pexNode {
	servePexOnce.Do(func() {
		servePex = fillPex(tb, ServeBook)
		for j := range hotRequesters {
			servePex.connect(tb, hotRequesterID(j), hotRequesterIP(j))
		}
	})
	return servePex
}

func ServingCmt() *cmtNode {
	serveCmtOnce.Do(func() { serveCmt = fillCmt(ServeBook) })
	return serveCmt
}

// lapAnswers is how many answers a requester has on one connection
// before it is reconnected (outside the timer): a walk of 100,000 goes
// round in 1,000 answers, after which only news is sent.
const lapAnswers = 900

// ServePex answers one V1 request per op, the requesters in turn,
// each asking once a minute of the core's clock.
func ServePex(b *testing.B) {
	n := servingPex(b)
	req := pex.EncodeRequest(false)
	b.ReportAllocs()
	for b.Loop() {
		j := serveTurn % hotRequesters
		serveTurn++
		if serveAnswers[j] == lapAnswers {
			b.StopTimer()
			n.disconnect(hotRequesterID(j))
			n.connect(b, hotRequesterID(j), hotRequesterIP(j))
			serveAnswers[j] = 0
			b.StartTimer()
		}
		serveAnswers[j]++
		n.now = n.now.Add(time.Minute / hotRequesters)
		acts := n.receive(pex.NodeID(hotRequesterID(j)), req)
		if len(acts.Send) != 1 || len(acts.Errors) != 0 {
			b.Fatalf("no answer: %+v", acts)
		}
	}
	b.ReportMetric(float64(n.bk.Len()), "book")
}

// ServePexNews is ServePex with news: an address is added
// (outside the timer) before each request, as in a live network, so the
// book sorts it in (settle) and the walk sends it as news where it has
// passed. The book stays at 100,000 (the oldest unproven entry makes
// room).
func ServePexNews(b *testing.B) {
	servePexNewsOnce.Do(func() {
		servePexNews = fillPex(b, ServeBook)
		for j := range hotRequesters {
			servePexNews.connect(b, hotRequesterID(j), hotRequesterIP(j))
		}
	})
	n := servePexNews
	req := pex.EncodeRequest(false)
	b.ReportAllocs()
	for b.Loop() {
		j := servePexNewsTurn % hotRequesters
		servePexNewsTurn++
		b.StopTimer()
		if servePexNewsAnswers[j] == lapAnswers {
			n.disconnect(hotRequesterID(j))
			n.connect(b, hotRequesterID(j), hotRequesterIP(j))
			servePexNewsAnswers[j] = 0
		}
		_, err := n.bk.Add(hotAddress(b, ServeBook+servePexNewsTurn))
		require.NoError(b, err)
		b.StartTimer()
		servePexNewsAnswers[j]++
		n.now = n.now.Add(time.Minute / hotRequesters)
		acts := n.receive(pex.NodeID(hotRequesterID(j)), req)
		if len(acts.Send) != 1 || len(acts.Errors) != 0 {
			b.Fatalf("no answer: %+v", acts)
		}
	}
}

var (
	servePexNewsOnce    sync.Once
	servePexNews        *pexNode
	servePexNewsAnswers [hotRequesters]int
	servePexNewsTurn    int
)

// ServeCmt is CometBFT's GetSelection per op (up to 250 addresses:
// 23% of the book), as its PEX reactor answers a request.
func ServeCmt(b *testing.B) {
	n := ServingCmt()
	b.ReportAllocs()
	for b.Loop() {
		if len(n.book.GetSelection()) == 0 {
			b.Fatal("empty selection")
		}
	}
	b.ReportMetric(float64(n.book.Size()), "book")
}

// heapDelta returns the live heap that f's result holds, in bytes, and
// keeps the result alive until measured.
func heapDelta(f func() any) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := f()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	return float64(after.HeapAlloc) - float64(before.HeapAlloc)
}

// PexBytesPerAddr is the live heap of a pex book of n addresses, per
// address, strings included.
func PexBytesPerAddr(tb testing.TB, n int) float64 {
	return heapDelta(func() any { return fillPex(tb, n) }) / float64(n)
}

// CmtBytesPerAddr is the live heap of CometBFT's book offered n
// addresses, per address it holds.
func CmtBytesPerAddr(n int) (float64, int) {
	var held int
	d := heapDelta(func() any {
		node := fillCmt(n)
		held = node.book.Size()
		return node
	})
	return d / float64(held), held
}

// ResponseAllocsPerAddr counts (does not time) the allocations per
// address of the response path, decode, parse and add together, over a
// book growing to 20,000.
func ResponseAllocsPerAddr(tb testing.TB) float64 {
	msgs := Messages(tb)
	n := NewPexReceiver(tb)
	var before, after runtime.MemStats
	var mallocs uint64
	for _, msg := range msgs {
		from := n.ask(tb)
		runtime.ReadMemStats(&before)
		acts := n.receive(from, msg)
		runtime.ReadMemStats(&after)
		require.Empty(tb, acts.Errors)
		mallocs += after.Mallocs - before.Mallocs
	}
	require.Equal(tb, Sources+Pool*PerResponse, n.bk.Len())
	return float64(mallocs) / float64(Pool*PerResponse)
}

// CmtServeBookSize is how many of ServeBook addresses CometBFT's book
// holds (its new buckets take at most 16,384).
func CmtServeBookSize() int { return ServingCmt().book.Size() }
