package config

import "fmt"

// KeyDoc documents one key of the configuration file.
type KeyDoc struct {
	Key  string // as written in the file
	Type string // what it takes: "string", "integer", "duration", "table", ...
	Doc  string // what it does and its default, in a sentence or a few
}

// TableDoc is one table of the configuration file and its keys.
type TableDoc struct {
	// Path names the table as the file writes it, without brackets:
	// "director", "service.real"; "" is the top level.
	Path string
	// Array is set for arrays of tables ([[service]]).
	Array bool
	Doc   string
	Keys  []KeyDoc
	// SameAs names a table whose keys this one takes ([[group.real]]
	// takes [[service.real]]'s); Keys is empty then.
	SameAs string
}

// Schema returns every table of the configuration file with its keys, in
// the order xvs.toml(5) lists them. It is the one list of keys: the decoder
// takes each table's known keys from it (keysOf), and the manual page is
// made from it, so that a key cannot be read without being documented.
func Schema() []TableDoc {
	const dur = "duration"
	realKeys := []KeyDoc{
		{"address", "string", "The real server's IP address, of the service's family; required."},
		{"port", "integer", "Where connections go; default the service's port. Only nat and fullnat may change it; in a group, left out (or 0) keeps each packet's port."},
		{"weight", "integer", "0..65535 (default 1); 0 is quiescent: no new connections, existing ones carry on."},
		{"method", "string", "How packets reach it: dr (default; ipvsadm -g), nat (-m), tun (-i) or fullnat."},
		{"upper_threshold", "integer", "ipvsadm -x: over this many active and inactive connections the server takes no new ones; 0 (default) is no limit."},
		{"lower_threshold", "integer", "ipvsadm -y: the server takes new connections again below this many (default 3/4 of upper_threshold); needs upper_threshold."},
	}
	policyKeys := func(what string) []KeyDoc {
		return []KeyDoc{
			{"scheduler", "string", "Any IPVS scheduler (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos); default wlc, as ipvsadm."},
			{"sched_flags", "array", "Scheduler flags, ipvsadm -b: sh-fallback, sh-port (sh), mh-fallback, mh-port (mh)."},
			{"persistence", dur, "ipvsadm -p: a client keeps its real server across connections until this long after its last one; default none."},
			{"netmask", "string or integer", "ipvsadm -M, with persistence: clients in one network of this mask share a real server (a dotted mask for IPv4, a prefix length for IPv6)."},
			{"local_addresses", "array", "FullNAT's local addresses (LIPs), required when a real server uses fullnat: connections reach the real servers from them."},
			{"toa", "boolean", "FullNAT: pass the client's address and port to real servers in a TCP option on the SYN (DPVS's TOA); default false."},
			{"local_ports", "string", "FullNAT: the local ports taken from each LIP, \"lo-hi\" (default \"1024-65535\")."},
			{"fast_path", "string", "\"off\" keeps " + what + "'s connections off the XDP fast path."},
			{"syn_proxy", "boolean", "TCP, nat and fullnat real servers: the director answers SYNs itself with SYN cookies and opens a connection to a real server only when the client's ACK proves its address (DPVS's synproxy), so that a SYN flood reaches no real server and fills no table; default false."},
			{"real", "array of tables", "The real servers: [[" + what + ".real]] tables."},
			{"health", "table", "How the real servers are checked: a [" + what + ".health] table; none: not checked."},
		}
	}
	return []TableDoc{
		{Path: "", Doc: "The top level holds tables only.", Keys: []KeyDoc{
			{"director", "table", "The director itself; required."},
			{"timeouts", "table", "Connection idle timeouts."},
			{"service", "array of tables", "Virtual services, one [[service]] each."},
			{"group", "array of tables", "Groups of matches sharing one scheduler and set of real servers (ipvsadm -f)."},
			{"bgp", "table", "Announce the VIPs to routers over BGP."},
			{"sync", "table", "Connection synchronisation with other directors."},
			{"failover", "table", "Active/standby between two directors."},
		}},
		{Path: "director", Doc: "Director-wide settings. Changing any but fast_path needs a restart.", Keys: []KeyDoc{
			{"interfaces", "array", "The interfaces the director receives and sends on; required, at least one."},
			{"xdp_mode", "string", "How the XDP steering program attaches: auto (default: driver mode, else generic), driver or generic."},
			{"zerocopy", "string", "AF_XDP zero-copy: auto (default: where the driver offers it), on (fail where it does not) or off."},
			{"cpus", "array", "CPUs to pin the workers to, in order; default: the director chooses."},
			{"log_level", "string", "debug, info (default), warn or error."},
			{"sloppy_tcp", "boolean", "Schedule TCP packets of connections the director has no entry for, not only SYNs (IPVS's sloppy_tcp): with mh on several directors, a connection that moves keeps its real server. Default false."},
			{"connections", "integer", "Capacity of the connection table (default 1048576; about 153 bytes each)."},
			{"when_full", "string", "What a full table does with a new connection: refuse (default, counted as table_full) or evict the idle entry closest to expiry."},
			{"batch_size", "integer", "Frames a worker takes from an RX ring at once (default 256)."},
			{"ring_size", "integer", "Entries in each AF_XDP ring, a power of two (default 2048)."},
			{"umem_frames", "integer", "Frames in each worker's UMEM (default 2 x ring_size x interfaces, at least 4096)."},
			{"idle_spins", "integer", "Empty polls of its rings before a worker sleeps in poll(2); -1 never sleeps."},
			{"busy_poll", "boolean or duration", "Workers run their queues' NAPI themselves (SO_PREFER_BUSY_POLL): true (20us), false (default) or how long one busy poll may run."},
			{"need_wakeup", "boolean", "false binds the sockets without XDP_USE_NEED_WAKEUP: the kernel is kicked after every batch. Default true."},
			{"verify_checksums", "boolean", "Debugging: check every frame's checksums on the way in and out, count and log frames sent with one their receiver rejects. Default false."},
			{"fast_path", "string", "Where established connections are forwarded by XDP itself: auto (default: driver-mode interfaces but veth), xdp or off. May change on reload."},
		}},
		{Path: "timeouts", Doc: "Connection idle timeouts, as ipvsadm --set tcp tcpfin udp; durations (\"900s\") or integer seconds.", Keys: []KeyDoc{
			{"tcp", dur, "Established TCP connections (default 900s)."},
			{"tcpfin", dur, "TCP connections after a FIN (default 120s)."},
			{"udp", dur, "UDP flows (default 300s)."},
		}},
		{Path: "service", Array: true, Doc: "A virtual service: what clients connect to (ipvsadm -A).", Keys: append([]KeyDoc{
			{"name", "string", "An optional label, unique."},
			{"vip", "string", "The virtual IP address; required."},
			{"port", "integer", "The virtual port, 1..65535; required."},
			{"protocol", "string", "tcp or udp; required."},
		}, policyKeys("service")...)},
		{Path: "service.real", Array: true, Doc: "A real server of the service (ipvsadm -a).", Keys: realKeys},
		{Path: "service.health", Doc: "Health checks of the service's real servers, with keepalived's semantics: a server that fails fall probes in a row runs at weight 0 until rise probes in a row succeed. From keepalived: delay_loop is interval, connect_timeout is timeout, retry N is fall N+1, and rise is 1 (keepalived takes a server back at its first success).", Keys: []KeyDoc{
			{"check", "string", "tcp (connect), http or https (GET, status and body compared), udp (a request and its reply) or none; required."},
			{"interval", dur, "From one probe of a server to the next (default 2s; 100ms..1h)."},
			{"timeout", dur, "Bound on one probe, below interval (default 1s, or half the interval if shorter)."},
			{"rise", "integer", "Consecutive successes that bring a down server up (default 2)."},
			{"fall", "integer", "Consecutive failures that take an up server down (default 3)."},
			{"port", "integer", "Where probes go; default each real server's port."},
			{"path", "string", "http(s): the path and query to GET (default /)."},
			{"expect_status", "integer", "http(s): the status wanted, exactly (default 200); redirects are not followed."},
			{"expect_body", "string", "http(s): text the body's first 64 KiB must contain; default any body."},
			{"host", "string", "http(s): the Host header and TLS server name; default the real server's address."},
			{"insecure", "boolean", "https: do not verify the server's certificate (default true)."},
			{"send", "string", "udp: the request (default \"xvs-health\")."},
			{"expect", "string", "udp: text the reply must contain; default any reply."},
			{"on_failure", "string", "quiesce (default: weight 0, connections drain) or reset (weight 0 and the server's connections dropped, as IPVS's expire_nodest_conn)."},
			{"initial", "string", "A new server's state until checks change it: up (default) or down (keepalived's alpha)."},
		}},
		{Path: "group", Array: true, Doc: "What ipvsadm -f expresses with a firewall mark: several (VIP, port range, protocol) matches that share one scheduler, one set of real servers and one persistence table.", Keys: append([]KeyDoc{
			{"name", "string", "The group's name, unique; required."},
			{"mark", "integer", "Its number, as ipvsadm -f names it (default its position, from 1)."},
			{"match", "array of tables", "What the group catches: { vip, ports, protocol } tables; required."},
		}, policyKeys("group")...)},
		{Path: "group.match", Doc: "One (VIP, port range, protocol) of a group, written inline in match = [ ... ].", Keys: []KeyDoc{
			{"vip", "string", "The virtual IP address."},
			{"ports", "string or integer", "A port or a range \"lo-hi\"."},
			{"protocol", "string", "tcp or udp."},
		}},
		{Path: "group.real", Array: true, Doc: "A real server of the group.", SameAs: "service.real"},
		{Path: "group.health", Doc: "Health checks of the group's real servers.", SameAs: "service.health"},
		{Path: "bgp", Doc: "Announce every VIP with a real server taking connections as a host route to BGP peers (scale-out by ECMP); withdrawn when none is, on xvsadm drain and on shutdown.", Keys: []KeyDoc{
			{"local_as", "integer", "The director's AS number; required."},
			{"router_id", "string", "The BGP router id, an IPv4 address; required."},
			{"next_hop", "string", "Next hop announced for IPv4 VIPs (default the router id)."},
			{"next_hop6", "string", "Next hop announced for IPv6 VIPs."},
			{"listen_port", "integer", "Port to accept sessions on (default 179; -1: connect out only)."},
			{"hold_time", dur, "BGP hold time, at least 3s (default 9s)."},
			{"communities", "array", "Communities \"AS:value\" attached to the routes."},
			{"peer", "array of tables", "The routers: [[bgp.peer]] tables; required."},
		}},
		{Path: "bgp.peer", Array: true, Doc: "A router the director peers with.", Keys: []KeyDoc{
			{"address", "string", "The router's address; required."},
			{"as", "integer", "The router's AS number; required."},
			{"port", "integer", "Its BGP port (default 179)."},
			{"passive", "boolean", "Wait for the router to connect (default false)."},
			{"password", "string", "TCP MD5 password."},
			{"password_file", "string", "A file holding the TCP MD5 password instead of password (one or the other), relative to the configuration's directory; a regular file only its owner may read (chmod 600), its trailing newline dropped. save-config writes the file's name back, not the password."},
		}},
		{Path: "sync", Doc: "Connection synchronisation (IPVS's sync daemon, between all peers): new and newly established connections are sent to the other directors, batched, bandwidth-limited and HMAC-authenticated over unicast UDP, so that NAT and FullNAT connections and non-Maglev schedulers survive a director failure. xvsadm --start-daemon and --stop-daemon change the roles at run time.", Keys: []KeyDoc{
			{"listen", "string", "Address:port to receive on and send from; required."},
			{"peers", "array", "The other directors' listen addresses (a multicast group is joined); required."},
			{"key", "string", "The shared secret, at least 16 bytes; required unless key_file gives it."},
			{"key_file", "string", "A file holding the shared secret instead of key (one or the other), relative to the configuration's directory; it must be a regular file only its owner may read (chmod 600), its trailing newline dropped. save-config writes the file's name back, not the secret."},
			{"node_id", "integer", "This director's id among its peers, unique and non-zero; required."},
			{"max_bytes_per_second", "integer", "Bandwidth limit of what is sent, counted once per peer (default 10 MiB/s)."},
			{"master", "boolean", "Run the master role, ipvsadm --start-daemon master: send this director's connections and serve snapshots (default true)."},
			{"backup", "boolean", "Run the backup role, ipvsadm --start-daemon backup: ask for a snapshot and install the peers' connections (default true)."},
			{"sync_id", "integer", "ipvsadm --syncid, 0..255: the master stamps it on what it sends; a backup installs only connections with the same id, any when 0 (default 0)."},
			{"interface", "string", "ipvsadm --mcast-interface: sync datagrams leave and arrive by this interface only; default the route's."},
		}},
		{Path: "failover", Doc: "Active/standby between two directors without a router (keepalived's VRRP pattern): authenticated unicast heartbeats; the director with the higher priority holds the floating addresses, moved with gratuitous ARP.", Keys: []KeyDoc{
			{"listen", "string", "Address:port for heartbeats; required."},
			{"peer", "string", "The other director's listen address; required."},
			{"priority", "integer", "1..255 (default 100): the higher one is active."},
			{"interval", dur, "Between heartbeats, 10ms..10s (default 200ms); the peer is taken for dead after 3 missed ones."},
			{"key", "string", "The shared secret, at least 16 bytes; required unless key_file gives it."},
			{"key_file", "string", "A file holding the shared secret instead of key (one or the other), relative to the configuration's directory; it must be a regular file only its owner may read (chmod 600), its trailing newline dropped. save-config writes the file's name back, not the secret."},
			{"address", "array of tables", "The floating addresses: [[failover.address]] tables; required."},
		}},
		{Path: "failover.address", Array: true, Doc: "An address the active director holds.", Keys: []KeyDoc{
			{"address", "string", "An address or prefix (\"198.18.0.100/32\")."},
			{"interface", "string", "The interface it goes on."},
		}},
	}
}

// keysOf returns the known keys of the table at path, as Schema lists
// them. An unknown path is a mistake in this package, not in a file.
func keysOf(path string) []string {
	for _, t := range Schema() {
		if t.Path != path {
			continue
		}
		if t.SameAs != "" {
			return keysOf(t.SameAs)
		}
		keys := make([]string, len(t.Keys))
		for i, k := range t.Keys {
			keys[i] = k.Key
		}
		return keys
	}
	panic(fmt.Sprintf("config: no table %q in the schema", path))
}
