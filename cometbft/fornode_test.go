package cometbft_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto/ed25519"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/p2p"
	"github.com/stretchr/testify/require"

	"github.com/pexnet/pex"
	"github.com/pexnet/pex/cometbft"
)

func testKey(seed string) *p2p.NodeKey {
	return &p2p.NodeKey{PrivKey: ed25519.GenPrivKeyFromSecret([]byte(seed))}
}

// TestForNodeConfig checks what ForNode reads from the [p2p] section.
func TestForNodeConfig(t *testing.T) {
	key, a, b, c := testKey("self"), testKey("a"), testKey("b"), testKey("c")
	cfg := config.DefaultConfig()
	cfg.P2P.ListenAddress = "tcp://0.0.0.0:26656"
	cfg.P2P.ExternalAddress = "tcp://198.51.100.7:26656"
	cfg.P2P.PersistentPeers = string(a.ID()) + "@192.0.2.1:26656, tcp://" + string(b.ID()) + "@node-b.example:26656"
	cfg.P2P.Seeds = string(c.ID()) + "@192.0.2.3:26656"
	cfg.P2P.PrivatePeerIDs = string(a.ID())
	cfg.P2P.AddrBookStrict = false // the persistent peer above is in a documentation range

	px, err := cometbft.ForNode(cfg, key, cmtlog.NewNopLogger(), cometbft.NodeOptions{})
	require.NoError(t, err)
	require.Equal(t, "mconn://"+string(key.ID())+"@198.51.100.7:26656", px.Self().String())
	pm := px.PeerManager()
	require.Equal(t, pex.NodeID(key.ID()), pm.SelfID())
	for _, k := range []*p2p.NodeKey{a, b, c} {
		require.True(t, pm.Has(pex.NodeID(k.ID())), "PeerManager lacks %s", k.ID())
	}
	require.Len(t, px.Seeds(), 1)
	require.Equal(t, pex.NodeID(c.ID()), px.Seeds()[0].NodeID)
	require.Same(t, pm, px.Reactor().PeerManager())

	// Without external_address, laddr is our address.
	cfg.P2P.ExternalAddress = ""
	cfg.P2P.ListenAddress = "tcp://203.0.113.9:26656"
	px, err = cometbft.ForNode(cfg, key, nil, cometbft.NodeOptions{})
	require.NoError(t, err)
	require.Equal(t, "mconn://"+string(key.ID())+"@203.0.113.9:26656", px.Self().String())
}

// TestForNodeErrors: what ForNode cannot use is an error wrapping
// pex.ErrInvalidConfig.
func TestForNodeErrors(t *testing.T) {
	key := testKey("self")
	for name, edit := range map[string]func(*config.P2PConfig){
		"0.0.0.0 without external_address": func(c *config.P2PConfig) { c.ListenAddress = "tcp://0.0.0.0:26656" },
		"[::] without external_address":    func(c *config.P2PConfig) { c.ListenAddress = "tcp://[::]:26656" },
		"port 0":                           func(c *config.P2PConfig) { c.ListenAddress = "tcp://192.0.2.1:0" },
		"unix laddr":                       func(c *config.P2PConfig) { c.ListenAddress = "unix:///tmp/p2p.sock" },
		"bad persistent peer":              func(c *config.P2PConfig) { c.PersistentPeers = "nobody@192.0.2.1:26656" },
		"bad seed":                         func(c *config.P2PConfig) { c.Seeds = "192.0.2.1:26656" },
		"bad private peer ID":              func(c *config.P2PConfig) { c.PrivatePeerIDs = "xyz" },
		"seed mode":                        func(c *config.P2PConfig) { c.SeedMode = true },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := config.DefaultConfig()
			cfg.P2P.ListenAddress = "tcp://192.0.2.1:26656"
			edit(cfg.P2P)
			_, err := cometbft.ForNode(cfg, key, nil, cometbft.NodeOptions{})
			require.ErrorIs(t, err, pex.ErrInvalidConfig)
		})
	}
	_, err := cometbft.ForNode(config.DefaultConfig(), nil, nil, cometbft.NodeOptions{})
	require.ErrorIs(t, err, pex.ErrInvalidConfig)
}

// recLogger is a CometBFT logger that records what it is given.
type recLogger struct {
	mu    *sync.Mutex
	lines *[]string
	with  []any
}

func (l recLogger) log(level, msg string, kv []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	*l.lines = append(*l.lines, level+" "+msg+" "+fmtKV(append(append([]any(nil), l.with...), kv...)))
}

func fmtKV(kv []any) string {
	s := ""
	for i := 0; i+1 < len(kv); i += 2 {
		s += " " + kv[i].(string) + "=" + slog.AnyValue(kv[i+1]).String()
	}
	return s
}

func (l recLogger) Debug(msg string, kv ...any) { l.log("D", msg, kv) }
func (l recLogger) Info(msg string, kv ...any)  { l.log("I", msg, kv) }
func (l recLogger) Error(msg string, kv ...any) { l.log("E", msg, kv) }
func (l recLogger) With(kv ...any) cmtlog.Logger {
	return recLogger{mu: l.mu, lines: l.lines, with: append(append([]any(nil), l.with...), kv...)}
}

// TestLogHandler: slog records reach the CometBFT logger at the matching
// level, with their attributes as key-value pairs.
func TestLogHandler(t *testing.T) {
	var lines []string
	rec := recLogger{mu: &sync.Mutex{}, lines: &lines}
	l := slog.New(cometbft.NewLogHandler(rec)).With("module", "pex")
	l.Debug("d", "k", 1)
	l.Info("i", "peer", "x")
	l.Warn("w")
	l.WithGroup("g").Error("e", "err", "boom", slog.Group("sub", "n", 2))
	l.Log(context.Background(), slog.LevelDebug-4, "trace")
	require.Equal(t, []string{
		"D d  module=pex k=1",
		"I i  module=pex peer=x",
		"E w  module=pex",
		"E e  module=pex g.err=boom g.sub.n=2",
		"D trace  module=pex",
	}, lines)
}
