// Package dataplane is the director's data path: the Engine that owns, per
// interface, the XDP steering program (dataplane/xdpprog) and one AF_XDP
// socket per queue (dataplane/xsk); one worker goroutine per queue index that
// decodes (dataplane/packet), looks up or creates the connection (conntrack),
// schedules new ones (sched), rewrites and sends each frame; the XDP fast
// path for established connections; and next-hop resolution.
//
// The control plane (package control) drives it with Apply, which publishes
// a new service table that workers read once per batch, and reads its state
// back through Status, the counters and the connection table.
//
// # Imports
//
// dataplane imports conntrack, sched, the xvs package (the words it shares
// with the configuration) and its own subpackages; never control, and
// nothing here knows TOML or the control API. Package xvs states the rule
// for the whole tree.
//
// # Words
//
// A Service is a virtual service, a Dest a real server (IPVS's destination;
// config and the control API say Real), and Table the published service
// table, not conntrack's connection table. ServiceSpec and RealSpec are what
// the control plane asks for; Service and Dest are what runs.
package dataplane
