// Package bpf holds xvs's BPF programs, written in C, and the objects and Go
// loaders that cilium/ebpf's bpf2go generates from them:
//
//   - steer.c: the director's XDP program (dataplane/xdpprog loads it);
//   - decap.c: the real servers' TUN decapsulator (control/realserver/decap);
//   - pktgen.c: xvs-pktgen's generator, sink, reflector and AF_XDP steering.
//
// include/ has what they share: the bounds check every packet access
// needs, per-CPU counters, the Ethernet/VLAN/IP header walk and checksum
// helpers. The generated *_bpfel.o and *_bpfel.go files are committed, so
// that building xvs needs no C compiler; `make generate` rebuilds them
// (clang and libbpf-dev), and `make test` checks that the committed objects
// are what their sources compile to.
package bpf

//go:generate go tool bpf2go -tags linux -target bpfel Steer steer.c
//go:generate go tool bpf2go -tags linux -target bpfel Decap decap.c
//go:generate go tool bpf2go -tags linux -target bpfel Pktgen pktgen.c
