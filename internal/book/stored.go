package book

import "github.com/pexnet/pex/internal/addr"

// storedAddr is an address as an entry keeps it: without its node ID,
// which is the entry's (an entry holds addresses of its own ID only), and
// with its protocol as an index in protocols, one of the three that
// addr.NodeAddress.Validate admits. 24 bytes where an addr.NodeAddress
// takes 56.
type storedAddr struct {
	host  string
	port  uint16
	proto uint8
}

// protocols are the protocols a stored address may have.
var protocols = [...]string{addr.ProtocolMConn, addr.ProtocolTCP, addr.ProtocolMemory}

// store returns the stored form of a, which the book validated: every
// address is stored through CheckAddress, so an unknown protocol is a
// broken invariant.
func store(a addr.NodeAddress) storedAddr {
	for i, p := range protocols {
		if a.Protocol == p {
			return storedAddr{host: a.Hostname, port: a.Port, proto: uint8(i)}
		}
	}
	panic("book: storing an address of unknown protocol " + addr.Clip(a.Protocol))
}

// is reports whether s is a, an address of the ID s is stored under.
func (s storedAddr) is(a addr.NodeAddress) bool {
	return s.host == a.Hostname && s.port == a.Port && protocols[s.proto] == a.Protocol
}

// of returns s as the address of node id.
func (s storedAddr) of(id addr.NodeID) addr.NodeAddress {
	return addr.NodeAddress{Protocol: protocols[s.proto], NodeID: id, Hostname: s.host, Port: s.port}
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }
