package pex

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/pexnet/pex/pb"
)

// wireVectorsPath is a copy of the shared vectors, kept in the repository
// so a fresh clone tests on its own; sharedVectorsPath is the original,
// next to the checkout in CI, which the copy must equal when present.
const (
	wireVectorsPath   = "testdata/wire-vectors.json"
	sharedVectorsPath = "../shared/wire-vectors.json"
)

func TestWireVectorsCopyMatchesShared(t *testing.T) {
	shared, err := os.ReadFile(sharedVectorsPath)
	if os.IsNotExist(err) {
		// Outside CI the shared folder may be absent; the copy stands.
		return
	}
	require.NoError(t, err)
	local, err := os.ReadFile(wireVectorsPath)
	require.NoError(t, err)
	require.Equal(t, string(shared), string(local), "testdata/wire-vectors.json is stale: copy ../shared/wire-vectors.json")
}

// wireVector is one entry of wire-vectors.json: bytes encoded by the
// published Tendermint v0.35.9 or CometBFT v0.38.26 Go packages.
type wireVector struct {
	Name    string `json:"name"`
	Source  string `json:"source"`
	Hex     string `json:"hex"`
	Content string `json:"content"`
}

// id40 returns a NodeID made of 40 copies of c, as in the vectors.
func id40(c string) string { return strings.Repeat(c, 40) }

// wireExpected holds, per vector name, the message its "content" field
// describes, written out by hand. CometBFT's Message{pex_request=1,
// pex_addrs=2} is wire-identical to our PexRequest / PexResponse.
var wireExpected = map[string]*pb.PexMessage{
	"v1-request": {Sum: &pb.PexMessage_PexRequest{PexRequest: &pb.PexRequest{}}},
	"v2-request": {Sum: &pb.PexMessage_PexRequestV2{PexRequestV2: &pb.PexRequestV2{}}},
	"v2-response-empty": {Sum: &pb.PexMessage_PexResponseV2{
		PexResponseV2: &pb.PexResponseV2{},
	}},
	"v1-response": {Sum: &pb.PexMessage_PexResponse{PexResponse: &pb.PexResponse{
		Addresses: []*pb.PexAddress{
			{Id: id40("a"), Ip: "192.0.2.7", Port: 26656},
			{Id: id40("b"), Ip: "2001:db8::7", Port: 26657},
		},
	}}},
	"v2-response": {Sum: &pb.PexMessage_PexResponseV2{PexResponseV2: &pb.PexResponseV2{
		Addresses: []*pb.PexAddressV2{
			{Url: "mconn://" + id40("c") + "@192.0.2.8:26656"},
			{Url: "mconn://" + id40("d") + "@[2001:db8::8]:26656"},
			{Url: "memory:" + id40("e")},
		},
	}}},
	"cometbft-request": {Sum: &pb.PexMessage_PexRequest{PexRequest: &pb.PexRequest{}}},
	"cometbft-addrs": {Sum: &pb.PexMessage_PexResponse{PexResponse: &pb.PexResponse{
		Addresses: []*pb.PexAddress{
			{Id: id40("f"), Ip: "198.51.100.9", Port: 26656},
		},
	}}},
}

func loadWireVectors(t *testing.T) []wireVector {
	t.Helper()
	data, err := os.ReadFile(wireVectorsPath)
	require.NoError(t, err, "wire vectors are required; they must sit at %s", wireVectorsPath)
	var vectors []wireVector
	require.NoError(t, json.Unmarshal(data, &vectors))
	require.NotEmpty(t, vectors)
	return vectors
}

func TestWireVectors(t *testing.T) {
	vectors := loadWireVectors(t)
	seen := make(map[string]bool)
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			want, ok := wireExpected[v.Name]
			require.True(t, ok, "no expectation written for vector %q (%s)", v.Name, v.Content)
			seen[v.Name] = true

			raw, err := hex.DecodeString(v.Hex)
			require.NoError(t, err)

			var got pb.PexMessage
			require.NoError(t, proto.Unmarshal(raw, &got))
			require.Empty(t, got.ProtoReflect().GetUnknown(), "unknown fields in %s", v.Content)
			require.IsType(t, want.Sum, got.Sum, "oneof case of %s", v.Content)
			require.True(t, proto.Equal(want, &got),
				"decoded %s\nwant %v\ngot  %v", v.Content, want, &got)

			// Field by field too, so a failure names the wrong value.
			switch w := want.Sum.(type) {
			case *pb.PexMessage_PexResponse:
				gotAddrs := got.GetPexResponse().GetAddresses()
				require.Len(t, gotAddrs, len(w.PexResponse.Addresses))
				for i, a := range w.PexResponse.Addresses {
					require.Equal(t, a.Id, gotAddrs[i].GetId(), "address %d id", i)
					require.Equal(t, a.Ip, gotAddrs[i].GetIp(), "address %d ip", i)
					require.Equal(t, a.Port, gotAddrs[i].GetPort(), "address %d port", i)
				}
			case *pb.PexMessage_PexResponseV2:
				gotAddrs := got.GetPexResponseV2().GetAddresses()
				require.Len(t, gotAddrs, len(w.PexResponseV2.Addresses))
				for i, a := range w.PexResponseV2.Addresses {
					require.Equal(t, a.Url, gotAddrs[i].GetUrl(), "address %d url", i)
				}
			}

			out, err := proto.MarshalOptions{Deterministic: true}.Marshal(&got)
			require.NoError(t, err)
			require.Equal(t, v.Hex, hex.EncodeToString(out), "re-encoding of %s", v.Content)
		})
	}
	for name := range wireExpected {
		require.True(t, seen[name], "vector %q missing from %s", name, wireVectorsPath)
	}
}

func TestWireGoldenRequests(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  *pb.PexMessage
		hex  string
	}{
		{"v1-request", &pb.PexMessage{Sum: &pb.PexMessage_PexRequest{PexRequest: &pb.PexRequest{}}}, "0a00"},
		{"v2-request", &pb.PexMessage{Sum: &pb.PexMessage_PexRequestV2{PexRequestV2: &pb.PexRequestV2{}}}, "1a00"},
		{"v2-response-empty", &pb.PexMessage{Sum: &pb.PexMessage_PexResponseV2{PexResponseV2: &pb.PexResponseV2{}}}, "2200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := proto.MarshalOptions{Deterministic: true}.Marshal(tc.msg)
			require.NoError(t, err)
			require.Equal(t, tc.hex, hex.EncodeToString(out))
		})
	}
}

func TestWireDescriptorFieldNumbers(t *testing.T) {
	type field struct {
		number   protoreflect.FieldNumber
		kind     protoreflect.Kind
		repeated bool
		message  protoreflect.FullName // for message-typed fields
	}
	want := map[protoreflect.Message]map[protoreflect.Name]field{
		(&pb.PexAddress{}).ProtoReflect(): {
			"id":   {number: 1, kind: protoreflect.StringKind},
			"ip":   {number: 2, kind: protoreflect.StringKind},
			"port": {number: 3, kind: protoreflect.Uint32Kind},
		},
		(&pb.PexRequest{}).ProtoReflect(): {},
		(&pb.PexResponse{}).ProtoReflect(): {
			"addresses": {number: 1, kind: protoreflect.MessageKind, repeated: true, message: "pex.v1.PexAddress"},
		},
		(&pb.PexAddressV2{}).ProtoReflect(): {
			"url": {number: 1, kind: protoreflect.StringKind},
		},
		(&pb.PexRequestV2{}).ProtoReflect(): {},
		(&pb.PexResponseV2{}).ProtoReflect(): {
			"addresses": {number: 1, kind: protoreflect.MessageKind, repeated: true, message: "pex.v1.PexAddressV2"},
		},
		(&pb.PexMessage{}).ProtoReflect(): {
			"pex_request":     {number: 1, kind: protoreflect.MessageKind, message: "pex.v1.PexRequest"},
			"pex_response":    {number: 2, kind: protoreflect.MessageKind, message: "pex.v1.PexResponse"},
			"pex_request_v2":  {number: 3, kind: protoreflect.MessageKind, message: "pex.v1.PexRequestV2"},
			"pex_response_v2": {number: 4, kind: protoreflect.MessageKind, message: "pex.v1.PexResponseV2"},
		},
	}
	for m, fields := range want {
		md := m.Descriptor()
		t.Run(string(md.Name()), func(t *testing.T) {
			require.Equal(t, protoreflect.FullName("pex.v1."+md.Name()), md.FullName())
			require.Equal(t, len(fields), md.Fields().Len(), "number of fields")
			for name, f := range fields {
				fd := md.Fields().ByName(name)
				require.NotNil(t, fd, "field %s missing", name)
				require.Equal(t, f.number, fd.Number(), "number of %s", name)
				require.Equal(t, f.kind, fd.Kind(), "kind of %s", name)
				require.Equal(t, f.repeated, fd.IsList(), "cardinality of %s", name)
				if f.message != "" {
					require.Equal(t, f.message, fd.Message().FullName(), "type of %s", name)
				}
			}
		})
	}

	sum := (&pb.PexMessage{}).ProtoReflect().Descriptor().Oneofs().ByName("sum")
	require.NotNil(t, sum, "oneof sum missing")
	require.Equal(t, 4, sum.Fields().Len())
	for i, name := range []protoreflect.Name{"pex_request", "pex_response", "pex_request_v2", "pex_response_v2"} {
		require.Equal(t, name, sum.Fields().Get(i).Name())
		require.Equal(t, protoreflect.FieldNumber(i+1), sum.Fields().Get(i).Number())
	}
}
