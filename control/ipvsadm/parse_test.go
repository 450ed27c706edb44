package ipvsadm

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xvs-lb/xvs/control/api"
)

func intp(v int) *int { return &v }

func svc(id api.ServiceID, sched string) *api.Service {
	return &api.Service{ServiceID: id, Scheduler: sched}
}

func TestParse(t *testing.T) {
	web := tcp("198.18.0.100", 80)
	mark1 := api.ServiceID{Mark: 1}
	v6 := tcp("2001:db8::1", 443)
	list := func(o ListOptions) *Command {
		return &Command{Layout: LayoutServices, List: o, Request: api.Request{Op: api.OpList, Exact: o.Exact}}
	}
	realReq := func(op api.Op, id api.ServiceID, r api.Real) *Command {
		return &Command{Request: api.Request{Op: op, Service: &api.Service{ServiceID: id}, Real: &r}}
	}
	tests := []struct {
		args string
		want *Command
	}{
		// -A and -E
		{"-A -t 198.18.0.100:80 -s rr", &Command{Request: api.Request{Op: api.OpAddService, Service: svc(web, "rr")}}},
		{"-A -t 198.18.0.100:80", &Command{Request: api.Request{Op: api.OpAddService, Service: svc(web, "wlc")}}},
		{"--add-service --tcp-service 198.18.0.100:80 --scheduler=sh --persistent --netmask 255.255.255.0 --sched-flags sh-port,sh-fallback",
			&Command{Request: api.Request{Op: api.OpAddService, Service: &api.Service{ServiceID: web, Scheduler: "sh",
				Persistence: 300 * time.Second, PersistPrefix: 24, Flags: []string{"sh-port", "sh-fallback"}}}}},
		{"-A -u 198.18.0.100:53 -s rr -p 600 -M 255.255.0.0",
			&Command{Request: api.Request{Op: api.OpAddService, Service: &api.Service{
				ServiceID: api.ServiceID{Protocol: "udp", VIP: ip("198.18.0.100"), Port: 53}, Scheduler: "rr",
				Persistence: 600 * time.Second, PersistPrefix: 16}}}},
		{"-A -t [2001:db8::1]:443 -p 60 -M 64",
			&Command{Request: api.Request{Op: api.OpAddService, Service: &api.Service{ServiceID: v6, Scheduler: "wlc",
				Persistence: time.Minute, PersistPrefix: 64}}}},
		{"-A -f 1 -s rr", &Command{Request: api.Request{Op: api.OpAddService, Service: svc(mark1, "rr")}}},
		// xvs's own options.
		{"-A -f 1 -s rr --name web --match tcp:198.18.0.100:80,udp:[2001:db8::1]:8000-8010",
			&Command{Request: api.Request{Op: api.OpAddService, Service: &api.Service{ServiceID: mark1, Scheduler: "rr", Name: "web",
				Matches: []api.Match{{Protocol: "tcp", VIP: ip("198.18.0.100"), FromPort: 80, ToPort: 80},
					{Protocol: "udp", VIP: ip("2001:db8::1"), FromPort: 8000, ToPort: 8010}}}}}},
		{"-A -t 198.18.0.100:80 --laddr 198.19.0.2,198.19.0.3 --local-ports 20000-29999 --toa --no-fast-path --health check=\"tcp\"",
			&Command{Request: api.Request{Op: api.OpAddService, Service: &api.Service{ServiceID: web, Scheduler: "wlc",
				LocalAddrs: []netip.Addr{ip("198.19.0.2"), ip("198.19.0.3")}, LocalPorts: [2]uint16{20000, 29999}, TOA: true,
				NoFastPath: true, Health: `check="tcp"`}}}},
		{"-A -t 198.18.0.100:80 -s sh -b flag-1,flag-2,flag-3",
			&Command{Request: api.Request{Op: api.OpAddService, Service: &api.Service{ServiceID: web, Scheduler: "sh",
				Flags: []string{"flag-1", "flag-2", "flag-3"}}}}},
		{"-a -t 198.18.0.100:80 -r 198.19.0.11:8080 --fullnat -w 2", realReq(api.OpAddReal, web, api.Real{Addr: ip("198.19.0.11"), Port: 8080, Method: "fullnat", Weight: intp(2)})},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 -i -w 1 --tun-type ipip", realReq(api.OpAddReal, web, api.Real{Addr: ip("198.18.0.11"), Port: 80, Method: "tun", Weight: intp(1)})},
		{"--add-service --fwmark-service 7 -6 -p -M 48",
			&Command{Request: api.Request{Op: api.OpAddService, Service: &api.Service{ServiceID: api.ServiceID{Mark: 7},
				Scheduler: "wlc", Persistence: 300 * time.Second, PersistPrefix: 48}}}},
		{"-A -t 198.18.0.100 -p", &Command{Request: api.Request{Op: api.OpAddService, Service: &api.Service{
			ServiceID: tcp("198.18.0.100", 0), Scheduler: "wlc", Persistence: 300 * time.Second}}}},
		{"-A -t 2001:db8::1 -p 1", &Command{Request: api.Request{Op: api.OpAddService, Service: &api.Service{
			ServiceID: tcp("2001:db8::1", 0), Scheduler: "wlc", Persistence: time.Second}}}},
		// -p's value is optional: the next word is not taken when it is an option.
		{"-A -t 198.18.0.100:80 -p -s rr", &Command{Request: api.Request{Op: api.OpAddService, Service: &api.Service{
			ServiceID: web, Scheduler: "rr", Persistence: 300 * time.Second}}}},
		// Attached values and bundled short options, as popt allows.
		{"-At198.18.0.100:80 -srr -p600", &Command{Request: api.Request{Op: api.OpAddService, Service: &api.Service{
			ServiceID: web, Scheduler: "rr", Persistence: 600 * time.Second}}}},
		{"-At 198.18.0.100:80 --persistent=30", &Command{Request: api.Request{Op: api.OpAddService, Service: &api.Service{
			ServiceID: web, Scheduler: "wlc", Persistence: 30 * time.Second}}}},
		{"-E -t 198.18.0.100:80 -s wrr", &Command{Request: api.Request{Op: api.OpEditService, Service: svc(web, "wrr")}}},
		{"--edit-service -t 198.18.0.100:80", &Command{Request: api.Request{Op: api.OpEditService, Service: svc(web, "")}}},
		{"-E -t 198.18.0.100:80 -b sh-port", &Command{Request: api.Request{Op: api.OpEditService, Service: &api.Service{
			ServiceID: web, Flags: []string{"sh-port"}}}}},
		{"-A -t 198.18.0.100:80 -s mh -b mh-port,mh-port", &Command{Request: api.Request{Op: api.OpAddService, Service: &api.Service{
			ServiceID: web, Scheduler: "mh", Flags: []string{"mh-port"}}}}},
		// -D, -C
		{"-D -t 198.18.0.100:80", &Command{Request: api.Request{Op: api.OpDelService, Service: &api.Service{ServiceID: web}}}},
		{"--delete-service --udp-service 198.18.0.100:53", &Command{Request: api.Request{Op: api.OpDelService,
			Service: &api.Service{ServiceID: api.ServiceID{Protocol: "udp", VIP: ip("198.18.0.100"), Port: 53}}}}},
		{"-D -f 1", &Command{Request: api.Request{Op: api.OpDelService, Service: &api.Service{ServiceID: mark1}}}},
		{"-C", &Command{Request: api.Request{Op: api.OpClear}}},
		{"--clear", &Command{Request: api.Request{Op: api.OpClear}}},
		// -a, -e, -d
		{"-a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1",
			realReq(api.OpAddReal, web, api.Real{Addr: ip("198.18.0.11"), Port: 80, Method: "dr", Weight: intp(1)})},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11",
			realReq(api.OpAddReal, web, api.Real{Addr: ip("198.18.0.11"), Port: 80, Method: "dr"})},
		{"--add-server -t 198.18.0.100:80 --real-server 198.18.0.11:8080 --masquerading --weight 0 --u-threshold 100 --l-threshold=50",
			realReq(api.OpAddReal, web, api.Real{Addr: ip("198.18.0.11"), Port: 8080, Method: "nat", Weight: intp(0),
				UpperThreshold: 100, LowerThreshold: 50})},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11:8080 -m -x 2147483647",
			realReq(api.OpAddReal, web, api.Real{Addr: ip("198.18.0.11"), Port: 8080, Method: "nat", UpperThreshold: 2147483647})},
		// Direct routing and tunnelling keep the service's port.
		{"-a -t 198.18.0.100:80 -r 198.18.0.11:8080",
			realReq(api.OpAddReal, web, api.Real{Addr: ip("198.18.0.11"), Port: 80, Method: "dr"})},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11:8080 --ipip -w 65535",
			realReq(api.OpAddReal, web, api.Real{Addr: ip("198.18.0.11"), Port: 80, Method: "tun", Weight: intp(65535)})},
		{"-a -t 198.18.0.100:80 -r 2001:db8::11 -i",
			realReq(api.OpAddReal, web, api.Real{Addr: ip("2001:db8::11"), Port: 80, Method: "tun"})},
		// ... but not for a mark service.
		{"-a -f 1 -r 198.18.0.11:8080 --gatewaying",
			realReq(api.OpAddReal, mark1, api.Real{Addr: ip("198.18.0.11"), Port: 8080, Method: "dr"})},
		{"-a -f 1 -r 198.18.0.11", realReq(api.OpAddReal, mark1, api.Real{Addr: ip("198.18.0.11"), Method: "dr"})},
		{"-a -t [2001:db8::1]:443 -r [2001:db8::11]:443 -w 3",
			realReq(api.OpAddReal, v6, api.Real{Addr: ip("2001:db8::11"), Port: 443, Method: "dr", Weight: intp(3)})},
		// -e leaves what it is not given to the server (unchanged).
		{"-e -t 198.18.0.100:80 -r 198.18.0.11:80 -w 5",
			realReq(api.OpEditReal, web, api.Real{Addr: ip("198.18.0.11"), Port: 80, Weight: intp(5)})},
		{"--edit-server -t 198.18.0.100:80 -r 198.18.0.11:8080 -m",
			realReq(api.OpEditReal, web, api.Real{Addr: ip("198.18.0.11"), Port: 8080, Method: "nat"})},
		{"-e -t 198.18.0.100:80 -r 198.18.0.11:8080",
			realReq(api.OpEditReal, web, api.Real{Addr: ip("198.18.0.11"), Port: 8080})},
		{"-e -t 198.18.0.100:80 -r 198.18.0.11:8080 -g",
			realReq(api.OpEditReal, web, api.Real{Addr: ip("198.18.0.11"), Port: 80, Method: "dr"})},
		{"-d -t 198.18.0.100:80 -r 198.18.0.11", realReq(api.OpDelReal, web, api.Real{Addr: ip("198.18.0.11"), Port: 80})},
		{"--delete-server -t 198.18.0.100:80 -r 198.18.0.11:8080", realReq(api.OpDelReal, web, api.Real{Addr: ip("198.18.0.11"), Port: 8080})},
		// -L and its options
		{"", list(ListOptions{})},
		{"-L", list(ListOptions{})},
		{"-l -n", list(ListOptions{Numeric: true})},
		{"-Ln", list(ListOptions{Numeric: true})},
		{"--list --numeric --stats --exact", list(ListOptions{Numeric: true, Stats: true, Exact: true})},
		{"-L -n --rate -X", list(ListOptions{Numeric: true, Rate: true, Exact: true})},
		{"-L --thresholds", list(ListOptions{Thresholds: true})},
		{"-L --persistent-conn --nosort", list(ListOptions{PersistentConn: true, NoSort: true})},
		{"-L --sort", list(ListOptions{})},
		{"-L -n --json", &Command{Layout: LayoutServices, List: ListOptions{Numeric: true}, JSON: true, Request: api.Request{Op: api.OpList}}},
		{"-L -n -t 198.18.0.100:80 --stats", &Command{Layout: LayoutServices, List: ListOptions{Numeric: true, Stats: true},
			Request: api.Request{Op: api.OpList, Filter: &web}}},
		{"-L -f 1", &Command{Layout: LayoutServices, Request: api.Request{Op: api.OpList, Filter: &mark1}}},
		{"-L -c -n", &Command{Layout: LayoutConns, List: ListOptions{Numeric: true}, Request: api.Request{Op: api.OpConns}}},
		{"-lc", &Command{Layout: LayoutConns, Request: api.Request{Op: api.OpConns}}},
		{"-L --connection -t 198.18.0.100:80", &Command{Layout: LayoutConns, Request: api.Request{Op: api.OpConns, Filter: &web}}},
		{"-L -c --persistent-conn", &Command{Layout: LayoutConns, List: ListOptions{PersistentConn: true}, Request: api.Request{Op: api.OpConns}}},
		{"-L --timeout", &Command{Layout: LayoutTimeouts, Request: api.Request{Op: api.OpGetTimeouts}}},
		{"-L --daemon", &Command{Layout: LayoutDaemon, Request: api.Request{Op: api.OpDaemons}}},
		{"-L --daemon --json", &Command{Layout: LayoutDaemon, JSON: true, Request: api.Request{Op: api.OpDaemons}}},
		// Sync daemons.
		{"--start-daemon master", &Command{Request: api.Request{Op: api.OpStartDaemon, Daemon: &api.SyncDaemon{Role: "master"}}}},
		{"--start-daemon backup --mcast-interface eth1 --syncid 7", &Command{Request: api.Request{Op: api.OpStartDaemon,
			Daemon: &api.SyncDaemon{Role: "backup", Interface: "eth1", SyncID: intp(7)}}}},
		{"--start-daemon=master --syncid=0", &Command{Request: api.Request{Op: api.OpStartDaemon, Daemon: &api.SyncDaemon{Role: "master", SyncID: intp(0)}}}},
		{"--stop-daemon backup", &Command{Request: api.Request{Op: api.OpStopDaemon, Daemon: &api.SyncDaemon{Role: "backup"}}}},
		// -Z, --set, -S, -R
		{"-Z", &Command{Request: api.Request{Op: api.OpZero}}},
		{"--zero -t 198.18.0.100:80", &Command{Request: api.Request{Op: api.OpZero, Service: &api.Service{ServiceID: web}}}},
		{"-Z -f 1", &Command{Request: api.Request{Op: api.OpZero, Service: &api.Service{ServiceID: mark1}}}},
		{"--set 900 120 300", &Command{Request: api.Request{Op: api.OpSetTimeouts,
			Timeouts: &api.Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}}}},
		{"--set 0 0 2678400", &Command{Request: api.Request{Op: api.OpSetTimeouts,
			Timeouts: &api.Timeouts{UDP: 31 * 24 * time.Hour}}}},
		{"-S", &Command{Layout: LayoutRules, Request: api.Request{Op: api.OpList}}},
		{"--save -n", &Command{Layout: LayoutRules, List: ListOptions{Numeric: true}, Request: api.Request{Op: api.OpList}}},
		{"-R", &Command{Request: api.Request{Op: api.OpRestore}}},
		{"--restore", &Command{Request: api.Request{Op: api.OpRestore}}},
		{"-h", &Command{Layout: LayoutHelp}},
		{"--help", &Command{Layout: LayoutHelp}},
		{"-v", &Command{Layout: LayoutVersion}},
		{"--version", &Command{Layout: LayoutVersion}},
		// xvs's own
		{"status", &Command{Layout: LayoutStatus, Request: api.Request{Op: api.OpStatus}}},
		{"status --json", &Command{Layout: LayoutStatus, JSON: true, Request: api.Request{Op: api.OpStatus}}},
		{"health", &Command{Layout: LayoutHealth, Request: api.Request{Op: api.OpHealth}}},
		{"reload", &Command{Request: api.Request{Op: api.OpReload}}},
		{"save-config /etc/xvs/saved.toml", &Command{Request: api.Request{Op: api.OpSaveConfig, Path: "/etc/xvs/saved.toml"}}},
		{"reload --help", &Command{Layout: LayoutHelp}},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			got, err := Parse(strings.Fields(tt.args))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q)\n got %+v\n     %s\nwant %+v\n     %s", tt.args, got, describe(got), tt.want, describe(tt.want))
			}
		})
	}
}

// describe spells out what %+v hides behind pointers.
func describe(c *Command) string {
	var b strings.Builder
	if s := c.Request.Service; s != nil {
		fmt.Fprintf(&b, "service %+v ", *s)
	}
	if r := c.Request.Real; r != nil {
		fmt.Fprintf(&b, "real %+v ", *r)
		if r.Weight != nil {
			fmt.Fprintf(&b, "weight %d ", *r.Weight)
		}
	}
	if f := c.Request.Filter; f != nil {
		fmt.Fprintf(&b, "filter %+v ", *f)
	}
	if t := c.Request.Timeouts; t != nil {
		fmt.Fprintf(&b, "timeouts %+v", *t)
	}
	return b.String()
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		args, want string
	}{
		{"-A", "You need to supply the 'service-address' option for the 'add-service' command"},
		{"-a -t 198.18.0.100:80", "You need to supply the 'real-server' option for the 'add-server' command"},
		{"-d -r 198.18.0.11", "You need to supply the 'service-address' option for the 'delete-server' command"},
		{"-A -t 198.18.0.100:80 -r 198.18.0.11", "Illegal 'real-server' option with the 'add-service' command"},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 -s rr", "Illegal 'scheduler' option with the 'add-server' command"},
		{"-d -t 198.18.0.100:80 -r 198.18.0.11 -w 1", "Illegal 'weight' option with the 'delete-server' command"},
		{"-D -t 198.18.0.100:80 -p", "Illegal 'persistent' option with the 'delete-service' command"},
		{"-C -t 198.18.0.100:80", "Illegal 'service-address' option with the 'flush' command"},
		{"-S -c", "Illegal 'connection' option with the 'save' command"},
		{"-R -n", "Illegal 'numeric' option with the 'restore' command"},
		{"-D -t 198.18.0.100:80 --json", "Illegal 'json' option with the 'delete-service' command"},
		{"--set 1 2 3 -n", "Illegal 'numeric' option with the 'set' command"},
		{"-Z --stats", "Illegal 'stats' option with the 'zero' command"},
		{"-A -D -t 198.18.0.100:80", "multiple commands specified"},
		{"-L -S", "multiple commands specified"},
		{"-A -t 198.18.0.100:80 -t 198.18.0.100:81", "multiple 'service-address' options specified"},
		{"-A -t 198.18.0.100:80 -f 1", "multiple 'service-address' options specified"},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 -g -m", "multiple 'forwarding-method' options specified"},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 -w 1 -w 2", "multiple 'weight' options specified"},
		{"-L -n -n", "multiple 'numeric' options specified"},
		{"-A -t www.example.com:80", "illegal virtual server address[:port] specified: `www.example.com' is not a numeric address (xvsadm resolves no host names)"},
		{"-A -t www.example.com", "`www.example.com' is not a numeric address"},
		{"-A -t 198.18.0.100:http", "illegal virtual server address[:port] specified: `http' is not a numeric port (xvsadm resolves no service names)"},
		{"-A -t 198.18.0.100:65536", "`65536' is not a numeric port"},
		{"-A -t 198.18.0.100:", "`' is not a numeric port"},
		{"-A -t 80", "illegal virtual server address[:port] specified: `80' is a number, not an address"},
		{"-A -t [2001:db8::1]", "want [IPv6]:port"},
		{"-A -t [198.18.0.1]:80", "is not an IPv6 address"},
		{"-A -t fe80::1%eth0", "zones are not supported"},
		{"-A -t 2001:db8::1:80", "Zero port specified for non-persistent service"},
		{"-A -t 198.18.0.100", "Zero port specified for non-persistent service"},
		{"-a -t 198.18.0.100:80 -r db1", "illegal real server address[:port] specified: `db1' is not a numeric address"},
		{"-a -t 198.18.0.100:80 -r [2001:db8::11]:80", "Different address family is allowed only for tunneling servers"},
		{"-a -t [2001:db8::1]:80 -r 198.18.0.11 -m", "Different address family is allowed only for tunneling servers"},
		{"-A -f 0", "invalid fwmark value `0' specified"},
		{"-A -f x", "invalid fwmark value `x' specified"},
		{"-A -f 4294967296", "invalid fwmark value `4294967296' specified"},
		{"-A -t 198.18.0.100:80 -s nope", "scheduler `nope' not found (known: rr, wrr, lc, wlc,"},
		{"-A -t 198.18.0.100:80 -p 0", "invalid timeout value `0' specified"},
		{"-A -t 198.18.0.100:80 -p 2678401", "invalid timeout value `2678401' specified"},
		{"-A -t 198.18.0.100:80 -p 5s", "invalid timeout value `5s' specified"},
		{"-A -t 198.18.0.100:80 -p -M 255.0.255.0", "`255.0.255.0' is not a contiguous netmask"},
		{"-A -t 198.18.0.100:80 -p -M 0.0.0.0", "`0.0.0.0' is not a contiguous netmask"},
		{"-A -t 198.18.0.100:80 -p -M 24", "illegal virtual server persistent mask specified: `24' is not a dotted IPv4 netmask"},
		{"-A -t [2001:db8::1]:80 -p -M 129", "illegal ipv6 netmask specified"},
		{"-A -t [2001:db8::1]:80 -p -M ffff::", "illegal ipv6 netmask specified"},
		{"-A -f 1 -p -M 64", "is not a dotted IPv4 netmask"},
		{"-A -t 198.18.0.100:80 -s rr -b sh-port", "incompatible scheduler flag `sh-port' (scheduler rr)"},
		{"-A -t 198.18.0.100:80 -b sh-port", "incompatible scheduler flag `sh-port' (scheduler wlc)"},
		{"-A -t 198.18.0.100:80 -s sh -b mh-port", "incompatible scheduler flag `mh-port' (scheduler sh)"},
		{"-A -t 198.18.0.100:80 -s sh -b bogus", "invalid scheduler flag `bogus'"},
		{"-E -t 198.18.0.100:80 -b bogus", "invalid scheduler flag `bogus'"},
		{"-A -t 198.18.0.100:80 -s sh -b sh-port,", "invalid scheduler flag `sh-port,'"},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 -w 65536", "illegal weight specified"},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 -w -1", "illegal weight specified"},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 -x abc", "illegal u_threshold specified"},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 -y 2147483648", "illegal l_threshold specified"},
		{"-L -c --stats", "options conflicts in the list command"},
		{"-L --timeout --rate", "options conflicts in the list command"},
		{"-L --timeout --persistent-conn", "options conflicts in the list command"},
		{"-L -c --timeout", "The option 'timeout' conflicts with the 'connection' option in the 'list' command"},
		{"-L -t 198.18.0.100:80 --daemon", "The option 'daemon' conflicts with the 'service-address' option in the 'list' command"},
		{"--set 1 2", "--set option requires 3 timeout values"},
		{"--set 1 2 x", "invalid timeout value `x' specified"},
		{"--set 1 2 2678401", "invalid timeout value `2678401' specified"},
		{"--set 1 2 3 4", "unexpected argument 4"},
		{"-C extra", "unexpected argument extra"},
		{"-L 198.18.0.100:80", "unexpected argument 198.18.0.100:80"},
		{"-L -- -n", "unexpected argument -n"},
		{"-t 198.18.0.100:80", "the command (-A, -a, -L, ...) must come first, as in ipvsadm: `-t' is not a command"},
		{"-n -L", "must come first, as in ipvsadm: `-n' is not a command"},
		{"-t 198.18.0.100:80 -A", "`-t' is not a command"},
		{"--syncid 1 --start-daemon master", "`--syncid' is not a command"},
		{"--bogus", "invalid option `--bogus'"},
		{"-Q", "invalid option `-Q'"},
		{"-LQ", "invalid option `-Q'"},
		{"-A -t 198.18.0.100:80 -s", "option `-s' requires an argument"},
		{"-A --tcp-service", "option `--tcp-service' requires an argument"},
		{"--clear=1", "option `--clear' does not take a value"},
		{"-A -t 198.18.0.100:80 -6", "-6 used before -f"},
		{"-A -6 -f 1", "-6 used before -f"},
		{"-A -f 1 -p -M 64 -6", "is not a dotted IPv4 netmask"}, // -M read before -6, as ipvsadm
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 -m --tun-type ipip", "Tunnel options conflict with forward method"},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 -i --tun-type vxlan", "illegal tunnel type specified"},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 -i --tun-type gre", "tunnel type `gre' is not supported by xvs"},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 -i --tun-type ipip --tun-port 6080", "tunnel options are not supported by xvs"},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 -m --fullnat", "multiple 'forwarding-method' options specified"},
		{"-A -t 198.18.0.100:80 --match tcp:198.18.0.100:443", "--match is for groups (-f) only"},
		{"-A -f 1 --match tcp:198.18.0.100", "illegal group match `tcp:198.18.0.100' specified"},
		{"-A -f 1 --match sctp:198.18.0.100:80", "illegal group match"},
		{"-A -f 1 --match tcp:2001:db8::1:80", "illegal group match"},
		{"-A -f 1 --match tcp:198.18.0.100:90-80", "illegal group match"},
		{"-A -t 198.18.0.100:80 --laddr 198.19.0.2,x", "illegal local address `x' specified in --laddr"},
		{"-A -t 198.18.0.100:80 --local-ports 2000-1000", "illegal local port range `2000-1000'"},
		{"-A -t 198.18.0.100:80 --toa --toa", "multiple 'toa' options specified"},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 --laddr 198.19.0.2", "Illegal 'laddr' option with the 'add-server' command"},
		{"--start-daemon primary", "illegal start-daemon parameter specified"},
		{"--stop-daemon primary", "illegal start_daemon specified"},
		{"--start-daemon master --syncid 256", "illegal syncid specified"},
		{"--start-daemon master --syncid x", "illegal syncid specified"},
		{"--start-daemon master --mcast-interface 0123456789abcdef", "illegal multicast interface name specified"},
		{"--start-daemon master --mcast-group 224.0.0.81", "option `--mcast-group': xvs syncs over unicast UDP to the peers [sync] names"},
		{"--stop-daemon master --syncid 1", "Illegal 'syncid' option with the 'stop-daemon' command"},
		{"-L --syncid 1", "Illegal 'syncid' option with the 'list' command"},
		{"--start-daemon master --stop-daemon backup", "multiple commands specified"},
		{"-A -u 198.18.0.100:53 -o", "option `-o': one-packet scheduling is not supported by xvs"},
		{"-A -t 198.18.0.100:80 --pe sip", "persistence engines are not supported by xvs"},
		{"-A --sctp-service 198.18.0.100:80", "SCTP services are not supported by xvs"},
		{"-a -t 198.18.0.100:80 -r 198.18.0.11 -i --tun-type gue", "tunnel type `gue' is not supported by xvs: -i is ipip"},
		{"status extra", "unexpected argument extra"},
		{"reload --json", "invalid option `--json' for the 'reload' command"},
		{"status --json --json", "multiple 'json' options specified"},
		{"save-config", "save-config needs a file name"},
		{"save-config a b", "unexpected argument b"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			c, err := Parse(strings.Fields(tt.args))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error %q", tt.args, c, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("error %T is not an *Error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q) error\n %q\nwant it to contain\n %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestParseAddrPort(t *testing.T) {
	tests := []struct {
		in      string
		addr    string
		port    uint16
		hasPort bool
	}{
		{"198.18.0.1", "198.18.0.1", 0, false},
		{"198.18.0.1:0", "198.18.0.1", 0, true},
		{"198.18.0.1:65535", "198.18.0.1", 65535, true},
		{"2001:db8::1", "2001:db8::1", 0, false},
		{"::", "::", 0, false},
		{"[2001:db8::1]:80", "2001:db8::1", 80, true},
		{"[::ffff:198.18.0.1]:80", "::ffff:198.18.0.1", 80, true},
	}
	for _, tt := range tests {
		a, p, has, err := parseAddrPort(tt.in)
		if err != nil || a != ip(tt.addr) || p != tt.port || has != tt.hasPort {
			t.Errorf("parseAddrPort(%q) = %v %d %v %v; want %s %d %v", tt.in, a, p, has, err, tt.addr, tt.port, tt.hasPort)
		}
	}
	for _, bad := range []string{"", "1", "host", "host:80", "1.2.3.4:-1", "1.2.3.4:80:80", "[1:2::3]", "[1:2::3]80", "[1:2::3:80", "1.2.3:80"} {
		if a, p, _, err := parseAddrPort(bad); err == nil {
			t.Errorf("parseAddrPort(%q) = %v %d, want an error", bad, a, p)
		}
	}
}

// TestOptionsDocumented: every option of the command line says what it
// does (for xvsadm(8) and completion) or why xvs refuses it, and names its
// argument when it takes one.
func TestOptionsDocumented(t *testing.T) {
	for _, o := range Options() {
		name := "--" + o.Long
		if o.Long == "" {
			name = "-" + o.Short
		}
		if (o.Doc == "") == (o.Unsupported == "") {
			t.Errorf("%s: want a description or a reason it is refused, one of them", name)
		}
		if takes := slices.ContainsFunc(options(), func(x option) bool { return x.long == o.Long && x.short == shortOf(o) && x.arg != argNone }); takes && o.Value == "" {
			t.Errorf("%s takes an argument that has no name", name)
		}
	}
}

func shortOf(o OptionDoc) byte {
	if o.Short == "" {
		return 0
	}
	return o.Short[0]
}

// TestMatches: --match's list reads back as written.
func TestMatches(t *testing.T) {
	for _, s := range []string{"tcp:198.18.0.100:80", "udp:[2001:db8::1]:8000-8010,tcp:198.18.0.100:1-65535"} {
		ms, err := ParseMatches(s)
		if err != nil {
			t.Fatalf("ParseMatches(%q): %v", s, err)
		}
		if got := FormatMatches(ms); got != s {
			t.Errorf("FormatMatches(ParseMatches(%q)) = %q", s, got)
		}
	}
	for _, bad := range []string{"", "tcp", "tcp:198.18.0.100:0", "tcp:198.18.0.100:80-", "tcp:[198.18.0.100]:80", "tcp:2001:db8::1:80", "tcp:198.18.0.100:80,"} {
		if _, err := ParseMatches(bad); err == nil {
			t.Errorf("ParseMatches(%q) succeeded", bad)
		}
	}
}
