package addr

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pexnet/pex/internal/errs"
)

const (
	testID      = "0123456789abcdef0123456789abcdef01234567"
	testIDUpper = "0123456789ABCDEF0123456789ABCDEF01234567"
)

func TestParseNodeID(t *testing.T) {
	good := []struct{ in, want string }{
		{testID, testID},
		{testIDUpper, testID},
		{strings.Repeat("f", 40), strings.Repeat("f", 40)},
		{strings.Repeat("0", 40), strings.Repeat("0", 40)},
	}
	for _, tc := range good {
		id, err := ParseNodeID(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, NodeID(tc.want), id)
		require.NoError(t, id.Validate())
	}
	bad := map[string]string{
		"empty":       "",
		"39 chars":    testID[:39],
		"41 chars":    testID + "0",
		"non-hex g":   "g" + testID[1:],
		"space":       " " + testID[1:],
		"0x prefix":   "0x" + testID[2:],
		"non-ascii":   "é" + testID[2:],
		"nul byte":    "\x00" + testID[1:],
		"80 chars":    testID + testID,
		"dash inside": testID[:20] + "-" + testID[21:],
	}
	for name, in := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := ParseNodeID(in)
			require.Error(t, err)
			require.ErrorIs(t, err, errs.ErrInvalidNodeID)
			require.True(t, strings.HasPrefix(err.Error(), "pex: "), err.Error())
		})
	}
}

func TestNodeIDValidateRejectsUppercase(t *testing.T) {
	require.NoError(t, NodeID(testID).Validate())
	err := NodeID(testIDUpper).Validate()
	require.ErrorIs(t, err, errs.ErrInvalidNodeID)
	require.ErrorIs(t, NodeID("").Validate(), errs.ErrInvalidNodeID)
}

var goodAddresses = []struct {
	name string
	in   string
	want NodeAddress
}{
	{"mconn ipv4", "mconn://" + testID + "@1.2.3.4:26656",
		NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: "1.2.3.4", Port: 26656}},
	{"tcp ipv4", "tcp://" + testID + "@1.2.3.4:26656",
		NodeAddress{Protocol: ProtocolTCP, NodeID: testID, Hostname: "1.2.3.4", Port: 26656}},
	{"no scheme means mconn", testID + "@1.2.3.4:26656",
		NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: "1.2.3.4", Port: 26656}},
	{"memory", "memory:" + testID,
		NodeAddress{Protocol: ProtocolMemory, NodeID: testID}},
	{"memory with slashes", "memory://" + testID,
		NodeAddress{Protocol: ProtocolMemory, NodeID: testID}},
	{"memory uppercase", "MEMORY:" + testIDUpper,
		NodeAddress{Protocol: ProtocolMemory, NodeID: testID}},
	{"uppercase scheme id host", "MCONN://" + testIDUpper + "@Seed.Example.COM:26656",
		NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: "seed.example.com", Port: 26656}},
	{"uppercase tcp", "TCP://" + testID + "@1.2.3.4:1",
		NodeAddress{Protocol: ProtocolTCP, NodeID: testID, Hostname: "1.2.3.4", Port: 1}},
	{"ipv6 bracketed", "mconn://" + testID + "@[2001:db8::1]:26656",
		NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: "2001:db8::1", Port: 26656}},
	{"ipv6 uppercase, long form", "mconn://" + testID + "@[2001:0DB8:0:0:0:0:0:1]:26656",
		NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: "2001:db8::1", Port: 26656}},
	{"ipv6 loopback", "mconn://" + testID + "@[::1]:26656",
		NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: "::1", Port: 26656}},
	{"ipv4-mapped ipv6 unmapped", "mconn://" + testID + "@[::ffff:1.2.3.4]:26656",
		NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: "1.2.3.4", Port: 26656}},
	{"ipv4-mapped hex form unmapped", "mconn://" + testID + "@[::ffff:0102:0304]:26656",
		NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: "1.2.3.4", Port: 26656}},
	{"dns name", "mconn://" + testID + "@seed.example.com:26656",
		NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: "seed.example.com", Port: 26656}},
	{"dns single label", "mconn://" + testID + "@localhost:26656",
		NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: "localhost", Port: 26656}},
	{"dns with hyphen, underscore, digits", "mconn://" + testID + "@node-1_a.9lives.io:80",
		NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: "node-1_a.9lives.io", Port: 80}},
	{"dns trailing dot", "mconn://" + testID + "@example.com.:26656",
		NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: "example.com.", Port: 26656}},
	{"dns 63-char label", "mconn://" + testID + "@" + strings.Repeat("a", 63) + ".com:1",
		NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: strings.Repeat("a", 63) + ".com", Port: 1}},
	{"port 1", "mconn://" + testID + "@1.2.3.4:1",
		NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: "1.2.3.4", Port: 1}},
	{"port 65535", "mconn://" + testID + "@1.2.3.4:65535",
		NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: "1.2.3.4", Port: 65535}},
}

func TestParseNodeAddressGood(t *testing.T) {
	for _, tc := range goodAddresses {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseNodeAddress(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, a)
			require.NoError(t, a.Validate())
		})
	}
}

func TestParseNodeAddressRoundTrip(t *testing.T) {
	for _, tc := range goodAddresses {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseNodeAddress(tc.in)
			require.NoError(t, err)
			s := a.String()
			b, err := ParseNodeAddress(s)
			require.NoError(t, err, s)
			require.Equal(t, a, b)
			require.Equal(t, s, b.String(), "String is stable")
		})
	}
	// Canonical forms print exactly as written.
	for _, s := range []string{
		"mconn://" + testID + "@1.2.3.4:26656",
		"tcp://" + testID + "@1.2.3.4:26656",
		"memory:" + testID,
		"mconn://" + testID + "@[2001:db8::1]:26656",
		"mconn://" + testID + "@seed.example.com:26656",
	} {
		a, err := ParseNodeAddress(s)
		require.NoError(t, err)
		require.Equal(t, s, a.String())
	}
}

func TestParseNodeAddressBad(t *testing.T) {
	bad := []struct{ name, in string }{
		{"empty", ""},
		{"unknown scheme", "http://" + testID + "@1.2.3.4:26656"},
		{"unknown scheme udp", "udp://" + testID + "@1.2.3.4:26656"},
		{"missing id", "mconn://@1.2.3.4:26656"},
		{"bad id short", "mconn://" + testID[:39] + "@1.2.3.4:26656"},
		{"bad id non-hex", "mconn://" + strings.Repeat("z", 40) + "@1.2.3.4:26656"},
		{"missing @", "mconn://" + testID + "1.2.3.4:26656"},
		{"only id", "mconn://" + testID},
		{"id and @ only", "mconn://" + testID + "@"},
		{"port without host", testID + "@:26656"},
		{"port without host with scheme", "mconn://" + testID + "@:26656"},
		{"host without port", "mconn://" + testID + "@1.2.3.4"},
		{"host with empty port", "mconn://" + testID + "@1.2.3.4:"},
		{"dns without port", "mconn://" + testID + "@example.com"},
		{"port 0", "mconn://" + testID + "@1.2.3.4:0"},
		{"port 65536", "mconn://" + testID + "@1.2.3.4:65536"},
		{"port huge", "mconn://" + testID + "@1.2.3.4:99999999999999999999"},
		{"port negative", "mconn://" + testID + "@1.2.3.4:-1"},
		{"port plus", "mconn://" + testID + "@1.2.3.4:+80"},
		{"port non-numeric", "mconn://" + testID + "@1.2.3.4:http"},
		{"port hex", "mconn://" + testID + "@1.2.3.4:0x50"},
		{"ipv6 without brackets", testID + "@2001:db8::1:26656"},
		{"ipv6 without brackets with scheme", "mconn://" + testID + "@2001:db8::1:26656"},
		{"ipv6 bracketed without port", "mconn://" + testID + "@[2001:db8::1]"},
		{"ipv6 zone", "mconn://" + testID + "@[fe80::1%eth0]:26656"},
		{"ipv6 zone escaped", "mconn://" + testID + "@[fe80::1%25eth0]:26656"},
		{"brackets around ipv4", "mconn://" + testID + "@[1.2.3.4]:26656"},
		{"brackets around dns", "mconn://" + testID + "@[example.com]:26656"},
		{"bad ipv6 in brackets", "mconn://" + testID + "@[2001:db8:::1]:26656"},
		{"dns empty label", "mconn://" + testID + "@a..b:26656"},
		{"dns leading hyphen", "mconn://" + testID + "@-a.com:26656"},
		{"dns trailing hyphen", "mconn://" + testID + "@a-.com:26656"},
		{"dns 64-char label", "mconn://" + testID + "@" + strings.Repeat("a", 64) + ".com:26656"},
		{"dns too long", "mconn://" + testID + "@" + strings.Repeat(strings.Repeat("a", 60)+".", 5) + "com:26656"},
		{"dns space", "mconn://" + testID + "@exa mple.com:26656"},
		{"dns non-ascii", "mconn://" + testID + "@exämple.com:26656"},
		{"dns only dot", "mconn://" + testID + "@.:26656"},
		{"dns slash", "mconn://" + testID + "@a/b:26656"},
		{"ipv4 short numeric", "mconn://" + testID + "@1.2.3:26656"},
		{"ipv4 leading zero", "mconn://" + testID + "@01.2.3.4:26656"},
		{"ipv4 out of range", "mconn://" + testID + "@1.2.3.256:26656"},
		{"numeric host", "mconn://" + testID + "@1234:26656"},
		{"path appended", "mconn://" + testID + "@1.2.3.4:26656/path"},
		{"slash appended", "mconn://" + testID + "@1.2.3.4:26656/"},
		{"query appended", "mconn://" + testID + "@1.2.3.4:26656?x=1"},
		{"fragment appended", "mconn://" + testID + "@1.2.3.4:26656#f"},
		{"path before port", "mconn://" + testID + "@example.com/x:26656"},
		{"user info", "mconn://" + testID + "@user@1.2.3.4:26656"},
		{"space after", "mconn://" + testID + "@1.2.3.4:26656 "},
		{"space before", " mconn://" + testID + "@1.2.3.4:26656"},
		{"over-long", "mconn://" + testID + "@" + strings.Repeat("a", 600) + ".com:26656"},
		{"memory without id", "memory:"},
		{"memory bad id", "memory:" + testID[:39]},
		{"memory with host", "memory:" + testID + "@1.2.3.4:26656"},
		{"scheme with single colon", "mconn:" + testID + "@1.2.3.4:26656"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseNodeAddress(tc.in)
			require.Error(t, err, "parsed as %#v", a)
			require.ErrorIs(t, err, errs.ErrInvalidAddress)
			require.True(t, strings.HasPrefix(err.Error(), "pex: "), err.Error())
			require.Equal(t, NodeAddress{}, a)
		})
	}
}

func TestParseNodeAddressBadIDWrapsBothSentinels(t *testing.T) {
	_, err := ParseNodeAddress("mconn://" + testID[:10] + "@1.2.3.4:26656")
	require.ErrorIs(t, err, errs.ErrInvalidAddress)
	require.ErrorIs(t, err, errs.ErrInvalidNodeID)
}

func TestParseNodeAddressErrorClipsHostileInput(t *testing.T) {
	_, err := ParseNodeAddress(strings.Repeat("x", 100_000))
	require.ErrorIs(t, err, errs.ErrInvalidAddress)
	require.Less(t, len(err.Error()), 300)
}

func TestNodeAddressValidateNonCanonical(t *testing.T) {
	bad := map[string]NodeAddress{
		"zero value":         {},
		"empty protocol":     {NodeID: testID, Hostname: "1.2.3.4", Port: 1},
		"uppercase protocol": {Protocol: "MCONN", NodeID: testID, Hostname: "1.2.3.4", Port: 1},
		"unknown protocol":   {Protocol: "http", NodeID: testID, Hostname: "1.2.3.4", Port: 1},
		"uppercase id":       {Protocol: ProtocolMConn, NodeID: testIDUpper, Hostname: "1.2.3.4", Port: 1},
		"uppercase host":     {Protocol: ProtocolMConn, NodeID: testID, Hostname: "Example.com", Port: 1},
		"mapped ipv6 host":   {Protocol: ProtocolMConn, NodeID: testID, Hostname: "::ffff:1.2.3.4", Port: 1},
		"long ipv6 host":     {Protocol: ProtocolMConn, NodeID: testID, Hostname: "2001:db8:0:0:0:0:0:1", Port: 1},
		"port 0":             {Protocol: ProtocolMConn, NodeID: testID, Hostname: "1.2.3.4"},
		"no host":            {Protocol: ProtocolMConn, NodeID: testID, Port: 1},
		"host with port":     {Protocol: ProtocolMConn, NodeID: testID, Hostname: "1.2.3.4:5", Port: 1},
		"zone":               {Protocol: ProtocolMConn, NodeID: testID, Hostname: "fe80::1%eth0", Port: 1},
		"memory with host":   {Protocol: ProtocolMemory, NodeID: testID, Hostname: "1.2.3.4"},
		"memory with port":   {Protocol: ProtocolMemory, NodeID: testID, Port: 1},
		"memory bad id":      {Protocol: ProtocolMemory, NodeID: "abc"},
		"memory upper id":    {Protocol: ProtocolMemory, NodeID: testIDUpper},
	}
	for name, a := range bad {
		t.Run(name, func(t *testing.T) {
			err := a.Validate()
			require.ErrorIs(t, err, errs.ErrInvalidAddress)
			require.True(t, strings.HasPrefix(err.Error(), "pex: "), err.Error())
		})
	}
}

func TestNodeAddressFromIP(t *testing.T) {
	a, err := NodeAddressFromIP(testID, netip.MustParseAddr("1.2.3.4"), 26656)
	require.NoError(t, err)
	require.Equal(t, NodeAddress{Protocol: ProtocolMConn, NodeID: testID, Hostname: "1.2.3.4", Port: 26656}, a)
	require.NoError(t, a.Validate())

	a, err = NodeAddressFromIP(testID, netip.MustParseAddr("::ffff:1.2.3.4"), 1)
	require.NoError(t, err)
	require.Equal(t, "1.2.3.4", a.Hostname, "mapped IPv4 is unmapped")
	require.NoError(t, a.Validate())

	a, err = NodeAddressFromIP(testID, netip.MustParseAddr("2001:db8::1"), 1)
	require.NoError(t, err)
	require.Equal(t, "mconn://"+testID+"@[2001:db8::1]:1", a.String())
	require.NoError(t, a.Validate())

	for name, tc := range map[string]struct {
		id   NodeID
		ip   netip.Addr
		port uint16
	}{
		"bad id":       {"xyz", netip.MustParseAddr("1.2.3.4"), 1},
		"uppercase id": {testIDUpper, netip.MustParseAddr("1.2.3.4"), 1},
		"zero ip":      {testID, netip.Addr{}, 1},
		"zone":         {testID, netip.MustParseAddr("fe80::1%eth0"), 1},
		"port 0":       {testID, netip.MustParseAddr("1.2.3.4"), 0},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NodeAddressFromIP(tc.id, tc.ip, tc.port)
			require.ErrorIs(t, err, errs.ErrInvalidAddress)
			require.True(t, strings.HasPrefix(err.Error(), "pex: "), err.Error())
		})
	}
}

func TestNodeAddressIP(t *testing.T) {
	ip, ok := mustAddr(t, "mconn://"+testID+"@1.2.3.4:1").IP()
	require.True(t, ok)
	require.Equal(t, netip.MustParseAddr("1.2.3.4"), ip)

	ip, ok = mustAddr(t, "mconn://"+testID+"@[2001:db8::1]:1").IP()
	require.True(t, ok)
	require.Equal(t, netip.MustParseAddr("2001:db8::1"), ip)

	_, ok = mustAddr(t, "mconn://"+testID+"@example.com:1").IP()
	require.False(t, ok)
	_, ok = mustAddr(t, "memory:"+testID).IP()
	require.False(t, ok)
}

func mustAddr(t testing.TB, s string) NodeAddress {
	t.Helper()
	a, err := ParseNodeAddress(s)
	require.NoError(t, err)
	return a
}

// fakeResolver answers from a map and records what it was asked.
type fakeResolver struct {
	hosts map[string][]netip.Addr
	asked []string
}

func (r *fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	r.asked = append(r.asked, network+" "+host)
	ips, ok := r.hosts[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	return ips, nil
}

func TestNodeAddressResolve(t *testing.T) {
	r := &fakeResolver{hosts: map[string][]netip.Addr{
		"seed.example.com": {
			netip.MustParseAddr("1.2.3.4"),
			netip.MustParseAddr("::ffff:5.6.7.8"),
			netip.MustParseAddr("2001:db8::7"),
		},
	}}
	ctx := context.Background()

	eps, err := mustAddr(t, "mconn://"+testID+"@seed.example.com:26656").Resolve(ctx, r)
	require.NoError(t, err)
	require.Equal(t, []netip.AddrPort{
		netip.MustParseAddrPort("1.2.3.4:26656"),
		netip.MustParseAddrPort("5.6.7.8:26656"),
		netip.MustParseAddrPort("[2001:db8::7]:26656"),
	}, eps)
	require.Equal(t, []string{"ip seed.example.com"}, r.asked)

	// Resolved again at each use, not cached.
	r.hosts["seed.example.com"] = []netip.Addr{netip.MustParseAddr("9.9.9.9")}
	eps, err = mustAddr(t, "mconn://"+testID+"@seed.example.com:26656").Resolve(ctx, r)
	require.NoError(t, err)
	require.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("9.9.9.9:26656")}, eps)
	require.Len(t, r.asked, 2)

	_, err = mustAddr(t, "mconn://"+testID+"@unknown.example.com:26656").Resolve(ctx, r)
	require.Error(t, err)

	r.asked = nil
	eps, err = mustAddr(t, "memory:"+testID).Resolve(ctx, r)
	require.NoError(t, err)
	require.Empty(t, eps)

	eps, err = mustAddr(t, "mconn://"+testID+"@1.2.3.4:26656").Resolve(ctx, r)
	require.NoError(t, err)
	require.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("1.2.3.4:26656")}, eps)

	eps, err = mustAddr(t, "tcp://"+testID+"@[2001:db8::1]:5").Resolve(ctx, r)
	require.NoError(t, err)
	require.Equal(t, []netip.AddrPort{netip.MustParseAddrPort("[2001:db8::1]:5")}, eps)
	require.Empty(t, r.asked, "IP and memory addresses need no lookup")
}

func TestIsRoutable(t *testing.T) {
	cases := []struct {
		host     string // "" means a memory address
		routable bool
	}{
		{"127.0.0.1", false},
		{"127.8.9.10", false},
		{"::1", false},
		{"10.0.0.1", false},
		{"10.255.255.255", false},
		{"172.16.0.1", false},
		{"172.31.255.254", false},
		{"192.168.1.1", false},
		{"169.254.1.1", false},
		{"fe80::1", false},
		{"febf::1", false},
		{"fc00::1", false},
		{"fd12:3456::1", false},
		{"::", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"192.0.2.1", false},
		{"198.51.100.7", false},
		{"203.0.113.200", false},
		{"2001:db8::1", false},
		{"2001:db8:ffff::1", false},
		{"100.64.0.1", false},
		{"100.127.255.254", false},
		{"198.18.0.1", false},
		{"224.0.0.1", false},
		{"255.255.255.255", false},
		{"240.0.0.1", false},
		{"ff02::1", false},
		{"localhost", false},
		{"localhost.", false},
		{"node.localhost", false},
		{"", false},

		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"172.15.255.255", true},
		{"172.32.0.1", true},
		{"100.63.255.255", true},
		{"100.128.0.1", true},
		{"192.0.3.1", true},
		{"2606:4700::1111", true},
		{"2001:4860:4860::8888", true},
		{"example.com", true},
		{"seed.cosmos.network", true},
		{"localhost.example.com", true},
	}
	for _, tc := range cases {
		name := tc.host
		if name == "" {
			name = "memory"
		}
		t.Run(name, func(t *testing.T) {
			a := NodeAddress{Protocol: ProtocolMemory, NodeID: testID}
			if tc.host != "" {
				var err error
				a, err = ParseNodeAddress("mconn://" + testID + "@" + bracket(tc.host) + ":26656")
				require.NoError(t, err)
			}
			require.Equal(t, tc.routable, IsRoutable(a))
		})
	}
	// IsRoutableIP unmaps.
	require.False(t, IsRoutableIP(netip.MustParseAddr("::ffff:10.0.0.1")))
	require.True(t, IsRoutableIP(netip.MustParseAddr("::ffff:8.8.8.8")))
}

func bracket(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

func FuzzParseNodeAddress(f *testing.F) {
	for _, tc := range goodAddresses {
		f.Add(tc.in)
	}
	for _, s := range []string{
		"",
		"memory:",
		"mconn://",
		"@:",
		testID + "@:26656",
		testID + "@2001:db8::1:26656",
		"mconn://" + testID + "@[fe80::1%eth0]:26656",
		"mconn://" + testID + "@[1.2.3.4]:26656",
		"mconn://" + testID + "@1.2.3.4:026656",
		"mconn://" + testID + "@[::1.2.3.4]:1",
		"tcp://" + testID + "@a.b.c.:65535",
		"mconn://" + testID + "@1.2.3.4:26656/x?y#z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseNodeAddress(s)
		if err != nil {
			if !errors.Is(err, errs.ErrInvalidAddress) {
				t.Fatalf("error %v does not wrap errs.ErrInvalidAddress", err)
			}
			if !strings.HasPrefix(err.Error(), "pex: ") {
				t.Fatalf("error %q lacks the pex: prefix", err)
			}
			return
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("parsed %q to %#v, which does not validate: %v", s, a, err)
		}
		b, err := ParseNodeAddress(a.String())
		if err != nil {
			t.Fatalf("parsed %q to %#v, but its String %q does not parse: %v", s, a, a.String(), err)
		}
		if a != b {
			t.Fatalf("round trip of %q: %#v != %#v", s, a, b)
		}
		if _, ok := a.IP(); ok && a.Protocol == ProtocolMemory {
			t.Fatalf("memory address %#v has an IP", a)
		}
	})
}

// TestIsRoutableIPv4Ranges: IsRoutableIP reads an IPv4 address against
// masks alone (netip's predicates and Unroutable's ranges); it agrees
// with the predicates and the ranges themselves at each range's edges,
// just past them, at the edges and middle of every /16 (every range is a
// /16 or wider, or in unroutable4 with its edges), and at random.
func TestIsRoutableIPv4Ranges(t *testing.T) {
	reference := routableByPrefixes
	var ips []netip.Addr
	for _, p := range append(append([]netip.Prefix(nil), notGlobal4...), Unroutable...) {
		if !p.Addr().Is4() {
			continue
		}
		b := p.Masked().Addr().As4()
		first := binary.BigEndian.Uint32(b[:])
		last := first | ^uint32(0)>>p.Bits()
		for _, v := range []uint32{first, last, first - 1, last + 1} {
			ips = append(ips, netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}))
		}
	}
	for v := uint32(0); v < 1<<16; v++ {
		for _, low := range []uint32{0, 1, 0x7fff, 0xfffe, 0xffff} {
			w := v<<16 | low
			ips = append(ips, netip.AddrFrom4([4]byte{byte(w >> 24), byte(w >> 16), byte(w >> 8), byte(w)}))
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 100_000 {
		ips = append(ips, netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())}))
	}
	unroutable := 0
	for _, ip := range ips {
		require.Equal(t, reference(ip), IsRoutableIP(ip), "%s", ip)
		require.Equal(t, reference(ip), IsRoutableIP(netip.AddrFrom16(ip.As16())), "%s mapped", ip)
		if !reference(ip) {
			unroutable++
		}
	}
	require.Greater(t, unroutable, 4*len(unroutable4), "the edges of every range are read")
}
