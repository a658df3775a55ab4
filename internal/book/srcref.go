package book

import "github.com/pexnet/pex/internal/addr"

// srcRef names the node ID an entry was first told of by (peerInfo.src)
// in the book's table of sources: 4 bytes in each entry where the ID
// would take a string's 16, since a book learns most of its entries
// from a few peers. noSrc is no source (the operator's word).
type srcRef uint32

const noSrc srcRef = 0

// sources interns the node IDs that entries name as their source, each
// counted by the entries naming it and forgotten when none does.
type sources struct {
	ids   []addr.NodeID // by ref; ids[noSrc] is ""
	refs  []int32       // entries naming each ref
	index map[addr.NodeID]srcRef
	free  []srcRef // refs no entry names, to give again
	// last is the ref take gave last: a response's entries all name its
	// sender, found by comparing IDs rather than looking it up. ids[last]
	// is its ID while an entry names it, "" once none does.
	last srcRef
}

func newSources() sources {
	return sources{ids: []addr.NodeID{""}, refs: []int32{0}, index: make(map[addr.NodeID]srcRef)}
}

// take returns the ref of id for one more entry naming it.
func (s *sources) take(id addr.NodeID) srcRef {
	if id == "" {
		return noSrc
	}
	if r := s.last; s.ids[r] == id {
		s.refs[r]++
		return r
	}
	r, ok := s.index[id]
	if !ok {
		if n := len(s.free); n > 0 {
			r, s.free = s.free[n-1], s.free[:n-1]
			s.ids[r] = id
		} else {
			r = srcRef(len(s.ids))
			s.ids = append(s.ids, id)
			s.refs = append(s.refs, 0)
		}
		s.index[id] = r
	}
	s.refs[r]++
	s.last = r
	return r
}

// release counts one entry less naming r.
func (s *sources) release(r srcRef) {
	if r == noSrc {
		return
	}
	if s.refs[r]--; s.refs[r] == 0 {
		delete(s.index, s.ids[r])
		s.ids[r] = ""
		s.free = append(s.free, r)
	}
}

// id returns the node ID r names ("" for noSrc).
func (s *sources) id(r srcRef) addr.NodeID { return s.ids[r] }

// ref returns what an entry whose source is id holds: noSrc for "", and
// for an ID no entry names a ref no entry holds, so that comparing refs
// is comparing IDs.
func (s *sources) ref(id addr.NodeID) srcRef {
	if id == "" {
		return noSrc
	}
	if r, ok := s.index[id]; ok {
		return r
	}
	return unnamed
}

// unnamed is a ref no entry holds.
const unnamed = ^srcRef(0)
