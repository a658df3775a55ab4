package poller

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pexnet/pex/internal/book"
	"github.com/pexnet/pex/pb"
)

// fullV2Responses returns n encoded V2 responses of MaxAddresses distinct,
// valid mconn addresses each.
func fullV2Responses(tb testing.TB, n int) [][]byte {
	out := make([][]byte, n)
	k := 0
	for i := range out {
		resp := &pb.PexResponseV2{}
		for range MaxAddresses {
			k++
			a := NodeAddress{
				Protocol: ProtocolMConn,
				NodeID:   NodeID(fmt.Sprintf("%040x", 1<<40+k)),
				// Consecutive addresses in different /16s, as a sample of a
				// real network is (one subnet's answer is a sybil's, and
				// only MaxOutboundPerGroup of it would be kept).
				Hostname: fmt.Sprintf("%d.%d.%d.1", 11+k%100, k/100&0xff, k/25600&0xff),
				Port:     26656,
			}
			resp.Addresses = append(resp.Addresses, &pb.PexAddressV2{Url: a.String()})
		}
		b, err := proto.Marshal(&pb.PexMessage{Sum: &pb.PexMessage_PexResponseV2{PexResponseV2: resp}})
		require.NoError(tb, err)
		out[i] = b
	}
	return out
}

// BenchmarkHandleFullV2Response measures what one full response costs the
// receiving node: size check, decode, parse and validate 100 URLs, add
// them to the address book, update the interval and size estimate.
// Every response brings 100 new addresses; the book is renewed (outside
// the timer) before it fills.
func BenchmarkHandleFullV2Response(b *testing.B) {
	const pool = 200 // responses per book: 20,000 addresses
	msgs := fullV2Responses(b, pool)
	from := nodeID(1)
	now := time.Unix(1_700_000_000, 0)
	var core *Core
	fresh := func() {
		pm, err := NewPeerManager(nodeID(0), PeerManagerOptions{Options: book.Options{MaxPeers: 100_000, Rand: rand.New(rand.NewPCG(1, 2))}})
		require.NoError(b, err)
		core, err = New(Config{}, pm.Book)
		require.NoError(b, err)
		core.PeerUpdate(now, PeerUpdate{NodeID: from, Status: PeerStatusUp, Caps: CapV2})
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(msgs[0])))
	i := 0
	for b.Loop() {
		if i%pool == 0 {
			b.StopTimer()
			fresh()
			b.StartTimer()
		}
		// Mark the request as sent, as Tick would.
		core.peers[from].pending = true
		acts := core.Receive(now, Envelope{From: from, Message: msgs[i%pool]})
		if len(acts.Errors) != 0 {
			b.Fatalf("unexpected peer errors: %v", acts.Errors)
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/MaxAddresses, "ns/addr")
}

// BenchmarkKnownInRankAfterAdds is the requester's hot path under
// PolicyAdaptive: an answer adds addresses, then the next Tick asks how
// much of each peer's next stretch is known. Book of 10,000.
func BenchmarkKnownInRankAfterAdds(b *testing.B) {
	pm, err := NewPeerManager(nodeID(0), PeerManagerOptions{Options: book.Options{MaxPeers: 1 << 20, Rand: rand.New(rand.NewPCG(1, 2))}})
	require.NoError(b, err)
	k := 0
	add := func(n int) {
		for range n {
			k++
			_, err := pm.Add(NodeAddress{Protocol: ProtocolMConn, NodeID: NodeID(fmt.Sprintf("%040x", 1<<40+k)), Hostname: "198.51.100.1", Port: uint16(1 + k%60000)})
			require.NoError(b, err)
		}
	}
	add(10_000)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		add(10) // a response's worth of news, more or less
		b.StartTimer()
		for q := range 10 { // one Tick, ten peers
			pm.KnownInRank(uint64(q)<<58, 1<<58)
		}
	}
}
