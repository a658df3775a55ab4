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
