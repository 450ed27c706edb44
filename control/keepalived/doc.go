// Package keepalived converts a keepalived configuration (keepalived.conf(5),
// its LVS and VRRP parts) into xvs's configuration file: what operators
// arriving from keepalived run as `xvsadm import-keepalived FILE`.
//
// It reads keepalived's syntax as keepalived does: keyword lines and
// nested { } blocks (on one line or many), comments from # or ! to the end
// of a line outside quotes, quoted strings, include (and its variants) with
// globs relative to the including file, $NAME=value definitions and
// conditional @ID lines (Options.ConfigID is keepalived's -i).
//
// What maps:
//
//	virtual_server IP PORT            [[service]]
//	virtual_server IP (no port)       [[group]] over ports 1-65535 (IPVS's port-0 service)
//	virtual_server group NAME         [[group]] NAME, its match list from virtual_server_group NAME
//	                                  (addresses, ranges a.b.c.d-e and prefixes, with or without a port)
//	virtual_server fwmark N           [[group]] mark N written commented out: the firewall rules that set
//	                                  the mark are outside keepalived, so its match list is the operator's
//	lb_algo, lvs_sched                scheduler; sh-port, mh-port, ... sched_flags
//	lb_kind, lvs_method NAT|DR|TUN    each real server's method (a real server's own lvs_method wins)
//	persistence_timeout [N]           persistence (keepalived's default 360s)
//	persistence_granularity           netmask
//	protocol TCP|UDP                  protocol
//	real_server IP [PORT]             [[service.real]]: weight, uthreshold, lthreshold
//	inhibit_on_failure                what xvs always does: a failed server runs at weight 0
//	TCP_CHECK                         [service.health] check = "tcp"
//	HTTP_GET, SSL_GET                 check = "http", "https": url's path, status_code (one), a regex
//	                                  without metacharacters as expect_body, virtualhost as host
//	DNS_CHECK                         check = "udp": the query as send, its question (which every
//	                                  answer repeats) as expect; the answer's RCODE is not checked
//	UDP_CHECK with require_reply      check = "udp": payload as send, the reply as expect
//	delay_loop, connect_timeout       interval, timeout
//	retry N                           fall N+1 (the failure and its N retries); rise 1, as keepalived
//	                                  takes a server back at its first success
//	alpha                             initial = "down"
//	connect_port                      port
//	vrrp_instance                     [failover]: priority, advert_int as interval, virtual_ipaddress
//	                                  (dev, else the instance's interface) as [[failover.address]],
//	                                  unicast_src_ip and unicast_peer as listen and peer (port 8849),
//	                                  a key derived from auth_pass (the same on both directors) unless
//	                                  Options.Key gives one; every instance's addresses in one [failover]
//
// [director]'s interfaces are Options.Interfaces, else the interfaces the
// VRRP instances name, else eth0 (reported). keepalived's VRRP is multicast
// and xvs's failover unicast: without unicast_src_ip and unicast_peer (or
// without authentication and Options.Key) [failover] is written commented
// out, for the operator to fill in, and reported.
//
// Everything else (MISC_CHECK and every other script, notify_*,
// sorry_server, quorum, SMTP_CHECK, PING_CHECK, digests, a second URL,
// track_*, static and virtual routes, global_defs, ...) is reported with its
// file and line and the words "not supported", never dropped unsaid. xvs
// checks every real server of a service alike: where keepalived's checkers
// differ between real servers of one service, the first decides and the
// others are reported. A configuration keepalived itself would refuse
// (braces that do not pair, a quote that does not end, an include loop) is
// a SyntaxError. What is written is checked with xvsd's own rules
// (config.Parse) before Convert returns it.
package keepalived
