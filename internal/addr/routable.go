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
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		// IsGlobalUnicast is false for loopback, link-local, multicast and
		// unspecified; IsPrivate covers RFC 1918 and fc00::/7.
		return false
	}
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
	for _, p := range Unroutable {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// unroutable4 is Unroutable's IPv4 ranges, each as the bits of an
// address it fixes (mask) and their values (base): IsRoutableIP reads
// an IPv4 address, most of what it is asked, against these.
var unroutable4 = ipv4Ranges(Unroutable)

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
