// Package conntrack is the director's connection table: the entries that pin each connection to its real
// server, shared by all worker goroutines.
//
// # What an entry is
//
// An entry holds a connection's forward key (proto, client addr:port, VIP:port), optionally its reverse key
// (proto, RIP:port, client or local addr:port; NAT and FullNAT see replies), the data plane's opaque Value,
// and IPVS's TCP state with its deadline. Both keys lead to the one entry; Lookup says which matched. TCP
// states follow IPVS's tcp_states table (ip_vs_proto_tcp.c) for the Input, Output and InputOnly directions,
// with IPVS's timeouts per state; UDP and ICMP entries have a single state and their own timeout. Each real
// server (Value.Dest) has active (ESTABLISHED) and inactive (any other state) counters that move with the
// transitions, for the least-connection schedulers.
//
// # Layout
//
// Everything is allocated once by New. Entries live in one []entry of 128-byte elements (two cache lines:
// sequence, state word, chain links, value, forward and reverse key); node n of the hash chains is key n&1
// of entry n>>1. Chains are linked by uint32 node indexes, bucket heads are a []uint32, free entries form a
// lock-free stack of uint32 indexes, and per-real-server counters are an array indexed by Dest. No element of these arrays contains a Go pointer and nothing is allocated per
// entry, so the garbage collector never scans or frees the table: with ten million entries its cost to GC
// pauses stays that of a handful of large noscan objects. Maps would hold pointers, allocate on growth and
// rehash under a lock; per-entry objects would each be scanned.
//
// Buckets are grouped into shards (contiguous ranges of buckets) that each have a mutex and their own
// counters on their own cache lines. The hash is keyed with a per-table random seed so that clients cannot
// aim flows at one chain.
//
// # Concurrency
//
// Lookups take no lock. Each entry has a sequence counter that Insert makes odd while it writes the entry
// and even (+2) when it is done, so a reader that sees the same even value before and after reading a key,
// value and state knows they belong to one incarnation of the entry. Every field a lock-free reader touches
// is a sync/atomic word: a seqlock with plain fields is correct on real hardware, but the Go memory model
// calls it a data race and the race detector reports it, and atomics cost nothing more than plain loads
// on amd64 and arm64.
//
// Entries are reused while readers may still stand on them. A removed node keeps its chain link, which
// points at its successor at the time it was removed, so a reader on it goes on along the chain. A reused
// node is at the head of its new bucket: a reader that followed an old link into another chain notices
// that the node's key does not hash to its bucket and restarts, and one that stays in the same chain sees
// all of it. A hit needs no such check (the key matched a live incarnation), so a lookup first walks
// without it and walks again with it only to confirm a miss. Walks are bounded: after a few restarts a
// lookup takes the shard lock.
//
// Writers (Insert, Delete, Sweep) take the mutexes of the shards of the entry's two keys, in shard order so
// that two writers never deadlock. Touch, which runs on every packet, takes no lock: an entry's state,
// flags, generation and deadline share one 64-bit word that Touch updates with compare-and-swap, so a
// transition and its counter move happen exactly once, and a removal (which clears the live bit in the same
// word) and a transition are ordered by that word. A Ref carries the entry's generation, so a stale Ref
// cannot touch or delete a reused entry.
//
// Time is the caller's: now arguments are monotonic nanoseconds, read once per batch by the data plane.
// Deadlines are kept in milliseconds, rounded up, so an entry expires at most a millisecond late and never
// early. Sweep walks the entry array incrementally from where the previous call stopped, so expiry is
// spread over many small calls and never stalls a worker.
package conntrack
