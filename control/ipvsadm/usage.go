package ipvsadm

import (
	"fmt"
	"io"
	"strings"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/internal/version"
	"github.com/xvs-lb/xvs/sched"
)

// WriteVersion writes -v's line: xvs's own version, then whose syntax and
// layouts these are, as ipvsadm's "ipvsadm v1.31 2019/12/24 (compiled with
// popt and IPVS v1.2.1)".
func WriteVersion(w io.Writer) {
	fmt.Fprintf(w, "%s %s (xvs %[2]s; %s syntax and layouts, IPVS v%s)\n", programName, version.String(), compatibleWith, ipvsVersion)
}

// WriteUsage writes -h's text, in ipvsadm's layout.
func WriteUsage(w io.Writer) {
	WriteVersion(w)
	p := programName
	fmt.Fprintf(w, `Usage:
  %[1]s -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags]
  %[1]s -D virtual-service
  %[1]s -C
  %[1]s -R
  %[1]s -S [-n]
  %[1]s -a|e virtual-service -r server-address [options]
  %[1]s -d virtual-service -r server-address
  %[1]s -L|l [virtual-service] [options]
  %[1]s -Z [virtual-service]
  %[1]s --set tcp tcpfin udp
  %[1]s --start-daemon {master|backup} [--mcast-interface interface] [--syncid sid]
  %[1]s --stop-daemon {master|backup}
  %[1]s status|health [--json]
  %[1]s reload
  %[1]s save-config FILE
  %[1]s import-keepalived [-o FILE] KEEPALIVED.CONF
  %[1]s realserver dr|tun|nat --vip VIP ... (on a real server; realserver -h)
  %[1]s manpage | completion bash
  %[1]s -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --start-daemon              start connection sync daemon
  --stop-daemon               stop connection sync daemon
  --help            -h        display this help message
  status                      show the data path: workers, queues, XDP mode, drops
  health                      show the health checks of the real servers
  reload                      make xvsd re-read its configuration file
  save-config FILE            write the running table as a configuration file
  import-keepalived FILE      write a keepalived.conf's equivalent configuration file
  manpage                     write xvsadm(8); completion bash: bash completion

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero
                                      (a group of the configuration file)

Options:
  --ipv6         -6                   fwmark entry uses IPv6
  --scheduler    -s scheduler         one of %[2]s,
                                      the default scheduler is %[3]s.
  --persistent   -p [timeout]         persistent service (default timeout %[4]d)
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --mcast-interface interface         interface for connection sync
  --syncid sid                        syncid for connection sync (default=0: a backup takes any)
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --numeric      -n                   numeric output of addresses and ports
  --sched-flags  -b flags             scheduler flags (comma-separated)
  --tun-type     ipip                 tunnel type (ipip only, as -S writes it)
  --json                              output of the answer as JSON

xvs's own options (ipvsadm lacks them; its -R refuses them):
  --fullnat                           FullNAT forwarding (-a, -e)
  --laddr        address[,address]    FullNAT's local addresses
  --local-ports  lo-hi                FullNAT's local ports
  --toa                               FullNAT: client address in a TCP option
  --no-fast-path                      keep connections off the XDP fast path
  --name         name                 the service's or group's name
  --match        proto:vip:ports,...  a group's (-f) matches: what it takes
  --health       'check = "tcp", ...' the health check ([service.health])

Connection sync: the daemons are the roles of [sync] in xvsd's configuration
file, which names the peers and the key; xvs keeps its unicast,
HMAC-authenticated transport (no multicast group, port or TTL to set).
Addresses and ports are numeric: %[1]s resolves no names.
xvsd is reached at $XVS_SOCKET, else %[5]s; --socket PATH overrides both.
`, p, strings.Join(sched.Names(), "|"), DefaultScheduler, seconds(DefaultPersistence), api.DefaultSocket)
}
