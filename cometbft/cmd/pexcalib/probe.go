package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/pexnet/pex/cometbft/internal/race"
	"github.com/pexnet/pex/cometbft/internal/testnet"
	"github.com/pexnet/pex/sim"
)

// runProbe measures, on pairs of pex nodes on real switches over
// loopback, the constants of the simulator's transport model:
//
//   - dial: DialPeerWithAddress from node 1 to node 0 until it returns,
//     which is after the TCP connect, the secret connection's and the
//     NodeInfo handshakes, and every reactor's AddPeer on node 1;
//   - request: from then until node 0 received node 1's first PEX request
//     (node 1's pex asks its first peer at once: the delay is the
//     connection's);
//   - response: from node 0 receiving the request until node 1 received
//     the answer.
//
// Each pair is a fresh network of two switches, neither knowing the other,
// at pexrace's 250 ms configuration.
func runProbe(w io.Writer, count int) error {
	if count < 1 {
		return errors.New("-probes must be at least 1")
	}
	var dial, req, resp []time.Duration
	load := loadAvg()
	for i := range count {
		d, q, r, err := probeOnce(uint64(i + 1))
		if err != nil {
			return err
		}
		dial, req, resp = append(dial, d), append(req, q), append(resp, r)
	}
	fmt.Fprintf(w, "Transport of CometBFT v0.38 switches over loopback, %d fresh pairs of pex nodes (load %s before, %s after):\n\n", count, load, loadAvg())
	show := func(name string, xs []time.Duration, model string) {
		slices.Sort(xs)
		fmt.Fprintf(w, "  %-46s median %8s  min %8s  max %8s   model: %s\n", name,
			xs[len(xs)/2].Round(10*time.Microsecond), xs[0].Round(10*time.Microsecond), xs[len(xs)-1].Round(10*time.Microsecond), model)
	}
	show("dial (TCP, handshakes, AddPeer)", dial, fmt.Sprintf("4 x latency + handshake = %s", 4*sim.LoopbackLatency+sim.DefaultHandshake))
	show("request one-way (first on a new connection)", req, fmt.Sprintf("flush + latency = %s", sim.DefaultFlush+sim.LoopbackLatency))
	show("response one-way (answer to it)", resp, fmt.Sprintf("flush + latency = %s", sim.DefaultFlush+sim.LoopbackLatency))
	return nil
}

func probeOnce(seed uint64) (dial, req, resp time.Duration, err error) {
	dir, err := os.MkdirTemp("", "pexcalib")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	nw, err := testnet.New([]testnet.Kind{testnet.Pex, testnet.Pex}, testnet.Options{
		Period: 250 * time.Millisecond, Pex: race.PexConfig(250 * time.Millisecond), Seed: seed, Dir: dir,
	})
	if err != nil {
		return 0, 0, 0, err
	}
	defer nw.Stop()
	if err := nw.Start(); err != nil {
		return 0, 0, 0, err
	}
	a, b := nw.Nodes[0], nw.Nodes[1]
	start := time.Now()
	if err := b.Switch.DialPeerWithAddress(a.Addr); err != nil {
		return 0, 0, 0, err
	}
	up := time.Now()
	deadline := up.Add(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		q, _ := a.Meter.First()
		_, r := b.Meter.First()
		if !q.IsZero() && !r.IsZero() {
			return up.Sub(start), q.Sub(up), r.Sub(q), nil
		}
		if time.Now().After(deadline) {
			return 0, 0, 0, errors.New("probe: no request and answer within 10 s")
		}
		<-tick.C
	}
}

// runStarProbe starts a pexrace star of n pex nodes and reports when, from
// the call to Start, the switches had all started, node 0 had added its
// inbound peers, and node 0 had received their first requests: how far
// the switches' start and node 0's accepting spread the dials.
func runStarProbe(w io.Writer, n int) error {
	nw, dir, err := pexNetwork(n)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	defer nw.Stop()
	if err := nw.Bootstrap(testnet.Star); err != nil {
		return err
	}
	start := time.Now()
	if err := nw.Start(); err != nil {
		return err
	}
	started := time.Since(start)
	done := make([]time.Duration, n)
	for left := n; left > 0; {
		time.Sleep(2 * time.Millisecond) // wall-clock polling of real sockets
		for i, a := range nw.Nodes {
			if done[i] > 0 {
				continue
			}
			full := true
			for _, b := range nw.Nodes {
				if a != b && !a.Knows(b) {
					full = false
					break
				}
			}
			if full {
				done[i] = time.Since(start)
				left--
			}
		}
	}
	full := time.Since(start)
	var answered []time.Duration
	for _, a := range nw.Nodes[1:] {
		if _, r := a.Meter.First(); !r.IsZero() {
			answered = append(answered, r.Sub(start))
		}
	}
	slices.Sort(done)
	slices.Sort(answered)
	q := func(xs []time.Duration) string {
		if len(xs) == 0 {
			return "-"
		}
		return fmt.Sprintf("%s/%s/%s/%s", xs[0].Round(time.Millisecond), xs[len(xs)/4].Round(time.Millisecond), xs[len(xs)/2].Round(time.Millisecond), xs[len(xs)-1].Round(time.Millisecond))
	}
	fmt.Fprintf(w, "  first answers (min/q1/median/max) %s; books full %s\n", q(answered), q(done))
	var adds []time.Duration
	for _, c := range nw.Nodes[0].Watch.Added() {
		if !c.Outbound {
			adds = append(adds, c.At.Sub(start))
		}
	}
	slices.Sort(adds)
	fmt.Fprintf(w, "star of %d: switches started after %s; node 0 added %d inbound peers from %s to %s (median %s); every book full at %s\n",
		n, started.Round(time.Millisecond), len(adds), adds[0].Round(time.Millisecond), adds[len(adds)-1].Round(time.Millisecond), adds[len(adds)/2].Round(time.Millisecond), full.Round(time.Millisecond))
	return nil
}

// runPairsProbe starts k pairs of pex nodes, none knowing another, and
// has the second node of every pair dial the first at once: if dials took
// as long together as alone, the handshakes would be bound by each node;
// if they end one after another, by the machine's processors, which all
// the nodes of a loopback network share.
func runPairsProbe(w io.Writer, k int) error {
	ds, err := pairDials(k)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%d disjoint pairs dialling at once (load %s): %d dials ended from %s to %s (median %s): %s per dial\n",
		k, loadAvg(), len(ds), ds[0].Round(10*time.Microsecond), ds[len(ds)-1].Round(10*time.Microsecond), ds[len(ds)/2].Round(10*time.Microsecond),
		perDial(ds).Round(10*time.Microsecond))
	return nil
}

// pairDials has k disjoint pairs of pex nodes dial at once (see
// runPairsProbe) and returns when each dial ended, from the start, sorted.
func pairDials(k int) ([]time.Duration, error) {
	nw, dir, err := pexNetwork(2 * k)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	defer nw.Stop()
	if err := nw.Start(); err != nil {
		return nil, err
	}
	start := time.Now()
	ends := make(chan time.Duration, k)
	for i := range k {
		go func() {
			err := nw.Nodes[2*i+1].Switch.DialPeerWithAddress(nw.Nodes[2*i].Addr)
			if err != nil {
				ends <- -1
				return
			}
			ends <- time.Since(start)
		}()
	}
	var ds []time.Duration
	for range k {
		if d := <-ends; d >= 0 {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return nil, errors.New("probe: every dial failed")
	}
	slices.Sort(ds)
	return ds, nil
}

// acceptSpacing has k pex nodes dial one more at once and returns how far
// apart, on average, the one added them: its switch adds inbound peers one
// at a time (see sim.Options.Accept), their handshakes ending together.
func acceptSpacing(k int) (time.Duration, error) {
	nw, dir, err := pexNetwork(k + 1)
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	defer nw.Stop()
	if err := nw.Start(); err != nil {
		return 0, err
	}
	hub := nw.Nodes[0]
	done := make(chan struct{}, k)
	for _, n := range nw.Nodes[1:] {
		go func() {
			_ = n.Switch.DialPeerWithAddress(hub.Addr)
			done <- struct{}{}
		}()
	}
	for range k {
		<-done
	}
	var adds []time.Time
	for _, c := range hub.Watch.Added() {
		if !c.Outbound {
			adds = append(adds, c.At)
		}
	}
	if len(adds) < 2 {
		return 0, errors.New("probe: fewer than 2 inbound peers added")
	}
	slices.SortFunc(adds, time.Time.Compare)
	return adds[len(adds)-1].Sub(adds[0]) / time.Duration(len(adds)-1), nil
}

// perDial is the machine's time per handshake that dials ending at ds,
// all begun at once, show: the machine shares its processors among them
// (see sim.Options.OneMachine), so the last ends when it has done them
// all.
func perDial(ds []time.Duration) time.Duration {
	return ds[len(ds)-1] / time.Duration(len(ds))
}

// pexNetwork is a network of n pex nodes on switches at a 250 ms period,
// in a new directory that the caller removes once done with the network.
func pexNetwork(n int) (*testnet.Network, string, error) {
	dir, err := os.MkdirTemp("", "pexcalib")
	if err != nil {
		return nil, "", err
	}
	kinds := make([]testnet.Kind, n)
	for i := range kinds {
		kinds[i] = testnet.Pex
	}
	nw, err := testnet.New(kinds, testnet.Options{Period: 250 * time.Millisecond, Pex: race.PexConfig(250 * time.Millisecond), Seed: 1, Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	return nw, dir, nil
}
