package dataplane

import (
	"errors"
	"sync/atomic"

	"github.com/xvs-lb/xvs/dataplane/packet"
)

// DropReason says why the data plane dropped a frame.
type DropReason uint8

const (
	DropMalformed    DropReason = iota // headers that do not parse or lie about their lengths
	DropTruncated                      // frame shorter than its headers
	DropFragment                       // IP fragments (not reassembled yet)
	DropUnsupported                    // not IPv4/IPv6 TCP/UDP
	DropNoService                      // steered to us but no such virtual service
	DropNoConn                         // TCP that is not a SYN and has no connection
	DropNoDest                         // no real server available (all quiescent)
	DropTableFull                      // connection table at capacity
	DropNoNextHop                      // real server's MAC not resolved yet
	DropTxFull                         // TX ring full
	DropNoLocalPort                    // FullNAT: no free (local address, port)
	DropTooBig                         // TUN: too big to encapsulate (ICMP sent when DF)
	DropNoTOARoom                      // FullNAT: SYN sent without TOA, no option space (not a drop)
	DropBadChecksum                    // IPv4 header checksum does not verify
	DropBadCookie                      // SYN proxy: an ACK whose cookie does not check (forged, or over 2 minutes old)
	DropProxyPending                   // SYN proxy: client data before the real server answered (the client sends it again)
	numDropReasons
)

var dropNames = [numDropReasons]string{
	"malformed", "truncated", "fragment", "unsupported", "no_service", "no_conn",
	"no_dest", "table_full", "no_next_hop", "tx_full", "no_local_port", "too_big", "no_toa_room", "bad_checksum",
	"bad_cookie", "proxy_pending",
}

func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

func dropReasonOf(err error) DropReason {
	switch {
	case errors.Is(err, packet.ErrTruncated):
		return DropTruncated
	case errors.Is(err, packet.ErrFragment):
		return DropFragment
	case errors.Is(err, packet.ErrUnsupported):
		return DropUnsupported
	case errors.Is(err, packet.ErrBadChecksum):
		return DropBadChecksum
	}
	return DropMalformed
}

// DestCounters are ipvsadm --stats' counters of one real server.
type DestCounters struct {
	conns, inPkts, outPkts, inBytes, outBytes atomic.Uint64
}

func (c *DestCounters) in(n int) {
	bump(&c.inPkts, 1)
	bump(&c.inBytes, uint64(n))
}

func (c *DestCounters) out(n int) {
	bump(&c.outPkts, 1)
	bump(&c.outBytes, uint64(n))
}

// bump adds n to a counter that only one goroutine ever writes: a load and
// a store, both atomic so that readers see whole values, but no locked
// read-modify-write, which costs a frame several nanoseconds per counter.
func bump(c *atomic.Uint64, n uint64) { c.Store(c.Load() + n) }

// WorkerStats are one worker's counters. Only its worker writes them (with
// bump; readers load atomically and need no lock); totals are summed on
// read, and ipvsadm -Z is a baseline subtracted on read, never a store into
// a counter its worker owns.
type WorkerStats struct {
	RxFrames, TxFrames atomic.Uint64
	// CsumCompleted counts TCP/UDP packets that arrived with a partial
	// checksum (their sender left it to a NIC) and that the worker
	// completed before forwarding them.
	CsumCompleted atomic.Uint64
	// SynProxySynAcks counts SYNs a SYN-proxied service answered with a
	// cookie, SynProxyOpened the ACKs whose cookie checked: connections
	// opened to a real server.
	SynProxySynAcks, SynProxyOpened atomic.Uint64
	// With Config.VerifyChecksums: TCP/UDP frames that arrived with a
	// checksum that does not verify (forwarded as they came, never
	// laundered), and frames the worker sent whose checksums do not
	// verify: a bug, since the receiver drops them.
	BadCsumIn, BadCsumOut atomic.Uint64
	badSent               chan checksumSample // the latest bad frame sent, for the log
	drops                 [numDropReasons]atomic.Uint64
	dests                 []DestCounters // by dest ID
}

func newWorkerStats(maxDests int) *WorkerStats {
	return &WorkerStats{dests: make([]DestCounters, maxDests), badSent: make(chan checksumSample, 1)}
}

// checksumSample is the start of a frame sent with a bad checksum.
type checksumSample struct {
	len  int
	head [128]byte
}

// sampleBadSent records frame for the log unless a sample is waiting: a
// copy into the channel's buffer, no allocation.
func (s *WorkerStats) sampleBadSent(frame []byte) {
	var c checksumSample
	c.len = len(frame)
	copy(c.head[:], frame)
	select {
	case s.badSent <- c:
	default:
	}
}

func (s *WorkerStats) drop(r DropReason) { bump(&s.drops[r], 1) }

func (s *WorkerStats) dest(id uint32) *DestCounters { return &s.dests[id] }

// Counters is a sum of counters, as ipvsadm --stats shows them.
type Counters struct {
	Conns, InPkts, OutPkts, InBytes, OutBytes uint64
}

func (c *Counters) add(d *DestCounters) {
	c.Conns += d.conns.Load()
	c.InPkts += d.inPkts.Load()
	c.OutPkts += d.outPkts.Load()
	c.InBytes += d.inBytes.Load()
	c.OutBytes += d.outBytes.Load()
}

// sub subtracts b (a baseline taken earlier of the same counters).
func (c *Counters) sub(b Counters) {
	c.Conns -= min(c.Conns, b.Conns)
	c.InPkts -= min(c.InPkts, b.InPkts)
	c.OutPkts -= min(c.OutPkts, b.OutPkts)
	c.InBytes -= min(c.InBytes, b.InBytes)
	c.OutBytes -= min(c.OutBytes, b.OutBytes)
}

// Drops returns the non-zero drop counters by reason.
func (s *WorkerStats) Drops() map[string]uint64 {
	m := map[string]uint64{}
	for r := range s.drops {
		if n := s.drops[r].Load(); n > 0 {
			m[DropReason(r).String()] = n
		}
	}
	return m
}
