// Package xvs holds the few words that the configuration, the control API
// and the data plane must agree on: forwarding methods, protocols, the XDP
// attach and zero-copy modes, the fast path's modes, and the data path's
// sizing rule. It imports nothing of the project and nothing Linux-only, so
// that control/config can check a file (xvsd -check, xvsadm's tests) on any
// machine, with the same names and rules the data plane applies.
//
// # Layout and the import rule
//
// xvs is a director in the sense of Linux Virtual Server: a layer-4 load
// balancer that forwards each connection to a real server without
// terminating it, in userspace over AF_XDP.
//
//	cmd/xvsd, cmd/xvsadm      the daemon and the ipvsadm-compatible CLI
//	control/...               configuration, live apply, API, ipvsadm syntax,
//	                          health checks, metrics, scale-out, real-server setup
//	dataplane/...             workers, the engine, the steering program (xdpprog),
//	                          AF_XDP sockets (xsk), BPF objects (bpf), packets (packet)
//	conntrack, sched          the connection table and the schedulers
//	internal/xvs (this one)   the shared words above
//
// Imports point one way: cmd -> control -> dataplane -> {conntrack, sched,
// dataplane/packet, dataplane/xsk, dataplane/xdpprog -> dataplane/bpf}.
// Nothing below control knows about TOML or the control API; conntrack,
// sched and this package import nothing of the project, and every package
// may import them. The real servers' side (xvsadm realserver) lives in
// control/realserver, with the decapsulator it attaches in
// control/realserver/decap: it is set up by the control plane's tools and
// is no part of the director's data path.
//
// # Glossary
//
// IPVS's words are used throughout; where a package keeps a second word for
// one of them, it is this one:
//
//   - service (virtual service): a VIP, port and protocol, or a group of
//     them sharing a mark (ipvsadm -f); config.Service, api.Service,
//     dataplane.Service (dataplane.ServiceSpec is what control asks for).
//   - real server (IPVS's destination): config.Real and api.Real;
//     dataplane.Dest and sched.Dest in the data plane, after IPVS's
//     ip_vs_dest; dataplane.RealSpec is what control asks for.
//   - connection: an entry of conntrack.Table, the connection table.
//   - table: conntrack.Table is the connection table and dataplane.Table
//     the published service table; a TOML table is a section of the
//     configuration file (config's tomlTable).
//   - method: how a real server is forwarded to ([Method]).
package xvs
