package poller

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/errs"
)

// The wire is decoded here by hand, without the generated types of pb:
// those make two strings and a struct for every entry, which the entry's
// parse then reads and drops. Decode accepts and refuses exactly what
// proto.Unmarshal into a pb.PexMessage does (FuzzDecodeAgrees holds it
// to that) and reads the same message from it: the last member of the
// oneof that appears, the occurrences of one message field merged, the
// last occurrence of a scalar, unknown fields and fields of an
// unexpected wire type skipped, strings valid UTF-8.

// Kind is which PEX message the wire holds: the field number of its
// member of PexMessage's oneof, or KindNone.
type Kind uint8

const (
	KindNone       Kind = 0
	KindRequestV1  Kind = 1 // PexRequest
	KindResponseV1 Kind = 2 // PexResponse
	KindRequestV2  Kind = 3 // PexRequestV2
	KindResponseV2 Kind = 4 // PexResponseV2
)

// WireEntry is one entry of a response as the wire holds it, pointing into
// the message's bytes: a V1 entry's ID, IP and port, or a V2 entry's URL
// (in ID).
type WireEntry struct {
	ID, IP []byte
	Port   uint32
}

// Parse parses e as an entry of a response of kind k (errors wrap
// errs.ErrInvalidAddress or errs.ErrInvalidNodeID).
func (e *WireEntry) Parse(k Kind) (addr.NodeAddress, error) {
	if k == KindResponseV1 {
		return addr.NodeAddressFromV1(e.ID, e.IP, e.Port)
	}
	return addr.ParseNodeAddress(string(e.ID))
}

// Decoded is a decoded message: its kind and, for a response, how many
// entries it holds (N) and the first MaxAddresses+1 of them.
type Decoded struct {
	Kind    Kind
	N       int
	Entries []WireEntry
}

var errUTF8 = errors.New("string field contains invalid UTF-8")

// Decode reads a PEX message, reusing scratch for the entries. Its errors
// are proto.Unmarshal's, in substance: the wire is malformed. The entries
// point into b.
func Decode(b []byte, scratch []WireEntry) (Decoded, error) {
	d := Decoded{Entries: scratch[:0]}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return Decoded{}, protowire.ParseError(n)
		}
		b = b[n:]
		if num < 1 || num > 4 || typ != protowire.BytesType {
			if n = skipField(num, typ, b); n < 0 {
				return Decoded{}, protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return Decoded{}, protowire.ParseError(n)
		}
		b = b[n:]
		k := Kind(num)
		if k != d.Kind {
			// Another member of the oneof: it replaces the one before. The
			// same member again is merged into it.
			d.Kind, d.N, d.Entries = k, 0, d.Entries[:0]
		}
		if err := d.readMember(v); err != nil {
			return Decoded{}, err
		}
	}
	return d, nil
}

// readMember reads one occurrence of the oneof's member d.Kind, adding
// the entries of a response.
func (d *Decoded) readMember(b []byte) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		response := d.Kind == KindResponseV1 || d.Kind == KindResponseV2
		if !response || num != 1 || typ != protowire.BytesType {
			if n = skipField(num, typ, b); n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		e, err := readEntry(v, d.Kind == KindResponseV1)
		if err != nil {
			return err
		}
		if d.N++; len(d.Entries) <= MaxAddresses {
			d.Entries = append(d.Entries, e)
		}
	}
	return nil
}

// readEntry reads one entry: a PexAddress if v1, else a PexAddressV2.
func readEntry(b []byte, v1 bool) (WireEntry, error) {
	var e WireEntry
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return WireEntry{}, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType, v1 && num == 2 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return WireEntry{}, protowire.ParseError(n)
			}
			if !ascii(v) && !utf8.Valid(v) {
				return WireEntry{}, errUTF8
			}
			b = b[n:]
			if num == 1 {
				e.ID = v
			} else {
				e.IP = v
			}
		case v1 && num == 3 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return WireEntry{}, protowire.ParseError(n)
			}
			b = b[n:]
			e.Port = uint32(v)
		default:
			if n = skipField(num, typ, b); n < 0 {
				return WireEntry{}, protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return e, nil
}

// ascii reports whether b is ASCII, so valid UTF-8: what an entry's
// fields are (hex digits, an IP's text, a URL), read eight bytes at a
// time with no branch on the bytes. utf8.Valid judges the rest.
func ascii(b []byte) bool {
	var or uint64
	for ; len(b) >= 8; b = b[8:] {
		or |= binary.LittleEndian.Uint64(b)
	}
	for _, c := range b {
		or |= uint64(c)
	}
	return or&0x8080808080808080 == 0
}

// skipField consumes the value of an unknown field, as proto.Unmarshal
// does: a field number out of range, or an end of group with no start, is
// malformed.
func skipField(num protowire.Number, typ protowire.Type, b []byte) int {
	if num > protowire.MaxValidNumber {
		return -1
	}
	return protowire.ConsumeFieldValue(num, typ, b)
}

// malformed wraps a decoding error as the Core reports it.
func malformed(err error) error {
	return fmt.Errorf("%w: %w", errs.ErrMalformedMessage, err)
}
