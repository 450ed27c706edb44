// Package sched holds the connection schedulers of xvs, with the semantics
// IPVS gives them (net/netfilter/ipvs/ip_vs_*.c).
//
// A scheduler is built once per service over an immutable copy of its real
// servers and is replaced, never mutated, when the service changes. Pick is
// called by every worker for each new connection, so it is safe for
// concurrent use, takes no locks and allocates nothing.
//
// Schedulers:
//
//   - rr: round robin over the real servers with weight > 0 (ip_vs_rr.c).
//   - wrr: interleaved weighted round robin; over one cycle each real server
//     gets exactly its weight's share (ip_vs_wrr.c).
//   - wlc: weighted least connection; the real server with the least
//     (active*256 + inactive) / weight wins, first one on ties (ip_vs_wlc.c).
//
// A real server with weight 0 is quiescent: no scheduler picks it for new
// connections. Connections it already has are not the scheduler's business.
package sched
