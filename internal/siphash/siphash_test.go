package siphash

import (
	"encoding/binary"
	"testing"
)

// The SipHash paper's test vector (appendix A): key 00..0f, message 00..0e.
func TestSipHashVector(t *testing.T) {
	var key [16]byte
	msg := make([]byte, 15)
	for i := range key {
		key[i] = byte(i)
	}
	for i := range msg {
		msg[i] = byte(i)
	}
	got := Sum24(binary.LittleEndian.Uint64(key[:8]), binary.LittleEndian.Uint64(key[8:]), msg)
	if want := uint64(0xa129ca6149be45e5); got != want {
		t.Fatalf("SipHash-2-4 = %#x, want %#x", got, want)
	}
	// The first of the reference implementation's 64 vectors: the empty message.
	if got, want := Sum24(binary.LittleEndian.Uint64(key[:8]), binary.LittleEndian.Uint64(key[8:]), nil), uint64(0x726fdb47dd0e0e31); got != want {
		t.Fatalf("SipHash-2-4 of nothing = %#x, want %#x", got, want)
	}
}
