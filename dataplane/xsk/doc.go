// Package xsk is xvs's AF_XDP socket layer: a UMEM (the packet buffer area
// registered with the kernel) shared by several sockets, its four rings per
// socket, and batched, allocation-free receive, transmit and completion.
//
// # Why one shared UMEM per worker
//
// The director runs one worker per queue index, and worker q owns queue q
// of every director interface, as DPVS gives each lcore a queue of every
// port. A NAT or FullNAT flow enters on one interface and leaves on
// another; when the sockets of both interfaces sit on one UMEM, a frame
// received on A is rewritten in place and put on B's TX ring by its
// address: nothing is copied in user space. So each worker has one UMEM,
// and its sockets, one per interface (one per (ifindex, queue)), bind to it
// with XDP_SHARED_UMEM. The first socket registers the UMEM (XDP_UMEM_REG)
// and decides copy or zero-copy mode and need_wakeup, which the kernel
// makes every sharing socket inherit; each socket has its own fill and
// completion rings, as the kernel requires of sockets on different queues.
// Since the mode is inherited, a socket on a device without zero-copy
// cannot share a UMEM whose first socket is zero-copy; a worker with mixed
// devices binds with ZeroCopyOff (or binds the copy-only device first).
//
// # Ring ownership
//
// Each ring has one producer and one consumer:
//
//	ring        user space    kernel
//	fill        produces      consumes (frames to receive into)
//	RX          consumes      produces (received frames)
//	TX          produces      consumes (frames to send)
//	completion  consumes      produces (sent frames, reusable)
//
// The producer and consumer indexes live in memory mapped from the socket
// and are read and written with sync/atomic; user space keeps cached copies
// and publishes once per batch.
//
// # Frame lifecycle
//
// Every frame has exactly one owner at a time:
//
//	free stack -> fill ring -> (kernel receives) -> RX ring -> worker
//	worker -> TX ring of any socket on the UMEM -> (kernel sends) -> completion ring -> free stack
//	worker -> Free (dropped, or done with) -> free stack
//	free stack -> Alloc -> worker (packets the application builds)
//
// Receive refills the socket's fill ring from the free stack, then takes
// received frames; Transmit queues frames (the caller keeps those it did
// not queue); Complete returns sent frames to the free stack. The UMEM
// records each frame's owner, so closing a socket returns the frames the
// kernel held for it (on its fill ring, or not yet completed) to the free
// stack, and Free ignores frames the application does not hold.
//
// # Wakeups
//
// In copy mode, and always without need_wakeup, the kernel transmits only
// inside sendto, so Transmit kicks it every time; it sends at most one
// budget of frames per kick (32 before Linux 6.17, the TX ring size after,
// as set here), so while Outstanding is not zero the worker keeps calling
// Kick. In zero-copy mode with need_wakeup the TX ring's flag decides.
// NeedsWakeup reports the fill ring's flag: the driver stopped receiving
// until woken, and the worker should Poll instead of spinning.
//
// A UMEM and its sockets belong to one goroutine, the worker's: nothing
// here locks.
package xsk
