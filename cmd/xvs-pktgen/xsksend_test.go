package main

import (
	"testing"

	"github.com/xvs-lb/xvs/dataplane/xsk"
)

// TestXSKFill checks that the xsk engine's frame preparation rewrites each
// frame for the next flow and allocates nothing.
func TestXSKFill(t *testing.T) {
	needRoot(t)
	tp := testTemplate(t, protoUDP, 64, "198.18.0.1-198.18.0.5", 0)
	umem, err := xsk.NewUMEM(xsk.UMEMConfig{NumFrames: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer umem.Close()
	x := &xskSender{umem: umem, t: tp, pending: make([]xsk.Desc, 0, txBatch)}
	// Frames start as copies of the template, as newXSKSender makes them.
	var held []xsk.Desc
	for d, ok := umem.Alloc(); ok; d, ok = umem.Alloc() {
		d.Len = uint32(len(tp.frame))
		copy(umem.Frame(d), tp.frame)
		held = append(held, d)
	}
	for _, d := range held {
		umem.Free(d.Addr)
	}
	x.fill(txBatch)
	if len(x.pending) != txBatch {
		t.Fatalf("fill made %d frames, want %d", len(x.pending), txBatch)
	}
	for i, d := range x.pending {
		got := decodeFrame(t, umem.Frame(d))
		if want := []string{"198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.4", "198.18.0.5"}[i%5]; got.ip.SrcIP.String() != want {
			t.Fatalf("frame %d from %v, want %s", i, got.ip.SrcIP, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		for _, d := range x.pending {
			umem.Free(d.Addr)
		}
		x.pending = x.pending[:0]
		x.fill(txBatch)
	}); n != 0 {
		t.Errorf("fill allocates %v times per batch", n)
	}
}
