package poller

// Adversarial fuzz targets for the Core and the PeerManager. Each decodes a
// sequence of operations from the fuzzer's bytes and checks, after every
// step, the invariants the package promises: no panic, typed "pex: "
// errors, the address book keeps what it had, nothing scheduled in the past,
// and the PeerManager's internal bookkeeping stays consistent.
//
// Run: go test -run '^$' -fuzz FuzzCoreReceive -fuzztime 180s .
//      go test -run '^$' -fuzz FuzzPeerManagerOps -fuzztime 180s .

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pexnet/pex/internal/book"
	"github.com/pexnet/pex/internal/testkit"
	"github.com/pexnet/pex/pb"
)

// ---------------------------------------------------------------------------
// Input decoding

// fzSentinels are the exported errors a PeerError may wrap.
var fzSentinels = []error{
	ErrMessageTooLarge, ErrMalformedMessage, ErrUnknownMessage, ErrTooManyAddresses,
	ErrUnsolicitedResponse, ErrRequestTooSoon, ErrMostlyInvalid, ErrInvalidAddress,
	ErrInvalidNodeID, ErrResponseTimeout, ErrSelfAddress,
	// Only in strict mode: an entry refused as unroutable.
	ErrUnroutableAddress,
}

// fzPMSentinels are the exported errors PeerManager methods may return.
var fzPMSentinels = []error{
	ErrInvalidAddress, ErrInvalidNodeID, ErrSelfAddress, ErrUnroutableAddress,
	ErrAddressBookFull, ErrSourceGroupFull, ErrNetworkGroupFull, ErrTooManyPeers, ErrDuplicateConnection,
}

// fzPub is a public IPv4 address for node i (routable, so strict mode
// keeps it).
func fzPub(i int) NodeAddress {
	a, err := NodeAddressFromIP(nodeID(i), testkit.PublicIP(i), 26656)
	if err != nil {
		panic(err)
	}
	return a
}

// fzIDStr is a node ID as a peer might send it: mostly valid and from a
// small pool (so entries repeat), sometimes ours, the sender's, or junk.
func fzIDStr(r *testkit.Reader, from, self NodeID) string {
	switch k := r.U8(); k % 16 {
	case 0:
		return string(self)
	case 1:
		return string(from)
	case 2:
		return strings.ToUpper(string(nodeID(1 + int(r.U8()%64))))
	case 3:
		return string(r.Bytes(int(r.U8() % 48)))
	case 4:
		return string(nodeID(1 + int(r.U8())))[:39]
	case 5:
		return ""
	case 6:
		return strings.Repeat("g", 40)
	case 7:
		return string(nodeID(1+int(r.U8()%64))) + "0"
	default:
		return string(nodeID(1 + int(r.U8()%64)))
	}
}

func fzHostStr(r *testkit.Reader) string {
	switch k := r.U8(); k % 16 {
	case 1:
		return fmt.Sprintf("10.0.%d.%d", r.U8(), r.U8())
	case 2:
		return rxSelfAddr.Hostname // our own endpoint
	case 3:
		return "::1"
	case 4:
		return fmt.Sprintf("2001:db8::%x", r.U16())
	case 5:
		return "fe80::1%eth0"
	case 6:
		return "::ffff:11.1.2.3"
	case 7:
		return fmt.Sprintf("seed-%d.Example.com", r.U8())
	case 8:
		return "localhost"
	case 9:
		return string(r.Bytes(int(r.U8()) + int(r.U8())))
	case 10:
		return ""
	case 11:
		return "1.2.3"
	case 12:
		return "256.1.1.1"
	case 13:
		return "[::1]"
	case 14:
		return strings.Repeat("a", 64) + ".com"
	default:
		return fmt.Sprintf("11.%d.%d.%d", r.U8(), r.U8(), r.U8())
	}
}

func fzPort(r *testkit.Reader) uint32 {
	switch k := r.U8(); k % 8 {
	case 0:
		return 0
	case 1:
		return 65535
	case 2:
		return 65536
	case 3:
		return math.MaxUint32
	case 4:
		return uint32(r.U16())
	default:
		return 26656
	}
}

func fzURL(r *testkit.Reader, from, self NodeID) string {
	k := r.U8()
	if k%16 == 15 {
		return string(r.Bytes(3 * int(r.U8()))) // raw, up to 765 bytes
	}
	scheme := []string{"", "mconn://", "tcp://", "MConn://", "http://", "memory:", "memory://", "mconn:/"}[k%8]
	id := fzIDStr(r, from, self)
	if strings.HasPrefix(scheme, "memory") {
		if k&0x10 != 0 {
			return scheme + id + "@11.1.1.1:1"
		}
		return scheme + id
	}
	host := fzHostStr(r)
	if strings.Contains(host, ":") && k&0x20 == 0 {
		host = "[" + host + "]"
	}
	port := fzPort(r)
	if k&0x40 != 0 {
		return scheme + id + "@" + host
	}
	return fmt.Sprintf("%s%s@%s:%d", scheme, id, host, port)
}

// fzParseV1 mirrors how the Core reads a V1 entry.
func fzParseV1(a *pb.PexAddress) (NodeAddress, error) {
	ip, err := netip.ParseAddr(a.GetIp())
	if err != nil {
		return NodeAddress{}, err
	}
	if a.GetPort() > math.MaxUint16 {
		return NodeAddress{}, ErrInvalidAddress
	}
	id, err := ParseNodeID(a.GetId())
	if err != nil {
		return NodeAddress{}, err
	}
	return NodeAddressFromIP(id, ip, uint16(a.GetPort()))
}

// ---------------------------------------------------------------------------
// FuzzCoreReceive

const fzCorePeers = 8 // peers are nodeID(1..8); we are nodeID(0)

type fzCore struct {
	t         *testing.T
	now       time.Time
	pm        *PeerManager
	c         *Core
	self      NodeID
	dropFatal bool // the transport disconnects fatal peers and evictions
	depth     int
	// What the harness saw, to check the Core against.
	lastReq   map[NodeID]time.Time // last request to each connected peer
	zeroSince time.Time            // since when nobody is connected
	restarted time.Time
	requests  int
	errs      int
}

func fzPeer(k byte) NodeID { return nodeID(1 + int(k)%fzCorePeers) }

// handle checks and carries out a Core's Actions as a transport would.
func (h *fzCore) handle(what string, acts Actions) {
	t := h.t
	t.Helper()
	for _, pe := range acts.Errors {
		if pe.Err == nil {
			t.Fatalf("%s: PeerError with nil Err", what)
		}
		testkit.CheckErr(t, what+": PeerError", pe.Err, fzSentinels)
		if !strings.HasPrefix(pe.Error(), "pex: peer ") {
			t.Fatalf("%s: PeerError text %q", what, pe.Error())
		}
	}
	for _, e := range acts.Send {
		if err := e.To.Validate(); err != nil || e.To == h.self {
			t.Fatalf("%s: send to %q", what, e.To)
		}
		if len(e.Message) > h.c.cfg.MaxMessageSize && len(e.Message) > DefaultMaxMessageSize {
			t.Fatalf("%s: sent %d bytes", what, len(e.Message))
		}
	}
	for _, v := range acts.Resolve {
		h.checkAnswer(what+": resolve", v.To, v.Addrs, MaxAddresses)
	}
	h.errs += len(acts.Errors)
	if acts.Restart {
		cfg := h.c.cfg
		switch {
		case cfg.NoPeersRestartWindow <= 0:
			t.Fatalf("%s: restart signalled, but restarts are off", what)
		case len(h.c.peers) > 0 || h.zeroSince.IsZero():
			t.Fatalf("%s: restart signalled with %d peers up", what, len(h.c.peers))
		case h.now.Sub(h.zeroSince) < cfg.NoPeersRestartWindow:
			t.Fatalf("%s: restart after %s without peers, window %s", what, h.now.Sub(h.zeroSince), cfg.NoPeersRestartWindow)
		case !h.restarted.IsZero() && h.now.Sub(h.restarted) < cfg.RestartCooldown:
			t.Fatalf("%s: restart %s after the last, cooldown %s", what, h.now.Sub(h.restarted), cfg.RestartCooldown)
		}
		h.restarted = h.now
	}
	if acts.NoPeers != nil && len(h.c.peers) > 0 {
		t.Fatalf("%s: NoPeers with %d peers up", what, len(h.c.peers))
	}
	// Requests: only to a peer now waiting on it, never closer to the last
	// than the peer's spacing (a CometBFT peer disconnects us for that).
	for _, e := range acts.Send {
		if !bytes.Equal(e.Message, v1Request) && !bytes.Equal(e.Message, v2Request) {
			continue
		}
		h.requests++
		p := h.c.peers[e.To]
		if p == nil || !p.pending || !p.sentAt.Equal(h.now) {
			t.Fatalf("%s: request to %s, which is not pending", what, e.To)
		}
		if bytes.Equal(e.Message, v2Request) != h.c.speaksV2(p) {
			t.Fatalf("%s: request version to %s (V2 %v)", what, e.To, h.c.speaksV2(p))
		}
		if last, ok := h.lastReq[e.To]; ok && h.now.Sub(last) < h.c.spacing(p) {
			t.Fatalf("%s: asked %s again after %s, spacing %s", what, e.To, h.now.Sub(last), h.c.spacing(p))
		}
		h.lastReq[e.To] = h.now
	}
	if !h.dropFatal || h.depth > 0 {
		for _, pe := range acts.Errors {
			h.pm.Errored(pe)
		}
		return
	}
	h.depth++
	defer func() { h.depth-- }()
	for _, pe := range acts.Errors {
		h.pm.Errored(pe)
		if pe.Fatal {
			h.down(pe.NodeID)
		}
	}
	for {
		id, ok := h.pm.EvictNext()
		if !ok {
			break
		}
		h.down(id)
	}
}

// checkAnswer checks what we advertise to `to`: at most limit entries,
// never to's own, never one peer twice.
func (h *fzCore) checkAnswer(what string, to NodeID, addrs []NodeAddress, limit int) {
	t := h.t
	t.Helper()
	if len(addrs) > limit {
		t.Fatalf("%s: %d addresses, limit %d", what, len(addrs), limit)
	}
	seen := make(map[NodeID]bool, len(addrs))
	for _, a := range addrs {
		if a.NodeID == to {
			t.Fatalf("%s: advertised the requester %s its own address %s", what, to, a)
		}
		if seen[a.NodeID] {
			t.Fatalf("%s: advertised %s twice to %s: %v", what, a.NodeID, to, addrs)
		}
		seen[a.NodeID] = true
		if err := a.Validate(); err != nil {
			t.Fatalf("%s: advertised invalid %v: %v", what, a, err)
		}
	}
}

// checkServed decodes an answer we sent and checks it like checkAnswer.
func (h *fzCore) checkServed(what string, e Envelope, v2 bool) {
	t := h.t
	t.Helper()
	var m pb.PexMessage
	if err := proto.Unmarshal(e.Message, &m); err != nil {
		t.Fatalf("%s: sent undecodable %x", what, e.Message)
	}
	var addrs []NodeAddress
	switch s := m.Sum.(type) {
	case *pb.PexMessage_PexResponseV2:
		if !v2 {
			t.Fatalf("%s: V2 answer to a V1 request", what)
		}
		for _, u := range s.PexResponseV2.GetAddresses() {
			a, err := ParseNodeAddress(u.GetUrl())
			if err != nil {
				t.Fatalf("%s: sent unparsable URL %q: %v", what, u.GetUrl(), err)
			}
			addrs = append(addrs, a)
		}
	case *pb.PexMessage_PexResponse:
		if v2 {
			t.Fatalf("%s: V1 answer to a V2 request", what)
		}
		for _, x := range s.PexResponse.GetAddresses() {
			a, err := fzParseV1(x)
			if err != nil {
				t.Fatalf("%s: sent bad V1 entry %v: %v", what, x, err)
			}
			addrs = append(addrs, a)
		}
	default:
		t.Fatalf("%s: answered a request with %T", what, m.Sum)
	}
	h.checkAnswer(what, e.To, addrs, MaxAddresses)
}

// checkWake: after a Tick (or a peer update, which ends in one) nothing is
// due at or before now, and something is always scheduled.
func (h *fzCore) checkWake(what string) {
	t := h.t
	t.Helper()
	w := h.c.NextWake()
	if w.IsZero() {
		t.Fatalf("%s: NextWake is zero: nothing scheduled (peers %d)", what, len(h.c.peers))
	}
	if !w.After(h.now) {
		t.Fatalf("%s: NextWake %s not after now %s: Tick would spin", what, w.Sub(rxBase), h.now.Sub(rxBase))
	}
}

// checkGlobal checks what must hold after every step.
func (h *fzCore) checkGlobal(what string) {
	t := h.t
	t.Helper()
	if h.pm.Has(h.self) {
		t.Fatalf("%s: we are in our own book", what)
	}
	if err := h.pm.Check(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	// Every peer the Core knows is either waiting on a request or in the
	// rotation, never both, never neither (it would never be asked again).
	inRot := 0
	for e := h.c.rotation.Front(); e != nil; e = e.Next() {
		p := e.Value.(*corePeer)
		if h.c.peers[p.id] != p || p.elem != e {
			t.Fatalf("%s: stale rotation entry %s", what, p.id)
		}
		inRot++
	}
	for id, p := range h.c.peers {
		if (p.elem != nil) == p.pending {
			t.Fatalf("%s: peer %s pending=%v inRotation=%v", what, id, p.pending, p.elem != nil)
		}
		if math.IsNaN(h.c.expectedYield(h.now, p, h.c.walkedSize())) {
			t.Fatalf("%s: expected yield of %s is NaN", what, id)
		}
	}
	if inRot != h.c.rotation.Len() {
		t.Fatalf("%s: rotation length", what)
	}
	if h.c.started && h.c.NextWake().IsZero() {
		t.Fatalf("%s: nothing scheduled", what)
	}
	s := h.c.Stats()
	if s.Interval < 0 || s.NetworkSize < h.pm.Len() {
		t.Fatalf("%s: stats %+v", what, s)
	}
	if s.RequestsSent != h.requests || s.PeerErrors != h.errs || s.Responses > s.RequestsSent {
		t.Fatalf("%s: stats %+v, harness saw %d requests, %d errors", what, s, h.requests, h.errs)
	}
	if math.IsNaN(h.c.newShare) || h.c.interval < 0 {
		t.Fatalf("%s: newShare %v interval %v", what, h.c.newShare, h.c.interval)
	}
}

func (h *fzCore) up(id NodeID, caps PeerCaps, full bool) {
	if !h.pm.IsConnected(id) {
		if err := h.pm.Accepted(id); err != nil {
			testkit.CheckErr(h.t, "Accepted", err, fzPMSentinels)
			return
		}
	}
	if !full || h.c.peers[id] != nil {
		return
	}
	h.pm.Ready(id, caps)
	h.zeroSince = time.Time{}
	h.handle("up", h.c.PeerUpdate(h.now, PeerUpdate{NodeID: id, Status: PeerStatusUp, Caps: caps}))
	h.checkWake("up")
}

func (h *fzCore) down(id NodeID) {
	h.pm.Disconnected(id)
	if h.c.peers[id] != nil {
		acts := h.c.PeerUpdate(h.now, PeerUpdate{NodeID: id, Status: PeerStatusDown})
		delete(h.lastReq, id)
		if len(h.c.peers) == 0 {
			h.zeroSince = h.now
		}
		h.handle("down", acts)
		h.checkWake("down")
	}
}

func (h *fzCore) tick(d time.Duration) {
	h.now = h.now.Add(d)
	acts := h.c.Tick(h.now)
	if len(acts.Send) > 1 {
		h.t.Fatalf("tick: %d requests at once", len(acts.Send))
	}
	h.handle("tick", acts)
	h.checkWake("tick")
}

// receive delivers msg from `from` and checks what a rejected or accepted
// message may do to the book.
func (h *fzCore) receive(from NodeID, msg []byte) {
	t := h.t
	t.Helper()
	before := h.pm.Known()
	p := h.c.peers[from]
	solicited := p != nil && (p.pending || p.late)
	var want error // a whole-message rejection we expect
	var m pb.PexMessage
	isResp, isReq, v2 := false, false, false
	n := 0
	switch {
	case len(msg) > h.c.cfg.MaxMessageSize:
		want = ErrMessageTooLarge
	case proto.Unmarshal(msg, &m) != nil:
		want = ErrMalformedMessage
	default:
		switch s := m.Sum.(type) {
		case nil:
			want = ErrUnknownMessage
		case *pb.PexMessage_PexRequest:
			isReq = true
		case *pb.PexMessage_PexRequestV2:
			isReq, v2 = true, true
		case *pb.PexMessage_PexResponse:
			isResp, n = true, len(s.PexResponse.GetAddresses())
		case *pb.PexMessage_PexResponseV2:
			isResp, n = true, len(s.PexResponseV2.GetAddresses())
		}
		switch {
		case isResp && !solicited:
			want = ErrUnsolicitedResponse
		case isResp && n > MaxAddresses:
			want = ErrTooManyAddresses
		}
	}
	connBefore := map[NodeID]bool{}
	for _, id := range before {
		if h.pm.IsConnected(id) {
			connBefore[id] = true
		}
	}
	acts := h.c.Receive(h.now, Envelope{From: from, Message: msg})
	after := h.pm.Known()
	for _, pe := range acts.Errors {
		if pe.NodeID != from {
			t.Fatalf("receive: PeerError names %s, message came from %s", pe.NodeID, from)
		}
	}
	if want != nil {
		if len(acts.Errors) != 1 || !errors.Is(acts.Errors[0].Err, want) || !acts.Errors[0].Fatal {
			t.Fatalf("receive: want one fatal %v, got %v", want, acts.Errors)
		}
		if len(acts.Send)+len(acts.Resolve) > 0 {
			t.Fatalf("receive: rejected message answered")
		}
	}
	if want != nil || !isResp {
		if !slices.Equal(before, after) {
			t.Fatalf("receive: book changed by a rejected message or a request (want %v): %d -> %d peers", want, len(before), len(after))
		}
	}
	if isReq && want == nil {
		for _, e := range acts.Send {
			if e.To != from {
				t.Fatalf("receive: request from %s answered to %s", from, e.To)
			}
			h.checkServed("serve", e, v2)
		}
		if len(acts.Send)+len(acts.Resolve) > 1 {
			t.Fatalf("receive: one request answered %d times", len(acts.Send)+len(acts.Resolve))
		}
	}
	if isResp && want == nil {
		if len(acts.Send) > 0 {
			t.Fatalf("receive: a response caused a send")
		}
		valid := map[NodeID]bool{}
		add := func(a NodeAddress, err error) {
			if err == nil && h.pm.CheckAddress(a) == nil {
				valid[a.NodeID] = true
			}
		}
		if s, ok := m.Sum.(*pb.PexMessage_PexResponse); ok {
			for _, x := range s.PexResponse.GetAddresses() {
				add(fzParseV1(x))
			}
		} else {
			for _, x := range m.Sum.(*pb.PexMessage_PexResponseV2).PexResponseV2.GetAddresses() {
				add(ParseNodeAddress(x.GetUrl()))
			}
		}
		removed, added := 0, 0
		for _, id := range after {
			if _, found := slices.BinarySearch(before, id); !found {
				added++
				if !valid[id] {
					t.Fatalf("receive: %s entered the book but no valid entry named it", id)
				}
			}
		}
		for _, id := range before {
			if _, found := slices.BinarySearch(after, id); !found {
				removed++
				if connBefore[id] {
					t.Fatalf("receive: connected peer %s dropped from the book", id)
				}
			}
		}
		// A book that is not full drops only what a source whose share
		// is full gives up, one entry for each node of a new group it
		// brings (see book.makeRoomInSource).
		if removed > added && len(after) < h.pm.MaxPeers() {
			t.Fatalf("receive: %d peers dropped for %d added to a book that was not full (%d of %d)", removed, added, len(after), h.pm.MaxPeers())
		}
	}
	h.handle("receive", acts)
}

func FuzzCoreReceive(f *testing.F) {
	// Seeds: a few op sequences of each kind.
	v2 := mustMarshal(&pb.PexMessage{Sum: &pb.PexMessage_PexResponseV2{PexResponseV2: &pb.PexResponseV2{
		Addresses: []*pb.PexAddressV2{{Url: fzPub(30).String()}, {Url: "junk"}}}}})
	f.Add([]byte{0})
	f.Add([]byte{0x00, 5, 1, 0, 100, 0, 0, 0, 0, 0})
	f.Add(append([]byte{0x04, 10, 0, 1, byte(len(v2))}, v2...))
	f.Add([]byte{0x80, 10, 1, 0, 1, 1, 99, 4, 200, 1, 4, 1, 1, 1, 33, 9, 4, 7, 7, 2, 3, 2, 3, 1})
	f.Add([]byte{0x13, 0, 6, 1, 6, 0, 4, 9, 4, 10, 1, 2, 0x83, 0, 1, 3, 0x80, 150})
	f.Add([]byte{0x22, 20, 4, 11, 1, 0, 0x41, 120, 1, 1, 0x40, 30, 4, 3, 1, 2, 60})
	f.Add([]byte{0x08, 0, 3, 0, 3, 1, 3, 2, 3, 3, 3, 4, 4, 12, 4, 12, 4, 12, 2, 5, 3, 4, 12})
	// Everyone leaves; restarts; someone comes back.
	f.Add([]byte{0x08, 0, 4, 0, 4, 1, 4, 2, 4, 3, 4, 4, 5, 7, 5, 9, 5, 9, 5, 10, 3, 0, 5, 3, 4, 0, 5, 10, 5, 11})
	// A peer connected but not up asks before its Up, too often, leaves.
	f.Add([]byte{0x00, 0, 3, 0x25, 8, 0x35, 8, 0x35, 8, 0x35, 8, 0x35, 8, 0x35, 8, 0x35, 4, 0x05, 5, 1, 3, 0x05, 5, 4})
	// Big honest answers (op 1: from, flags 4 bulk|2 sorted|1 V1, count,
	// base), walking in rank order, from each peer in turn, with ticks.
	for _, flags := range []byte{6, 7, 4, 0x16} {
		seed := []byte{0x00, 10}
		for round := range 4 {
			for k := range byte(5) {
				seed = append(seed, 1, k, flags, byte(100-20*round+int(k)), k*13+byte(round)*3, 5, 4, 5, 1)
			}
			seed = append(seed, 5, 7, 5, 2)
		}
		f.Add(seed)
	}
	testkit.RandomSeeds(f, 101)
	f.Fuzz(func(t *testing.T, data []byte) {
		defer testkit.Watchdog(data)()
		r := testkit.NewReader(data)
		cfgByte := r.U8()
		preload := int(r.U8() % 40)
		cfg := Config{}
		if cfgByte&1 != 0 {
			cfg.Policy = PolicyTendermint
		}
		if cfgByte&2 != 0 {
			cfg.NetworkV2 = true
		}
		if cfgByte&4 != 0 {
			cfg.MaxMessageSize = 64 + 64*int(r.U8()%32)
		}
		if cfgByte&8 != 0 {
			cfg.NoPeersRestartWindow = 30 * time.Second
		}
		h := &fzCore{t: t, now: rxBase, self: nodeID(0), dropFatal: cfgByte&0x80 != 0, lastReq: map[NodeID]time.Time{}}
		opts := PeerManagerOptions{Options: book.Options{SelfAddresses: []NodeAddress{rxSelfAddr}, Rand: rand.New(rand.NewPCG(1, 2)), MaxPeers: 300, Strict: cfgByte&0x20 != 0, RandomAdvertise: cfgByte&0x40 != 0}, Now: func() time.Time { return h.now }}
		if cfgByte&0x10 != 0 {
			opts.MaxPeers = 40
		}
		pm, err := NewPeerManager(h.self, opts)
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(cfg, pm.Book)
		if err != nil {
			t.Fatal(err)
		}
		h.pm, h.c = pm, c
		for i := range preload {
			if _, err := pm.Add(fzPub(20 + i)); err != nil {
				t.Fatal(err)
			}
		}
		// Peers 1-3 speak V2, 4-5 do not; 6-8 start down. Requests go out.
		for i := 1; i <= 5; i++ {
			caps := PeerCaps(0)
			if i <= 3 {
				caps = CapV2
			}
			h.up(nodeID(i), caps, true)
		}
		for range 5 {
			h.tick(200 * time.Millisecond)
		}
		h.checkGlobal("setup")
		durations := []time.Duration{0, time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond,
			250 * time.Millisecond, time.Second, 5 * time.Second, 10 * time.Second, 11 * time.Second,
			time.Minute, 10 * time.Minute, 3 * time.Hour}
		for step := 0; !r.Empty() && step < 200; step++ {
			op := r.U8()
			var what string
			switch op % 10 {
			case 0: // raw bytes
				from := fzPeer(r.U8())
				n := int(r.U8())
				if n > 200 {
					n = (n - 200) * 2000 // oversize messages
				}
				msg := r.Bytes(n)
				if n > len(msg) {
					msg = append(slices.Clone(msg), make([]byte, n-len(msg))...)
				}
				what = "raw"
				h.receive(from, msg)
			case 1, 2: // a well-formed response
				from := fzPeer(r.U8())
				flags := r.U8()
				n := int(r.U8()) % 151
				var msg []byte
				bulk := -1
				if flags&4 != 0 {
					// All valid and fresh-ish: a big honest answer mid-sequence.
					bulk = 100 + 8*int(r.U8())
				}
				if flags&1 == 0 {
					resp := &pb.PexResponseV2{}
					for i := range n {
						if bulk >= 0 {
							resp.Addresses = append(resp.Addresses, &pb.PexAddressV2{Url: fzPub(bulk + i).String()})
							continue
						}
						if r.Empty() {
							resp.Addresses = append(resp.Addresses, &pb.PexAddressV2{Url: fzPub(100 + i).String()})
							continue
						}
						resp.Addresses = append(resp.Addresses, &pb.PexAddressV2{Url: fzURL(r, from, h.self)})
					}
					if flags&2 != 0 {
						// A walking peer: entries in increasing rank of our order.
						slices.SortStableFunc(resp.Addresses, func(a, b *pb.PexAddressV2) int {
							x, _ := ParseNodeAddress(a.GetUrl())
							y, _ := ParseNodeAddress(b.GetUrl())
							return testkit.CmpU64(pm.RankOf(x.NodeID), pm.RankOf(y.NodeID))
						})
					}
					msg = fzEncodeV2(resp)
				} else {
					resp := &pb.PexResponse{}
					for i := range n {
						if bulk >= 0 || r.Empty() {
							a := fzPub(max(bulk, 100) + i)
							resp.Addresses = append(resp.Addresses, &pb.PexAddress{Id: string(a.NodeID), Ip: a.Hostname, Port: uint32(a.Port)})
							continue
						}
						resp.Addresses = append(resp.Addresses, &pb.PexAddress{Id: fzIDStr(r, from, h.self), Ip: fzHostStr(r), Port: fzPort(r)})
					}
					if flags&2 != 0 {
						slices.SortStableFunc(resp.Addresses, func(a, b *pb.PexAddress) int {
							return testkit.CmpU64(pm.RankOf(NodeID(strings.ToLower(a.GetId()))), pm.RankOf(NodeID(strings.ToLower(b.GetId()))))
						})
					}
					msg = fzEncodeV1(resp)
				}
				what = "response"
				h.receive(from, msg)
			case 3: // peer up
				k := r.U8()
				caps := PeerCaps(0)
				if k&0x10 != 0 {
					caps = CapV2
				}
				what = "up"
				h.up(fzPeer(k), caps, k&0x20 == 0)
			case 4: // peer down
				what = "down"
				h.down(fzPeer(r.U8()))
			case 5, 6: // tick
				k := r.U8()
				d := durations[int(k)%len(durations)]
				if k >= 240 {
					d = time.Duration(r.U16()) * time.Millisecond
				}
				what = "tick"
				h.tick(d)
			case 7: // add an address
				from := fzPeer(r.U8())
				a, err := ParseNodeAddress(fzURL(r, from, h.self))
				what = "add"
				if err == nil {
					if _, err := pm.Add(a); err != nil {
						testkit.CheckErr(t, "Add", err, fzPMSentinels)
					}
				}
			case 8: // a request
				k := r.U8()
				msg := testkit.V1Req
				if k&0x10 != 0 {
					msg = testkit.V2Req
				}
				what = "request"
				h.receive(fzPeer(k), msg)
			case 9: // Advertise directly
				to := fzPeer(r.U8())
				limit := int(r.U8()) % 130
				what = "advertise"
				h.checkAnswer("advertise", to, pm.Advertise(pm.now(), to, limit), limit)
			}
			h.checkGlobal(fmt.Sprintf("step %d (%s)", step, what))
		}
	})
}

// fzEncodeV2 and fzEncodeV1 encode responses by hand: proto.Marshal
// refuses strings that are not UTF-8, which a hostile peer may still send.
func fzEncodeV2(resp *pb.PexResponseV2) []byte {
	var body []byte
	for _, a := range resp.GetAddresses() {
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, a.GetUrl())
		body = protowire.AppendTag(body, 1, protowire.BytesType)
		body = protowire.AppendBytes(body, e)
	}
	out := protowire.AppendTag(nil, 4, protowire.BytesType)
	return protowire.AppendBytes(out, body)
}

func fzEncodeV1(resp *pb.PexResponse) []byte {
	var body []byte
	for _, a := range resp.GetAddresses() {
		var e []byte
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, a.GetId())
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendString(e, a.GetIp())
		e = protowire.AppendTag(e, 3, protowire.VarintType)
		e = protowire.AppendVarint(e, uint64(a.GetPort()))
		body = protowire.AppendTag(body, 1, protowire.BytesType)
		body = protowire.AppendBytes(body, e)
	}
	out := protowire.AppendTag(nil, 2, protowire.BytesType)
	return protowire.AppendBytes(out, body)
}
