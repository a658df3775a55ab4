package cometbft

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/cometbft/cometbft/p2p"

	"github.com/pexnet/pex"
)

// ErrCorruptAddrBook: an address book file that is not one: not JSON,
// truncated, not an object with an "addrs" array, followed by something
// else, or larger than MaxAddrBookFileSize. ImportAddrBook adds nothing
// from such a file.
var ErrCorruptAddrBook = errors.New("pex: cometbft: corrupt address book file")

// MaxAddrBookFileSize bounds the file ImportAddrBook reads. A full
// CometBFT book (about 20,000 addresses) takes under 10 MiB.
const MaxAddrBookFileSize = 64 << 20

// ImportStats says what ImportAddrBook did with each entry of the file.
// Old+New counts every entry, and so does Added+Known+Skipped.Total().
type ImportStats struct {
	// Old counts the entries of CometBFT's old table (bucket_type 2):
	// addresses the node once connected to. New counts every other entry
	// (bucket_type 1: addresses it only heard of). Both count entries of
	// the file, whatever became of them.
	Old, New int
	// OldAdded counts the old entries that Added counts.
	OldAdded int
	// Added counts the entries the book stored as news: a new peer, or a
	// new address of a known one.
	Added int
	// Known counts the entries the book already held (or held enough
	// addresses of the peer of), which change nothing.
	Known int
	// Attributed counts the entries of Added and Known that were given to
	// the book with their source (PeerManager.AddFrom).
	Attributed int
	// Skipped counts the entries left out, by reason.
	Skipped ImportSkips
}

// ImportSkips counts the entries of an address book file left out, by
// reason.
type ImportSkips struct {
	// Malformed: an entry that is not an object with an "addr" object
	// holding a string "id", a string "ip" and a number "port".
	Malformed int
	// InvalidID: an addr.id that is not a node ID (pex.ErrInvalidNodeID).
	InvalidID int
	// InvalidAddress: an addr.ip that is neither an IP nor a DNS name, an
	// unspecified IP (0.0.0.0, ::), or a port outside 1-65535
	// (pex.ErrInvalidAddress).
	InvalidAddress int
	// Self: our own node ID, or one of our own addresses
	// (pex.ErrSelfAddress).
	Self int
	// Unroutable: an address the book refuses in strict mode
	// (pex.ErrUnroutableAddress).
	Unroutable int
	// Full: the book was full (PeerManager.MaxPeers). The import makes
	// no room: it never evicts what the book holds.
	Full int
	// Refused: any other refusal of the book, such as a full network or
	// source group (pex.ErrNetworkGroupFull, pex.ErrSourceGroupFull).
	Refused int
}

// Total returns the number of entries skipped.
func (s ImportSkips) Total() int {
	return s.Malformed + s.InvalidID + s.InvalidAddress + s.Self + s.Unroutable + s.Full + s.Refused
}

// ImportAddrBookFile opens the file at path and imports it with
// ImportAddrBook. A file that cannot be opened is an error wrapping the
// os error: a node that never ran has no address book, which
// errors.Is(err, fs.ErrNotExist) tells.
func ImportAddrBookFile(pm *pex.PeerManager, path string) (ImportStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return ImportStats{}, fmt.Errorf("pex: cometbft: import address book: %w", err)
	}
	defer func() { _ = f.Close() }()
	return ImportAddrBook(pm, f)
}

// ImportAddrBook reads an address book written by CometBFT's PEX reactor
// (addrbook.json, the format of Tendermint v0.34 and CometBFT v0.37 and
// v0.38: an object with "key" and "addrs", each entry with "addr" and
// "src" as {"id", "ip", "port"} and "bucket_type" 1 for the new table, 2
// for the old) and adds its addresses to pm, so that a node switched from
// CometBFT's PEX to pex keeps what it knew. The buckets, attempts and
// times of the entries are not used, nor the book's key.
//
// The whole file is read and decoded before anything is added: a file
// that is not such a book (not JSON, truncated, no "addrs" array, more
// than MaxAddrBookFileSize bytes) is an error wrapping ErrCorruptAddrBook
// and leaves pm unchanged. An error of r is returned wrapped, without
// ErrCorruptAddrBook. A nil pm is an error wrapping pex.ErrInvalidConfig.
//
// A single entry that cannot be used is skipped and counted in
// ImportStats.Skipped by reason; the others are added. An "ip" that is
// not an IP address is taken for a DNS name (mconn://id@name:port), kept
// as a name and resolved at each dial, as pex does with every name.
//
// Old and new entries go into the same book: pex's book has no table of
// verified addresses yet. ImportStats counts them apart (Old, New,
// OldAdded) for the day it does. Old entries are added first, so that
// they have the room when the file holds more than pm.MaxPeers
// addresses; once the book is full the rest is skipped (Skipped.Full): the
// import never evicts an entry to make room.
//
// An entry whose source ("src") is another node the book holds by the
// time the entry is added goes in with PeerManager.AddFrom, so that the
// book charges it to that source's group and never advertises it back to
// it; within each table an entry is added after the entry of its source,
// if the file has one. Every other entry, including those whose source
// is the entry itself (an inbound peer's own announcement) or our own
// node (seeds and persistent peers), goes in with PeerManager.Add.
//
// ImportAddrBook calls pm's methods one entry at a time; run it before
// starting the node, not while a reactor fills the book.
func ImportAddrBook(pm *pex.PeerManager, r io.Reader) (ImportStats, error) {
	if pm == nil {
		return ImportStats{}, fmt.Errorf("%w: ImportAddrBook needs a PeerManager", pex.ErrInvalidConfig)
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxAddrBookFileSize+1))
	if err != nil {
		return ImportStats{}, fmt.Errorf("pex: cometbft: reading address book: %w", err)
	}
	if len(data) > MaxAddrBookFileSize {
		return ImportStats{}, fmt.Errorf("%w: larger than %d bytes", ErrCorruptAddrBook, MaxAddrBookFileSize)
	}
	raw, err := decodeAddrBook(data)
	if err != nil {
		return ImportStats{}, err
	}

	var st ImportStats
	self := pm.SelfID()
	var olds, news []*importEntry
	for _, m := range raw {
		e, skip := parseEntry(m, self)
		if e.old {
			st.Old++
		} else {
			st.New++
		}
		if skip != nil {
			*skip(&st.Skipped)++
			continue
		}
		if e.old {
			olds = append(olds, e)
		} else {
			news = append(news, e)
		}
	}
	im := importer{pm: pm, st: &st}
	im.table(olds)
	im.table(news)
	return st, nil
}

// decodeAddrBook returns the raw entries of an address book file, or an
// error wrapping ErrCorruptAddrBook.
func decodeAddrBook(data []byte) ([]json.RawMessage, error) {
	var file struct {
		Addrs *[]json.RawMessage `json:"addrs"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&file); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%w: at byte %d: %w", ErrCorruptAddrBook, se.Offset, err)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: truncated (%d bytes)", ErrCorruptAddrBook, len(data))
		}
		return nil, fmt.Errorf("%w: %w", ErrCorruptAddrBook, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: data after the book, at byte %d", ErrCorruptAddrBook, dec.InputOffset())
	}
	if file.Addrs == nil {
		return nil, fmt.Errorf("%w: no \"addrs\" array", ErrCorruptAddrBook)
	}
	return *file.Addrs, nil
}

// importEntry is a usable entry of the file.
type importEntry struct {
	old  bool
	addr pex.NodeAddress
	src  pex.NodeID // "" when the entry has no source to charge it to
	done bool
}

// fileNetAddress is p2p.NetAddress as CometBFT writes it, read leniently:
// the ip as a string (net.IP would refuse a DNS name) and the port as a
// number of any size, so that a bad value skips one entry and not the
// file.
type fileNetAddress struct {
	ID   string      `json:"id"`
	IP   string      `json:"ip"`
	Port json.Number `json:"port"`
}

// parseEntry reads one entry. It returns the entry (whose old field is
// set whenever the bucket type can be read) and, for an entry to skip,
// the counter of its reason.
func parseEntry(m json.RawMessage, self pex.NodeID) (*importEntry, func(*ImportSkips) *int) {
	var ka struct {
		Addr       *fileNetAddress `json:"addr"`
		Src        json.RawMessage `json:"src"`
		BucketType json.RawMessage `json:"bucket_type"`
	}
	e := &importEntry{}
	if err := json.Unmarshal(m, &ka); err != nil {
		return e, skipMalformed
	}
	e.old = string(bytes.TrimSpace(ka.BucketType)) == "2"
	if ka.Addr == nil {
		return e, skipMalformed
	}
	id, err := pex.ParseNodeID(ka.Addr.ID)
	if err != nil {
		return e, skipInvalidID
	}
	e.addr, err = importAddress(id, ka.Addr)
	if err != nil {
		return e, skipInvalidAddress
	}
	var src fileNetAddress
	if len(ka.Src) > 0 && json.Unmarshal(ka.Src, &src) == nil {
		if sid, err := pex.ParseNodeID(src.ID); err == nil && sid != id && sid != self {
			e.src = sid
		}
	}
	return e, nil
}

func skipMalformed(s *ImportSkips) *int      { return &s.Malformed }
func skipInvalidID(s *ImportSkips) *int      { return &s.InvalidID }
func skipInvalidAddress(s *ImportSkips) *int { return &s.InvalidAddress }

// importAddress builds the mconn address of an entry: through the
// switch's form (nodeAddress) for an IP, as a DNS name otherwise.
func importAddress(id pex.NodeID, fa *fileNetAddress) (pex.NodeAddress, error) {
	port, err := strconv.ParseUint(fa.Port.String(), 10, 16)
	if err != nil || port == 0 {
		return pex.NodeAddress{}, fmt.Errorf("%w: %s: port %q", pex.ErrInvalidAddress, id, fa.Port)
	}
	if ip := net.ParseIP(fa.IP); ip != nil {
		if ip.IsUnspecified() {
			return pex.NodeAddress{}, fmt.Errorf("%w: %s: unspecified IP", pex.ErrInvalidAddress, id)
		}
		return nodeAddress(id, &p2p.NetAddress{ID: p2p.ID(id), IP: ip, Port: uint16(port)})
	}
	a := pex.NodeAddress{Protocol: pex.ProtocolMConn, NodeID: id, Hostname: strings.ToLower(fa.IP), Port: uint16(port)}
	if err := a.Validate(); err != nil {
		return pex.NodeAddress{}, err
	}
	// The name holds only letters, digits, '-', '_' and dots now: the URL
	// parses back, in canonical form.
	return pex.ParseNodeAddress(a.String())
}

// importer adds the usable entries to the book.
type importer struct {
	pm *pex.PeerManager
	st *ImportStats
}

// table adds the entries of one table, in file order except that an
// entry waits for the first entry of its source in the same table (when
// the file holds one), so that the source is in the book when the entry
// is added. Entries left waiting by a cycle of sources go last.
func (im importer) table(entries []*importEntry) {
	pending := make(map[pex.NodeID]bool) // IDs of the table not added yet
	for _, e := range entries {
		pending[e.addr.NodeID] = true
	}
	waiting := make(map[pex.NodeID][]*importEntry)
	var stack []*importEntry
	add := func(e *importEntry) {
		stack = append(stack[:0], e)
		for len(stack) > 0 {
			e := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if e.done {
				continue
			}
			e.done = true
			im.add(e)
			if id := e.addr.NodeID; pending[id] {
				delete(pending, id)
				stack = append(stack, waiting[id]...)
				delete(waiting, id)
			}
		}
	}
	for _, e := range entries {
		if e.src != "" && pending[e.src] {
			waiting[e.src] = append(waiting[e.src], e)
			continue
		}
		add(e)
	}
	for _, e := range entries {
		add(e)
	}
}

// add adds one entry and counts the outcome.
func (im importer) add(e *importEntry) {
	pm, st := im.pm, im.st
	added, attributed := false, false
	// What is wrong with the entry itself is told before a full book.
	err := pm.CheckAddress(e.addr)
	switch {
	case err != nil:
	case !pm.Has(e.addr.NodeID) && pm.Len() >= pm.MaxPeers():
		st.Skipped.Full++
		return
	case e.src != "" && pm.Has(e.src):
		attributed = true
		added, err = pm.AddFrom(e.addr, e.src)
	default:
		added, err = pm.Add(e.addr)
	}
	switch {
	case err == nil && added:
		st.Added++
		if e.old {
			st.OldAdded++
		}
	case err == nil:
		st.Known++
	case errors.Is(err, pex.ErrSelfAddress):
		st.Skipped.Self++
	case errors.Is(err, pex.ErrUnroutableAddress):
		st.Skipped.Unroutable++
	case errors.Is(err, pex.ErrAddressBookFull):
		st.Skipped.Full++
	case errors.Is(err, pex.ErrInvalidNodeID):
		st.Skipped.InvalidID++
	case errors.Is(err, pex.ErrInvalidAddress):
		st.Skipped.InvalidAddress++
	default:
		st.Skipped.Refused++
	}
	if err == nil && attributed {
		st.Attributed++
	}
}
