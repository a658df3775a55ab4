package pex

import (
	"net/netip"

	"github.com/pexnet/pex/internal/addr"
)

// NodeIDLength is the length of a NodeID in hexadecimal characters.
const NodeIDLength = addr.NodeIDLength

// NodeID identifies a node: the lowercase hex of the 20-byte address of its
// public key. The zero value is not a valid ID. Validate checks one built
// by hand.
type NodeID = addr.NodeID

// ParseNodeID validates s and returns it lowercased. Uppercase hex is
// accepted; any other character, or a length other than 40, is an error
// wrapping ErrInvalidNodeID.
func ParseNodeID(s string) (NodeID, error) { return addr.ParseNodeID(s) }

// Address protocols (URL schemes) pex understands.
const (
	ProtocolMConn  = addr.ProtocolMConn  // Tendermint/CometBFT multiplexed connection
	ProtocolTCP    = addr.ProtocolTCP    // plain TCP, treated like mconn for discovery
	ProtocolMemory = addr.ProtocolMemory // in-process transports; has no host or port
)

// NodeAddress is a node's dialable address, written as a URL:
// mconn://<id>@<host>:<port>, tcp://<id>@<host>:<port> or memory:<id>.
// A missing scheme means mconn; IPv6 hosts are bracketed. Hostname holds an
// IP address in canonical form or a lowercase DNS name; DNS names are kept
// as names and resolved at each use (Resolve).
//
// NodeAddress is comparable and can be used as a map key. ParseNodeAddress
// returns canonical values, for which ParseNodeAddress(a.String()) == a;
// Validate checks a value built by hand the same way.
type NodeAddress = addr.NodeAddress

// ParseNodeAddress parses and validates a node URL. Errors wrap
// ErrInvalidAddress or ErrInvalidNodeID.
func ParseNodeAddress(s string) (NodeAddress, error) { return addr.ParseNodeAddress(s) }

// NodeAddressFromIP builds the mconn address of a V1 (id, ip, port) entry.
// An invalid ID, IP or port is an error wrapping ErrInvalidAddress.
func NodeAddressFromIP(id NodeID, ip netip.Addr, port uint16) (NodeAddress, error) {
	return addr.NodeAddressFromIP(id, ip, port)
}

// Resolver looks up the IP addresses of a host name. *net.Resolver
// satisfies it; tests and simulations inject their own.
type Resolver = addr.Resolver
