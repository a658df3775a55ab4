package addr

import (
	"encoding/binary"
	"net/netip"
	"strings"
)

// Unroutable lists the ranges strict mode refuses beyond what netip's
// predicates cover: documentation, shared (CGNAT), benchmarking,
// "this network", reserved and the IPv6 discard and documentation blocks.
var Unroutable = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// IsRoutable reports whether a could be reached across the public
// internet. Memory addresses and "localhost" are not; other DNS names are
// given the benefit of the doubt, since they are resolved at each use.
func IsRoutable(a NodeAddress) bool {
	if a.Protocol == ProtocolMemory {
		return false
	}
	ip, ok := a.IP()
	if !ok {
		h := strings.TrimSuffix(a.Hostname, ".")
		return h != "localhost" && !strings.HasSuffix(h, ".localhost")
	}
	return IsRoutableIP(ip)
}

// IsRoutableIP is IsRoutable for an IP address.
func IsRoutableIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.Is4() {
		b := ip.As4()
		v := binary.BigEndian.Uint32(b[:])
		for _, r := range unroutable4 {
			if v&r.mask == r.base {
				return false
			}
		}
		return true
	}
	return routableByPrefixes(ip)
}

// routableByPrefixes is the rule IsRoutableIP follows, read against
// netip's predicates and Unroutable's prefixes: what it does for IPv6,
// and what unroutable4's masks give for IPv4.
func routableByPrefixes(ip netip.Addr) bool {
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		// IsGlobalUnicast is false for loopback, link-local, multicast and
		// unspecified; IsPrivate covers RFC 1918 and fc00::/7.
		return false
	}
	for _, p := range Unroutable {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// unroutable4 is the IPv4 ranges IsRoutableIP refuses, each as the bits
// of an address it fixes (mask) and their values (base): those that are
// not global unicast or are private by netip's predicates
// (IsGlobalUnicast, IsPrivate), and Unroutable's. IsRoutableIP reads an
// IPv4 address, most of what it is asked, against these alone.
var unroutable4 = ipv4Ranges(append(append([]netip.Prefix(nil), notGlobal4...), Unroutable...))

// notGlobal4 is the IPv4 ranges where netip.Addr.IsGlobalUnicast is false
// or IsPrivate true: loopback, multicast, link-local, and RFC 1918's (the
// unspecified and broadcast addresses are in Unroutable's 0.0.0.0/8 and
// 240.0.0.0/4).
var notGlobal4 = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
}

type ipv4Range struct{ base, mask uint32 }

func ipv4Ranges(ps []netip.Prefix) []ipv4Range {
	var out []ipv4Range
	for _, p := range ps {
		if !p.Addr().Is4() {
			continue
		}
		mask := ^uint32(0) << (32 - p.Bits())
		b := p.Masked().Addr().As4()
		out = append(out, ipv4Range{binary.BigEndian.Uint32(b[:]), mask})
	}
	return out
}
