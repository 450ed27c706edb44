// MPTCP listeners, Go's default since 1.24, cannot carry the TCP MD5 and
// TTL options BGP sessions need.
//
//go:debug multipathtcp=0

// Command xvsd is the xvs director daemon: it loads a TOML configuration,
// attaches to the configured interfaces with XDP and AF_XDP, and forwards
// connections to real servers until told to stop.
//
// Under systemd (Type=notify) it reports READY=1 once the data path is
// attached, RELOADING=1 and READY=1 around a SIGHUP reload, and STOPPING=1,
// over $NOTIFY_SOCKET; its log lines then carry no timestamp, which the
// journal adds (-log-format json writes JSON instead).
//
// xvsadm talks to it over a unix socket (-socket, default
// /run/xvs/xvsd.sock, root only unless -socket-group names a group).
//
// The configuration is reloaded when its file changes (-watch), on SIGHUP and
// on `xvsadm reload`.
//
// Signals: SIGHUP reloads the configuration (a file that does not validate
// changes nothing); SIGUSR1 prints the service table with counters, in
// ipvsadm -L -n --stats layout, to standard output; SIGINT and SIGTERM stop
// the director and detach it from the interfaces (so does SIGKILL: the XDP
// program is held by a BPF link that dies with the process).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/xvs-lb/xvs/control"
	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/control/config"
	"github.com/xvs-lb/xvs/internal/sdnotify"
	"github.com/xvs-lb/xvs/internal/version"
)

// options are xvsd's command line. Their flags are defined once, in
// defineFlags, for the command line and for xvsd(8).
type options struct {
	path, socket, group, metrics, logFormat, manpage string
	check, watch, version                            bool
}

func defineFlags(fs *flag.FlagSet) *options {
	o := &options{}
	fs.StringVar(&o.path, "config", DefaultConfig, "configuration file")
	fs.BoolVar(&o.check, "check", false, "validate the configuration file and exit: 0 when it would start a director")
	fs.StringVar(&o.socket, "socket", api.DefaultSocket, "control socket for xvsadm (empty: none)")
	fs.StringVar(&o.group, "socket-group", "", "group whose members may use the control socket besides root")
	fs.BoolVar(&o.watch, "watch", true, "reload the configuration when its file changes")
	fs.StringVar(&o.metrics, "metrics", control.DefaultMetrics, "address for Prometheus metrics (/metrics); empty: none")
	fs.StringVar(&o.logFormat, "log-format", "auto", "log format: console, json, or auto (console; without timestamps under systemd, whose journal stamps each line)")
	fs.StringVar(&o.manpage, "manpage", "", "write the manual page xvsd.8 or xvs.toml.5 (roff) to standard output and exit")
	fs.BoolVar(&o.version, "version", false, "print xvs's version and exit")
	return o
}

// DefaultConfig is where xvsd reads its configuration unless -config says
// otherwise; the package installs a commented one there.
const DefaultConfig = "/etc/xvs/xvs.toml"

func main() {
	o := defineFlags(flag.CommandLine)
	flag.Parse()
	if o.version {
		writeVersion(os.Stdout)
		return
	}
	if o.manpage != "" {
		if err := writeManpage(os.Stdout, o.manpage, flag.CommandLine); err != nil {
			fmt.Fprintln(os.Stderr, "xvsd:", err)
			os.Exit(1)
		}
		return
	}
	opts := control.Options{Socket: o.socket, SocketGroup: -1, Watch: o.watch, Metrics: o.metrics}
	if o.group != "" {
		g, err := user.LookupGroup(o.group)
		if err == nil {
			opts.SocketGroup, err = strconv.Atoi(g.Gid)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "xvsd: -socket-group:", err)
			os.Exit(1)
		}
	}
	if err := run(o.path, o.check, o.logFormat, opts); err != nil {
		fmt.Fprintln(os.Stderr, "xvsd:", err)
		os.Exit(1)
	}
}

// writeVersion writes -version's line: xvs's version.
func writeVersion(w io.Writer) {
	fmt.Fprintf(w, "xvsd %s (xvs %[1]s)\n", version.String())
}

// underSystemd reports whether xvsd's output goes to systemd's journal:
// JOURNAL_STREAM is set when standard output or error is connected to it,
// INVOCATION_ID for every unit's process.
func underSystemd(getenv func(string) string) bool {
	return getenv("JOURNAL_STREAM") != "" || getenv("INVOCATION_ID") != ""
}

// loggerConfig is zap's configuration for level and format ("auto",
// "console" or "json"): console lines carry a timestamp unless the journal
// stamps them already.
func loggerConfig(level, format string, getenv func(string) string) (zap.Config, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return zap.Config{}, err
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	cfg.DisableStacktrace = true
	switch format {
	case "json":
		cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	case "console", "auto":
		cfg.Encoding = "console"
		cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
		if format == "auto" && underSystemd(getenv) {
			cfg.EncoderConfig.TimeKey = ""
		}
	default:
		return zap.Config{}, fmt.Errorf("-log-format %q: want console, json or auto", format)
	}
	return cfg, nil
}

func newLogger(level, format string) (*zap.Logger, error) {
	cfg, err := loggerConfig(level, format, os.Getenv)
	if err != nil {
		return nil, err
	}
	return cfg.Build()
}

func run(path string, check bool, logFormat string, opts control.Options) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if check {
		fmt.Printf("%s: ok (%d services)\n", path, len(cfg.Services))
		return nil
	}
	log, err := newLogger(cfg.Director.LogLevel, logFormat)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	sd := sdnotify.FromEnv()
	notify := func(states ...string) {
		if err := sd.Notify(states...); err != nil {
			log.Warn("telling systemd", zap.Strings("states", states), zap.Error(err))
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGINT, syscall.SIGTERM)

	d, err := control.StartWith(ctx, cfg, log, opts)
	if err != nil {
		return err
	}
	if err := dropCapabilities(keptCapabilities); err != nil {
		log.Warn("keeping all capabilities", zap.Error(err))
	} else {
		log.Info("capabilities dropped", zap.Strings("kept", []string{"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_BPF"}))
	}
	// The data path is attached and forwarding: what systemd waits for
	// with Type=notify before it starts what comes after xvsd.
	notify(sdnotify.Ready, sdnotify.Status(fmt.Sprintf("forwarding: %d services", len(cfg.Services))))
	fmt.Println("xvsd: ready")
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			notify(sdnotify.ReloadingNow()...)
			status := "reloaded"
			if err := d.Reload(); err != nil {
				log.Error("reload refused; configuration unchanged", zap.Error(err))
				status = "reload refused; configuration unchanged: " + err.Error()
			}
			notify(sdnotify.Ready, sdnotify.Status(status))
		case syscall.SIGUSR1:
			if err := d.WriteReport(os.Stdout); err != nil {
				log.Error("report", zap.Error(err))
			}
		default:
			notify(sdnotify.Stopping)
			log.Info("stopping", zap.Stringer("signal", sig))
			cancel()
			if err := d.WriteReport(os.Stdout); err != nil {
				log.Error("report", zap.Error(err))
			}
			return d.Close()
		}
	}
	return nil
}
