package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/internal/manpage"
)

// writeManpage writes xvsd.8 (from xvsd's flags) or xvs.toml.5 (from the
// configuration schema).
func writeManpage(w io.Writer, name string, fs *flag.FlagSet) error {
	switch name {
	case "xvsd.8", "xvsd":
		p := xvsdPage(fs)
		return p.Write(w)
	case "xvs.toml.5", "xvs.toml":
		p := configPage()
		return p.Write(w)
	}
	return fmt.Errorf("-manpage %q: want xvsd.8 or xvs.toml.5", name)
}

func xvsdPage(fs *flag.FlagSet) manpage.Page {
	return manpage.Page{
		Name: "xvsd", Section: "8", Summary: "the xvs layer-4 load balancer (director) over AF_XDP",
		Synopsis: []string{"xvsd [-config FILE] [-socket PATH] [-metrics ADDR] [-log-format auto|console|json]", "xvsd -check [-config FILE]", "xvsd -version", "xvsd -manpage xvsd.8|xvs.toml.5"},
		Sections: []manpage.Section{
			{Heading: "Description", Text: []string{
				"xvsd is a director in the sense of Linux Virtual Server: clients connect to virtual IPs, and xvsd forwards every packet of a connection to a real server its scheduler picked, by direct routing, NAT, IPIP tunnel or FullNAT, in userspace over AF_XDP with an XDP steering program (and an XDP fast path for established connections). xvsadm(8) administers it with ipvsadm's commands.",
				"It reads its configuration, xvs.toml(5), at start, and again on SIGHUP, on xvsadm reload and when the file changes (-watch). A file that does not validate changes nothing.",
			}},
			{Heading: "Options", Items: manpage.Flags(fs, "-")},
			{Heading: "Signals", Items: []manpage.Item{
				{Tag: "SIGHUP", Text: "Reload the configuration file."},
				{Tag: "SIGUSR1", Text: "Print the service table with counters (as xvsadm -L -n --stats) and the data path's state (as xvsadm status) to standard output."},
				{Tag: "SIGINT, SIGTERM", Text: "Stop forwarding and detach from the interfaces. The XDP program is held by a BPF link, so even SIGKILL leaves nothing attached."},
			}},
			{Heading: "Systemd", Text: []string{
				"With Type=notify, xvsd sends READY=1 over $NOTIFY_SOCKET once the data path is attached, RELOADING=1 and READY=1 around a SIGHUP reload, and STOPPING=1 when it stops. Under systemd (JOURNAL_STREAM or INVOCATION_ID set) its console log lines carry no timestamp, which the journal adds; -log-format json writes JSON lines instead.",
				"It needs CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_PERFMON to attach, and CAP_IPC_LOCK (or a large enough LimitMEMLOCK) for its UMEM; once attached it keeps CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF only. The xvsd.service unit grants exactly those.",
			}},
			{Heading: "Files", Items: []manpage.Item{
				{Tag: DefaultConfig, Text: "The configuration file (xvs.toml(5))."},
				{Tag: api.DefaultSocket, Text: "The control socket xvsadm(8) talks to (mode 0600)."},
			}},
			{Heading: "See also", Text: []string{"xvsadm(8), xvs.toml(5), ipvsadm(8), keepalived.conf(5)"}},
		},
	}
}

func configPage() manpage.Page {
	p := manpage.Page{
		Name: "xvs.toml", Section: "5", Summary: "configuration file of the xvs director, xvsd(8)",
		Sections: []manpage.Section{{Heading: "Description", Text: []string{
			"xvsd reads a TOML file, by default " + DefaultConfig + ". Unknown keys, bad values and inconsistencies are errors, each reported with its file and line; xvsd -check FILE validates a file. Durations are Go durations (\"2s\", \"500ms\") or integer seconds. xvsadm save-config writes the running configuration in this format; xvsadm import-keepalived converts a keepalived.conf(5).",
			"The examples in /usr/share/doc/xvs/examples explain every key per forwarding mode.",
		}}},
	}
	for _, t := range config.Schema() {
		s := manpage.Section{Heading: tableName(t), Text: []string{t.Doc}}
		if t.SameAs != "" {
			for _, o := range config.Schema() {
				if o.Path == t.SameAs {
					s.Text = append(s.Text, "It takes the keys of "+tableName(o)+".")
				}
			}
		}
		for _, k := range t.Keys {
			s.Items = append(s.Items, manpage.Item{Tag: k.Key + " (" + k.Type + ")", Text: k.Doc})
		}
		p.Sections = append(p.Sections, s)
	}
	p.Sections = append(p.Sections, manpage.Section{Heading: "See also", Text: []string{"xvsd(8), xvsadm(8)"}})
	return p
}

// tableName writes a table as the file does: [director], [[service]].
func tableName(t config.TableDoc) string {
	switch {
	case t.Path == "":
		return "Top level"
	case t.Array:
		return "[[" + t.Path + "]]"
	case strings.HasSuffix(t.Path, ".match"):
		return t.Path + " = [ { ... } ]"
	}
	return "[" + t.Path + "]"
}
