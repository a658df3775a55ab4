// Command pexdemo starts a small network of pex nodes on CometBFT switches
// over loopback TCP and prints discovery as it happens: each node knows
// only the node before it at start, and the demo stops once every node's
// address book holds every other node.
//
//	go run ./cometbft/cmd/pexdemo            # 6 nodes
//	go run ./cometbft/cmd/pexdemo -n 12 -v   # 12 nodes, with pex's debug log
//
// Each node is built the way an embedder would build one: a node key, a
// NodeInfo that lists the adapter's channels, CometBFT's multiplexed TCP
// transport and switch, a pex.PeerManager, and the adapter reactor.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/version"

	"github.com/pexnet/pex"
	"github.com/pexnet/pex/cometbft"
)

type node struct {
	self    pex.NodeAddress
	pm      *pex.PeerManager
	reactor *cometbft.Reactor
	sw      *p2p.Switch
	tr      *p2p.MultiplexTransport
	known   map[pex.NodeID]bool
}

func main() {
	n := flag.Int("n", 6, "number of nodes (2 to 254)")
	timeout := flag.Duration("timeout", time.Minute, "give up after this long")
	verbose := flag.Bool("v", false, "print pex's debug log")
	flag.Parse()
	if *n < 2 || *n > 254 {
		fmt.Fprintln(os.Stderr, "pexdemo: -n must be between 2 and 254")
		os.Exit(2)
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if err := run(*n, *timeout, logger); err != nil {
		fmt.Fprintln(os.Stderr, "pexdemo:", err)
		os.Exit(1)
	}
}

func run(n int, timeout time.Duration, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	nodes := make([]*node, 0, n)
	defer func() {
		for _, nd := range nodes {
			_ = nd.tr.Close()
		}
		for _, nd := range nodes {
			if nd.sw.IsRunning() {
				_ = nd.sw.Stop()
			}
		}
	}()
	for i := range n {
		nd, err := newNode(i, n, logger)
		if err != nil {
			return err
		}
		nodes = append(nodes, nd)
		fmt.Printf("node %d listens at %s\n", i, nd.self)
	}
	// Node i knows node i-1: a chain, the slowest start for discovery.
	for i := 1; i < n; i++ {
		if _, err := nodes[i].pm.Add(nodes[i-1].self); err != nil {
			return err
		}
		nodes[i].known[nodes[i-1].pm.SelfID()] = true
	}
	fmt.Println("each node knows the one before it; starting the switches")
	start := time.Now()
	for _, nd := range nodes {
		if err := nd.sw.Start(); err != nil {
			return err
		}
	}

	ids := make(map[pex.NodeID]int, n)
	for i, nd := range nodes {
		ids[nd.pm.SelfID()] = i
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for {
		done := true
		for i, nd := range nodes {
			for _, id := range nd.pm.Known() {
				if !nd.known[id] {
					nd.known[id] = true
					fmt.Printf("%8s  node %d learned node %d   (knows %d of %d, connected to %d)\n",
						time.Since(start).Round(time.Millisecond), i, ids[id], len(nd.known), n-1, len(nd.pm.Connected()))
				}
			}
			done = done && len(nd.known) == n-1
		}
		if done {
			break
		}
		select {
		case <-tick.C:
		case <-deadline:
			return fmt.Errorf("not every node knows every other after %s", timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	fmt.Printf("\nevery node knows every other node after %s\n\n", time.Since(start).Round(time.Millisecond))
	fmt.Println("node  requests sent  served  responses  addresses new  bytes received  size estimate")
	for i, nd := range nodes {
		s := nd.reactor.Stats()
		fmt.Printf("%4d  %13d  %6d  %9d  %13d  %14d  %13d\n", i, s.RequestsSent, s.RequestsServed, s.Responses, s.AddressesNew, s.BytesReceived, nd.reactor.NetworkSizeEstimate())
	}
	return nil
}

// newNode builds node i of n, listening on 127.(i+1).0.1: an address of
// its own, as nodes on different machines would have.
func newNode(i, n int, logger *slog.Logger) (*node, error) {
	ip := net.IPv4(127, byte(i+1), 0, 1)
	port, err := freePort(ip)
	if err != nil {
		return nil, err
	}
	hostPort := net.JoinHostPort(ip.String(), strconv.Itoa(port))
	nodeKey := &p2p.NodeKey{PrivKey: ed25519.GenPrivKey()}
	self, err := pex.ParseNodeAddress("mconn://" + string(nodeKey.ID()) + "@" + hostPort)
	if err != nil {
		return nil, err
	}

	pm, err := pex.NewPeerManager(self.NodeID, pex.PeerManagerOptions{
		SelfAddresses: []pex.NodeAddress{self},
		MaxConnected:  2 * n,
		MaxOutbound:   n,
		Logger:        logger,
	})
	if err != nil {
		return nil, err
	}
	reactor, err := cometbft.NewReactor(pm, cometbft.Options{Config: pex.Config{Logger: logger.With("node", i)}})
	if err != nil {
		return nil, err
	}

	cfg := config.DefaultP2PConfig()
	cfg.ListenAddress = "tcp://" + hostPort
	cfg.MaxNumInboundPeers, cfg.MaxNumOutboundPeers = n, n
	cfg.AllowDuplicateIP = true // on loopback every connection comes from 127.0.0.1
	info := p2p.DefaultNodeInfo{
		ProtocolVersion: p2p.NewProtocolVersion(version.P2PProtocol, version.BlockProtocol, 0),
		DefaultNodeID:   nodeKey.ID(),
		ListenAddr:      hostPort,
		Network:         "pexdemo",
		Version:         version.TMCoreSemVer,
		Moniker:         fmt.Sprintf("node-%d", i),
	}
	for _, ch := range reactor.GetChannels() {
		info.Channels = append(info.Channels, ch.ID)
	}
	tr := p2p.NewMultiplexTransport(info, *nodeKey, p2p.MConnConfig(cfg))
	sw := p2p.NewSwitch(cfg, tr)
	sw.SetNodeInfo(info)
	sw.SetNodeKey(nodeKey)
	sw.SetAddrBook(reactor.AddrBook())
	sw.AddReactor("PEX", reactor)
	addr, err := p2p.NewNetAddressString(p2p.IDAddressString(nodeKey.ID(), hostPort))
	if err != nil {
		return nil, err
	}
	if err := tr.Listen(*addr); err != nil {
		return nil, err
	}
	return &node{self: self, pm: pm, reactor: reactor, sw: sw, tr: tr, known: map[pex.NodeID]bool{}}, nil
}

// freePort returns a port that is free on ip now.
func freePort(ip net.IP) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
