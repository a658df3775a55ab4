package book

import (
	"slices"

	"github.com/pexnet/pex/internal/addr"
)

// SelfID returns our own node ID.
func (m *Book) SelfID() addr.NodeID { return m.self }

// SelfAddresses returns our own advertised addresses.
func (m *Book) SelfAddresses() []addr.NodeAddress {
	return slices.Clone(m.opts.SelfAddresses)
}

// MaxPeers returns the capacity of the book.
func (m *Book) MaxPeers() int { return m.opts.MaxPeers }

// PeerRatio returns stored peers / MaxPeers, between 0 and 1.
func (m *Book) PeerRatio() float64 {
	return float64(m.peers.len()) / float64(m.opts.MaxPeers)
}

// Len returns how many peers the book holds.
func (m *Book) Len() int {
	return m.peers.len()
}

// Inserted counts the entries ever inserted into the book: with Len, it
// tells a caller that caches what it counted in the book whether the book
// changed (an entry that displaces another leaves Len as it was).
func (m *Book) Inserted() uint64 {
	return m.seq
}

// Has reports whether the book holds id.
func (m *Book) Has(id addr.NodeID) bool {
	return m.peers.get(id) != nil
}

// Addresses returns the stored addresses of id.
func (m *Book) Addresses(id addr.NodeID) []addr.NodeAddress {
	p := m.peers.get(id)
	if p == nil {
		return nil
	}
	out := make([]addr.NodeAddress, m.extra.num(p))
	for i, ai := range m.extra.all(p) {
		out[i] = ai.addr().of(p.id)
	}
	return out
}

// Known returns the IDs of every peer in the book, sorted.
func (m *Book) Known() []addr.NodeID {
	ids := make([]addr.NodeID, 0, m.peers.len())
	for id := range m.peers.all() {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Connected returns the IDs of the ready (Up) peers, sorted.
func (m *Book) Connected() []addr.NodeID {
	var ids []addr.NodeID
	for id, p := range m.peers.all() {
		if p.state == stateReady {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Score returns the score of id, and whether it is known.
func (m *Book) Score(id addr.NodeID) (int, bool) {
	p := m.peers.get(id)
	if p == nil {
		return 0, false
	}
	return int(p.score), true
}

// IsConnected reports whether id is dialing, connected or ready.
func (m *Book) IsConnected(id addr.NodeID) bool {
	p := m.peers.get(id)
	return p != nil && p.connected()
}
