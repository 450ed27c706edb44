// Package connsync keeps directors' connection tables in step, as IPVS's sync daemon does, but between
// all peers at once: every director sends the entries it creates or changes to every other, so that a
// flow that moves to another director (an ECMP change, or a VRRP-style takeover) finds its entry there
// and keeps its real server. This matters for NAT and FullNAT, whose replies need the entry, and for
// schedulers other than Maglev, which would not pick the same real server again.
//
// # Sending
//
// The data plane calls Publish for each new or changed connection. Publish puts the entry on a bounded
// queue and returns; it never blocks. A sender goroutine gathers entries for up to BatchDelay into
// datagrams of at most MaxDatagram bytes, sending a datagram as soon as it is full. Every datagram goes
// to every peer, within a token bucket of MaxBytesPerSecond (a datagram costs its size once per peer,
// with a burst of 50 ms' worth). While the bucket is empty the sender keeps taking entries from the
// queue: an entry for a connection that already waits replaces it (coalesced), others wait up to about
// 50 ms' worth of bandwidth and beyond that are dropped and counted. An entry's Expires is reduced by
// the time it waited.
//
// # Roles and sync ids
//
// As IPVS's sync daemons, a Syncer plays one or both roles (Config.Roles): a Master sends what is
// published to it and serves snapshots, a Backup asks for a snapshot at Start and installs what its
// peers send. A Master stamps its SyncID on every entry; a Backup with a non-zero SyncID installs only
// entries with the same id and counts the others (Stats.WrongSyncID), so that several sync groups can
// share peers or a multicast group. Unlike IPVS's, the transport stays unicast (or multicast) UDP
// between configured peers, authenticated with the shared key.
//
// # Snapshots
//
// Start sends a snapshot request to every peer. A peer serves it from its Source, paced by the same
// bucket, to the requester alone: to the configured peer address the request came from, or to the
// request's source address if it matches none. The snapshot ends with a datagram that tells how many
// entries it held, so the requester can count snapshots that lost datagrams.
//
// # Security
//
// Each datagram carries a sender NodeID, a sequence number and a timestamp, and ends with the first 16
// bytes of an HMAC-SHA256 over the rest, keyed from the shared secret. A receiver drops datagrams with a
// bad MAC, a timestamp more than MaxClockSkew from its own clock, or a sequence number it has seen or
// that is more than about 2000 below the highest it has seen from that node. Sequence numbers start
// from the sender's clock in nanoseconds, so a restarted director's datagrams are above those it sent
// before. Every rejection is counted in Stats; none panics.
//
// The wire format is documented in wire.go.
package connsync
