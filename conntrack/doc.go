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
// transitions, for the least-connection schedulers; they are atomics, updated without a lock.
//
// # Layout
//
// Everything is allocated once by New, in two arrays: the entries, 128 bytes (two cache lines) each, and
// the hash index, cache-line buckets of eight slots. Key k of entry i is node 2i+k; a slot holds a node
// index and a 24-bit tag from the key's hash. The index has one bucket per five keys of a full table of
// NAT entries, 25.6 bytes per entry, so ten million entries with both keys take 1.43 GiB in all. Keys are
// placed by open addressing: a key goes in the first free slot from its home bucket on, and a bucket counts
// in its first slot's top byte the keys that had to pass it because it was full. A lookup loads the home
// bucket's line, compares the eight tags, reads only the entries whose tag matches (one, on a hit; almost
// never one on a miss) and goes on to the next bucket only if keys have overflowed past this one (at full
// capacity, 7% of buckets have, and 2% of keys are not in their home bucket): a miss mostly touches one
// cache line, a hit that line and the two lines of its entry, which the processor fetches together. Nothing is ever moved, so a key that stays
// in the table keeps its slot while readers look for it.
//
// The arrays are mapped outside the Go heap (on Linux; elsewhere they are heap objects) and hold no Go
// pointers: the garbage collector never scans them, does not count them towards the heap size that paces
// its cycles, and with ten million entries its pauses stay those of an empty heap. The mapping asks for
// transparent huge pages, which on the random access of a big table save most TLB misses (on a virtual
// machine, a random read in 1.4 GiB took 230 ns with them and 650 ns without), and is touched at New so
// that no packet waits for a page fault. It is unmapped when the Table is garbage collected.
//
// The buckets are divided into shards of consecutive buckets. A key's shard is chosen by the top bits of
// its hash, its home bucket in the shard by the next ones and its tag by the low ones; a probe that runs
// off the end of the shard wraps to its start, so each shard's mutex covers every slot its keys can take.
// Each shard also has a free list of entries and its own counters, on cache lines of their own. The hash is
// keyed with a per-table random seed so that clients cannot aim flows at one bucket or shard.
//
// # Concurrency
//
// Lookups take no lock and never retry. Each entry has a sequence counter that Insert makes odd while it
// writes the entry and even (+2) when it is done, so a reader that sees the same even value before and after
// reading a key, value and state knows they belong to one incarnation of the entry. A reader may hold a
// slot whose entry has since been removed, or removed and reused: it uses the entry only if one incarnation
// has the key it looks for and is live, and otherwise passes over the slot. A key that is in the table for
// the whole lookup is always found: its slot does not change, and every bucket between its home and its
// slot counts it. Every field a lock-free reader touches is a sync/atomic word: a seqlock with plain fields
// is correct on real hardware, but the Go memory model calls it a data race and the race detector reports
// it, and atomics cost nothing more than plain loads on amd64 and arm64.
//
// Writers (Insert, Delete, Sweep and eviction) take the mutexes of the shards of the entry's two keys, in
// shard order so that two writers never deadlock. A writer counts a key in the buckets its probe passes
// before it publishes the key's slot, and clears the slot before it uncounts it. Free entries are taken
// from the free list of the forward key's shard, or another's when that one is empty (a lock-free stack
// each, with an ABA tag). Touch, which runs on every packet, takes no lock: an entry's state, flags,
// generation and deadline share one 64-bit word that Touch updates with compare-and-swap, so a transition
// and its counter move happen exactly once, and a removal (which clears the live bit in the same word) and
// a transition are ordered by that word. A Ref carries the entry's generation, so a stale Ref cannot touch
// or delete a reused entry.
//
// # Expiry and a full table
//
// Time is the caller's: now arguments are monotonic nanoseconds, read once per batch by the data plane.
// Deadlines are kept in milliseconds, rounded up, so an entry expires at most a millisecond late and never
// early. Sweep walks the entry array incrementally from where the previous call stopped, looking at as many
// slots as its budget allows, so expiry is spread over many small calls, never stalls a worker, and costs
// the same per call however full the table is.
//
// When every entry is taken, Config.FullPolicy decides: Refuse fails the insert; EvictOldestIdle evicts,
// out of a random sample of sixteen entries, the evictable one closest to expiry, and an ESTABLISHED
// connection is evictable only once it has expired. A SYN flood into a full table thus replaces its own
// embryonic entries, not the established connections, and new clients still get in. Both count what they
// do (Stats.FullDrops, Stats.Evicted).
package conntrack
