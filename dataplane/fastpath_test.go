package dataplane

import (
	"bytes"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/xvs-lb/xvs/dataplane/packet"
	"github.com/xvs-lb/xvs/dataplane/xdpprog"
)

// fastRig is a forwarder whose offloads go into a real flow table, and a
// steering program (not attached) that forwards with it.
type fastRig struct {
	*rig
	flows *xdpprog.Flows
	prog  *xdpprog.Program
}

// loIfindex is where the test's ports "are": the redirect map only takes
// interfaces that exist, and BPF_PROG_RUN does not carry redirects out.
const loIfindex = 1

func newFastRig(t *testing.T, a famAddrs, method Method) *fastRig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for BPF")
	}
	r := famRig(t, a, method, 8080, false)
	for i := range r.fwd.ports {
		r.fwd.ports[i].Ifindex = loIfindex
	}
	r.fwd.fastPorts = make([]atomic.Bool, len(r.fwd.ports))
	for i := range r.fwd.fastPorts {
		r.fwd.fastPorts[i].Store(true)
	}
	r.fwd.offload = newOffloadRing(16, nil)
	flows, err := xdpprog.NewFlows(64)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flows.Close() })
	if err := flows.AddPort(loIfindex); err != nil {
		t.Fatal(err)
	}
	prog, err := xdpprog.Load(xdpprog.Config{MaxEntries: 16, Flows: flows})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	if err := prog.SetFastPath(true); err != nil {
		t.Fatal(err)
	}
	return &fastRig{rig: r, flows: flows, prog: prog}
}

// offloaded moves what the forwarder queued into the flow table, as the
// engine's fast path loop does, and returns how many directions.
func (r *fastRig) offloaded(t *testing.T) int {
	t.Helper()
	var keys []xdpprog.FlowKey
	var vals []xdpprog.Flow
	r.fwd.offload.drain(func(q *offloadReq) {
		if q.del {
			if _, err := r.flows.Delete(q.keys[:q.n]); err != nil {
				t.Fatal(err)
			}
			return
		}
		keys = append(keys, q.keys[:q.n]...)
		vals = append(vals, q.flows[:q.n]...)
	})
	if _, err := r.flows.Put(keys, vals); err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// both forwards f in userspace and with the fast path, and returns what
// each sent and the program's action.
func (r *fastRig) both(t *testing.T, f []byte, in int) (user, fast []byte, action uint32) {
	t.Helper()
	buf := withHeadroom(f, 256)
	out, off, n := r.fwd.forward(r.table, buf, 256, len(f), in, 10)
	if out < 0 {
		t.Fatalf("userspace dropped the frame: %v", r.stats.Drops())
	}
	user = append([]byte(nil), buf[off:off+n]...)
	dst := make([]byte, len(f)+256)
	action, m, err := r.prog.Run(append([]byte(nil), f...), dst)
	if err != nil {
		t.Fatal(err)
	}
	return user, dst[:m], action
}

// maskTunnelID zeroes the outer IPv4 identification and header checksum of
// a tunnelled frame: each side numbers its tunnel packets itself.
func maskTunnelID(f []byte, l3 int) {
	if len(f) > l3+12 && f[l3]>>4 == 4 {
		f[l3+4], f[l3+5], f[l3+10], f[l3+11] = 0, 0, 0, 0
	}
}

// TestFastPathMatchesUserspace: for every mode, both families, TCP and UDP,
// and both directions where the director carries both, a frame of an
// offloaded connection leaves the fast path byte for byte as the userspace
// forwarder would send it.
func TestFastPathMatchesUserspace(t *testing.T) {
	modes := []struct {
		name   string
		method Method
	}{{"dr", MethodDR}, {"nat", MethodNAT}, {"tun", MethodTUN}, {"fullnat", MethodFullNAT}}
	for _, md := range modes {
		for _, a := range []famAddrs{fam4, fam6} {
			for _, proto := range []uint8{protoTCP, protoUDP} {
				for _, size := range []int{1, 320} {
					t.Run(fmt.Sprintf("%s/v6=%v/proto%d/payload%d", md.name, a.vip.Is6(), proto, size), func(t *testing.T) {
						r := newFastRig(t, a, md.method)
						dport := uint16(80)
						if proto == protoUDP {
							dport = 53
						}
						payload := bytes.Repeat([]byte("fastpath"), 40)[:size]
						open := func(flags uint8) []byte {
							return famFrame(t, clientMAC, portMAC0, a.client, a.vip, 40000, dport, proto, flags, payload)
						}
						if proto == protoUDP {
							// A flow's first datagram is not offloaded: it may
							// be its only one.
							r.fwd.forwardFrame(r.table, open(0), 0, 1)
							r.fwd.considerOffload()
							if n := r.offloaded(t); n != 0 {
								t.Fatalf("a UDP flow's first datagram offloaded %d directions", n)
							}
						}
						if proto == protoTCP {
							// Handshake through userspace: SYN, (SYN-ACK for
							// NAT and FullNAT), ACK: now established.
							r.fwd.forwardFrame(r.table, open(packet.FlagSYN), 0, 1)
							r.fwd.considerOffload()
							if md.method == MethodNAT || md.method == MethodFullNAT {
								sa := r.replyTo(t, a, md.method, proto, packet.FlagSYN|packet.FlagACK, nil)
								r.fwd.forwardFrame(r.table, sa, 1, 2)
								r.fwd.considerOffload()
							}
						}
						first := open(packet.FlagACK)
						if _, _, n := r.fwd.forward(r.table, withHeadroom(first, 256), 256, len(first), 0, 3); n == 0 {
							t.Fatalf("first frame dropped: %v", r.stats.Drops())
						}
						r.fwd.considerOffload()
						want := 1
						if md.method == MethodNAT || md.method == MethodFullNAT {
							want = 2
						}
						if got := r.offloaded(t); got != want {
							t.Fatalf("offloaded %d flow directions, want %d", got, want)
						}

						// BPF_PROG_RUN runs the program as if on lo, where the
						// test's ports are: XDP_TX is their egress too.
						user, fast, action := r.both(t, open(packet.FlagACK|packet.FlagPSH), 0)
						if action != xdpRedirect && action != xdpTX {
							t.Errorf("fast path action %d, want it forwarded", action)
						}
						if md.method == MethodTUN {
							maskTunnelID(user, 14)
							maskTunnelID(fast, 14)
						}
						if !bytes.Equal(user, fast) {
							t.Fatalf("fast path frame differs from userspace's\n user %x\n fast %x", user, fast)
						}
						if md.method != MethodNAT && md.method != MethodFullNAT {
							return
						}
						reply := r.replyTo(t, a, md.method, proto, packet.FlagACK, payload[:min(99, size)])
						user, fast, action = r.both(t, reply, 1)
						if action != xdpRedirect && action != xdpTX || !bytes.Equal(user, fast) {
							t.Fatalf("reply: action %d; fast path frame differs from userspace's\n user %x\n fast %x", action, user, fast)
						}
					})
				}
			}
		}
	}
}

// replyTo builds the real server's reply to the connection the rig holds.
func (r *fastRig) replyTo(t *testing.T, a famAddrs, method Method, proto, flags uint8, payload []byte) []byte {
	t.Helper()
	dst, dport := a.client, uint16(40000)
	if method == MethodFullNAT {
		c := &r.fwd.conn
		svc := r.table.serviceByID(c.Value.Service)
		lip, lport := svc.localAddr(c.Value.Flags)
		dst, dport = lip, lport
	}
	sport := uint16(8080)
	if proto == protoUDP {
		sport = 53
	}
	return famFrame(t, rsMAC, portMAC1, a.rip, dst, sport, dport, proto, flags, payload)
}

// TestFastPathLeavesToUserspace: what the fast path must not forward goes
// on to the steering rules as without it: closing TCP flags, a checksum
// left to complete, a tunnel packet too big for the MTU, an unknown flow.
func TestFastPathLeavesToUserspace(t *testing.T) {
	r := newFastRig(t, fam4, MethodTUN)
	f := famFrame(t, clientMAC, portMAC0, fam4.client, fam4.vip, 40000, 53, protoUDP, 0, []byte("hello"))
	for range 2 { // offloaded at its second datagram
		r.fwd.forwardFrame(r.table, append([]byte(nil), f...), 0, 1)
		r.fwd.considerOffload()
	}
	if r.offloaded(t) != 1 {
		t.Fatal("UDP flow not offloaded")
	}
	run := func(name string, f []byte) {
		t.Helper()
		dst := make([]byte, len(f)+256)
		action, _, err := r.prog.Run(f, dst)
		if err != nil {
			t.Fatal(err)
		}
		if action == xdpRedirect || action == xdpTX {
			t.Errorf("%s: the fast path forwarded it (action %d)", name, action)
		}
	}
	partial := append([]byte(nil), f...)
	partialize(t, partial)
	run("partial checksum", partial)
	big := famFrame(t, clientMAC, portMAC0, fam4.client, fam4.vip, 40000, 53, protoUDP, 0, make([]byte, 1500-28))
	run("too big to tunnel", big)
	other := famFrame(t, clientMAC, portMAC0, fam4.client, fam4.vip, 40001, 53, protoUDP, 0, []byte("hello"))
	run("unknown flow", other)
	st, err := r.prog.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.FastPartial != 1 || st.FastTooBig != 1 || st.Fast != 0 {
		t.Errorf("stats %+v, want one partial, one too big, none forwarded", st)
	}

	r2 := newFastRig(t, fam4, MethodDR)
	syn := famFrame(t, clientMAC, portMAC0, fam4.client, fam4.vip, 40000, 80, protoTCP, packet.FlagSYN, nil)
	r2.fwd.forwardFrame(r2.table, syn, 0, 1)
	ack := famFrame(t, clientMAC, portMAC0, fam4.client, fam4.vip, 40000, 80, protoTCP, packet.FlagACK, nil)
	r2.fwd.forwardFrame(r2.table, append([]byte(nil), ack...), 0, 2)
	r2.fwd.considerOffload()
	if r2.offloaded(t) != 1 {
		t.Fatal("TCP connection not offloaded once established")
	}
	for _, flags := range []uint8{packet.FlagFIN | packet.FlagACK, packet.FlagRST, packet.FlagSYN} {
		dst := make([]byte, 512)
		fr := famFrame(t, clientMAC, portMAC0, fam4.client, fam4.vip, 40000, 80, protoTCP, flags, nil)
		if action, _, err := r2.prog.Run(fr, dst); err != nil || action == xdpRedirect || action == xdpTX {
			t.Errorf("flags %#x: action %d %v, want it left to userspace", flags, action, err)
		}
	}
	// FIN through userspace takes the connection off the fast path.
	fin := famFrame(t, clientMAC, portMAC0, fam4.client, fam4.vip, 40000, 80, protoTCP, packet.FlagFIN|packet.FlagACK, nil)
	r2.fwd.forwardFrame(r2.table, fin, 0, 3)
	r2.offloaded(t)
	var k xdpprog.FlowKey
	flowKey(&k, &r2.fwd.conn.Orig)
	if ok, err := r2.flows.Lookup(&k, new(xdpprog.Flow)); err != nil || ok {
		t.Errorf("after FIN the flow is still offloaded (%v, %v)", ok, err)
	}
	if r2.fwd.conn.Cached {
		t.Error("after FIN the connection is still marked cached")
	}
}

// TestFastPathPartialNotOffloaded: a connection whose sender leaves
// checksums to the NIC is not offloaded (the fast path would only hand its
// frames back).
func TestFastPathPartialNotOffloaded(t *testing.T) {
	r := newFastRig(t, fam4, MethodNAT)
	f := famFrame(t, clientMAC, portMAC0, fam4.client, fam4.vip, 40000, 53, protoUDP, 0, []byte("hello"))
	partialize(t, f)
	for range 3 {
		r.fwd.forwardFrame(r.table, append([]byte(nil), f...), 0, 1)
		r.fwd.considerOffload()
	}
	if n := r.offloaded(t); n != 0 {
		t.Errorf("a partial-checksum flow was offloaded (%d directions)", n)
	}
}

const (
	xdpTX       = 3
	xdpRedirect = 4
)

// TestOffloadRingWakes: publishing a request rings the consumer's doorbell,
// once however many are published before it answers, and never blocks the
// worker; a ring without a doorbell publishes all the same.
func TestOffloadRingWakes(t *testing.T) {
	wake := make(chan struct{}, 1)
	r := newOffloadRing(4, wake)
	for range 3 {
		req := r.next()
		if req == nil {
			t.Fatal("ring full after fewer than 4 requests")
		}
		req.n = 1
		r.publish()
	}
	select {
	case <-wake:
	default:
		t.Fatal("publish did not ring the doorbell")
	}
	select {
	case <-wake:
		t.Fatal("the doorbell rang twice for one wait")
	default:
	}
	if n := r.drain(func(*offloadReq) {}); n != 3 {
		t.Fatalf("drained %d requests, want 3", n)
	}
	quiet := newOffloadRing(4, nil)
	quiet.next().n = 1
	quiet.publish()
	if n := quiet.drain(func(*offloadReq) {}); n != 1 {
		t.Fatalf("without a doorbell: drained %d requests, want 1", n)
	}
}

// TestDeleteFlowsCounts: a flow taken off the fast path between two folds
// (its connection closed) leaves what XDP forwarded since the last fold in
// its real server's counters, in the direction it went.
func TestDeleteFlowsCounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for BPF")
	}
	fp, err := newFastPath(16, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer fp.flows.Close()
	keys := []xdpprog.FlowKey{{Sport: 1}, {Sport: 2}, {Sport: 3}}
	vals := []xdpprog.Flow{
		{Ref: 7, Dest: 1, Packets: 5, Bytes: 500},
		{Ref: 8, Dest: 1, Packets: 9, Bytes: 900, Flags: xdpprog.FlowReply},
		{Ref: 9, Dest: 2, Packets: 4, Bytes: 400},
	}
	if _, err := fp.flows.Put(keys, vals); err != nil {
		t.Fatal(err)
	}
	// The last fold saw 3 of the first flow's packets; a snapshot of an
	// older connection on the third flow's key counts nothing.
	fp.snaps[keys[0]] = flowSnap{ref: 7, packets: 3, bytes: 300}
	fp.snaps[keys[2]] = flowSnap{ref: 1, packets: 100, bytes: 10000}
	if n, err := fp.deleteCounted(keys); err != nil || n != 3 {
		t.Fatalf("deleted %d flows (%v), want 3", n, err)
	}
	for _, tc := range []struct {
		dest               uint32
		in, inB, out, outB uint64
	}{{1, 2, 200, 9, 900}, {2, 4, 400, 0, 0}} {
		d := fp.stats.dest(tc.dest)
		if d.inPkts.Load() != tc.in || d.inBytes.Load() != tc.inB || d.outPkts.Load() != tc.out || d.outBytes.Load() != tc.outB {
			t.Errorf("real server %d: in %d/%d B, out %d/%d B; want %d/%d, %d/%d", tc.dest,
				d.inPkts.Load(), d.inBytes.Load(), d.outPkts.Load(), d.outBytes.Load(), tc.in, tc.inB, tc.out, tc.outB)
		}
	}
	if len(fp.snaps) != 0 || fp.flows.Count() != 0 {
		t.Errorf("%d snapshots and %d flows left, want none", len(fp.snaps), fp.flows.Count())
	}
}
