// Package addr holds node IDs and addresses: parsing, validation, the
// canonical forms, routability and network groups.
package addr

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pexnet/pex/internal/errs"
)

// NodeIDLength is the length of a NodeID in hexadecimal characters.
const NodeIDLength = 40

// NodeID identifies a node: the lowercase hex of the 20-byte address of its
// public key. The zero value is not a valid ID.
type NodeID string

// ParseNodeID validates s and returns it lowercased. Uppercase hex is
// accepted; any other character, or a length other than 40, is an error
// wrapping errs.ErrInvalidNodeID.
func ParseNodeID(s string) (NodeID, error) {
	if len(s) != NodeIDLength {
		return "", fmt.Errorf("%w: %q has length %d, want %d", errs.ErrInvalidNodeID, Clip(s), len(s), NodeIDLength)
	}
	lower := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			lower = false
		default:
			return "", fmt.Errorf("%w: %q is not hexadecimal", errs.ErrInvalidNodeID, Clip(s))
		}
	}
	if !lower {
		s = strings.ToLower(s)
	}
	return NodeID(s), nil
}

// Validate reports whether id is a well-formed, lowercase NodeID.
func (id NodeID) Validate() error {
	parsed, err := ParseNodeID(string(id))
	if err != nil {
		return err
	}
	if parsed != id {
		return fmt.Errorf("%w: %q is not lowercase", errs.ErrInvalidNodeID, string(id))
	}
	return nil
}

// Address protocols (URL schemes) pex understands.
const (
	ProtocolMConn  = "mconn"  // Tendermint/CometBFT multiplexed connection
	ProtocolTCP    = "tcp"    // plain TCP, treated like mconn for discovery
	ProtocolMemory = "memory" // in-process transports; has no host or port
)

// NodeAddress is a node's dialable address, written as a URL:
// mconn://<id>@<host>:<port>, tcp://<id>@<host>:<port> or memory:<id>.
// A missing scheme means mconn; IPv6 hosts are bracketed. Hostname holds an
// IP address in canonical form or a lowercase DNS name; DNS names are kept
// as names and resolved at each use.
//
// NodeAddress is comparable and can be used as a map key. ParseNodeAddress
// returns canonical values, for which ParseNodeAddress(a.String()) == a.
type NodeAddress struct {
	Protocol string
	NodeID   NodeID
	Hostname string
	Port     uint16
}

// ParseNodeAddress parses and validates a node URL. Errors wrap
// errs.ErrInvalidAddress or errs.ErrInvalidNodeID.
func ParseNodeAddress(s string) (NodeAddress, error) {
	bad := func(format string, args ...any) (NodeAddress, error) {
		return NodeAddress{}, fmt.Errorf("%w: %q: %s", errs.ErrInvalidAddress, Clip(s), fmt.Sprintf(format, args...))
	}
	if len(s) > maxAddressLength {
		return bad("longer than %d bytes", maxAddressLength)
	}
	if scheme, rest, ok := strings.Cut(s, ":"); ok && strings.EqualFold(scheme, ProtocolMemory) {
		rest = strings.TrimPrefix(rest, "//")
		id, err := ParseNodeID(rest)
		if err != nil {
			return NodeAddress{}, fmt.Errorf("%w: %q: %w", errs.ErrInvalidAddress, Clip(s), err)
		}
		return NodeAddress{Protocol: ProtocolMemory, NodeID: id}, nil
	}
	protocol, rest := ProtocolMConn, s
	if scheme, after, ok := strings.Cut(s, "://"); ok {
		protocol = strings.ToLower(scheme)
		if protocol != ProtocolMConn && protocol != ProtocolTCP {
			return bad("unknown scheme %q", scheme)
		}
		rest = after
	}
	idPart, hostPort, ok := strings.Cut(rest, "@")
	if !ok {
		return bad("missing <id>@")
	}
	id, err := ParseNodeID(idPart)
	if err != nil {
		return NodeAddress{}, fmt.Errorf("%w: %q: %w", errs.ErrInvalidAddress, Clip(s), err)
	}
	if hostPort == "" {
		return bad("missing host and port")
	}
	if strings.HasPrefix(hostPort, ":") {
		return bad("a port needs a host")
	}
	host, portStr, err := net.SplitHostPort(hostPort)
	if err != nil {
		if strings.Count(hostPort, ":") > 1 && !strings.HasPrefix(hostPort, "[") {
			return bad("IPv6 hosts must be bracketed")
		}
		return bad("want host:port")
	}
	port, err := parsePort(portStr)
	if err != nil {
		return bad("%v", err)
	}
	hostname, err := canonicalHost(host, strings.HasPrefix(hostPort, "["))
	if err != nil {
		return bad("%v", err)
	}
	return NodeAddress{Protocol: protocol, NodeID: id, Hostname: hostname, Port: port}, nil
}

// maxAddressLength bounds what ParseNodeAddress reads: scheme, ID, the
// longest DNS name and a port fit well within it.
const maxAddressLength = 512

func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, fmt.Errorf("missing port")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("port %q is not a number", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q out of range 1..65535", s)
	}
	return uint16(n), nil
}

// canonicalHost returns an IP in canonical form (IPv4-mapped IPv6 unmapped)
// or a validated, lowercased DNS name.
func canonicalHost(host string, bracketed bool) (string, error) {
	if host == "" {
		return "", fmt.Errorf("empty host")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return "", fmt.Errorf("IPv6 zones are not allowed")
		}
		if bracketed && !ip.Is6() {
			return "", fmt.Errorf("brackets around a non-IPv6 host")
		}
		// Most hosts are canonical already: keep host (a part of the
		// URL) rather than make the same text again.
		var buf [maxIPText]byte
		if canon := ip.Unmap().AppendTo(buf[:0]); string(canon) != host {
			return string(canon), nil
		}
		return host, nil
	}
	if bracketed {
		return "", fmt.Errorf("bad IPv6 address %q", host)
	}
	if err := validDNSName(host); err != nil {
		return "", err
	}
	return strings.ToLower(host), nil
}

func validDNSName(name string) error {
	if len(strings.TrimSuffix(name, ".")) > 253 {
		return fmt.Errorf("host name longer than 253 bytes")
	}
	allDigits := true
	for label := range strings.SplitSeq(strings.TrimSuffix(name, "."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("bad host name %q", name)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("bad host name %q", name)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			isDigit := '0' <= c && c <= '9'
			if !isDigit {
				allDigits = false
			}
			if !isDigit && !('a' <= c && c <= 'z') && !('A' <= c && c <= 'Z') && c != '-' && c != '_' {
				return fmt.Errorf("bad host name %q", name)
			}
		}
	}
	if allDigits {
		// "1.2.3" or "01.2.3.4": not a valid IP, and a name that looks like
		// one is a mistake, not a host.
		return fmt.Errorf("bad IP address %q", name)
	}
	return nil
}

// NodeAddressFromIP builds the mconn address of a V1 (id, ip, port) entry.
func NodeAddressFromIP(id NodeID, ip netip.Addr, port uint16) (NodeAddress, error) {
	if err := id.Validate(); err != nil {
		return NodeAddress{}, fmt.Errorf("%w: %w", errs.ErrInvalidAddress, err)
	}
	if !ip.IsValid() || ip.Zone() != "" {
		return NodeAddress{}, fmt.Errorf("%w: %s: bad IP", errs.ErrInvalidAddress, id)
	}
	if port == 0 {
		return NodeAddress{}, fmt.Errorf("%w: %s: port 0", errs.ErrInvalidAddress, id)
	}
	return NodeAddress{Protocol: ProtocolMConn, NodeID: id, Hostname: ip.Unmap().String(), Port: port}, nil
}

// maxIPText is room for the text of any IP without a zone (IPv6 with an
// embedded IPv4 is 45 bytes).
const maxIPText = 64

// NodeAddressFromV1 builds the mconn address of a V1 entry from its fields
// as the wire holds them: the node ID and the IP as text, the port as
// decoded. It accepts and refuses what ParseNodeID, netip.ParseAddr and
// NodeAddressFromIP do, with the same errors (all wrap
// errs.ErrInvalidAddress), and makes one string for the node ID and the
// host together (two for an IPv6 entry): the hot path of a V1 response.
func NodeAddressFromV1(id, ip []byte, port uint32) (NodeAddress, error) {
	a, _, _, err := nodeAddressFromV1(id, ip, port)
	return a, err
}

// GroupedFromV1 is NodeAddressFromV1 that also returns the address's
// network group, Group(a), from the IP it parsed rather than from the
// text it made of it, and the FNV-1a hash of its node ID,
// FNV1a(FNVBasis, a.NodeID), read in the pass that checks the ID.
func GroupedFromV1(id, ip []byte, port uint32) (a NodeAddress, group, idHash uint64, err error) {
	a, parsed, idHash, err := nodeAddressFromV1(id, ip, port)
	if err != nil {
		return a, 0, 0, err
	}
	return a, ipGroup(parsed, a.Port), idHash, nil
}

// nodeAddressFromV1 is NodeAddressFromV1, the IP it parsed and the
// FNV-1a hash of the node ID.
func nodeAddressFromV1(id, ip []byte, port uint32) (NodeAddress, netip.Addr, uint64, error) {
	parsed, ok := parseIPv4(ip)
	canonical := ok // parseIPv4 reads only an IPv4 address's canonical text
	if !ok && !isIPv4Text(ip) {
		var err error
		if parsed, err = netip.ParseAddr(string(ip)); err == nil {
			ok = true
		}
	}
	if !ok {
		return NodeAddress{}, netip.Addr{}, 0, fmt.Errorf("%w: bad IP %q", errs.ErrInvalidAddress, Clip(string(ip)))
	}
	if port > math.MaxUint16 {
		return NodeAddress{}, netip.Addr{}, 0, fmt.Errorf("%w: port %d", errs.ErrInvalidAddress, port)
	}
	valid, lower, idHash := isNodeID(id)
	if !valid {
		_, err := ParseNodeID(string(id))
		return NodeAddress{}, netip.Addr{}, 0, fmt.Errorf("%w: %w", errs.ErrInvalidAddress, err)
	}
	if parsed.Zone() != "" {
		return NodeAddress{}, netip.Addr{}, 0, fmt.Errorf("%w: %s: bad IP", errs.ErrInvalidAddress, strings.ToLower(string(id)))
	}
	if port == 0 {
		return NodeAddress{}, netip.Addr{}, 0, fmt.Errorf("%w: %s: port 0", errs.ErrInvalidAddress, strings.ToLower(string(id)))
	}
	host := ip
	if !canonical {
		var buf [maxIPText]byte
		host = parsed.Unmap().AppendTo(buf[:0])
	}
	var b strings.Builder
	b.Grow(len(id) + len(host))
	if lower {
		b.Write(id)
	} else {
		for _, c := range id {
			b.WriteByte(hexLower[c])
		}
	}
	b.Write(host)
	s := b.String()
	return NodeAddress{Protocol: ProtocolMConn, NodeID: NodeID(s[:len(id)]), Hostname: s[len(id):], Port: uint16(port)}, parsed, idHash, nil
}

// isNodeID reports whether b is a node ID ParseNodeID accepts, whether
// it is in lowercase already, and the FNV-1a hash of its lowercase form,
// in one pass with no branch on the digits (a node ID's hex digits are
// random, and a branch on each would be mispredicted often).
func isNodeID(b []byte) (valid, lower bool, hash uint64) {
	if len(b) != NodeIDLength {
		return false, false, 0
	}
	least, changed, hash := byte(0xff), byte(0), FNVBasis
	for _, c := range b {
		l := hexLower[c]
		least = min(least, l) // 0 once a byte is no hex digit
		changed |= l ^ c      // not 0 once a byte is not lowercase
		hash ^= uint64(l)
		hash *= fnvPrime
	}
	return least != 0, changed == 0, hash
}

// hexLower maps each hex digit to its lowercase form and every other
// byte to 0.
var hexLower = func() (t [256]byte) {
	for c := range t {
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
			t[c] = byte(c)
		case 'A' <= c && c <= 'F':
			t[c] = byte(c) + 'a' - 'A'
		}
	}
	return t
}()

// isIPv4Text reports whether netip.ParseAddr reads b as IPv4: a '.'
// before any ':' or '%'.
func isIPv4Text(b []byte) bool {
	for _, c := range b {
		switch c {
		case '.':
			return true
		case ':', '%':
			return false
		}
	}
	return false
}

// parseIPv4 parses b as netip.ParseAddr parses IPv4 text: four decimal
// fields of at most 255, no leading zeros. ok is false for anything else,
// IPv6 included.
func parseIPv4(b []byte) (ip netip.Addr, ok bool) {
	var out [4]byte
	field, val, digits := 0, 0, 0
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			if digits == 1 && val == 0 {
				return netip.Addr{}, false // a leading zero
			}
			val = val*10 + int(c-'0')
			digits++
			if val > 255 {
				return netip.Addr{}, false
			}
		case c == '.' && digits > 0 && field < 3:
			out[field] = byte(val)
			field, val, digits = field+1, 0, 0
		default:
			return netip.Addr{}, false
		}
	}
	if field != 3 || digits == 0 {
		return netip.Addr{}, false
	}
	out[3] = byte(val)
	return netip.AddrFrom4(out), true
}

// String returns the URL form of a, which ParseNodeAddress reads back.
func (a NodeAddress) String() string {
	if a.Protocol == ProtocolMemory {
		return ProtocolMemory + ":" + string(a.NodeID)
	}
	protocol := a.Protocol
	if protocol == "" {
		protocol = ProtocolMConn
	}
	var b strings.Builder
	b.Grow(len(protocol) + 3 + len(a.NodeID) + 1 + len(a.Hostname) + 8)
	b.WriteString(protocol)
	b.WriteString("://")
	b.WriteString(string(a.NodeID))
	b.WriteByte('@')
	if strings.IndexByte(a.Hostname, ':') >= 0 {
		b.WriteByte('[')
		b.WriteString(a.Hostname)
		b.WriteByte(']')
	} else {
		b.WriteString(a.Hostname)
	}
	b.WriteByte(':')
	b.WriteString(strconv.FormatUint(uint64(a.Port), 10))
	return b.String()
}

// AppendV2URL appends V2URL(a, scheme) to b.
func AppendV2URL(b []byte, a NodeAddress, scheme bool) []byte {
	if a.Protocol == ProtocolMemory {
		return append(append(b, ProtocolMemory+":"...), a.NodeID...)
	}
	protocol := a.Protocol
	if protocol == "" {
		protocol = ProtocolMConn
	}
	if scheme || protocol != ProtocolMConn {
		b = append(append(b, protocol...), "://"...)
	}
	b = append(append(b, a.NodeID...), '@')
	if strings.IndexByte(a.Hostname, ':') >= 0 {
		b = append(append(append(b, '['), a.Hostname...), ']')
	} else {
		b = append(b, a.Hostname...)
	}
	return strconv.AppendUint(append(b, ':'), uint64(a.Port), 10)
}

// V2URL returns a as a V2 answer carries it: as String writes it, but an
// mconn address without its scheme (see Config.V2Scheme) unless scheme.
func V2URL(a NodeAddress, scheme bool) string {
	s := a.String()
	if scheme {
		return s
	}
	return strings.TrimPrefix(s, ProtocolMConn+"://")
}

// Validate checks a value built by hand the way ParseNodeAddress checks
// text.
func (a NodeAddress) Validate() error {
	if a.Protocol == ProtocolMemory {
		if a.Hostname != "" || a.Port != 0 {
			return fmt.Errorf("%w: memory address with host or port", errs.ErrInvalidAddress)
		}
		if err := a.NodeID.Validate(); err != nil {
			return fmt.Errorf("%w: %w", errs.ErrInvalidAddress, err)
		}
		return nil
	}
	if a.Protocol != ProtocolMConn && a.Protocol != ProtocolTCP {
		return fmt.Errorf("%w: unknown protocol %q", errs.ErrInvalidAddress, Clip(a.Protocol))
	}
	if err := a.NodeID.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errs.ErrInvalidAddress, err)
	}
	if a.Port == 0 {
		return fmt.Errorf("%w: %s: port 0", errs.ErrInvalidAddress, a.NodeID)
	}
	if ip, err := netip.ParseAddr(a.Hostname); err == nil {
		var buf [maxIPText]byte
		if ip.Zone() != "" || ip.Is4In6() || string(ip.AppendTo(buf[:0])) != a.Hostname {
			return fmt.Errorf("%w: %s: IP %q not in canonical form", errs.ErrInvalidAddress, a.NodeID, Clip(a.Hostname))
		}
		return nil
	}
	if err := validDNSName(a.Hostname); err != nil || strings.ToLower(a.Hostname) != a.Hostname {
		return fmt.Errorf("%w: %s: bad host %q", errs.ErrInvalidAddress, a.NodeID, Clip(a.Hostname))
	}
	return nil
}

// IP returns the host as an IP address, if it is one.
func (a NodeAddress) IP() (netip.Addr, bool) {
	if a.Hostname == "" {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(a.Hostname)
	return ip, err == nil
}

// Resolver looks up the IP addresses of a host name. *net.Resolver
// satisfies it; tests and simulations inject their own.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Resolve returns the (IP, port) endpoints of a: the IP itself, or each
// address a DNS name resolves to now. Memory addresses have none. A failed
// lookup returns an error wrapping both errs.ErrResolve and the resolver's
// error (which may be ctx's). r must return when ctx ends; nil means
// net.DefaultResolver.
func (a NodeAddress) Resolve(ctx context.Context, r Resolver) ([]netip.AddrPort, error) {
	if a.Protocol == ProtocolMemory {
		return nil, nil
	}
	if ip, ok := a.IP(); ok {
		return []netip.AddrPort{netip.AddrPortFrom(ip, a.Port)}, nil
	}
	if r == nil {
		r = net.DefaultResolver
	}
	ips, err := r.LookupNetIP(ctx, "ip", a.Hostname)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errs.ErrResolve, Clip(a.Hostname), err)
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(ip.Unmap(), a.Port))
	}
	return out, nil
}

// Clip shortens hostile input before it goes into an error message.
func Clip(s string) string {
	const limit = 80
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
