// Package testkit holds what the tests of several packages share: PEX
// messages built and read without ceremony, the fuzzers' input reader and
// checks. Only tests import it.
package testkit

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pexnet/pex/internal/addr"
	"github.com/pexnet/pex/internal/event"
	"github.com/pexnet/pex/pb"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

var (
	V1Req = []byte{0x0a, 0x00}
	V2Req = []byte{0x1a, 0x00}
)

func V2Resp(urls ...string) []byte {
	resp := &pb.PexResponseV2{}
	for _, u := range urls {
		resp.Addresses = append(resp.Addresses, &pb.PexAddressV2{Url: u})
	}
	return marshal(&pb.PexMessage{Sum: &pb.PexMessage_PexResponseV2{PexResponseV2: resp}})
}

func V2RespAddrs(addrs ...addr.NodeAddress) []byte {
	urls := make([]string, len(addrs))
	for i, a := range addrs {
		urls[i] = a.String()
	}
	return V2Resp(urls...)
}

func V1Resp(entries ...*pb.PexAddress) []byte {
	return marshal(&pb.PexMessage{Sum: &pb.PexMessage_PexResponse{PexResponse: &pb.PexResponse{Addresses: entries}}})
}

func V1Entry(id addr.NodeID, ip string, port uint32) *pb.PexAddress {
	return &pb.PexAddress{Id: string(id), Ip: ip, Port: port}
}

func V1RespAddrs(addrs ...addr.NodeAddress) []byte {
	var entries []*pb.PexAddress
	for _, a := range addrs {
		entries = append(entries, V1Entry(a.NodeID, a.Hostname, uint32(a.Port)))
	}
	return V1Resp(entries...)
}

func Decode(t testing.TB, b []byte) *pb.PexMessage {
	t.Helper()
	var m pb.PexMessage
	require.NoError(t, proto.Unmarshal(b, &m))
	return &m
}

// Kind names the kind of an encoded PexMessage.
func Kind(t testing.TB, b []byte) string {
	t.Helper()
	return KindOf(Decode(t, b))
}

// V2URLs returns the URLs of an encoded V2 response, as String writes
// them (the wire leaves mconn:// out: see TestCoreServeV2URLsWithoutScheme).
func V2URLs(t testing.TB, b []byte) []string {
	t.Helper()
	var out []string
	for _, u := range V2RawURLs(t, b) {
		a, err := addr.ParseNodeAddress(u)
		require.NoError(t, err, "sent %q", u)
		out = append(out, a.String())
	}
	return out
}

// V2RawURLs returns the URLs of an encoded V2 response as sent.
func V2RawURLs(t testing.TB, b []byte) []string {
	t.Helper()
	m := Decode(t, b).GetPexResponseV2()
	require.NotNil(t, m, "not a V2 response")
	var out []string
	for _, a := range m.GetAddresses() {
		out = append(out, a.GetUrl())
	}
	return out
}

// V1Entries returns the entries of an encoded V1 response as
// "id@ip:port" strings, IPv6 bracketed.
func V1Entries(t testing.TB, b []byte) []string {
	t.Helper()
	m := Decode(t, b).GetPexResponse()
	require.NotNil(t, m, "not a V1 response")
	var out []string
	for _, a := range m.GetAddresses() {
		ip, err := netip.ParseAddr(a.GetIp())
		require.NoError(t, err)
		out = append(out, fmt.Sprintf("%s@%s", a.GetId(), netip.AddrPortFrom(ip, uint16(a.GetPort()))))
	}
	return out
}

func V1Str(id addr.NodeID, ipPort string) string { return string(id) + "@" + ipPort }

// RequirePeerError checks one event.PeerError against its documented form.
func RequirePeerError(t testing.TB, pe event.PeerError, from addr.NodeID, sentinel error, fatal bool) {
	t.Helper()
	require.Equal(t, from, pe.NodeID)
	require.ErrorIs(t, pe.Err, sentinel)
	require.ErrorIs(t, pe, sentinel, "event.PeerError must unwrap to its cause")
	require.True(t, strings.HasPrefix(pe.Err.Error(), "pex: "), "error %q lacks the pex: prefix", pe.Err)
	require.Equal(t, fatal, pe.Fatal, "fatal flag of %v", pe.Err)
}

// KindOf names the kind of a PexMessage: v1req, v2req, v1resp, v2resp.
func KindOf(m *pb.PexMessage) string {
	switch m.Sum.(type) {
	case *pb.PexMessage_PexRequest:
		return "v1req"
	case *pb.PexMessage_PexRequestV2:
		return "v2req"
	case *pb.PexMessage_PexResponse:
		return "v1resp"
	case *pb.PexMessage_PexResponseV2:
		return "v2resp"
	}
	return "unknown"
}

// Reader hands out the fuzzer's bytes; once they run out it returns
// zeros, and callers check Empty to stop or fall back to defaults.
type Reader struct{ b []byte }

func (r *Reader) Empty() bool { return len(r.b) == 0 }

func (r *Reader) U8() byte {
	if len(r.b) == 0 {
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *Reader) U16() uint16 { return uint16(r.U8())<<8 | uint16(r.U8()) }

func (r *Reader) U64() uint64 {
	var v uint64
	for range 8 {
		v = v<<8 | uint64(r.U8())
	}
	return v
}

func (r *Reader) Bytes(n int) []byte {
	n = min(n, len(r.b))
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// Watchdog crashes the process, with every goroutine's stack, when one
// input runs for longer than any should: the fuzzer keeps the input of a
// crashed worker, which is how a hang gets recorded. The returned func
// disarms it.
func Watchdog(data []byte) func() {
	tm := time.AfterFunc(10*time.Second, func() {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		fmt.Fprintf(os.Stderr, "fuzz input hangs: %x\n%s\n", data, buf)
		os.Exit(3)
	})
	return func() { tm.Stop() }
}

func CheckErr(t *testing.T, what string, err error, sentinels []error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: nil error", what)
	}
	if !strings.HasPrefix(err.Error(), "pex: ") {
		t.Fatalf("%s: error %q lacks the pex: prefix", what, err)
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("%s: error %q wraps no exported sentinel", what, err)
}

// RandomSeeds adds pseudo-random op sequences of a few lengths: random
// bytes decode to random operations, a better start than a handful of
// hand-written seeds.
func RandomSeeds(f *testing.F, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed))
	for _, n := range []int{16, 64, 64, 200, 200, 400, 400, 800} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		f.Add(b)
	}
}

func CmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func marshal(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// NewReader returns a Reader over a fuzzer's input.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// NodeID returns a deterministic node ID for test node i.
func NodeID(i int) addr.NodeID { return addr.NodeID(fmt.Sprintf("%040x", i+1)) }

// SelfID is the node ID of a book under test; NodeID(i) never produces it
// for the i tests use.
var SelfID = addr.NodeID(strings.Repeat("f", 40))

// PublicIP returns a routable IPv4 address unique to i, each i below
// 16,384 in a /16 of its own, so that the source-group caps see as many
// groups as peers.
func PublicIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(11 + i>>8&63), byte(i), byte(i >> 14), 1})
}

// PeerAddr returns a routable mconn address for NodeID(i) at port, with an
// IP unique to i.
func PeerAddr(i int, port uint16) addr.NodeAddress {
	a, err := addr.NodeAddressFromIP(NodeID(i), PublicIP(i), port)
	if err != nil {
		panic(err)
	}
	return a
}

// SelfAddr is an mconn address of SelfID.
func SelfAddr(host string, port uint16) addr.NodeAddress {
	return addr.NodeAddress{Protocol: addr.ProtocolMConn, NodeID: SelfID, Hostname: host, Port: port}
}

// Clock is a clock that only moves when told to.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock at the start of 2025.
func NewClock() *Clock { return &Clock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
