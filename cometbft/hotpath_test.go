package cometbft_test

// The hot paths of SPEC section 8 (internal/hotpath), pex beside
// CometBFT v0.38's address book on the same bytes. Time is reported,
// never asserted (a loaded machine is slow for both); allocations are
// counted and asserted. Run the benchmarks with
//
//	go test -run X -bench 'HandleResponse|Serve|Memory' -benchmem .
//
// and the ratios of one run with go run ./cmd/pexhot.

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pexnet/pex/cometbft/internal/hotpath"
)

// BenchmarkHandleResponse: one full V1 response of 100 new addresses,
// decoded, validated and added, the book growing to 20,000.
func BenchmarkHandleResponse(b *testing.B) {
	b.Run("pex", hotpath.HandlePex)
	b.Run("cometbft", hotpath.HandleCmt)
}

// BenchmarkServe: one request answered from a book offered 100,000
// addresses (CometBFT's holds at most 16,384 of them: its new buckets).
func BenchmarkServe(b *testing.B) {
	b.Run("pex", hotpath.ServePex)
	b.Run("pex-news", hotpath.ServePexNews)
	b.Run("cometbft", hotpath.ServeCmt)
}

// BenchmarkMemory reports the bytes per stored address of a book offered
// 100,000 addresses (one book per op; B/addr is what counts).
func BenchmarkMemory(b *testing.B) {
	b.Run("pex", func(b *testing.B) {
		var per float64
		for b.Loop() {
			per = hotpath.PexBytesPerAddr(b, hotpath.ServeBook)
		}
		b.ReportMetric(per, "B/addr")
	})
	b.Run("cometbft", func(b *testing.B) {
		var per float64
		var held int
		for b.Loop() {
			per, held = hotpath.CmtBytesPerAddr(hotpath.ServeBook)
		}
		b.ReportMetric(per, "B/addr")
		b.ReportMetric(float64(held), "book")
	})
}

// hotAllocsPerAddr bounds the allocations per address of a full response
// to pex, decode, parse and add together (SPEC section 8: at most 3). The
// decoder and parser make one (the string holding an entry's node ID and
// host) and the book's add one (the entry, which holds its first address
// inline); the rest is the maps and slices growing.
const hotAllocsPerAddr = 3.0

// The allocations of the response path, counted (not timed) over a book
// growing to 20,000.
func TestHandleResponseAllocs(t *testing.T) {
	per := hotpath.ResponseAllocsPerAddr(t)
	t.Logf("%.2f allocations per address (SPEC: at most 3)", per)
	require.LessOrEqual(t, per, hotAllocsPerAddr)
}
