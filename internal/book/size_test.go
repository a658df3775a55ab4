package book

import (
	"testing"
	"unsafe"
)

// TestEntrySize pins the size of an entry and of a stored address: the
// book's memory per address (SPEC section 8: at most 250 bytes at
// 100,000) is mostly these, and a field added carelessly moves an entry
// to the next allocation size class.
func TestEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(peerInfo{}); n > 112 {
		t.Errorf("peerInfo takes %d bytes, more than 112", n)
	}
	if n := unsafe.Sizeof(addrInfo{}); n > 56 {
		t.Errorf("addrInfo takes %d bytes, more than 56", n)
	}
	if n := unsafe.Sizeof(connInfo{}); n > 48 {
		t.Errorf("connInfo takes %d bytes, more than 48", n)
	}
}

// TestGrownBy: a list merged into grows by doubling to the book's bound,
// and past it only by what does not fit.
func TestGrownBy(t *testing.T) {
	s := grownBy([]uint64(nil), 3, 1000)
	if len(s) != 0 || cap(s) != 8 {
		t.Fatalf("len %d cap %d, want 0 and 8", len(s), cap(s))
	}
	s = grownBy(make([]uint64, 600, 640), 100, 1000)
	if len(s) != 600 || cap(s) != 1000 {
		t.Fatalf("len %d cap %d, want 600 and 1000 (doubling stops at the bound)", len(s), cap(s))
	}
	s = grownBy(make([]uint64, 990, 1000), 20, 1000)
	if cap(s) != 1010 {
		t.Fatalf("cap %d, want 1010 (past the bound, what does not fit)", cap(s))
	}
	if u := grownBy(s[:5], 5, 1000); &u[:1][0] != &s[0] {
		t.Fatal("a list with room was copied")
	}
}
