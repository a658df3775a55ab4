package book

import (
	"iter"
	"slices"
)

// extraAddrs holds the addresses of entries after their first, for the
// few entries that have more than one (marked hasExtra): an entry keeps
// its first address inline and no list of its own. Its methods read and
// change an entry's addresses as one list, first first.
type extraAddrs map[*peerInfo][]*addrInfo

// num is how many addresses p holds.
func (x extraAddrs) num(p *peerInfo) int {
	n := 0
	if p.is(hasFirst) {
		n = 1
	}
	if p.is(hasExtra) {
		n += len(x[p])
	}
	return n
}

// at returns p's i-th address.
func (x extraAddrs) at(p *peerInfo, i int) *addrInfo {
	if p.is(hasFirst) {
		if i == 0 {
			return &p.first
		}
		i--
	}
	return x[p][i]
}

// all yields p's addresses in order, with their indices. p's addresses
// must not change while it does, but by delete of the last yielded just
// before the loop ends.
func (x extraAddrs) all(p *peerInfo) iter.Seq2[int, *addrInfo] {
	return func(yield func(int, *addrInfo) bool) {
		i := 0
		if p.is(hasFirst) {
			if !yield(0, &p.first) {
				return
			}
			i = 1
		}
		if p.is(hasExtra) {
			for _, ai := range x[p] {
				if !yield(i, ai) {
					return
				}
				i++
			}
		}
	}
}

// any reports whether f holds for an address of p.
func (x extraAddrs) any(p *peerInfo, f func(*addrInfo) bool) bool {
	for _, ai := range x.all(p) {
		if f(ai) {
			return true
		}
	}
	return false
}

// add appends ai, allocated apart, to p's addresses.
func (x extraAddrs) add(p *peerInfo, ai *addrInfo) {
	x[p] = append(x[p], ai)
	p.mark(hasExtra, true)
}

// delete takes p's i-th address out.
func (x extraAddrs) delete(p *peerInfo, i int) {
	if p.is(hasFirst) {
		if i == 0 {
			p.mark(hasFirst, false)
			return
		}
		i--
	}
	if rest := slices.Delete(x[p], i, i+1); len(rest) > 0 {
		x[p] = rest
	} else {
		x.drop(p)
	}
}

// drop forgets p's further addresses, as p leaves the book.
func (x extraAddrs) drop(p *peerInfo) {
	delete(x, p)
	p.mark(hasExtra, false)
}

// failing reports whether every address of p failed its last dial.
func (x extraAddrs) failing(p *peerInfo) bool {
	if !p.is(hasExtra) {
		// Most entries: the eviction heap asks at each move.
		return p.is(hasFirst) && p.first.failures != 0
	}
	return x.num(p) > 0 && !x.any(p, func(ai *addrInfo) bool { return ai.failures == 0 })
}
