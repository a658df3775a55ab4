package cometbft_test

import (
	"errors"
	"io/fs"

	"github.com/cometbft/cometbft/abci/example/kvstore"
	"github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"

	"github.com/pexnet/pex/cometbft"
)

// A full node switched to pex: the lines marked "pex" are all an operator
// adds to the usual node.NewNode. TestFullNodes runs the same lines in
// real nodes.
func ExampleForNode() {
	run := func(cfg *config.Config, logger cmtlog.Logger) error {
		nodeKey, err := p2p.LoadOrGenNodeKey(cfg.NodeKeyFile())
		if err != nil {
			return err
		}
		px, err := cometbft.ForNode(cfg, nodeKey, logger, cometbft.NodeOptions{}) // pex
		if err != nil {
			return err
		}
		// pex, once: keep what CometBFT's address book knew.
		if _, err := cometbft.ImportAddrBookFile(px.PeerManager(), cfg.P2P.AddrBookFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n, err := node.NewNode(cfg,
			privval.LoadOrGenFilePV(cfg.PrivValidatorKeyFile(), cfg.PrivValidatorStateFile()),
			nodeKey,
			proxy.NewLocalClientCreator(kvstore.NewInMemoryApplication()),
			node.DefaultGenesisDocProviderFunc(cfg),
			config.DefaultDBProvider,
			node.DefaultMetricsProvider(cfg.Instrumentation),
			logger,
			px.Option(), // pex: runs the adapter in place of CometBFT's PEX reactor
		)
		if err != nil {
			return err
		}
		if err := px.Attach(n); err != nil { // pex: the PeerManager becomes the switch's address book
			return err
		}
		if err := n.Start(); err != nil {
			return err
		}
		n.Wait()
		return nil
	}
	_ = run
}
