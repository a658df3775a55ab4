package pex

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNetGroup(t *testing.T) {
	at := func(host string) NodeAddress {
		return NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: host, Port: 26656}
	}
	same := [][2]string{
		{"1.2.3.4", "1.2.200.9"},                      // one /16
		{"1.2.3.4", "::ffff:1.2.9.9"},                 // IPv4-mapped
		{"1.2.3.4", "2002:0102:0909::1"},              // 6to4 carries 1.2.9.9
		{"1.2.3.4", "2001:0:4136:e378:0:0:fefd:f6f6"}, // Teredo: client 1.2.9.9, inverted
		{"1.2.3.4", "64:ff9b::102:909"},               // NAT64
		{"2600:1f18::1", "2600:1f18:ffff::2"},         // one IPv6 /32
		{"a.node.example.com", "b.example.com"},       // one domain
		{"example.com", "EXAMPLE.com."},
	}
	for _, c := range same {
		require.Equal(t, netGroup(at(c[0])), netGroup(at(c[1])), "%s and %s", c[0], c[1])
	}
	differ := [][2]string{
		{"1.2.3.4", "1.3.3.4"},
		{"2600:1f18::1", "2600:1f19::1"},
		{"a.example.com", "a.example.org"},
		{"10.0.0.1", "10.0.0.2"}, // unroutable: each address its own group
		{"1.2.3.4", "example.com"},
	}
	for _, c := range differ {
		require.NotEqual(t, netGroup(at(c[0])), netGroup(at(c[1])), "%s and %s", c[0], c[1])
	}
	loop := at("127.0.0.1")
	other := loop
	other.Port++
	require.NotEqual(t, netGroup(loop), netGroup(other), "local endpoints are groups of their own")
}

// floodPM returns a book with fixed keys and an attacking source in
// 66.66.0.0/16 that the book holds (as a dialled or announced peer).
func floodPM(t *testing.T, maxPeers int) (*PeerManager, []NodeID) {
	t.Helper()
	m := newPM(t, PeerManagerOptions{MaxPeers: maxPeers, Rand: rand.New(rand.NewPCG(7, 7))})
	var sybils []NodeID
	for i := range 20 { // 20 node IDs of one /16; self-announced, they fit one bucket
		id := nodeID(900_000 + i)
		a, err := NodeAddressFromIP(id, netip.AddrFrom4([4]byte{66, 66, byte(i), 1}), 26656)
		require.NoError(t, err)
		_, err = m.Add(a)
		require.NoError(t, err)
		sybils = append(sybils, id)
	}
	return m, sybils
}

func countFrom(m *PeerManager, srcs []NodeID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, p := range m.peers {
		for _, s := range srcs {
			if p.src == s {
				n++
			}
		}
	}
	return n
}

func TestSourceGroupFloodIsCapped(t *testing.T) {
	const maxPeers = 1000
	capPerBucket := bucketCap(maxPeers)
	require.Equal(t, 32, capPerBucket)
	for _, tc := range []struct {
		name  string
		addr  func(r *rand.Rand, i int) netip.Addr
		limit int // documented share
	}{
		// Addresses all over the internet: at most 1/4 of the book.
		{"any groups", func(r *rand.Rand, i int) netip.Addr {
			return netip.AddrFrom4([4]byte{byte(11 + r.IntN(50)), byte(r.IntN(256)), byte(i >> 8), byte(i)})
		}, sourceBuckets * capPerBucket},
		// The sybil subnet's own addresses: one bucket, 1/32 of the book.
		{"own subnet", func(r *rand.Rand, i int) netip.Addr {
			return netip.AddrFrom4([4]byte{66, 66, byte(i >> 8), byte(i)})
		}, capPerBucket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, sybils := floodPM(t, maxPeers)
			addHonest := func(from, to int) {
				for i := from; i < to; i++ {
					_, err := m.AddFrom(peerAddr(i), nodeID(i-1))
					require.NoError(t, err)
				}
			}
			addHonest(1, 200)
			before := m.Known()
			r := rand.New(rand.NewPCG(1, 1))
			refused := 0
			// 10,000 addresses, sent by 20 node IDs of one /16.
			for i := range 10_000 {
				a, err := NodeAddressFromIP(nodeID(1_000_000+i), tc.addr(r, i), 26656)
				require.NoError(t, err)
				_, err = m.AddFrom(a, sybils[i%len(sybils)])
				if err != nil {
					require.ErrorIs(t, err, ErrSourceGroupFull)
					refused++
				}
			}
			got := countFrom(m, sybils)
			require.LessOrEqual(t, got, tc.limit)
			require.Positive(t, got)
			require.Equal(t, 10_000-got, refused)
			require.Subset(t, m.Known(), before, "the flood evicted nothing")
			// Honest sources keep their own room.
			addHonest(200, 400)
			checkInvariants(t, m)
			t.Logf("%s: %d of 10,000 stored (%.1f%% of MaxPeers)", tc.name, got, 100*float64(got)/maxPeers)
		})
	}
}

func TestSourceGroupFloodNeverReplacesProvenPeers(t *testing.T) {
	clk := newFakeClock()
	m := newPM(t, PeerManagerOptions{MaxPeers: 40, MaxConnected: 40, MaxOutbound: 40, Now: clk.Now})
	addPeers(t, m, 0, 40)
	for range 40 { // connect to all of them once: proven
		a, ok := m.TryDialNext()
		require.True(t, ok)
		require.NoError(t, m.Dialed(a))
		m.Disconnected(a.NodeID)
	}
	before := m.Known()
	for i := range 1000 {
		a, err := NodeAddressFromIP(nodeID(5000+i), netip.AddrFrom4([4]byte{66, 66, byte(i >> 8), byte(i)}), 26656)
		require.NoError(t, err)
		_, err = m.AddFrom(a, nodeID(3))
		require.Error(t, err)
	}
	require.ElementsMatch(t, before, m.Known())
	checkInvariants(t, m)
}

func TestBucketKeyPlacesSourcesApart(t *testing.T) {
	// With one key the buckets of one source are fixed; another key
	// moves them, so a source cannot aim at another's buckets.
	k1, k2 := bucketKey{1, 2}, bucketKey{3, 4}
	src := netGroup(peerAddr(1))
	seen := map[uint64]bool{}
	for i := range 2000 {
		b := k1.bucket(netGroup(peerAddr(100+i)), src)
		seen[b] = true
	}
	require.LessOrEqual(t, len(seen), sourceBuckets)
	require.Greater(t, len(seen), sourceBuckets/2)
	require.NotEqual(t, k1.bucket(1, src), k2.bucket(1, src))
	require.Equal(t, fmt.Sprint(k1.bucket(1, src)), fmt.Sprint(k1.bucket(1, src)))
}
