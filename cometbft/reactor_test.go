package cometbft

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/p2p/mock"
	gogoproto "github.com/cosmos/gogoproto/proto"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/pexnet/pex"
	"github.com/pexnet/pex/pb"
)

var (
	v1Request = []byte{0x0a, 0x00}
	v2Request = []byte{0x1a, 0x00}
)

func TestWireMessageKeepsBytes(t *testing.T) {
	// What the switch does on receive: clone the channel's prototype,
	// decode into the clone; on send: encode.
	raw := []byte{0x12, 0x03, 0x0a, 0x01, 0x41}
	msg := gogoproto.Clone(&wireMessage{})
	require.NoError(t, gogoproto.Unmarshal(raw, msg))
	raw[4] = 0x42 // the switch may reuse its buffer: the message kept a copy
	got, err := gogoproto.Marshal(msg)
	require.NoError(t, err)
	require.Equal(t, []byte{0x12, 0x03, 0x0a, 0x01, 0x41}, got)
	require.Contains(t, msg.String(), "5 bytes")
}

// v1Response encodes a V1 response of n distinct entries.
func v1Response(n int) []byte {
	eps := make([]*pb.PexAddress, n)
	for i := range eps {
		eps[i] = &pb.PexAddress{Id: fmt.Sprintf("%040x", i+1), Ip: fmt.Sprintf("127.200.%d.%d", i/250, i%250+1), Port: 26656}
	}
	b, err := proto.Marshal(&pb.PexMessage{Sum: &pb.PexMessage_PexResponse{PexResponse: &pb.PexResponse{Addresses: eps}}})
	if err != nil {
		panic(err)
	}
	return b
}

func TestTrimV1Response(t *testing.T) {
	full := v1Response(250) // CometBFT's largest answer
	var m pb.PexMessage
	require.NoError(t, proto.Unmarshal(trimV1Response(full), &m))
	require.Len(t, m.GetPexResponse().GetAddresses(), pex.MaxAddresses)
	var orig pb.PexMessage
	require.NoError(t, proto.Unmarshal(full, &orig))
	for i, a := range m.GetPexResponse().GetAddresses() {
		require.True(t, proto.Equal(orig.GetPexResponse().GetAddresses()[i], a))
	}

	// Anything else passes as it is, garbage included: the reactor judges.
	small := v1Response(pex.MaxAddresses)
	v2 := mustMarshal(t, &pb.PexMessage{Sum: &pb.PexMessage_PexResponseV2{PexResponseV2: &pb.PexResponseV2{}}})
	for _, msg := range [][]byte{small, v2, v1Request, v2Request, {0x12, 0xff}, nil} {
		require.Equal(t, msg, trimV1Response(msg))
	}
	// An honest answer is let through without being decoded.
	require.Equal(t, 0.0, testing.AllocsPerRun(10, func() { trimV1Response(small) }))
	// A response in two fields is one response (protobuf merges them):
	// cut as one.
	split := append(v1Response(60), v1Response(60)...)
	require.NoError(t, proto.Unmarshal(trimV1Response(split), &m))
	require.Len(t, m.GetPexResponse().GetAddresses(), pex.MaxAddresses)
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}

func TestNewReactorValidates(t *testing.T) {
	pm := newPM(t, 1)
	_, err := NewReactor(nil, Options{})
	require.ErrorIs(t, err, pex.ErrInvalidConfig)
	// A V1 spacing CometBFT would punish is refused by pex itself.
	_, err = NewReactor(pm, Options{Config: pex.Config{V1RequestInterval: 5 * time.Second}})
	require.ErrorIs(t, err, pex.ErrInvalidConfig)
	_, err = NewReactor(pm, Options{Dialers: -1})
	require.ErrorIs(t, err, pex.ErrInvalidConfig)

	r, err := NewReactor(pm, Options{})
	require.NoError(t, err)
	require.ErrorIs(t, r.Start(), ErrNoSwitch)
	require.Zero(t, r.Stats())
	require.Zero(t, r.NetworkSizeEstimate())
	chs := r.GetChannels()
	require.Len(t, chs, 2)
	require.Equal(t, byte(pex.PexChannel), chs[0].ID)
	require.Equal(t, pex.DefaultMaxMessageSize, chs[0].RecvMessageCapacity)
	require.Equal(t, DefaultCapabilityChannel, chs[1].ID)
}

func newPM(t *testing.T, i int) *pex.PeerManager {
	t.Helper()
	id := pex.NodeID(fmt.Sprintf("%040x", 0xabc000+i))
	self, err := pex.ParseNodeAddress(fmt.Sprintf("mconn://%s@127.9.0.%d:26656", id, i))
	require.NoError(t, err)
	pm, err := pex.NewPeerManager(id, pex.PeerManagerOptions{SelfAddresses: []pex.NodeAddress{self}})
	require.NoError(t, err)
	return pm
}

// fakePeer is a switch peer without a connection: it records what the
// reactor sends it and lists the channels it is given in its NodeInfo.
type fakePeer struct {
	*mock.Peer
	channels []byte
	mu       sync.Mutex
	sent     [][]byte
}

func newFakePeer(i int, channels ...byte) *fakePeer {
	return &fakePeer{Peer: mock.NewPeer(net.IPv4(127, 10, 0, byte(i))), channels: channels}
}

func (p *fakePeer) NodeInfo() p2p.NodeInfo {
	ni := p.Peer.NodeInfo().(p2p.DefaultNodeInfo)
	ni.Channels = p.channels
	return ni
}

func (p *fakePeer) TrySend(e p2p.Envelope) bool {
	if !p.IsRunning() {
		return false
	}
	m := e.Message.(*wireMessage)
	p.mu.Lock()
	p.sent = append(p.sent, m.b)
	p.mu.Unlock()
	return true
}

func (p *fakePeer) Sent() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.sent...)
}

func (p *fakePeer) sentKind(tag byte) bool {
	for _, b := range p.Sent() {
		if len(b) > 0 && b[0] == tag {
			return true
		}
	}
	return false
}

// startOnSwitch starts r on a switch that has a transport but does not
// listen: peers come from the test, not from sockets.
func startOnSwitch(t *testing.T, r *Reactor) {
	t.Helper()
	key := p2p.NodeKey{PrivKey: ed25519.GenPrivKey()}
	info := p2p.DefaultNodeInfo{DefaultNodeID: key.ID(), ListenAddr: "127.9.0.1:26656", Moniker: "test", Channels: []byte{0, DefaultCapabilityChannel}}
	cfg := config.DefaultP2PConfig()
	sw := p2p.NewSwitch(cfg, p2p.NewMultiplexTransport(info, key, p2p.MConnConfig(cfg)))
	sw.AddReactor("PEX", r)
	require.NoError(t, r.Start())
	t.Cleanup(func() { require.NoError(t, r.Stop()) })
}

// The tests of this file that drive a reactor with fake peers (no sockets)
// run in synctest bubbles: their clocks are fake, and synctest.Wait lets
// the reactor's goroutines finish before the assertions.

func TestPeersAndVersions(t *testing.T) { synctest.Test(t, testPeersAndVersions) }

func testPeersAndVersions(t *testing.T) {
	pm := newPM(t, 1)
	r, err := NewReactor(pm, Options{})
	require.NoError(t, err)
	startOnSwitch(t, r)

	comet := newFakePeer(1, pex.PexChannel)
	pexPeer := newFakePeer(2, pex.PexChannel, DefaultCapabilityChannel)
	cometID, pexID := pex.NodeID(comet.ID()), pex.NodeID(pexPeer.ID())

	// A CometBFT node asks as soon as it has added us, which may be before
	// the switch calls our AddPeer: the request is kept, then answered.
	r.InitPeer(comet)
	r.Receive(p2p.Envelope{Src: comet, ChannelID: pex.PexChannel, Message: &wireMessage{b: v1Request}})
	require.False(t, pm.IsConnected(cometID))
	r.AddPeer(comet)
	require.True(t, pm.IsConnected(cometID))
	require.True(t, pm.Has(cometID), "the listen address it announced is in the book")
	r.InitPeer(pexPeer)
	r.AddPeer(pexPeer)

	// The answer is V1; the request to the CometBFT node is V1, to the pex
	// node V2 (it listed the capability channel).
	time.Sleep(time.Second) // fake time: the first requests go out
	synctest.Wait()
	require.True(t, comet.sentKind(0x12), "answer to the CometBFT node")
	require.True(t, comet.sentKind(0x0a), "V1 request to the CometBFT node")
	require.True(t, pexPeer.sentKind(0x1a), "V2 request to the pex node")
	require.False(t, comet.sentKind(0x1a) || comet.sentKind(0x22), "V2 sent to a CometBFT node")
	require.False(t, pexPeer.sentKind(0x0a), "V1 request sent to a pex node")

	// The answer to the CometBFT node carries our own address.
	var m pb.PexMessage
	for _, b := range comet.Sent() {
		if b[0] == 0x12 {
			require.NoError(t, proto.Unmarshal(b, &m))
		}
	}
	require.NotEmpty(t, m.GetPexResponse().GetAddresses())
	require.Equal(t, string(pm.SelfID()), m.GetPexResponse().GetAddresses()[0].GetId())

	// RemovePeer of a peer object the reactor does not hold changes nothing.
	r.RemovePeer(newFakePeer(3), nil)
	require.True(t, pm.IsConnected(pexID))
	r.RemovePeer(pexPeer, nil)
	require.False(t, pm.IsConnected(pexID))
}

func TestCapabilityChannelMessageStopsPeer(t *testing.T) {
	synctest.Test(t, testCapabilityChannelMessageStopsPeer)
}

func testCapabilityChannelMessageStopsPeer(t *testing.T) {
	pm := newPM(t, 1)
	r, err := NewReactor(pm, Options{})
	require.NoError(t, err)
	startOnSwitch(t, r)
	p := newFakePeer(1, pex.PexChannel, DefaultCapabilityChannel)
	id := pex.NodeID(p.ID())
	r.InitPeer(p)
	r.AddPeer(p)
	before, _ := pm.Score(id)
	r.Receive(p2p.Envelope{Src: p, ChannelID: DefaultCapabilityChannel, Message: &wireMessage{b: []byte{1}}})
	// The switch stops the peer and calls RemovePeer.
	synctest.Wait()
	require.False(t, p.IsRunning())
	require.False(t, pm.IsConnected(id))
	after, _ := pm.Score(id)
	require.Less(t, after, before)
}

func TestSendToUnknownPeer(t *testing.T) {
	pm := newPM(t, 1)
	r, err := NewReactor(pm, Options{})
	require.NoError(t, err)
	err = channel{r}.Send(t.Context(), pex.Envelope{To: "0000000000000000000000000000000000000001", Message: v1Request})
	require.ErrorIs(t, err, pex.ErrNotConnected)
}

func TestAddrBookView(t *testing.T) {
	pm := newPM(t, 1)
	r, err := NewReactor(pm, Options{})
	require.NoError(t, err)
	book := r.AddrBook()
	other := p2p.NewNetAddressIPPort(net.IPv4(127, 11, 0, 1), 26656)
	other.ID = p2p.ID(fmt.Sprintf("%040x", 7))
	require.False(t, book.HasAddress(other))
	require.NoError(t, book.AddAddress(other, other))
	require.True(t, book.HasAddress(other))
	require.True(t, pm.Has(pex.NodeID(other.ID)))
	self := p2p.NewNetAddressIPPort(net.IPv4(127, 12, 0, 1), 1)
	self.ID = p2p.ID(pm.SelfID())
	require.True(t, book.OurAddress(self))
	require.False(t, book.OurAddress(other))
	require.ErrorIs(t, book.AddAddress(self, other), pex.ErrSelfAddress)
	bad := &p2p.NetAddress{ID: "nothex", IP: net.IPv4(127, 1, 1, 1), Port: 1}
	require.Error(t, book.AddAddress(bad, other))
	require.False(t, book.HasAddress(bad))
	require.False(t, book.HasAddress(nil))
	require.Error(t, book.AddAddress(nil, nil))
	// The rest has nothing to do, and must not panic.
	book.MarkGood(other.ID)
	book.MarkGood("nothex")
	book.AddOurAddress(self)
	book.RemoveAddress(other)
	book.AddPrivateIDs([]string{string(other.ID)})
	book.Save()
}
