package addr

import (
	"net/netip"
	"strings"
)

// Group kinds, in the top bits of a group value so kinds never collide.
const (
	GroupUnknown uint64 = iota << 60 // a source we hold no address for
	groupIPv4
	groupIPv6
	groupDNS
	groupLocal
	groupMemory
	groupKindMask        = 0xf << 60
	NoGroup       uint64 = groupKindMask // no group at all (no newcomer in inboundVictim)
)

// Group returns the network group of an address as a 64-bit value:
// exact for IP groups, a hash for names and local endpoints.
func Group(a NodeAddress) uint64 {
	if ip, ok := a.IP(); ok {
		return ipGroup(ip.WithZone(""), a.Port)
	}
	if a.Hostname == "" {
		return groupMemory | FNV1a(FNVBasis, a.NodeID)&^groupKindMask
	}
	host := strings.ToLower(strings.TrimSuffix(a.Hostname, "."))
	if i := strings.LastIndexByte(host, '.'); i > 0 {
		if j := strings.LastIndexByte(host[:i], '.'); j >= 0 {
			host = host[j+1:]
		}
	}
	return groupDNS | FNV1a(FNVBasis, host)&^groupKindMask
}

// RemoteGroup returns the network group of a connection's observed remote
// address, as Group does for an address announced with that IP and port;
// addr.NoGroup if ap is not valid.
func RemoteGroup(ap netip.AddrPort) uint64 {
	if !ap.IsValid() {
		return NoGroup
	}
	return ipGroup(ap.Addr().WithZone(""), ap.Port())
}

// Diverse reports whether outbound connections into group g are
// bounded (PeerManagerOptions.MaxOutboundPerGroup): public IP groups only,
// since a DNS domain or a private network may well hold every node.
func Diverse(g uint64) bool {
	k := g & groupKindMask
	return k == groupIPv4 || k == groupIPv6
}

func ipGroup(ip netip.Addr, port uint16) uint64 {
	ip = ip.Unmap()
	if v4, ok := embeddedIPv4(ip); ok {
		ip = v4
	}
	switch {
	case !IsRoutableIP(ip):
		b := ip.As16()
		h := FNV1a(FNVBasis, b[:])
		h = FNV1a(h, []byte{byte(port >> 8), byte(port)})
		return groupLocal | h&^groupKindMask
	case ip.Is4():
		b := ip.As4()
		return groupIPv4 | uint64(b[0])<<8 | uint64(b[1])
	default:
		b := ip.As16()
		return groupIPv6 | uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	}
}

var (
	sixToFour = netip.MustParsePrefix("2002::/16")
	teredo    = netip.MustParsePrefix("2001::/32")
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
)

// embeddedIPv4 returns the IPv4 address an IPv6 transition form carries.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	b := ip.As16()
	switch {
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	case teredo.Contains(ip):
		// The client's address is stored inverted in the last 32 bits.
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}), true
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	}
	return netip.Addr{}, false
}

// FNVBasis starts an FNV-1a hash; FNV1a continues one over b.
const FNVBasis uint64 = 14695981039346656037

func FNV1a[T ~string | ~[]byte](h uint64, b T) uint64 {
	for i := 0; i < len(b); i++ {
		h ^= uint64(b[i])
		h *= fnvPrime
	}
	return h
}

const fnvPrime = 1099511628211

// Mix is a bijective 64-bit finaliser (splitmix64's).
func Mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
