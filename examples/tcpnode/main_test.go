package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pexnet/pex"
	"go.uber.org/goleak"
)

// TestMain fails the tests if a goroutine outlives them: stopNodes must
// wait for every goroutine the nodes started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

// TestDiscovery starts five nodes that know only the seed, waits until
// each knows the other four, and checks that stopping them closes every
// connection in the PeerManagers too (Disconnected was called).
func TestDiscovery(t *testing.T) {
	const n = 5
	nodes, err := startNodes(context.Background(), n, quiet)
	defer stopNodes(nodes) // a second stop is harmless
	if err != nil {
		t.Fatal(err)
	}
	// waitDiscovery polls the books, with a deadline: the nodes talk over
	// real sockets, so there is no fake clock to advance and no event to
	// wait for.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := waitDiscovery(ctx, nodes, t.Output()); err != nil {
		t.Fatal(err)
	}
	for i, nd := range nodes {
		var want []pex.NodeID
		for _, other := range nodes {
			if other != nd {
				want = append(want, other.id)
			}
		}
		slices.Sort(want)
		if got := nd.pm.Known(); !slices.Equal(got, want) {
			t.Errorf("node %d knows %v, want %v", i, got, want)
		}
	}

	stopNodes(nodes)
	for i, nd := range nodes {
		if ids := nd.pm.Connected(); len(ids) > 0 {
			t.Errorf("node %d: after stop, the PeerManager still counts %v ready", i, ids)
		}
		for _, other := range nodes {
			if nd.pm.IsConnected(other.id) {
				t.Errorf("node %d: after stop, the PeerManager still counts %s connected", i, other.id)
			}
		}
		nd.mu.Lock()
		if len(nd.conns) > 0 {
			t.Errorf("node %d: after stop, %d connections are left", i, len(nd.conns))
		}
		nd.mu.Unlock()
	}
}

// TestRun runs the program as main does, with four nodes.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), 4, 10*time.Second, &out, quiet); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "every node knows all 3 others") {
		t.Errorf("output does not say discovery finished:\n%s", out.String())
	}
}

// TestWrongNodeRefused dials a node under another node's ID: the handshake
// shows the key behind the address is not the one dialled, and the dial
// is refused before the PeerManager hears of a connection.
func TestWrongNodeRefused(t *testing.T) {
	nodes, err := startNodes(context.Background(), 2, quiet)
	defer stopNodes(nodes)
	if err != nil {
		t.Fatal(err)
	}
	a, b := nodes[0], nodes[1] // b dials a on its own: leave b's dialer to it
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	// a's host and port, someone else's ID.
	impostor, err := pex.ParseNodeAddress(fmt.Sprintf("tcp://%s@%s", pex.NodeIDFromPublicKey(pub), a.ln.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", a.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, err = b.connect(nc, &impostor)
	if !errors.Is(err, errWrongNode) {
		t.Fatalf("dialling %s at a's address: got %v, want errWrongNode", impostor.NodeID, err)
	}
	if b.pm.IsConnected(impostor.NodeID) {
		t.Error("the PeerManager counts the impostor connected")
	}
}

// TestFrameTooLarge checks that a frame over the limit is refused from its
// length alone.
func TestFrameTooLarge(t *testing.T) {
	var buf bytes.Buffer
	if err := writeFrame(&buf, make([]byte, pex.DefaultMaxMessageSize+1)); err != nil {
		t.Fatal(err)
	}
	if _, err := readFrame(&buf, pex.DefaultMaxMessageSize); !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("got %v, want errFrameTooLarge", err)
	}
}
