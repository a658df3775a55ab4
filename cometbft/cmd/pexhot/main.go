// Command pexhot measures the hot paths of SPEC section 8 in one run,
// pex beside CometBFT v0.38's address book on the same bytes, and prints
// the times, the ratios pex/CometBFT and the allocations and bytes per
// address (about 15 s):
//
//	go run ./cometbft/cmd/pexhot
//
// Targets: handling a full response at most 0.1x CometBFT's time and at
// most 3 allocations per address; serving at 100,000 addresses at most
// 0.2x GetSelection; at most 250 bytes per stored address. Times are
// what this machine gives now: compare the ratios, not the times.
package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/pexnet/pex/cometbft/internal/hotpath"
)

func main() {
	testing.Init()
	hp, hc := testing.Benchmark(hotpath.HandlePex), testing.Benchmark(hotpath.HandleCmt)
	sp, sc := testing.Benchmark(hotpath.ServePex), testing.Benchmark(hotpath.ServeCmt)
	sn := testing.Benchmark(hotpath.ServePexNews)
	var mp, mc float64
	var held int
	testing.Benchmark(func(b *testing.B) {
		for range b.N {
			mp = hotpath.PexBytesPerAddr(b, hotpath.ServeBook)
			mc, held = hotpath.CmtBytesPerAddr(hotpath.ServeBook)
		}
	})
	per := float64(hotpath.PerResponse)
	fmt.Printf("handle a full response: pex %v, %.2f allocs/addr; cometbft %v, %.2f allocs/addr; ratio %.3f (target 0.1, 3 allocs/addr)\n",
		time.Duration(hp.NsPerOp()), float64(hp.AllocsPerOp())/per,
		time.Duration(hc.NsPerOp()), float64(hc.AllocsPerOp())/per,
		float64(hp.NsPerOp())/float64(hc.NsPerOp()))
	fmt.Printf("serve one request: pex %v (book %d), %d allocs; cometbft GetSelection %v (book %d), %d allocs; ratio %.3f (target 0.2)\n",
		time.Duration(sp.NsPerOp()), hotpath.ServeBook, sp.AllocsPerOp(),
		time.Duration(sc.NsPerOp()), hotpath.CmtServeBookSize(), sc.AllocsPerOp(),
		float64(sp.NsPerOp())/float64(sc.NsPerOp()))
	fmt.Printf("serve one request with an address added before it: pex %v, %d allocs; ratio to GetSelection %.3f\n",
		time.Duration(sn.NsPerOp()), sn.AllocsPerOp(), float64(sn.NsPerOp())/float64(sc.NsPerOp()))
	fmt.Printf("memory: pex %.0f B/addr (%d offered); cometbft %.0f B/addr (%d held) (target 250)\n", mp, hotpath.ServeBook, mc, held)
}
