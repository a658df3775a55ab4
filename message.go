package pex

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/poller"
	"github.com/pexnet/pex/pb"
)

// MessageKind is which of the four PEX messages a Message is.
type MessageKind uint8

const (
	// RequestV1 asks for addresses in V1 form (CometBFT, Tendermint v0.34).
	RequestV1 MessageKind = iota + 1
	// ResponseV1 answers a RequestV1: entries of a node ID, an IP and a port.
	ResponseV1
	// RequestV2 asks for addresses in V2 form (Tendermint v0.35, pex).
	RequestV2
	// ResponseV2 answers a RequestV2: entries that are node URLs.
	ResponseV2
)

// String names the kind as the tests and logs write it ("request v1", ...).
func (k MessageKind) String() string {
	switch k {
	case RequestV1:
		return "request v1"
	case ResponseV1:
		return "response v1"
	case RequestV2:
		return "request v2"
	case ResponseV2:
		return "response v2"
	}
	return fmt.Sprintf("MessageKind(%d)", uint8(k))
}

// IsRequest reports whether k is a request, of either version.
func (k MessageKind) IsRequest() bool { return k == RequestV1 || k == RequestV2 }

// IsV2 reports whether k is a V2 message.
func (k MessageKind) IsV2() bool { return k == RequestV2 || k == ResponseV2 }

// Message is one PEX message, as DecodeMessage reads it: what a transport
// author or a test writer needs without importing pb or protobuf.
type Message struct {
	Kind MessageKind
	// Addresses are the entries of a response that parse, in order; nil
	// for a request. V1 entries come back as mconn addresses (V1 carries
	// no scheme); V2 entries written without a scheme are mconn too.
	Addresses []NodeAddress
	// Invalid counts the entries of a response that do not parse (a bad
	// node ID, IP, port or URL). They are left out of Addresses and are
	// not an error: the reactor too skips them and judges the answer by
	// their share.
	Invalid int
}

// EncodeRequest returns a request for addresses: V2 if v2, else V1. The
// bytes are 0a00 (V1) and 1a00 (V2), as CometBFT and Tendermint write them.
func EncodeRequest(v2 bool) []byte {
	return slices.Clone(poller.Request(v2))
}

// EncodeResponse returns a response carrying addrs, in order: V2 if v2,
// else V1. It is the message a test sends to a reactor as a peer's
// answer, or a transport relays.
//
// A V2 entry is the address's URL with its scheme
// (mconn://<id>@<host>:<port>, memory:<id>), as Tendermint v0.35 writes
// it. A reactor leaves mconn:// out by default (Config.V2Scheme): both
// forms decode to the same addresses, so compare what DecodeMessage
// returns rather than bytes.
//
// A V1 entry holds an IP, so V1 takes IP addresses only: an address with
// a DNS name (resolve it first, with NodeAddress.Resolve) or a memory
// address is an error wrapping ErrInvalidAddress, rather than an entry
// silently left out. V1 has no scheme: a tcp:// address decodes as mconn.
//
// Each address must validate (errors wrap ErrInvalidAddress or
// ErrInvalidNodeID as NodeAddress.Validate's do), and there may be at most
// MaxAddresses of them (ErrTooManyAddresses): a reactor refuses a longer
// response. No addresses make an empty response, which is valid.
func EncodeResponse(addrs []NodeAddress, v2 bool) ([]byte, error) {
	if len(addrs) > MaxAddresses {
		return nil, fmt.Errorf("%w: %d, limit %d", ErrTooManyAddresses, len(addrs), MaxAddresses)
	}
	for i, a := range addrs {
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("%w (entry %d)", err, i)
		}
	}
	if v2 {
		resp := &pb.PexResponseV2{Addresses: make([]*pb.PexAddressV2, len(addrs))}
		for i, a := range addrs {
			resp.Addresses[i] = &pb.PexAddressV2{Url: addr.V2URL(a, true)}
		}
		return marshalMessage(&pb.PexMessage{Sum: &pb.PexMessage_PexResponseV2{PexResponseV2: resp}}), nil
	}
	resp := &pb.PexResponse{Addresses: make([]*pb.PexAddress, len(addrs))}
	for i, a := range addrs {
		ip, ok := a.IP()
		if !ok {
			return nil, fmt.Errorf("%w: entry %d: %s: a V1 entry needs an IP host", ErrInvalidAddress, i, a)
		}
		resp.Addresses[i] = &pb.PexAddress{Id: string(a.NodeID), Ip: ip.String(), Port: uint32(a.Port)}
	}
	return marshalMessage(&pb.PexMessage{Sum: &pb.PexMessage_PexResponse{PexResponse: resp}}), nil
}

// DecodeMessage reads one PEX message, as a reactor does before judging
// it. Bytes that do not decode are an error wrapping ErrMalformedMessage;
// a message with none of the four kinds set (empty bytes, or only fields
// pex does not know) wraps ErrUnknownMessage; a response of more than
// MaxAddresses entries wraps ErrTooManyAddresses, with Kind set and no
// addresses (a reactor refuses it whole). Entries that do not parse are
// counted in Invalid, not an error. DecodeMessage does not bound the size
// of b, as a reactor does before it decodes (Config.MaxMessageSize). It
// never panics.
func DecodeMessage(b []byte) (Message, error) {
	d, err := poller.Decode(b, nil)
	if err != nil {
		return Message{}, fmt.Errorf("%w: %w", ErrMalformedMessage, err)
	}
	out := Message{Kind: messageKinds[d.Kind]}
	switch d.Kind {
	case poller.KindRequestV1, poller.KindRequestV2:
		return out, nil
	case poller.KindResponseV1, poller.KindResponseV2:
		if err := checkEntries(d.N); err != nil {
			return out, err
		}
		for i := range d.Entries {
			if a, err := d.Entries[i].Parse(d.Kind); err == nil {
				out.Addresses = append(out.Addresses, a)
			} else {
				out.Invalid++
			}
		}
		return out, nil
	}
	return Message{}, ErrUnknownMessage
}

// messageKinds names the kinds of the wire.
var messageKinds = [...]MessageKind{
	poller.KindRequestV1:  RequestV1,
	poller.KindResponseV1: ResponseV1,
	poller.KindRequestV2:  RequestV2,
	poller.KindResponseV2: ResponseV2,
}

// checkEntries refuses a response of more than MaxAddresses entries.
func checkEntries(n int) error {
	if n > MaxAddresses {
		return fmt.Errorf("%w: %d, limit %d", ErrTooManyAddresses, n, MaxAddresses)
	}
	return nil
}

// marshalMessage encodes m deterministically; the messages built here
// always encode.
func marshalMessage(m *pb.PexMessage) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		panic("pex: encoding a PexMessage: " + err.Error()) // unreachable: every field is valid UTF-8 or a number
	}
	return b
}
