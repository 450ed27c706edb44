// Package sched holds the connection schedulers of xvs, with the semantics
// IPVS gives them (net/netfilter/ipvs/ip_vs_*.c).
//
// A scheduler is built once per service over an immutable copy of its real
// servers and is replaced, never mutated, when the service changes. Pick is
// called by every worker for each new connection, so it is safe for
// concurrent use, holds no lock across anything slow and allocates nothing.
//
// Schedulers (overhead is IPVS's active*256 + inactive connections):
//
//   - rr: round robin over the real servers with weight > 0 (ip_vs_rr.c).
//   - wrr: interleaved weighted round robin; over one cycle each real server
//     gets exactly its weight's share (ip_vs_wrr.c).
//   - lc: least connection; the least overhead wins, weight aside, first on
//     ties (ip_vs_lc.c).
//   - wlc: weighted least connection; the least overhead/weight wins, first
//     on ties (ip_vs_wlc.c).
//   - lblc: locality-based least connection; a destination address sticks to
//     its real server until that one is busy, then moves to wlc's choice
//     (ip_vs_lblc.c).
//   - lblcr: lblc with replication; a destination address maps to a set of
//     real servers that grows while they are busy and sheds its most loaded
//     one after a day unchanged (ip_vs_lblcr.c).
//   - dh: destination hashing over a 256-bucket table, no fallback
//     (ip_vs_dh.c).
//   - sh: source hashing over a 256-bucket table filled by weight; flags
//     sh-fallback (try other buckets when the hashed real server is
//     unavailable) and sh-port (hash the source port too) (ip_vs_sh.c).
//   - sed: shortest expected delay; the least (active+1)/weight wins
//     (ip_vs_sed.c).
//   - nq: never queue; the first idle real server, else sed's choice
//     (ip_vs_nq.c).
//   - fo: weighted fail over; the highest weight wins, first on ties
//     (ip_vs_fo.c).
//   - ovf: overflow; the highest weight among real servers with no more
//     active connections than their weight (ip_vs_ovf.c).
//   - mh: Maglev consistent hashing of the source over a 65521-slot table
//     filled by weight; flags mh-fallback and mh-port as for sh
//     (ip_vs_mh.c).
//   - twos: power of two random choices drawn by weight; the one with the
//     lower overhead/weight wins (ip_vs_twos.c).
//
// lblc and lblcr remember up to 16384 destination addresses per service, in
// a table allocated when the scheduler is built (about 0.5 MB for lblc,
// 0.9 MB for lblcr), in sets of four: an address idle for 24 hours is
// forgotten, and a new address in a full set replaces the set's least
// recently used one. mh's table takes 256 KB.
//
// A real server with weight 0 is quiescent: no scheduler picks it for new
// connections. A real server over its upper threshold (ipvsadm -x) is
// overloaded and no scheduler picks it until it is back below its lower
// threshold (-y), as IPVS's IP_VS_DEST_F_OVERLOAD. Connections a real
// server already has are not the scheduler's business.
package sched
