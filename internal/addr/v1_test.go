package addr

import (
	"fmt"
	"math"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pexnet/pex/internal/errs"
)

// v1Reference is how a V1 entry was parsed before NodeAddressFromV1, from
// the generated type's strings: NodeAddressFromV1 must agree with it.
func v1Reference(id, ip string, port uint32) (NodeAddress, error) {
	parsed, err := netip.ParseAddr(ip)
	if err != nil {
		return NodeAddress{}, fmt.Errorf("%w: bad IP %q", errs.ErrInvalidAddress, Clip(ip))
	}
	if port > math.MaxUint16 {
		return NodeAddress{}, fmt.Errorf("%w: port %d", errs.ErrInvalidAddress, port)
	}
	nid, err := ParseNodeID(id)
	if err != nil {
		return NodeAddress{}, fmt.Errorf("%w: %w", errs.ErrInvalidAddress, err)
	}
	return NodeAddressFromIP(nid, parsed, uint16(port))
}

// requireV1Agrees checks NodeAddressFromV1 against v1Reference: the same
// address, or the same error.
func requireV1Agrees(t *testing.T, id, ip string, port uint32) {
	t.Helper()
	want, wantErr := v1Reference(id, ip, port)
	got, err := NodeAddressFromV1([]byte(id), []byte(ip), port)
	if wantErr != nil {
		require.Error(t, err, "%q %q %d", id, ip, port)
		require.Equal(t, wantErr.Error(), err.Error())
		require.ErrorIs(t, err, errs.ErrInvalidAddress)
		_, _, _, groupedErr := GroupedFromV1([]byte(id), []byte(ip), port)
		require.Equal(t, err, groupedErr)
		return
	}
	require.NoError(t, err, "%q %q %d", id, ip, port)
	require.Equal(t, want, got)
	require.NoError(t, got.Validate())
	grouped, g, idHash, err := GroupedFromV1([]byte(id), []byte(ip), port)
	require.NoError(t, err)
	require.Equal(t, got, grouped)
	require.Equal(t, Group(got), g, "%q %q %d", id, ip, port)
	require.Equal(t, FNV1a(FNVBasis, got.NodeID), idHash, "%q", id)
}

func TestNodeAddressFromV1(t *testing.T) {
	ips := []string{
		"192.0.2.7", "0.0.0.0", "255.255.255.255", "1.2.3.4", "10.0.0.1",
		"256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "1..2.3", ".1.2.3", "1.2.3.", "1.2.3.4 ", "",
		"1.2.3.04", "1.2.3.0", "1.2.3.00", "1.2.3.1000", "1.2.3.4%eth0", "a.b.c.d",
		"2001:db8::1", "::ffff:192.0.2.7", "::ffff:c000:0207", "fe80::1%eth0", "2001:DB8::1", "::", "[::1]", ":", "%", "1:2",
		"2002:c000:207::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "64:ff9b::1.2.3.4", "::ffff:10.0.0.1", "2600::1",
	}
	ids := []string{testID, testIDUpper, testID[:39], testID + "0", "g" + testID[1:], ""}
	for _, ip := range ips {
		for _, id := range ids {
			for _, port := range []uint32{26656, 0, 1, 65535, 65536, math.MaxUint32} {
				requireV1Agrees(t, id, ip, port)
			}
		}
	}
	a, err := NodeAddressFromV1([]byte(testIDUpper), []byte("::ffff:192.0.2.7"), 26656)
	require.NoError(t, err)
	require.Equal(t, NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: "192.0.2.7", Port: 26656}, a)
}

// One allocation for an IPv4 entry: the string holding the node ID and
// the host.
func TestNodeAddressFromV1Allocs(t *testing.T) {
	id, ip := []byte(testIDUpper), []byte("192.0.2.7")
	require.Equal(t, 1.0, testing.AllocsPerRun(100, func() {
		if _, err := NodeAddressFromV1(id, ip, 26656); err != nil {
			t.Fatal(err)
		}
	}))
	// A V2 URL's node ID and host are parts of it.
	url := "mconn://" + testID + "@192.0.2.7:26656"
	require.Equal(t, 0.0, testing.AllocsPerRun(100, func() {
		if _, err := ParseNodeAddress(url); err != nil {
			t.Fatal(err)
		}
	}))
	a, err := ParseNodeAddress(url)
	require.NoError(t, err)
	require.Equal(t, 0.0, testing.AllocsPerRun(100, func() {
		if err := a.Validate(); err != nil {
			t.Fatal(err)
		}
	}))
}

// FuzzNodeAddressFromV1: the parser of V1 entries from their bytes agrees
// with netip.ParseAddr, ParseNodeID and NodeAddressFromIP on any input.
func FuzzNodeAddressFromV1(f *testing.F) {
	f.Add(testID, "192.0.2.7", uint32(26656))
	f.Add(testIDUpper, "01.2.3.4", uint32(0))
	f.Add(testID, "::ffff:1.2.3.4", uint32(70000))
	f.Add(testID, "fe80::1%eth0", uint32(1))
	f.Fuzz(func(t *testing.T, id, ip string, port uint32) {
		requireV1Agrees(t, id, ip, port)
	})
}
