package main

// maxPorts is how many source ports one source address contributes to the
// flow space: 60000 leaves the well-known ports alone whatever -sport is,
// as far as 65535 allows.
const maxPorts = 60000

// flowSpace numbers the flows a sender cycles through. Flow f uses source
// address first+f%addrs and source port sport+f/addrs: the address varies
// fastest, so that a range of sources is covered from the first frames on,
// and the port moves on once every address has had it.
type flowSpace struct {
	addrs uint32 // addresses in the source range
	ports uint32 // usable ports from sport up
	flows uint32 // flows cycled through, at most addrs*ports
}

// newFlowSpace sizes the flow space for a source range of addrs addresses
// starting at port sport. want is the number of flows asked for; 0 picks the
// default: every flow for SYN traffic (each SYN opens a new connection for as
// long as the space lasts), one flow per source address otherwise. It
// reports whether want had to be cut down to what the space holds.
func newFlowSpace(addrs uint32, sport uint16, want uint64, p proto) (s flowSpace, clamped bool) {
	s = flowSpace{addrs: max(addrs, 1), ports: uint32(min(maxPorts, 65536-int(sport)))}
	total := uint64(s.addrs) * uint64(s.ports)
	switch {
	case want == 0 && p == protoSYN:
		want = total
	case want == 0:
		want = uint64(s.addrs)
	case want > total:
		want, clamped = total, true
	}
	s.flows = uint32(want)
	return s, clamped
}

// flow returns the address and port indexes of the i-th frame sent.
func (s flowSpace) flow(i uint64) (addrIdx, portIdx uint32) {
	f := uint32(i % uint64(s.flows))
	return f % s.addrs, f / s.addrs
}

// flowCursor walks a flow space one frame at a time without dividing; the
// generator's BPF program keeps the same three counters in its state map and
// steps them the same way.
type flowCursor struct {
	f, addr, port uint32
}

// next advances c to the following frame's flow in s.
func (c *flowCursor) next(s flowSpace) {
	c.f++
	c.addr++
	if c.addr == s.addrs {
		c.addr = 0
		c.port++
	}
	if c.f == s.flows {
		*c = flowCursor{}
	}
}
