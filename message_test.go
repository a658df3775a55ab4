package pex

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pexnet/pex/internal/testkit"
	"github.com/pexnet/pex/pb"
)

func mustAddr(t *testing.T, s string) NodeAddress {
	t.Helper()
	a, err := ParseNodeAddress(s)
	require.NoError(t, err)
	return a
}

// msgTestAddr returns a distinct public IPv4 mconn address for i.
func msgTestAddr(t *testing.T, i int) NodeAddress {
	t.Helper()
	return mustAddr(t, fmt.Sprintf("mconn://%040x@198.51.%d.%d:26656", i+1, i/250, i%250+1))
}

func TestMessageGoldenBytes(t *testing.T) {
	// SPEC section 2: the two requests and the empty V2 response.
	require.Equal(t, "0a00", hex.EncodeToString(EncodeRequest(false)))
	require.Equal(t, "1a00", hex.EncodeToString(EncodeRequest(true)))
	b, err := EncodeResponse(nil, true)
	require.NoError(t, err)
	require.Equal(t, "2200", hex.EncodeToString(b))
}

func TestMessageRoundTrips(t *testing.T) {
	v4 := mustAddr(t, "mconn://"+id40("a")+"@192.0.2.7:26656")
	v6 := mustAddr(t, "mconn://"+id40("b")+"@[2001:db8::7]:26657")
	mem := mustAddr(t, "memory:"+id40("e"))
	name := mustAddr(t, "mconn://"+id40("c")+"@node.example.com:26656")
	tcp := mustAddr(t, "tcp://"+id40("d")+"@192.0.2.9:26656")
	for _, tc := range []struct {
		name   string
		encode func() ([]byte, error)
		want   Message
	}{
		{"request v1", func() ([]byte, error) { return EncodeRequest(false), nil }, Message{Kind: RequestV1}},
		{"request v2", func() ([]byte, error) { return EncodeRequest(true), nil }, Message{Kind: RequestV2}},
		{"response v1", func() ([]byte, error) { return EncodeResponse([]NodeAddress{v4, v6}, false) },
			Message{Kind: ResponseV1, Addresses: []NodeAddress{v4, v6}}},
		{"response v1 empty", func() ([]byte, error) { return EncodeResponse(nil, false) }, Message{Kind: ResponseV1}},
		{"response v2", func() ([]byte, error) { return EncodeResponse([]NodeAddress{v4, v6, mem, name, tcp}, true) },
			Message{Kind: ResponseV2, Addresses: []NodeAddress{v4, v6, mem, name, tcp}}},
		{"response v2 empty", func() ([]byte, error) { return EncodeResponse(nil, true) }, Message{Kind: ResponseV2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.encode()
			require.NoError(t, err)
			got, err := DecodeMessage(b)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			require.True(t, strings.HasPrefix(tc.name, got.Kind.String()), "String %q", got.Kind)
			require.Equal(t, strings.HasPrefix(tc.name, "request"), got.Kind.IsRequest())
			require.Equal(t, strings.Contains(tc.name, "v2"), got.Kind.IsV2())
		})
	}
	require.Equal(t, "MessageKind(9)", MessageKind(9).String())
}

func TestMessageV1HasNoScheme(t *testing.T) {
	// A tcp:// address goes out as an (id, ip, port) entry and comes back
	// as mconn: V1 carries no scheme.
	tcp := mustAddr(t, "tcp://"+id40("d")+"@192.0.2.9:26656")
	b, err := EncodeResponse([]NodeAddress{tcp}, false)
	require.NoError(t, err)
	m, err := DecodeMessage(b)
	require.NoError(t, err)
	want := tcp
	want.Protocol = ProtocolMConn
	require.Equal(t, []NodeAddress{want}, m.Addresses)
}

func TestMessageFullResponse(t *testing.T) {
	addrs := make([]NodeAddress, MaxAddresses)
	for i := range addrs {
		addrs[i] = msgTestAddr(t, i)
	}
	for _, v2 := range []bool{false, true} {
		b, err := EncodeResponse(addrs, v2)
		require.NoError(t, err)
		m, err := DecodeMessage(b)
		require.NoError(t, err)
		require.Equal(t, addrs, m.Addresses)
		require.Zero(t, m.Invalid)
	}
}

func TestMessageEncodeRefuses(t *testing.T) {
	over := make([]NodeAddress, MaxAddresses+1)
	for i := range over {
		over[i] = msgTestAddr(t, i)
	}
	name := mustAddr(t, "mconn://"+id40("c")+"@node.example.com:26656")
	mem := mustAddr(t, "memory:"+id40("e"))
	for _, tc := range []struct {
		name  string
		addrs []NodeAddress
		v2    bool
		want  error
	}{
		{"v1 too many", over, false, ErrTooManyAddresses},
		{"v2 too many", over, true, ErrTooManyAddresses},
		{"v1 DNS name", []NodeAddress{name}, false, ErrInvalidAddress},
		{"v1 memory", []NodeAddress{mem}, false, ErrInvalidAddress},
		{"v1 zero address", []NodeAddress{{}}, false, ErrInvalidAddress},
		{"v2 zero address", []NodeAddress{{}}, true, ErrInvalidAddress},
		{"v2 bad ID", []NodeAddress{{Protocol: ProtocolMConn, NodeID: "xyz", Hostname: "192.0.2.1", Port: 1}}, true, ErrInvalidNodeID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeResponse(tc.addrs, tc.v2)
			require.ErrorIs(t, err, tc.want)
			require.Nil(t, b)
			require.True(t, strings.HasPrefix(err.Error(), "pex: "), err.Error())
		})
	}
}

// TestMessageWireVectors decodes the vectors encoded by Tendermint and
// CometBFT, and encodes what they decode to back to the same bytes. All of
// them re-encode exactly: EncodeResponse writes V2 URLs with their scheme,
// as Tendermint does.
func TestMessageWireVectors(t *testing.T) {
	for _, v := range loadWireVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			raw, err := hex.DecodeString(v.Hex)
			require.NoError(t, err)
			m, err := DecodeMessage(raw)
			require.NoError(t, err)
			require.Zero(t, m.Invalid)

			// What the hand-written expectation of wire_test.go holds.
			want := wireExpected[v.Name]
			require.NotNil(t, want, v.Name)
			var urls []string
			for _, a := range want.GetPexResponseV2().GetAddresses() {
				urls = append(urls, a.GetUrl())
			}
			for _, a := range want.GetPexResponse().GetAddresses() {
				urls = append(urls, fmt.Sprintf("mconn://%s@%s", a.GetId(), joinHostPort(a.GetIp(), a.GetPort())))
			}
			var got []string
			for _, a := range m.Addresses {
				got = append(got, a.String())
			}
			require.Equal(t, urls, got)

			var out []byte
			if m.Kind.IsRequest() {
				out = EncodeRequest(m.Kind.IsV2())
			} else {
				out, err = EncodeResponse(m.Addresses, m.Kind.IsV2())
				require.NoError(t, err)
			}
			require.Equal(t, v.Hex, hex.EncodeToString(out), "re-encoding of %s", v.Content)
		})
	}
}

func joinHostPort(ip string, port uint32) string {
	if strings.Contains(ip, ":") {
		ip = "[" + ip + "]"
	}
	return fmt.Sprintf("%s:%d", ip, port)
}

func TestMessageDecodeErrors(t *testing.T) {
	var v1Over []*pb.PexAddress
	var v2Over []string
	for i := range MaxAddresses + 1 {
		a := msgTestAddr(t, i)
		v1Over = append(v1Over, testkit.V1Entry(a.NodeID, a.Hostname, uint32(a.Port)))
		v2Over = append(v2Over, a.String())
	}
	for _, tc := range []struct {
		name string
		hex  string
		b    []byte
		want error
		kind MessageKind
	}{
		{name: "empty", hex: "", want: ErrUnknownMessage},
		{name: "unknown field only", hex: "2a00", want: ErrUnknownMessage},
		{name: "truncated", hex: "0a", want: ErrMalformedMessage},
		{name: "bad length", hex: "12ff", want: ErrMalformedMessage},
		{name: "bad wire type", hex: "0f", want: ErrMalformedMessage},
		{name: "garbage", hex: "ffffffffffffffffffff", want: ErrMalformedMessage},
		{name: "invalid UTF-8 URL", hex: "22050a0301c3" + "28", want: ErrMalformedMessage},
		{name: "v1 too many", b: testkit.V1Resp(v1Over...), want: ErrTooManyAddresses, kind: ResponseV1},
		{name: "v2 too many", b: testkit.V2Resp(v2Over...), want: ErrTooManyAddresses, kind: ResponseV2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.b
			if b == nil {
				var err error
				b, err = hex.DecodeString(tc.hex)
				require.NoError(t, err)
			}
			m, err := DecodeMessage(b)
			require.ErrorIs(t, err, tc.want)
			require.True(t, strings.HasPrefix(err.Error(), "pex: "), err.Error())
			require.Equal(t, tc.kind, m.Kind)
			require.Empty(t, m.Addresses)
		})
	}
}

func TestMessageDecodeCountsInvalidEntries(t *testing.T) {
	good := mustAddr(t, "mconn://"+id40("a")+"@192.0.2.7:26656")
	// V1: a bad IP, a port over 65535, port 0, a bad ID, then a good one.
	v1 := testkit.V1Resp(
		testkit.V1Entry(NodeID(id40("a")), "not-an-ip", 1),
		testkit.V1Entry(NodeID(id40("a")), "192.0.2.7", 70000),
		testkit.V1Entry(NodeID(id40("a")), "192.0.2.7", 0),
		testkit.V1Entry("xyz", "192.0.2.7", 1),
		testkit.V1Entry(NodeID(id40("a")), "192.0.2.7", 26656),
	)
	m, err := DecodeMessage(v1)
	require.NoError(t, err)
	require.Equal(t, Message{Kind: ResponseV1, Addresses: []NodeAddress{good}, Invalid: 4}, m)

	v2 := testkit.V2Resp("", "http://x", "mconn://"+id40("a")+"@192.0.2.7:0", id40("a")+"@192.0.2.7:26656")
	m, err = DecodeMessage(v2)
	require.NoError(t, err)
	require.Equal(t, Message{Kind: ResponseV2, Addresses: []NodeAddress{good}, Invalid: 3}, m)
}

// FuzzDecodeMessage: no input panics; every error wraps a sentinel and
// reads "pex: "; what decodes re-encodes to something that decodes the same.
func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte{})
	f.Add(EncodeRequest(false))
	f.Add(EncodeRequest(true))
	f.Add(testkit.V2Resp("mconn://" + id40("a") + "@192.0.2.7:26656"))
	f.Add(testkit.V1Resp(testkit.V1Entry(NodeID(id40("a")), "192.0.2.7", 26656)))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			require.True(t, strings.HasPrefix(err.Error(), "pex: "), err.Error())
			require.True(t, errors.Is(err, ErrMalformedMessage) || errors.Is(err, ErrUnknownMessage) || errors.Is(err, ErrTooManyAddresses), err.Error())
			return
		}
		var out []byte
		if m.Kind.IsRequest() {
			out = EncodeRequest(m.Kind.IsV2())
		} else {
			var addrs []NodeAddress
			for _, a := range m.Addresses {
				if _, ok := a.IP(); ok || m.Kind.IsV2() {
					addrs = append(addrs, a)
				}
			}
			out, err = EncodeResponse(addrs, m.Kind.IsV2())
			require.NoError(t, err)
			m.Addresses, m.Invalid = addrs, 0
			if len(addrs) == 0 {
				m.Addresses = nil
			}
		}
		again, err := DecodeMessage(out)
		require.NoError(t, err)
		require.Equal(t, m, again)
	})
}
