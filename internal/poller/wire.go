package poller

import (
	"net/netip"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/pb"
)

var (
	v1Request = mustMarshal(&pb.PexMessage{Sum: &pb.PexMessage_PexRequest{PexRequest: &pb.PexRequest{}}})
	v2Request = mustMarshal(&pb.PexMessage{Sum: &pb.PexMessage_PexRequestV2{PexRequestV2: &pb.PexRequestV2{}}})
)

// Request returns the encoded request: V2 if v2, else V1. The caller must
// not change the bytes.
func Request(v2 bool) []byte {
	if v2 {
		return v2Request
	}
	return v1Request
}

func mustMarshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err) // only for the constant messages above
	}
	return b
}

// V1Endpoint is one entry of a V1 response.
type V1Endpoint struct {
	ID   addr.NodeID
	Addr netip.AddrPort
}

// The answers are encoded by hand, with protowire, as proto.Marshal
// encodes them from the generated types (TestEncodeAsGenerated holds them
// to it): one allocation for the message, none per entry.

// EncodeV1Response encodes a V1 response, at most MaxAddresses entries.
func EncodeV1Response(eps []V1Endpoint) []byte {
	eps = eps[:min(len(eps), MaxAddresses)]
	var body []byte
	for _, ep := range eps {
		body = appendV1Entry(body, string(ep.ID), ep.Addr.Addr(), ep.Addr.Port())
	}
	return frame(KindResponseV1, body)
}

// encodeV1Answer encodes the V1 answer of addrs, at most MaxAddresses,
// leaving out memory addresses (V1 has no form for them), with body as
// scratch. ok is false if an address has a DNS name: it must be resolved
// first.
func encodeV1Answer(addrs []addr.NodeAddress, body []byte) (msg []byte, ok bool, scratch []byte) {
	body = body[:0]
	n := 0
	for _, a := range addrs {
		ip, isIP := a.IP()
		switch {
		case !isIP && a.Protocol != addr.ProtocolMemory:
			return nil, false, body
		case !isIP || n == MaxAddresses:
			continue
		}
		body = appendV1Entry(body, string(a.NodeID), ip, a.Port)
		n++
	}
	return frame(KindResponseV1, body), true, body
}

// encodeV2Answer encodes the V2 answer of addrs (see addr.V2URL for
// scheme), with body as scratch.
func encodeV2Answer(addrs []addr.NodeAddress, scheme bool, body []byte) (msg, scratch []byte) {
	body = body[:0]
	var buf [maxURL]byte
	for _, a := range addrs {
		url := addr.AppendV2URL(buf[:0], a, scheme)
		body = protowire.AppendTag(body, 1, protowire.BytesType)
		body = protowire.AppendVarint(body, uint64(protowire.SizeTag(1)+protowire.SizeBytes(len(url))))
		body = protowire.AppendTag(body, 1, protowire.BytesType)
		body = protowire.AppendBytes(body, url)
	}
	return frame(KindResponseV2, body), body
}

// maxURL is room for the longest URL of a valid address: scheme, node
// ID, a DNS name of 253 bytes and a port.
const maxURL = 320

// appendV1Entry appends one PexAddress entry of a PexResponse.
func appendV1Entry(b []byte, id string, ip netip.Addr, port uint16) []byte {
	var buf [64]byte
	text := ip.AppendTo(buf[:0])
	size := 0
	if id != "" {
		size += protowire.SizeTag(1) + protowire.SizeBytes(len(id))
	}
	if len(text) > 0 {
		size += protowire.SizeTag(2) + protowire.SizeBytes(len(text))
	}
	if port != 0 {
		size += protowire.SizeTag(3) + protowire.SizeVarint(uint64(port))
	}
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	if id != "" {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, id)
	}
	if len(text) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, text)
	}
	if port != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(port))
	}
	return b
}

// frame wraps the encoded entries of a response of kind k in its
// PexMessage.
func frame(k Kind, body []byte) []byte {
	out := make([]byte, 0, protowire.SizeTag(protowire.Number(k))+protowire.SizeBytes(len(body)))
	out = protowire.AppendTag(out, protowire.Number(k), protowire.BytesType)
	return protowire.AppendBytes(out, body)
}
