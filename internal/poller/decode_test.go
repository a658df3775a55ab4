package poller

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/testkit"
	"github.com/pexnet/pex/pb"
)

// requireDecodeAgrees checks Decode against proto.Unmarshal into the
// generated types: both refuse b, or both read the same message from it,
// and the entries parse alike.
func requireDecodeAgrees(t *testing.T, b []byte) {
	t.Helper()
	var m pb.PexMessage
	refErr := proto.Unmarshal(b, &m)
	d, err := Decode(b, nil)
	if refErr != nil {
		require.Error(t, err, "proto.Unmarshal refuses %x: %v", b, refErr)
		return
	}
	require.NoError(t, err, "proto.Unmarshal accepts %x", b)
	type entry struct {
		id, ip string
		port   uint32
	}
	var want []entry
	switch s := m.Sum.(type) {
	case nil:
		require.Equal(t, KindNone, d.Kind)
	case *pb.PexMessage_PexRequest:
		require.Equal(t, KindRequestV1, d.Kind)
	case *pb.PexMessage_PexRequestV2:
		require.Equal(t, KindRequestV2, d.Kind)
	case *pb.PexMessage_PexResponse:
		require.Equal(t, KindResponseV1, d.Kind)
		for _, e := range s.PexResponse.GetAddresses() {
			want = append(want, entry{e.GetId(), e.GetIp(), e.GetPort()})
		}
	case *pb.PexMessage_PexResponseV2:
		require.Equal(t, KindResponseV2, d.Kind)
		for _, e := range s.PexResponseV2.GetAddresses() {
			want = append(want, entry{id: e.GetUrl()})
		}
	}
	require.Equal(t, len(want), d.N)
	require.Len(t, d.Entries, min(d.N, MaxAddresses+1))
	for i, e := range d.Entries {
		require.Equal(t, want[i], entry{string(e.ID), string(e.IP), e.Port}, "entry %d", i)
		got, gotErr := e.Parse(d.Kind)
		var ref NodeAddress
		var refErr error
		if d.Kind == KindResponseV1 {
			ref, refErr = v1EntryReference(want[i].id, want[i].ip, want[i].port)
		} else {
			ref, refErr = ParseNodeAddress(want[i].id)
		}
		require.Equal(t, ref, got)
		require.Equal(t, refErr == nil, gotErr == nil)
		if refErr != nil {
			require.Equal(t, refErr.Error(), gotErr.Error())
		}
	}
}

// v1EntryReference parses a V1 entry's strings as pex did before Decode.
func v1EntryReference(id, ip string, port uint32) (NodeAddress, error) {
	parsed, err := netip.ParseAddr(ip)
	if err != nil {
		return NodeAddress{}, fmt.Errorf("%w: bad IP %q", ErrInvalidAddress, addr.Clip(ip))
	}
	if port > math.MaxUint16 {
		return NodeAddress{}, fmt.Errorf("%w: port %d", ErrInvalidAddress, port)
	}
	nid, err := ParseNodeID(id)
	if err != nil {
		return NodeAddress{}, fmt.Errorf("%w: %w", ErrInvalidAddress, err)
	}
	return NodeAddressFromIP(nid, parsed, uint16(port))
}

// wireSeeds are messages that exercise the decoder's rules.
func wireSeeds() [][]byte {
	id := "0123456789abcdef0123456789abcdef01234567"
	entry := func(fields ...[]byte) []byte {
		var out []byte
		for _, f := range fields {
			out = append(out, f...)
		}
		return out
	}
	str := func(num protowire.Number, s string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), s)
	}
	msg := func(num protowire.Number, b []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), b)
	}
	port := protowire.AppendVarint(protowire.AppendTag(nil, 3, protowire.VarintType), 1<<32+26656)
	v1 := msg(1, entry(str(1, id), str(2, "192.0.2.7"), port))
	group := protowire.AppendTag(protowire.AppendTag(nil, 9, protowire.StartGroupType), 9, protowire.EndGroupType)
	nested := func(depth int) []byte { // groups in groups, at the top
		var out []byte
		for range depth {
			out = protowire.AppendTag(out, 9, protowire.StartGroupType)
		}
		for range depth {
			out = protowire.AppendTag(out, 9, protowire.EndGroupType)
		}
		return out
	}
	return [][]byte{
		nested(10_000), nested(10_001), msg(1, nested(9_999)), msg(1, nested(10_000)),
		{}, {0x0a, 0x00}, {0x1a, 0x00}, {0x00}, {0x0c}, {0x08, 0x01},
		testkit.V1Resp(testkit.V1Entry(NodeID(id), "192.0.2.7", 26656)),
		testkit.V2Resp("mconn://" + id + "@192.0.2.7:26656"),
		msg(2, v1),
		append(msg(2, v1), msg(2, v1)...), // merged
		append(append(msg(2, v1), msg(1, nil)...), msg(2, v1)...), // replaced
		msg(2, append(v1, group...)),
		msg(2, msg(1, entry(str(1, id), str(1, "x"), str(2, "\xff")))),
		msg(2, msg(1, entry(protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 7), str(2, "1.2.3.4")))),
		msg(4, msg(1, str(1, "\xc3\x28"))),
		append(protowire.AppendTag(nil, 2, protowire.VarintType), 5),
		protowire.AppendTag(nil, protowire.MaxValidNumber+1, protowire.VarintType),
	}
}

func TestDecodeAgrees(t *testing.T) {
	for _, b := range wireSeeds() {
		requireDecodeAgrees(t, b)
	}
	var many []*pb.PexAddress
	for range 2 * MaxAddresses {
		many = append(many, testkit.V1Entry(nodeID(len(many)+1), "192.0.2.7", 26656))
	}
	b := testkit.V1Resp(many...)
	requireDecodeAgrees(t, b)
	d, err := Decode(b, nil)
	require.NoError(t, err)
	require.Equal(t, 2*MaxAddresses, d.N)
}

// A full V1 response decodes with no allocation once the scratch has
// grown.
func TestDecodeAllocs(t *testing.T) {
	var entries []*pb.PexAddress
	for range MaxAddresses {
		entries = append(entries, testkit.V1Entry(nodeID(len(entries)+1), "192.0.2.7", 26656))
	}
	b := testkit.V1Resp(entries...)
	scratch := make([]WireEntry, 0, MaxAddresses+1)
	require.Equal(t, 0.0, testing.AllocsPerRun(100, func() {
		d, err := Decode(b, scratch)
		if err != nil || d.N != MaxAddresses {
			t.Fatal(d.N, err)
		}
	}))
}

// FuzzDecodeAgrees: the hand decoder accepts and refuses what
// proto.Unmarshal does, and reads the same message.
//
// Run: go test -run '^$' -fuzz FuzzDecodeAgrees -fuzztime 180s .
func FuzzDecodeAgrees(f *testing.F) {
	for _, b := range wireSeeds() {
		f.Add(b)
	}
	f.Fuzz(requireDecodeAgrees)
}

// The hand encoders write what proto.Marshal writes from the generated
// types, byte for byte.
func TestEncodeAsGenerated(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	hosts := []string{"192.0.2.7", "0.0.0.1", "255.255.255.255", "2001:db8::1", "::ffff:1.2.3.4", "example.com", "a-b.example.org"}
	for trial := range 300 {
		var addrs []NodeAddress
		for range rnd.IntN(MaxAddresses + 20) {
			id := nodeID(rnd.IntN(1 << 20))
			switch rnd.IntN(8) {
			case 0:
				addrs = append(addrs, NodeAddress{Protocol: ProtocolMemory, NodeID: id})
			case 1:
				addrs = append(addrs, NodeAddress{Protocol: ProtocolTCP, NodeID: id, Hostname: hosts[rnd.IntN(len(hosts))], Port: uint16(1 + rnd.IntN(65535))})
			default:
				h := hosts[rnd.IntN(4)]
				if trial%5 == 0 {
					h = hosts[rnd.IntN(len(hosts))]
				}
				addrs = append(addrs, NodeAddress{Protocol: ProtocolMConn, NodeID: id, Hostname: h, Port: uint16(rnd.IntN(65536))})
			}
		}
		for _, scheme := range []bool{false, true} {
			resp := &pb.PexResponseV2{Addresses: make([]*pb.PexAddressV2, len(addrs))}
			for i, a := range addrs {
				resp.Addresses[i] = &pb.PexAddressV2{Url: addr.V2URL(a, scheme)}
			}
			want := mustMarshal(&pb.PexMessage{Sum: &pb.PexMessage_PexResponseV2{PexResponseV2: resp}})
			got, _ := encodeV2Answer(addrs, scheme, nil)
			require.Equal(t, want, got, "trial %d", trial)
		}
		// V1: the IP addresses, none if a name is among them.
		var eps []V1Endpoint
		dns := false
		for _, a := range addrs {
			if ip, ok := a.IP(); ok {
				eps = append(eps, V1Endpoint{ID: a.NodeID, Addr: netip.AddrPortFrom(ip, a.Port)})
			} else if a.Protocol != ProtocolMemory {
				dns = true
			}
		}
		eps = eps[:min(len(eps), MaxAddresses)]
		resp := &pb.PexResponse{Addresses: make([]*pb.PexAddress, len(eps))}
		for i, ep := range eps {
			resp.Addresses[i] = &pb.PexAddress{Id: string(ep.ID), Ip: ep.Addr.Addr().String(), Port: uint32(ep.Addr.Port())}
		}
		want := mustMarshal(&pb.PexMessage{Sum: &pb.PexMessage_PexResponse{PexResponse: resp}})
		require.Equal(t, want, EncodeV1Response(eps))
		got, ok, _ := encodeV1Answer(addrs, nil)
		require.Equal(t, !dns, ok)
		if ok {
			require.Equal(t, want, got)
		}
	}
}

// ascii agrees with a byte-by-byte reading at every length up to a few
// words, with a byte of its high bit set at every position.
func TestASCII(t *testing.T) {
	for n := range 40 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + i%75)
		}
		require.True(t, ascii(b), "length %d", n)
		for i := range b {
			c := b[i]
			b[i] = 0x80 | c
			require.False(t, ascii(b), "length %d, byte %d", n, i)
			b[i] = c
		}
	}
}
