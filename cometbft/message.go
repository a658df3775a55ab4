package cometbft

import (
	"bytes"
	"fmt"

	gogoproto "github.com/cosmos/gogoproto/proto"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pexnet/pex"
	"github.com/pexnet/pex/pb"
)

// wireMessage carries the encoded bytes of a PEX message through the
// switch untouched. The switch decodes what arrives on a channel into the
// channel's message type and encodes what reactors send from it; this type
// keeps the bytes on the way in (Unmarshal) and hands them back on the way
// out (Marshal), so that the pex reactor, not the switch, decodes and
// judges every message. A CometBFT message type would not do: it has no
// V2 fields, and the switch disconnects a peer whose bytes it cannot
// unwrap before any reactor sees them.
type wireMessage struct {
	b []byte
}

var (
	_ gogoproto.Message     = (*wireMessage)(nil)
	_ gogoproto.Marshaler   = (*wireMessage)(nil)
	_ gogoproto.Unmarshaler = (*wireMessage)(nil)
	_ gogoproto.Merger      = (*wireMessage)(nil)
)

func (m *wireMessage) Reset()         { m.b = nil }
func (*wireMessage) ProtoMessage()    {}
func (m *wireMessage) String() string { return fmt.Sprintf("pex message, %d bytes", len(m.b)) }

// Marshal returns the bytes as they are.
func (m *wireMessage) Marshal() ([]byte, error) { return m.b, nil }

// Unmarshal keeps a copy of b.
func (m *wireMessage) Unmarshal(b []byte) error {
	m.b = bytes.Clone(b)
	return nil
}

// Merge copies src's bytes; the switch clones the channel's prototype
// message (empty) before each Unmarshal.
func (m *wireMessage) Merge(src gogoproto.Message) {
	if s, ok := src.(*wireMessage); ok && s != nil {
		m.b = bytes.Clone(s.b)
	}
}

// trimV1Response cuts a V1 response of more than pex.MaxAddresses entries
// down to the first pex.MaxAddresses, and returns other messages as they
// are. CometBFT answers with up to 250 entries (a random 23% of its book,
// at least 32), while the pex reactor takes more than 100 as a protocol
// violation; the adapter applies this to peers without the capability
// (CometBFT nodes) only, so a CometBFT node with a large book is not
// disconnected for an honest answer. CometBFT's selection is already
// random, so the first 100 are as good a sample as any.
func trimV1Response(msg []byte) []byte {
	// A V1 response is field 2 of PexMessage, length-delimited: tag 0x12.
	if len(msg) == 0 || msg[0] != 0x12 || v1Entries(msg) <= pex.MaxAddresses {
		return msg
	}
	var m pb.PexMessage
	if proto.Unmarshal(msg, &m) != nil {
		return msg // the reactor reports it
	}
	resp := m.GetPexResponse()
	if resp == nil || len(resp.Addresses) <= pex.MaxAddresses {
		return msg
	}
	resp.Addresses = resp.Addresses[:pex.MaxAddresses]
	out, err := proto.Marshal(&m)
	if err != nil {
		return msg
	}
	return out
}

// v1Entries counts the entries of every V1 response field of msg, without
// decoding them (an honest answer is let through untouched and unparsed);
// malformed bytes count as none (the reactor reports them).
func v1Entries(msg []byte) int {
	n := 0
	for len(msg) > 0 {
		num, typ, k := protowire.ConsumeTag(msg)
		if k < 0 {
			return 0
		}
		msg = msg[k:]
		if num != 2 || typ != protowire.BytesType {
			if k = protowire.ConsumeFieldValue(num, typ, msg); k < 0 {
				return 0
			}
			msg = msg[k:]
			continue
		}
		resp, k := protowire.ConsumeBytes(msg)
		if k < 0 {
			return 0
		}
		msg = msg[k:]
		for len(resp) > 0 {
			num, typ, k := protowire.ConsumeTag(resp)
			if k < 0 {
				return 0
			}
			resp = resp[k:]
			if k = protowire.ConsumeFieldValue(num, typ, resp); k < 0 {
				return 0
			}
			resp = resp[k:]
			if num == 1 && typ == protowire.BytesType {
				n++
			}
		}
	}
	return n
}
