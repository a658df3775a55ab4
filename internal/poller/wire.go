package poller

import (
	"net/netip"

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

// endpointsOf converts IP addresses to V1 entries, leaving out memory
// addresses and names (callers resolve names first).
func endpointsOf(addrs []addr.NodeAddress) []V1Endpoint {
	out := make([]V1Endpoint, 0, len(addrs))
	for _, a := range addrs {
		if ip, ok := a.IP(); ok {
			out = append(out, V1Endpoint{ID: a.NodeID, Addr: netip.AddrPortFrom(ip, a.Port)})
		}
	}
	return out
}

// EncodeV1Response encodes a V1 response, at most MaxAddresses entries.
func EncodeV1Response(eps []V1Endpoint) []byte {
	eps = eps[:min(len(eps), MaxAddresses)]
	resp := &pb.PexResponse{Addresses: make([]*pb.PexAddress, len(eps))}
	for i, ep := range eps {
		resp.Addresses[i] = &pb.PexAddress{Id: string(ep.ID), Ip: ep.Addr.Addr().String(), Port: uint32(ep.Addr.Port())}
	}
	return mustMarshal(&pb.PexMessage{Sum: &pb.PexMessage_PexResponse{PexResponse: resp}})
}
