package cometbft_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cometbft/cometbft/p2p"
	cmtpex "github.com/cometbft/cometbft/p2p/pex"
	"github.com/stretchr/testify/require"

	"github.com/pexnet/pex"
	"github.com/pexnet/pex/cometbft"
)

// impID returns a random node ID.
func impID(t testing.TB) pex.NodeID {
	b := make([]byte, 20)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return pex.NodeID(hex.EncodeToString(b))
}

// impPM returns an empty PeerManager for self.
func impPM(t testing.TB, self pex.NodeID) *pex.PeerManager {
	pm, err := pex.NewPeerManager(self, pex.PeerManagerOptions{})
	require.NoError(t, err)
	return pm
}

// impBook is an address book written by CometBFT's own AddrBook, and
// what it holds.
type impBook struct {
	path  string
	self  pex.NodeID
	seeds []*p2p.NetAddress // added with our address as source (as CometBFT adds seeds); the first four marked good
	heard []*p2p.NetAddress // heard[i] added with seeds[i%len(seeds)] as source
	ours  *p2p.NetAddress   // an address with our own node ID
}

const (
	impSeeds = 6
	impGood  = 4
	impHeard = 20
)

// writeCometBFTBook writes an addrbook.json with CometBFT's AddrBook:
// impSeeds addresses from our own node (impGood of them marked good, so
// in the old table), impHeard addresses heard from them, and one with our
// own node ID. The IPs are public, a /16 each, and IPv4 and IPv6 mixed.
func writeCometBFTBook(t testing.TB) impBook {
	b := impBook{path: filepath.Join(t.TempDir(), "addrbook.json"), self: impID(t)}
	book := cmtpex.NewAddrBook(b.path, true)
	ourAddr := p2p.NewNetAddressIPPort(net.ParseIP("203.0.113.7"), 26656)
	ourAddr.ID = p2p.ID(b.self)
	na := func(ip string, port uint16) *p2p.NetAddress {
		a := p2p.NewNetAddressIPPort(net.ParseIP(ip), port)
		a.ID = p2p.ID(impID(t))
		return a
	}
	for i := range impSeeds {
		a := na(fmt.Sprintf("%d.%d.0.1", 11+i, i), 26656)
		require.NoError(t, book.AddAddress(a, ourAddr))
		b.seeds = append(b.seeds, a)
	}
	for i := range impHeard {
		ip := fmt.Sprintf("%d.%d.3.4", 31+i, i)
		if i%5 == 4 {
			ip = fmt.Sprintf("2a0%d:%x::1", i%10, i)
		}
		a := na(ip, uint16(26656+i))
		require.NoError(t, book.AddAddress(a, b.seeds[i%impSeeds]))
		b.heard = append(b.heard, a)
	}
	b.ours = p2p.NewNetAddressIPPort(net.ParseIP("8.8.4.4"), 26656)
	b.ours.ID = p2p.ID(b.self)
	require.NoError(t, book.AddAddress(b.ours, b.seeds[0]))
	for _, a := range b.seeds[:impGood] {
		book.MarkGood(a.ID)
		require.True(t, book.IsGood(a))
	}
	require.False(t, book.IsGood(b.seeds[impGood]))
	book.Save()
	return b
}

func impAddr(t testing.TB, na *p2p.NetAddress) pex.NodeAddress {
	a, err := pex.ParseNodeAddress(na.String())
	require.NoError(t, err)
	return a
}

// A book written by CometBFT's AddrBook comes in whole: old and new
// entries counted apart, every address in the PeerManager, the addresses
// heard from a seed charged to that seed, our own address skipped.
func TestImportAddrBookFromCometBFT(t *testing.T) {
	b := writeCometBFTBook(t)
	pm := impPM(t, b.self)

	st, err := cometbft.ImportAddrBookFile(pm, b.path)
	require.NoError(t, err)
	t.Logf("import: %+v", st)
	all := impSeeds + impHeard + 1
	require.Equal(t, cometbft.ImportStats{
		Old:        impGood,
		New:        all - impGood,
		OldAdded:   impGood,
		Added:      all - 1,
		Attributed: impHeard, // the seeds' source is our own node
		Skipped:    cometbft.ImportSkips{Self: 1},
	}, st)
	require.Equal(t, all-1, pm.Len())
	for _, na := range append(slices.Clone(b.seeds), b.heard...) {
		require.Equal(t, []pex.NodeAddress{impAddr(t, na)}, pm.Addresses(pex.NodeID(na.ID)), "%s", na)
	}
	require.False(t, pm.Has(b.self))

	// The book never sends an address back to the seed it came from.
	for i, s := range b.seeds {
		sent := pm.Advertise(pex.NodeID(s.ID), 1000)
		for j, h := range b.heard {
			require.Equal(t, j%impSeeds != i, slices.Contains(sent, impAddr(t, h)), "seed %d, heard %d", i, j)
		}
	}

	// A second import finds everything known.
	st, err = cometbft.ImportAddrBookFile(pm, b.path)
	require.NoError(t, err)
	require.Equal(t, cometbft.ImportStats{
		Old: impGood, New: all - impGood, Known: all - 1, Attributed: impHeard,
		Skipped: cometbft.ImportSkips{Self: 1},
	}, st)
	require.Equal(t, all-1, pm.Len())
}

// impEntry writes one entry of an address book file by hand.
func impEntry(id, ip string, port any, bucketType int, src string) string {
	return fmt.Sprintf(`{"addr":{"id":%q,"ip":%q,"port":%v},"src":%s,"buckets":[3],"attempts":0,"bucket_type":%d,`+
		`"last_attempt":"2024-05-01T10:00:00Z","last_success":"0001-01-01T00:00:00Z","last_ban_time":"0001-01-01T00:00:00Z"}`,
		id, ip, port, src, bucketType)
}

func impFile(entries ...string) string {
	return `{"key":"0123456789abcdef01234567","addrs":[` + strings.Join(entries, ",\n") + "]}\n"
}

// Bad entries are skipped, each counted under its reason; the good ones
// and a DNS name are added.
func TestImportAddrBookSkipsBadEntries(t *testing.T) {
	self := impID(t)
	good, old, named := impID(t), impID(t), impID(t)
	src := fmt.Sprintf(`{"id":%q,"ip":"1.2.3.4","port":26656}`, string(good))
	file := impFile(
		impEntry(string(good), "1.2.3.4", 26656, 1, `null`),
		impEntry(string(old), "5.6.7.8", 26656, 2, src),
		impEntry(strings.ToUpper(string(named)), "Node-1.Example.COM", 26656, 1, src), // a v0.34-era DNS name
		impEntry("zz"+string(impID(t))[2:], "9.9.9.9", 26656, 1, src),                 // bad ID
		impEntry(string(impID(t))[:39], "9.9.9.9", 26656, 2, src),                     // short ID
		impEntry(string(impID(t)), "9.9.9.9", 0, 1, src),                              // port 0
		impEntry(string(impID(t)), "9.9.9.9", 70000, 1, src),                          // port too large
		impEntry(string(impID(t)), "9.9.9.9", `"x"`, 1, src),                          // port not a number: malformed
		impEntry(string(self), "9.9.9.10", 26656, 2, src),                             // our own ID
		impEntry(string(impID(t)), "1.2.3.999", 26656, 1, src),                        // unparsable IP
		impEntry(string(impID(t)), "", 26656, 1, src),                                 // no IP
		impEntry(string(impID(t)), "0.0.0.0", 26656, 1, src),                          // unspecified IP
		impEntry(string(impID(t)), "fe80::1%eth0", 26656, 1, src),                     // zoned IP
		`{"addr":"9.9.9.9:26656","bucket_type":1}`,                                    // addr not an object
		`{"src":null,"bucket_type":2}`,                                                // no addr
		`null`,
		`7`,
	)
	pm := impPM(t, self)
	st, err := cometbft.ImportAddrBook(pm, strings.NewReader(file))
	require.NoError(t, err)
	t.Logf("import: %+v", st)
	require.Equal(t, cometbft.ImportStats{
		Old:        4,
		New:        13,
		OldAdded:   1,
		Added:      3,
		Attributed: 1, // the DNS name, from good; old is added before good, its source
		Skipped: cometbft.ImportSkips{
			Malformed:      5,
			InvalidID:      2,
			InvalidAddress: 6,
			Self:           1,
		},
	}, st)
	require.Equal(t, 3, pm.Len())
	require.Equal(t, []pex.NodeAddress{mustAddr(t, "mconn://"+string(good)+"@1.2.3.4:26656")}, pm.Addresses(good))
	require.Equal(t, []pex.NodeAddress{mustAddr(t, "mconn://"+string(old)+"@5.6.7.8:26656")}, pm.Addresses(old))
	require.Equal(t, []pex.NodeAddress{mustAddr(t, "mconn://"+string(named)+"@node-1.example.com:26656")}, pm.Addresses(named))
}

func mustAddr(t testing.TB, s string) pex.NodeAddress {
	a, err := pex.ParseNodeAddress(s)
	require.NoError(t, err)
	return a
}

// A strict book refuses unroutable addresses; a full one takes no more,
// and the old entries, added first, have the room.
func TestImportAddrBookStrictAndFull(t *testing.T) {
	self := impID(t)
	var entries []string
	for i := range 6 {
		entries = append(entries, impEntry(string(impID(t)), fmt.Sprintf("%d.1.2.3", 20+i), 26656, 1, "null"))
	}
	entries = append(entries,
		impEntry(string(impID(t)), "10.0.0.1", 26656, 1, "null"),
		impEntry(string(impID(t)), "127.0.0.1", 26656, 2, "null"),
		impEntry(string(impID(t)), "30.1.2.3", 26656, 2, "null"),
		impEntry(string(impID(t)), "31.1.2.3", 26656, 2, "null"),
	)
	pm, err := pex.NewPeerManager(self, pex.PeerManagerOptions{Strict: true, MaxPeers: 4})
	require.NoError(t, err)
	st, err := cometbft.ImportAddrBook(pm, strings.NewReader(impFile(entries...)))
	require.NoError(t, err)
	require.Equal(t, cometbft.ImportStats{
		Old: 3, New: 7, OldAdded: 2, Added: 4,
		Skipped: cometbft.ImportSkips{Unroutable: 2, Full: 4},
	}, st)
	require.Equal(t, 4, pm.Len())
}

// corruptBooks are files ImportAddrBook refuses whole.
func corruptBooks(t testing.TB, real []byte) map[string][]byte {
	return map[string][]byte{
		"truncated":       real[:len(real)/2],
		"truncated entry": []byte(impFile(impEntry(string(impID(t)), "1.2.3.4", 26656, 1, "null"))[:60]),
		"not JSON":        []byte("# addrbook\nkey = 1\n"),
		"empty":           nil,
		"null":            []byte("null"),
		"array":           []byte("[]"),
		"no addrs":        []byte(`{"key":"abc"}`),
		"addrs an object": []byte(`{"key":"abc","addrs":{}}`),
		"trailing data":   append(slices.Clone(real), []byte("\n}")...),
		"binary":          {0x1f, 0x8b, 0x08, 0x00, 0xff},
	}
}

// A corrupt file is an error wrapping ErrCorruptAddrBook, and the book
// is left as it was.
func TestImportAddrBookCorrupt(t *testing.T) {
	b := writeCometBFTBook(t)
	real, err := os.ReadFile(b.path)
	require.NoError(t, err)
	pm := impPM(t, b.self)
	kept := mustAddr(t, "mconn://"+string(impID(t))+"@4.4.4.4:26656")
	_, err = pm.Add(kept)
	require.NoError(t, err)

	for name, data := range corruptBooks(t, real) {
		st, err := cometbft.ImportAddrBook(pm, bytes.NewReader(data))
		require.ErrorIs(t, err, cometbft.ErrCorruptAddrBook, name)
		require.True(t, strings.HasPrefix(err.Error(), "pex: cometbft: "), err.Error())
		require.Zero(t, st, name)
		require.Equal(t, []pex.NodeID{kept.NodeID}, pm.Known(), name)
	}

	path := filepath.Join(t.TempDir(), "addrbook.json")
	require.NoError(t, os.WriteFile(path, real[:len(real)-3], 0o600))
	_, err = cometbft.ImportAddrBookFile(pm, path)
	require.ErrorIs(t, err, cometbft.ErrCorruptAddrBook)
	require.Equal(t, 1, pm.Len())

	// An empty book is no error.
	st, err := cometbft.ImportAddrBook(pm, strings.NewReader(`{"key":"abc","addrs":[]}`))
	require.NoError(t, err)
	require.Zero(t, st)
}

// A missing file, a failing reader and a nil PeerManager are errors, but
// not ErrCorruptAddrBook.
func TestImportAddrBookOtherErrors(t *testing.T) {
	pm := impPM(t, impID(t))
	_, err := cometbft.ImportAddrBookFile(pm, filepath.Join(t.TempDir(), "addrbook.json"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.NotErrorIs(t, err, cometbft.ErrCorruptAddrBook)

	boom := errors.New("boom")
	_, err = cometbft.ImportAddrBook(pm, failingReader{boom})
	require.ErrorIs(t, err, boom)
	require.NotErrorIs(t, err, cometbft.ErrCorruptAddrBook)

	_, err = cometbft.ImportAddrBook(nil, strings.NewReader(impFile()))
	require.ErrorIs(t, err, pex.ErrInvalidConfig)
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

// FuzzImportAddrBook: no input panics; an error is ErrCorruptAddrBook
// and adds nothing; every entry is counted once.
func FuzzImportAddrBook(f *testing.F) {
	b := writeCometBFTBook(f)
	real, err := os.ReadFile(b.path)
	require.NoError(f, err)
	f.Add(real)
	for _, data := range corruptBooks(f, real) {
		f.Add(data)
	}
	id := string(impID(f))
	f.Add([]byte(impFile(
		impEntry(id, "node.example.com", 26656, 1, "null"),
		impEntry(id, "1.2.3.999", 26656, 2, `{"id":"x"}`),
		impEntry(string(b.self), "::ffff:1.2.3.4", 70000, 2, "7"),
		`null`,
	)))
	f.Fuzz(func(t *testing.T, data []byte) {
		pm, err := pex.NewPeerManager(b.self, pex.PeerManagerOptions{MaxPeers: 16})
		require.NoError(t, err)
		st, err := cometbft.ImportAddrBook(pm, bytes.NewReader(data))
		if err != nil {
			require.ErrorIs(t, err, cometbft.ErrCorruptAddrBook)
			require.Zero(t, pm.Len())
			return
		}
		require.Equal(t, st.Old+st.New, st.Added+st.Known+st.Skipped.Total())
		require.LessOrEqual(t, pm.Len(), st.Added)
		require.LessOrEqual(t, st.OldAdded, min(st.Old, st.Added))
		require.LessOrEqual(t, st.Attributed, st.Added+st.Known)
	})
}
