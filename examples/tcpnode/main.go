// Command tcpnode starts a small pex network over real TCP on 127.0.0.1,
// in one process, and watches its nodes discover each other. Node 0 is the
// seed: every other node starts knowing only node 0. It exits 0 once every
// node knows every other node, and 1 if that takes longer than -timeout.
//
// It is a template for a transport of your own: handshake.go proves each
// node's key and frames messages, transport.go calls the PeerManager and
// implements pex.Channel. README.md says what to keep.
//
//	go run ./examples/tcpnode -nodes 8
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/pexnet/pex"
)

func main() {
	nodes := flag.Int("nodes", 5, "how many nodes to start (at least 2)")
	timeout := flag.Duration("timeout", 30*time.Second, "fail if discovery takes longer than this")
	verbose := flag.Bool("v", false, "log refused connections and the reactors' debug messages")
	flag.Parse()
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, *nodes, *timeout, os.Stdout, log)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcpnode:", err)
		os.Exit(1)
	}
}

// run starts n nodes, waits until every node knows every other one or
// timeout passes, and stops them all.
func run(ctx context.Context, n int, timeout time.Duration, out io.Writer, log *slog.Logger) error {
	if n < 2 {
		return fmt.Errorf("need at least 2 nodes, not %d", n)
	}
	nodes, err := startNodes(ctx, n, log)
	defer func() {
		stopNodes(nodes)
		fmt.Fprintf(out, "stopped %d nodes\n", len(nodes))
	}()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "started %d nodes; the seed is node 0 at %s\n", n, nodes[0].addr)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return waitDiscovery(ctx, nodes, out)
}

// startNodes starts n nodes, each with its own key; all but node 0 know
// only node 0. On error it returns the nodes it started, to be stopped.
func startNodes(ctx context.Context, n int, log *slog.Logger) ([]*node, error) {
	var nodes []*node
	for i := range n {
		var seed []pex.NodeAddress
		if i > 0 {
			seed = []pex.NodeAddress{nodes[0].addr}
		}
		nd, err := startNode(ctx, seed, log.With("node", i))
		if err != nil {
			return nodes, err
		}
		nodes = append(nodes, nd)
	}
	return nodes, nil
}

// stopNodes stops every node and waits for all of their goroutines.
func stopNodes(nodes []*node) {
	for _, nd := range nodes {
		nd.stop()
	}
}

// waitDiscovery prints each change in how many of the other nodes each
// node knows, until every node knows all of them or ctx ends. pex has no
// event for "the book grew", so it samples the books every 20 ms.
func waitDiscovery(ctx context.Context, nodes []*node, out io.Writer) error {
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	known := make([]int, len(nodes))
	for {
		done := true
		for i, nd := range nodes {
			if k := knows(nd, nodes); k != known[i] {
				known[i] = k
				fmt.Fprintf(out, "node %d knows %d/%d peers after %.2fs\n", i, k, len(nodes)-1, time.Since(start).Seconds())
			}
			done = done && known[i] == len(nodes)-1
		}
		if done {
			fmt.Fprintf(out, "every node knows all %d others after %.2fs\n", len(nodes)-1, time.Since(start).Seconds())
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %.1fs, some nodes know too few peers (%v of %d): %w",
				time.Since(start).Seconds(), known, len(nodes)-1, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// knows counts the other nodes whose address is in nd's book.
func knows(nd *node, nodes []*node) int {
	k := 0
	for _, other := range nodes {
		if other != nd && nd.pm.Has(other.id) {
			k++
		}
	}
	return k
}
