package cometbft_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cometbft/cometbft/abci/example/kvstore"
	"github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	cmtos "github.com/cometbft/cometbft/libs/os"
	"github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	"github.com/cometbft/cometbft/types"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pexnet/pex"
	"github.com/pexnet/pex/cometbft"
	"github.com/pexnet/pex/cometbft/internal/testnet"
)

// The full-node test runs real CometBFT nodes over loopback TCP, which
// testing/synctest cannot fake: it waits on the wall clock, polling on a
// deadline (require.Eventually, testnet.WaitGoroutines), never sleeping.

// fullNode is one in-process CometBFT node of the test.
type fullNode struct {
	index int
	pex   bool
	id    p2p.ID
	addr  string // host:port
	cfg   *config.Config
	key   *p2p.NodeKey
	pv    *privval.FilePV
	node  *node.Node
	px    *cometbft.FullNode // pex nodes
	watch *testnet.Watch
}

// newFullNodes prepares n node homes in dir with one genesis, where nodes
// 0 to validators-1 are validators; node i lists node i-1 as its
// persistent peer. Nothing is built yet.
func newFullNodes(t *testing.T, n, validators int, isPex func(i int) bool) []*fullNode {
	t.Helper()
	nodes := make([]*fullNode, n)
	genDoc := &types.GenesisDoc{
		ChainID:         "pex-fullnode",
		GenesisTime:     time.Now(),
		ConsensusParams: types.DefaultConsensusParams(),
	}
	for i := range nodes {
		home := t.TempDir()
		cfg := config.TestConfig().SetRoot(home)
		require.NoError(t, cmtos.EnsureDir(filepath.Join(home, "config"), 0o700))
		require.NoError(t, cmtos.EnsureDir(filepath.Join(home, "data"), 0o700))
		ip := testnet.IP(i) // 127.(i+1).0.1: a /16 of its own, as for CometBFT's book
		port, err := freePort(ip)
		require.NoError(t, err)
		hostPort := net.JoinHostPort(ip.String(), strconv.Itoa(port))
		cfg.RPC.ListenAddress = ""
		cfg.RPC.GRPCListenAddress = ""
		cfg.P2P.ListenAddress = "tcp://" + hostPort
		cfg.P2P.AddrBookStrict = false // loopback addresses
		cfg.P2P.AllowDuplicateIP = true
		cfg.P2P.MaxNumInboundPeers, cfg.P2P.MaxNumOutboundPeers = n, n
		// The stock reactor is on for every node but the last: on pex
		// nodes the option replaces it, or adds the adapter when it is off.
		cfg.P2P.PexReactor = i < n-1
		key, err := p2p.LoadOrGenNodeKey(cfg.NodeKeyFile())
		require.NoError(t, err)
		pv := privval.GenFilePV(cfg.PrivValidatorKeyFile(), cfg.PrivValidatorStateFile())
		pv.Save()
		if i < validators {
			pub, err := pv.GetPubKey()
			require.NoError(t, err)
			genDoc.Validators = append(genDoc.Validators, types.GenesisValidator{
				Address: pub.Address(), PubKey: pub, Power: 10, Name: fmt.Sprintf("v%d", i),
			})
		}
		nodes[i] = &fullNode{index: i, pex: isPex(i), id: key.ID(), addr: hostPort, cfg: cfg, key: key, pv: pv, watch: testnet.NewWatch()}
	}
	for i, fn := range nodes {
		require.NoError(t, genDoc.SaveAs(fn.cfg.GenesisFile()))
		if i > 0 {
			fn.cfg.P2P.PersistentPeers = p2p.IDAddressString(nodes[i-1].id, nodes[i-1].addr)
		}
	}
	return nodes
}

// build builds the node with node.NewNode; a pex node goes through
// cometbft.ForNode, Option and Attach, as an operator's would.
func (fn *fullNode) build(t *testing.T, stockPeriod time.Duration) {
	t.Helper()
	logger := cmtlog.NewNopLogger()
	opts := []node.Option{node.CustomReactors(map[string]p2p.Reactor{"WATCH": fn.watch})}
	if fn.pex {
		px, err := cometbft.ForNode(fn.cfg, fn.key, logger, cometbft.NodeOptions{})
		require.NoError(t, err)
		fn.px = px
		opts = append(opts, px.Option())
	}
	n, err := node.NewNode(fn.cfg, fn.pv, fn.key,
		proxy.NewLocalClientCreator(kvstore.NewInMemoryApplication()),
		node.DefaultGenesisDocProviderFunc(fn.cfg),
		config.DefaultDBProvider,
		node.DefaultMetricsProvider(fn.cfg.Instrumentation),
		logger, opts...)
	require.NoError(t, err)
	fn.node = n
	if fn.pex {
		require.NoError(t, fn.px.Attach(n))
		require.Same(t, fn.px.Reactor(), n.Switch().Reactor(cometbft.ReactorName))
	} else {
		px, err := cometbft.ForNode(fn.cfg, fn.key, logger, cometbft.NodeOptions{})
		if fn.cfg.P2P.SeedMode {
			// pex has no seed mode: ForNode refuses the config.
			require.ErrorIs(t, err, pex.ErrInvalidConfig)
		} else {
			// Attach refuses a node built without FullNode.Option.
			require.NoError(t, err)
			require.ErrorIs(t, px.Attach(n), pex.ErrInvalidConfig)
		}
		if stockPeriod > 0 {
			// CometBFT's default of 30 s would make the test last minutes.
			n.PEXReactor().SetEnsurePeersPeriod(stockPeriod)
		}
	}
}

// startNodes starts the nodes and returns what stops them all (Stop,
// Wait, and the ABCI connections), which also runs at cleanup.
func startNodes(t *testing.T, nodes []*fullNode) (stopAll func()) {
	t.Helper()
	var stopOnce sync.Once
	stopAll = func() {
		stopOnce.Do(func() {
			var wg sync.WaitGroup
			for _, fn := range nodes {
				if fn.node == nil || !fn.node.IsRunning() {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					require.NoError(t, fn.node.Stop())
					fn.node.Wait()
					// Node.OnStop leaves the ABCI connections running
					// (and a goroutine watching them): stop them.
					require.NoError(t, fn.node.ProxyApp().Stop())
				}()
			}
			wg.Wait()
		})
	}
	t.Cleanup(stopAll)
	for _, fn := range nodes {
		require.NoError(t, fn.node.Start())
	}
	return stopAll
}

// parallelTests are the tests under way that run in parallel: the
// seed-mode test and the slowest network test, so that the seed-mode
// test's minute on the wall clock overlaps it. The last of them to stop
// its nodes looks for the goroutines any of them leaked.
var parallelTests struct {
	sync.Mutex
	running int
	before  goleak.Option // the goroutines running when the first began
}

// parallelNodeTest runs t in parallel with the other tests that call it
// and returns the check to call once t's nodes have stopped. None of them
// waits for another (go test runs GOMAXPROCS parallel tests at once): the
// last one running checks that every goroutine started since the first
// began has ended, unless another starts meanwhile, which checks in turn.
func parallelNodeTest(t *testing.T) (checkLeaks func()) {
	t.Parallel()
	p := &parallelTests
	p.Lock()
	if p.running == 0 {
		p.before = goleak.IgnoreCurrent()
	}
	p.running++
	p.Unlock()
	var once sync.Once
	leave := func() (last bool, before goleak.Option) {
		once.Do(func() {
			p.Lock()
			p.running--
			last, before = p.running == 0, p.before
			p.Unlock()
		})
		return last, before
	}
	t.Cleanup(func() { leave() }) // registered first, so it runs after the nodes stop
	return func() {
		last, before := leave()
		if !last {
			return
		}
		// goleak.Find retries for about 2 s; CometBFT's own dials may
		// take longer to give up, so poll on a deadline.
		var leak error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			if leak = goleak.Find(append(cometBFTLeaks, before)...); leak == nil {
				break
			}
			p.Lock()
			again := p.running > 0
			p.Unlock()
			if again {
				return // a test started meanwhile; the last to stop checks
			}
		}
		require.NoError(t, leak, "goroutines still running after the nodes stopped")
	}
}

// knowsAll reports whether fn has learnt every other node: a pex node's
// PeerManager holds every node ID; a stock node's address book is not
// exposed by node.Node, so it counts as knowing all once it is connected
// to all (a stock node adds every peer it connects to to its book, and
// dials only what its book holds); its book file is checked after stop.
func (fn *fullNode) knowsAll(nodes []*fullNode) bool {
	if !fn.pex {
		return fn.node.Switch().Peers().Size() == len(nodes)-1
	}
	pm := fn.px.PeerManager()
	for _, o := range nodes {
		if o != fn && !pm.Has(pex.NodeID(o.id)) {
			return false
		}
	}
	return true
}

// TestFullNodes runs 6 CometBFT v0.38 full nodes (kvstore, 4 validators),
// stock PEX and pex through ForNode alternating (the last a pex node with
// pex = false in its config), chained by
// persistent_peers: every node must learn every node, blocks must commit
// past height 5 on every node, no peer may be stopped for a PEX reason,
// and every node must stop cleanly, leaving no goroutine behind.
func TestFullNodes(t *testing.T) {
	const n, validators = 6, 4
	// Not in parallel: on a loaded 2-core machine, beside the seed-mode
	// test, its blocks once missed their 30 s.
	before := goleak.IgnoreCurrent()
	checkLeaks := func() {
		var leak error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			if leak = goleak.Find(append(cometBFTLeaks, before)...); leak == nil {
				break
			}
		}
		require.NoError(t, leak, "goroutines still running after the nodes stopped")
	}
	nodes := newFullNodes(t, n, validators, func(i int) bool { return i%2 == 1 })
	for _, fn := range nodes {
		fn.build(t, time.Second)
	}
	start := time.Now()
	stopAll := startNodes(t, nodes)

	learnt := make([]time.Duration, n)
	require.Eventually(t, func() bool {
		done := true
		for i, fn := range nodes {
			if learnt[i] == 0 && fn.knowsAll(nodes) {
				learnt[i] = time.Since(start)
			}
			done = done && learnt[i] != 0
		}
		return done
	}, 40*time.Second, 20*time.Millisecond, "not every node learnt every node")
	for i, fn := range nodes {
		kind := "stock"
		if fn.pex {
			kind = "pex"
		}
		t.Logf("node %d (%s) knows every node after %s", i, kind, learnt[i].Round(time.Millisecond))
	}

	require.Eventually(t, func() bool {
		for _, fn := range nodes {
			if fn.node.BlockStore().Height() <= 5 {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "blocks did not commit past height 5 on every node")
	minH := nodes[0].node.BlockStore().Height()
	for _, fn := range nodes {
		minH = min(minH, fn.node.BlockStore().Height())
	}
	t.Logf("every node past height 5 after %s (lowest height %d)", time.Since(start).Round(time.Millisecond), minH)

	for _, fn := range nodes {
		for _, r := range fn.watch.Removals() {
			require.False(t, testnet.IsMisbehaviour(r.Reason), "node %d stopped peer %s: %v", fn.index, r.Peer, r.Reason)
		}
		if fn.pex {
			st := fn.px.Reactor().Stats()
			require.Zero(t, st.PeerErrors, "pex node %d reported peer errors", fn.index)
		}
	}

	// What each stock node is connected to as the nodes stop: CometBFT's
	// book holds the addresses it dialled or heard in PEX answers, so a
	// peer that dialled it, and that no answer has named yet, it knows by
	// its connection alone.
	connected := make(map[*fullNode]map[string]bool)
	for _, fn := range nodes {
		if !fn.pex {
			connected[fn] = make(map[string]bool)
			for _, p := range fn.node.Switch().Peers().List() {
				connected[fn][string(p.ID())] = true
			}
		}
	}

	stopAll()
	checkLeaks()

	for _, fn := range nodes {
		file := fn.cfg.P2P.AddrBookFile()
		if fn.pex {
			// The CometBFT book NewNode made was never started.
			require.NoFileExists(t, file, "pex node %d wrote addrbook.json", fn.index)
			continue
		}
		ids := bookIDs(t, file)
		for _, o := range nodes {
			if o != fn {
				require.True(t, ids[o.id] || connected[fn][string(o.id)], "stock node %d neither holds node %d in its book nor is connected to it", fn.index, o.index)
			}
		}
	}
}

// bookIDs reads the node IDs in a CometBFT addrbook.json.
func bookIDs(t *testing.T, file string) map[p2p.ID]bool {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var book struct {
		Addrs []struct {
			Addr struct {
				ID p2p.ID `json:"id"`
			} `json:"addr"`
		} `json:"addrs"`
	}
	require.NoError(t, json.Unmarshal(b, &book))
	ids := make(map[p2p.ID]bool)
	for _, a := range book.Addrs {
		ids[a.Addr.ID] = true
	}
	return ids
}

// freePort returns a port that is free on ip now; the node listens on it
// a moment later, and ip is the node's own.
func freePort(ip net.IP) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
