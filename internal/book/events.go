package book

import (
	"slices"

	"github.com/pexnet/pex/internal/event"
)

// TakeUpdates returns the peer updates since the last call, in order, for
// the caller to publish.
func (m *Book) TakeUpdates() []event.PeerUpdate {
	u := m.updates
	m.updates = nil
	return u
}

// TakeWake reports whether a dial may have become possible since the last
// call (an address was added, a slot freed), for the caller to wake whoever
// waits to dial.
func (m *Book) TakeWake() bool {
	w := m.wake
	m.wake = false
	return w
}

// ReadyUpdates returns an Up for every peer that is ready now, by node ID:
// what a subscriber starting late must be told first.
func (m *Book) ReadyUpdates() []event.PeerUpdate {
	var out []event.PeerUpdate
	for id, p := range m.peers.all() {
		if p.state == stateReady {
			out = append(out, event.PeerUpdate{NodeID: id, Status: event.PeerStatusUp, Caps: m.conns[p].caps})
		}
	}
	slices.SortFunc(out, func(a, b event.PeerUpdate) int {
		switch {
		case a.NodeID < b.NodeID:
			return -1
		case a.NodeID > b.NodeID:
			return 1
		}
		return 0
	})
	return out
}

// Options returns the options, defaults filled in.
func (m *Book) Options() Options { return m.opts }

// SelfKey is our own key in the walk's order (walk.Key of our ID).
func (m *Book) SelfKey() uint64 { return m.selfKey }

// Active is how many peers are dialing or connected.
func (m *Book) Active() int { return m.slots.Active() }
