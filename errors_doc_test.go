package pex

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sentinels names every Err… of errors.go; TestErrorDocsSentinelsComplete
// keeps it whole.
var sentinels = map[string]error{
	"ErrInvalidNodeID":       ErrInvalidNodeID,
	"ErrInvalidAddress":      ErrInvalidAddress,
	"ErrSelfAddress":         ErrSelfAddress,
	"ErrUnroutableAddress":   ErrUnroutableAddress,
	"ErrAddressBookFull":     ErrAddressBookFull,
	"ErrSourceGroupFull":     ErrSourceGroupFull,
	"ErrNetworkGroupFull":    ErrNetworkGroupFull,
	"ErrDistrustedSource":    ErrDistrustedSource,
	"ErrAnotherNodesAddress": ErrAnotherNodesAddress,
	"ErrMessageTooLarge":     ErrMessageTooLarge,
	"ErrMalformedMessage":    ErrMalformedMessage,
	"ErrUnknownMessage":      ErrUnknownMessage,
	"ErrTooManyAddresses":    ErrTooManyAddresses,
	"ErrUnsolicitedResponse": ErrUnsolicitedResponse,
	"ErrRequestTooSoon":      ErrRequestTooSoon,
	"ErrMostlyInvalid":       ErrMostlyInvalid,
	"ErrResponseTimeout":     ErrResponseTimeout,
	"ErrTooManyPeers":        ErrTooManyPeers,
	"ErrDuplicateConnection": ErrDuplicateConnection,
	"ErrNotConnected":        ErrNotConnected,
	"ErrInvalidConfig":       ErrInvalidConfig,
	"ErrAlreadyStarted":      ErrAlreadyStarted,
	"ErrStopped":             ErrStopped,
	"ErrQueueFull":           ErrQueueFull,
	"ErrResolve":             ErrResolve,
}

// docFiles are the files whose exported functions' docs are held to what
// the functions return.
var docFiles = []string{"peermanager.go", "reactor.go", "memnet.go", "message.go", "address.go", "nodeid.go"}

var sentinelRE = regexp.MustCompile(`\bErr[A-Z][A-Za-z]*\b`)

// funcDocs returns the doc comment of every exported function and method
// of docFiles, by "Name" or "Type.Name".
func funcDocs(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	docs := make(map[string]string)
	for _, f := range docFiles {
		file, err := parser.ParseFile(fset, f, nil, parser.ParseComments)
		require.NoError(t, err)
		for _, d := range file.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !fd.Name.IsExported() {
				continue
			}
			name := fd.Name.Name
			if fd.Recv != nil {
				typ := fd.Recv.List[0].Type
				if st, ok := typ.(*ast.StarExpr); ok {
					typ = st.X
				}
				name = typ.(*ast.Ident).Name + "." + name
			}
			docs[name] = fd.Doc.Text()
		}
	}
	return docs
}

// documented returns the sentinels a doc names.
func documented(doc string) []string {
	names := sentinelRE.FindAllString(doc, -1)
	slices.Sort(names)
	return slices.Compact(names)
}

// errorCase provokes one documented error of fn. want are the sentinels
// the error must wrap, each named in fn's doc.
type errorCase struct {
	fn   string
	want []string
	call func(t *testing.T) error
}

var (
	docSelf  = NodeID(strings.Repeat("5", 40))
	docPeerA = NodeID(strings.Repeat("a", 40))
	docPeerB = NodeID(strings.Repeat("b", 40))
	docPeerC = NodeID(strings.Repeat("c", 40))
)

// docPubAddr returns a public IPv4 address in 20.<g>.0.0/16, with a node
// ID made of n.
func docPubAddr(t *testing.T, g, n int) NodeAddress {
	t.Helper()
	return mustAddr(t, fmt.Sprintf("mconn://%040x@20.%d.%d.%d:26656", n+1, g, n/250, n%250+1))
}

func docPM(t *testing.T, opts PeerManagerOptions) *PeerManager {
	t.Helper()
	pm, err := NewPeerManager(docSelf, opts)
	require.NoError(t, err)
	return pm
}

func docSelfAddr(t *testing.T) NodeAddress {
	return mustAddr(t, "mconn://"+string(docSelf)+"@20.99.0.1:26656")
}

// addRefusals are the refusals Add and AddFrom share.
func addRefusals(fn string, add func(pm *PeerManager, a NodeAddress) error) []errorCase {
	return []errorCase{
		{fn, []string{"ErrInvalidAddress"}, func(t *testing.T) error {
			return add(docPM(t, PeerManagerOptions{}), NodeAddress{})
		}},
		{fn, []string{"ErrSelfAddress"}, func(t *testing.T) error {
			return add(docPM(t, PeerManagerOptions{}), docSelfAddr(t))
		}},
		{fn, []string{"ErrUnroutableAddress"}, func(t *testing.T) error {
			return add(docPM(t, PeerManagerOptions{Strict: true}), mustAddr(t, "mconn://"+string(docPeerA)+"@10.0.0.1:26656"))
		}},
		{fn, []string{"ErrAddressBookFull"}, func(t *testing.T) error {
			pm := docPM(t, PeerManagerOptions{MaxPeers: 1, PersistentPeers: []NodeAddress{docPubAddr(t, 1, 0)}})
			return add(pm, docPubAddr(t, 2, 1))
		}},
		{fn, []string{"ErrSourceGroupFull"}, func(t *testing.T) error {
			// One group told by one source (itself): its bucket fills at
			// 1/32 of the book.
			pm := docPM(t, PeerManagerOptions{})
			for i := 0; ; i++ {
				if err := add(pm, docPubAddr(t, 1, i)); err != nil || i > 100 {
					return err
				}
			}
		}},
		{fn, []string{"ErrNetworkGroupFull"}, func(t *testing.T) error {
			// One group told by many sources, the only group of the book
			// (the sources are persistent: outside the groups), so that it
			// is the book's typical group, which may hold more than a
			// crowded one: it fills at 1/16 of the book before any one
			// source's bucket does.
			pm := docPM(t, PeerManagerOptions{})
			n := 0
			for s := range 8 {
				src := docPubAddr(t, 100+s, 500+s)
				require.NoError(t, pm.AddPersistent(src))
				for range 16 {
					_, _ = pm.AddFrom(docPubAddr(t, 1, n), src.NodeID)
					n++
				}
			}
			return add(pm, docPubAddr(t, 1, n))
		}},
	}
}

func errorCases() []errorCase {
	cases := []errorCase{
		{"NodeAddressFromIP", []string{"ErrInvalidAddress"}, func(t *testing.T) error {
			_, err := NodeAddressFromIP(docPeerA, netip.MustParseAddr("198.51.100.1"), 0)
			return err
		}},
		{"NewPeerManager", []string{"ErrInvalidConfig"}, func(t *testing.T) error {
			_, err := NewPeerManager(docSelf, PeerManagerOptions{MaxOutbound: 60})
			return err
		}},
		{"NewPeerManager", []string{"ErrInvalidConfig", "ErrInvalidNodeID"}, func(t *testing.T) error {
			_, err := NewPeerManager("xyz", PeerManagerOptions{})
			return err
		}},
		{"NewPeerManager", []string{"ErrInvalidConfig", "ErrInvalidAddress"}, func(t *testing.T) error {
			_, err := NewPeerManager(docSelf, PeerManagerOptions{PersistentPeers: []NodeAddress{{NodeID: docPeerA}}})
			return err
		}},

		{"PeerManager.AddPersistent", []string{"ErrInvalidAddress"}, func(t *testing.T) error {
			return docPM(t, PeerManagerOptions{}).AddPersistent(NodeAddress{})
		}},
		{"PeerManager.AddPersistent", []string{"ErrSelfAddress"}, func(t *testing.T) error {
			return docPM(t, PeerManagerOptions{}).AddPersistent(docSelfAddr(t))
		}},
		{"PeerManager.AddPersistent", []string{"ErrUnroutableAddress"}, func(t *testing.T) error {
			return docPM(t, PeerManagerOptions{Strict: true}).AddPersistent(mustAddr(t, "mconn://"+string(docPeerA)+"@10.0.0.1:26656"))
		}},

		{"PeerManager.CheckAddress", []string{"ErrInvalidAddress"}, func(t *testing.T) error {
			return docPM(t, PeerManagerOptions{}).CheckAddress(NodeAddress{})
		}},
		{"PeerManager.CheckAddress", []string{"ErrSelfAddress"}, func(t *testing.T) error {
			return docPM(t, PeerManagerOptions{}).CheckAddress(docSelfAddr(t))
		}},
		{"PeerManager.CheckAddress", []string{"ErrUnroutableAddress"}, func(t *testing.T) error {
			return docPM(t, PeerManagerOptions{Strict: true}).CheckAddress(mustAddr(t, "mconn://"+string(docPeerA)+"@10.0.0.1:26656"))
		}},

		{"PeerManager.Dialed", []string{"ErrTooManyPeers"}, func(t *testing.T) error {
			pm := docPM(t, PeerManagerOptions{MaxConnected: 1, MaxOutbound: 1})
			require.NoError(t, pm.Accepted(docPeerA))
			return pm.Dialed(docPubAddr(t, 1, 0))
		}},
		{"PeerManager.Dialed", []string{"ErrDuplicateConnection"}, func(t *testing.T) error {
			// A simultaneous dial: the peer's connection is accepted while
			// ours is in flight, and wins.
			pm := docPM(t, PeerManagerOptions{PersistentPeers: []NodeAddress{docPubAddr(t, 1, 0)}})
			a, ok := pm.TryDialNext()
			require.True(t, ok)
			require.NoError(t, pm.Accepted(a.NodeID))
			return pm.Dialed(a)
		}},
		{"PeerManager.Dialed", []string{"ErrSelfAddress"}, func(t *testing.T) error {
			return docPM(t, PeerManagerOptions{}).Dialed(docSelfAddr(t))
		}},
		{"PeerManager.Dialed", []string{"ErrInvalidAddress"}, func(t *testing.T) error {
			return docPM(t, PeerManagerOptions{}).Dialed(NodeAddress{Protocol: "bogus", NodeID: docPeerA, Hostname: "20.1.0.1", Port: 1})
		}},
		{"PeerManager.Dialed", []string{"ErrUnroutableAddress"}, func(t *testing.T) error {
			return docPM(t, PeerManagerOptions{Strict: true}).Dialed(mustAddr(t, "mconn://"+string(docPeerA)+"@10.0.0.1:26656"))
		}},
		{"PeerManager.Dialed", []string{"ErrAddressBookFull"}, func(t *testing.T) error {
			pm := docPM(t, PeerManagerOptions{MaxPeers: 1, PersistentPeers: []NodeAddress{docPubAddr(t, 1, 0)}})
			return pm.Dialed(docPubAddr(t, 2, 1))
		}},

		{"PeerManager.Accepted", []string{"ErrTooManyPeers"}, func(t *testing.T) error {
			// The one connection is outbound: nobody to displace.
			pm := docPM(t, PeerManagerOptions{MaxConnected: 1, MaxOutbound: 1})
			require.NoError(t, pm.Dialed(docPubAddr(t, 1, 0)))
			return pm.Accepted(docPeerB)
		}},
		{"PeerManager.Accepted", []string{"ErrDuplicateConnection"}, func(t *testing.T) error {
			pm := docPM(t, PeerManagerOptions{})
			require.NoError(t, pm.Accepted(docPeerA))
			return pm.Accepted(docPeerA)
		}},
		{"PeerManager.Accepted", []string{"ErrSelfAddress"}, func(t *testing.T) error {
			return docPM(t, PeerManagerOptions{}).Accepted(docSelf)
		}},
		{"PeerManager.Accepted", []string{"ErrInvalidNodeID"}, func(t *testing.T) error {
			return docPM(t, PeerManagerOptions{}).Accepted("xyz")
		}},

		{"NewReactor", []string{"ErrInvalidConfig"}, func(t *testing.T) error {
			_, err := NewReactor(Config{}, docPM(t, PeerManagerOptions{}), make(chan PeerUpdate), nil)
			return err
		}},
		{"NewReactor", []string{"ErrInvalidConfig"}, func(t *testing.T) error {
			_, err := NewReactor(Config{MinInterval: -1}, docPM(t, PeerManagerOptions{}), make(chan PeerUpdate), nopChannel{})
			return err
		}},
		{"Reactor.Start", []string{"ErrAlreadyStarted"}, func(t *testing.T) error {
			r, err := NewReactor(Config{}, docPM(t, PeerManagerOptions{}), make(chan PeerUpdate), nopChannel{})
			require.NoError(t, err)
			require.NoError(t, r.Start(t.Context()))
			r.Stop()
			return r.Start(t.Context())
		}},

		{"MemoryNetwork.AddNode", []string{"ErrInvalidConfig"}, func(t *testing.T) error {
			net, pm := NewMemoryNetwork(), docPM(t, PeerManagerOptions{})
			_, err := net.AddNode(pm, MemoryNodeOptions{})
			require.NoError(t, err)
			_, err = net.AddNode(pm, MemoryNodeOptions{})
			return err
		}},
		{"MemoryNode.Send", []string{"ErrNotConnected"}, func(t *testing.T) error {
			m, _, _ := memPair(t, PeerManagerOptions{}, 0)
			return m.Send(t.Context(), Envelope{To: docPeerC, Message: EncodeRequest(true)})
		}},
		{"MemoryNode.Send", []string{"ErrQueueFull"}, func(t *testing.T) error {
			m, b, _ := memPair(t, PeerManagerOptions{}, 1)
			require.NoError(t, m.Dial(b))
			require.NoError(t, m.Send(t.Context(), Envelope{To: b.NodeID, Message: EncodeRequest(true)}))
			return m.Send(t.Context(), Envelope{To: b.NodeID, Message: EncodeRequest(true)})
		}},
		{"MemoryNode.Dial", []string{"ErrStopped"}, func(t *testing.T) error {
			m, b, _ := memPair(t, PeerManagerOptions{}, 0)
			m.Close()
			return m.Dial(b)
		}},
		{"MemoryNode.Dial", []string{"ErrNotConnected"}, func(t *testing.T) error {
			m, _, _ := memPair(t, PeerManagerOptions{}, 0)
			return m.Dial(docPubAddr(t, 3, 3))
		}},
		{"MemoryNode.Dial", []string{"ErrDuplicateConnection"}, func(t *testing.T) error {
			m, b, _ := memPair(t, PeerManagerOptions{}, 0)
			require.NoError(t, m.Dial(b))
			return m.Dial(b)
		}},
		{"MemoryNode.Dial", []string{"ErrTooManyPeers"}, func(t *testing.T) error {
			m, b, c := memPair(t, PeerManagerOptions{MaxConnected: 1, MaxOutbound: 1}, 0)
			require.NoError(t, m.Dial(b))
			return m.Dial(c)
		}},

		{"EncodeResponse", []string{"ErrInvalidAddress"}, func(t *testing.T) error {
			_, err := EncodeResponse([]NodeAddress{mustAddr(t, "memory:"+string(docPeerA))}, false)
			return err
		}},
		{"EncodeResponse", []string{"ErrInvalidNodeID"}, func(t *testing.T) error {
			_, err := EncodeResponse([]NodeAddress{{Protocol: ProtocolMConn, NodeID: "xyz", Hostname: "20.1.0.1", Port: 1}}, true)
			return err
		}},
		{"EncodeResponse", []string{"ErrTooManyAddresses"}, func(t *testing.T) error {
			_, err := EncodeResponse(make([]NodeAddress, MaxAddresses+1), true)
			return err
		}},
		{"DecodeMessage", []string{"ErrMalformedMessage"}, func(t *testing.T) error {
			_, err := DecodeMessage([]byte{0x0a})
			return err
		}},
		{"DecodeMessage", []string{"ErrUnknownMessage"}, func(t *testing.T) error {
			_, err := DecodeMessage(nil)
			return err
		}},
		{"DecodeMessage", []string{"ErrTooManyAddresses"}, func(t *testing.T) error {
			urls := make([]NodeAddress, MaxAddresses+1)
			for i := range urls {
				urls[i] = docPubAddr(t, 1, i)
			}
			b, err := EncodeResponse(urls[:MaxAddresses], true)
			require.NoError(t, err)
			one, err := EncodeResponse(urls[MaxAddresses:], true)
			require.NoError(t, err)
			// Two encodings of one repeated field concatenate: the
			// decoder reads both lists as one of MaxAddresses+1.
			_, err = DecodeMessage(append(b, one...))
			return err
		}},

		{"ParseNodeID", []string{"ErrInvalidNodeID"}, func(t *testing.T) error {
			_, err := ParseNodeID("xyz")
			return err
		}},
		{"ParseNodeAddress", []string{"ErrInvalidAddress"}, func(t *testing.T) error {
			_, err := ParseNodeAddress("http://x")
			return err
		}},
		{"ParseNodeAddress", []string{"ErrInvalidNodeID"}, func(t *testing.T) error {
			_, err := ParseNodeAddress("mconn://xyz@20.1.0.1:1")
			return err
		}},
	}
	cases = append(cases, addRefusals("PeerManager.Add", func(pm *PeerManager, a NodeAddress) error {
		_, err := pm.Add(a)
		return err
	})...)
	cases = append(cases, addRefusals("PeerManager.AddFrom", func(pm *PeerManager, a NodeAddress) error {
		_, err := pm.AddFrom(a, "")
		return err
	})...)
	cases = append(cases, errorCase{"PeerManager.AddFrom", []string{"ErrDistrustedSource"}, func(t *testing.T) error {
		// A source whose addresses keep proving other node IDs.
		pm := docPM(t, PeerManagerOptions{})
		src := docPubAddr(t, 50, 0)
		require.NoError(t, pm.AcceptedFrom(src.NodeID, netip.MustParseAddrPort("20.50.0.1:40000")))
		for i := 0; ; i++ {
			a := docPubAddr(t, 1+i%40, 100+i)
			if _, err := pm.AddFrom(a, src.NodeID); err != nil || i > 100 {
				return err
			}
			pm.DialMismatch(a)
		}
	}})
	cases = append(cases, errorCase{"PeerManager.AddFrom", []string{"ErrAnotherNodesAddress"}, func(t *testing.T) error {
		// Another ID at the host and port a connected peer proved its own.
		pm := docPM(t, PeerManagerOptions{})
		peer, src := docPubAddr(t, 50, 0), docPubAddr(t, 51, 1)
		require.NoError(t, pm.AcceptedFrom(peer.NodeID, netip.MustParseAddrPort("20.50.0.1:40000"), peer))
		require.NoError(t, pm.AcceptedFrom(src.NodeID, netip.MustParseAddrPort("20.51.0.2:40000")))
		spoof := docPubAddr(t, 50, 7)
		spoof.Hostname, spoof.Port = peer.Hostname, peer.Port
		_, err := pm.AddFrom(spoof, src.NodeID)
		return err
	}})
	return cases
}

// memPair returns node m of a memory network and the addresses of two
// other nodes, b and c; m's PeerManager takes opts. queue sizes the other
// nodes' inbound queues (0: the default).
func memPair(t *testing.T, opts PeerManagerOptions, queue int) (*MemoryNode, NodeAddress, NodeAddress) {
	t.Helper()
	net := NewMemoryNetwork()
	m, err := net.AddNode(docPM(t, opts), MemoryNodeOptions{Caps: CapV2})
	require.NoError(t, err)
	var addrs []NodeAddress
	for _, id := range []NodeID{docPeerB, docPeerC} {
		pm, err := NewPeerManager(id, PeerManagerOptions{})
		require.NoError(t, err)
		_, err = net.AddNode(pm, MemoryNodeOptions{Caps: CapV2, QueueSize: queue})
		require.NoError(t, err)
		addrs = append(addrs, mustAddr(t, "memory:"+string(id)))
	}
	return m, addrs[0], addrs[1]
}

// nopChannel is a Channel that carries nothing.
type nopChannel struct{}

func (nopChannel) Send(context.Context, Envelope) error         { return nil }
func (nopChannel) Receive() <-chan Envelope                     { return nil }
func (nopChannel) ReportError(context.Context, PeerError) error { return nil }

// TestErrorDocs provokes each documented error of each exported function
// and method, checks that it wraps its sentinels and starts with "pex: ",
// and that the function's doc names each sentinel it returned. Then every
// sentinel a doc names must have been provoked from that function: a doc
// that drops an error, or names one the function does not return, fails.
func TestErrorDocs(t *testing.T) {
	docs := funcDocs(t)
	provoked := make(map[string]map[string]bool)
	for _, c := range errorCases() {
		t.Run(c.fn+"/"+strings.Join(c.want, "+"), func(t *testing.T) {
			doc, ok := docs[c.fn]
			require.True(t, ok, "no exported %s in %v", c.fn, docFiles)
			err := c.call(t)
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), "pex: "), "%s: %q does not start with \"pex: \"", c.fn, err)
			for _, name := range c.want {
				s, ok := sentinels[name]
				require.True(t, ok, "unknown sentinel %s", name)
				require.ErrorIs(t, err, s, "%s: %v", c.fn, err)
				require.Contains(t, documented(doc), name, "%s returns %s, which its doc does not name:\n%s", c.fn, name, doc)
			}
			// Whatever else the error wraps must be documented too.
			for name, s := range sentinels {
				if errors.Is(err, s) {
					require.Contains(t, documented(doc), name, "%s returned %v, wrapping %s, which its doc does not name", c.fn, err, name)
				}
			}
			if provoked[c.fn] == nil {
				provoked[c.fn] = make(map[string]bool)
			}
			for _, name := range c.want {
				provoked[c.fn][name] = true
			}
		})
	}
	for fn, doc := range docs {
		for _, name := range documented(doc) {
			if _, ok := sentinels[name]; !ok {
				t.Errorf("%s: its doc names %s, which errors.go does not define", fn, name)
				continue
			}
			if !provoked[fn][name] {
				t.Errorf("%s: its doc names %s, but no case of errorCases provokes it", fn, name)
			}
		}
	}
}

// TestErrorDocsSentinelsComplete keeps sentinels in step with errors.go.
func TestErrorDocsSentinelsComplete(t *testing.T) {
	file, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	require.NoError(t, err)
	var names []string
	ast.Inspect(file, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			for _, id := range vs.Names {
				if strings.HasPrefix(id.Name, "Err") {
					names = append(names, id.Name)
				}
			}
		}
		return true
	})
	require.Len(t, sentinels, len(names))
	for _, n := range names {
		require.Contains(t, sentinels, n)
		require.True(t, strings.HasPrefix(sentinels[n].Error(), "pex: "), n)
	}
}
