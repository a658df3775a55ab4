package cometbft

import (
	"github.com/cometbft/cometbft/p2p"

	"github.com/pexnet/pex"
)

// AddrBook returns the reactor's PeerManager in the shape the switch wants
// for Switch.SetAddrBook. The switch uses its address book to store the
// addresses given to DialPeersAsync, to mark peers good, and to forget an
// address that turned out to be its own; without one it panics in the
// last case. Set it on a switch that runs this reactor and no CometBFT
// address book:
//
//	sw.SetAddrBook(r.AddrBook())
//
// The PeerManager keeps what it can: AddAddress is PeerManager.Add,
// MarkGood is PeerManager.Good, HasAddress is PeerManager.Has; our own
// addresses are recognised by node ID, so AddOurAddress and RemoveAddress
// have nothing to do, Save has nothing to write, and private peers must be
// given in PeerManagerOptions.PrivatePeers (AddPrivateIDs only logs them).
func (r *Reactor) AddrBook() p2p.AddrBook { return addrBook{r} }

type addrBook struct{ r *Reactor }

var _ p2p.AddrBook = addrBook{}

func (b addrBook) AddAddress(addr, _ *p2p.NetAddress) error {
	if addr == nil {
		return pex.ErrInvalidAddress
	}
	id, err := pex.ParseNodeID(string(addr.ID))
	if err != nil {
		return err
	}
	a, err := nodeAddress(id, addr)
	if err != nil {
		return err
	}
	_, err = b.r.pm.Add(a)
	return err
}

func (b addrBook) AddPrivateIDs(ids []string) {
	if len(ids) > 0 {
		b.r.log.Warn("pex/cometbft: private peer IDs must be set in PeerManagerOptions.PrivatePeers; ignoring", "ids", ids)
	}
}

func (addrBook) AddOurAddress(*p2p.NetAddress) {}

func (b addrBook) OurAddress(addr *p2p.NetAddress) bool {
	return addr != nil && pex.NodeID(addr.ID) == b.r.pm.SelfID()
}

func (b addrBook) MarkGood(id p2p.ID) {
	if nid, err := pex.ParseNodeID(string(id)); err == nil {
		b.r.pm.Good(nid)
	}
}

func (addrBook) RemoveAddress(*p2p.NetAddress) {}

func (b addrBook) HasAddress(addr *p2p.NetAddress) bool {
	if addr == nil {
		return false
	}
	id, err := pex.ParseNodeID(string(addr.ID))
	return err == nil && b.r.pm.Has(id)
}

func (addrBook) Save() {}
