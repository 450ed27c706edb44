// MPTCP listeners, Go's default since 1.24, cannot carry the TCP MD5 and
// TTL options BGP sessions need.
//
//go:debug multipathtcp=0

// Command xvsd is the xvs director daemon: it loads a TOML configuration,
// attaches to the configured interfaces with XDP and AF_XDP, and forwards
// connections to real servers until told to stop.
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
	"github.com/xvs-lb/xvs/internal/version"
)

func main() {
	path := flag.String("config", "/etc/xvs/xvs.toml", "configuration file")
	check := flag.Bool("check", false, "validate the configuration and exit")
	socket := flag.String("socket", api.DefaultSocket, "control socket for xvsadm (empty: none)")
	group := flag.String("socket-group", "", "group whose members may use the control socket besides root")
	watch := flag.Bool("watch", true, "reload the configuration when its file changes")
	metrics := flag.String("metrics", control.DefaultMetrics, "address for Prometheus metrics (/metrics); empty: none")
	showVersion := flag.Bool("version", false, "print xvs's version and exit")
	flag.Parse()
	if *showVersion {
		writeVersion(os.Stdout)
		return
	}
	opts := control.Options{Socket: *socket, SocketGroup: -1, Watch: *watch, Metrics: *metrics}
	if *group != "" {
		g, err := user.LookupGroup(*group)
		if err == nil {
			opts.SocketGroup, err = strconv.Atoi(g.Gid)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "xvsd: -socket-group:", err)
			os.Exit(1)
		}
	}
	if err := run(*path, *check, opts); err != nil {
		fmt.Fprintln(os.Stderr, "xvsd:", err)
		os.Exit(1)
	}
}

// writeVersion writes -version's line: xvs's version.
func writeVersion(w io.Writer) {
	fmt.Fprintf(w, "xvsd %s (xvs %[1]s)\n", version.String())
}

func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	cfg.DisableStacktrace = true
	cfg.Encoding = "console"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	return cfg.Build()
}

func run(path string, check bool, opts control.Options) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if check {
		fmt.Printf("%s: ok (%d services)\n", path, len(cfg.Services))
		return nil
	}
	log, err := newLogger(cfg.Director.LogLevel)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

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
	fmt.Println("xvsd: ready")
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			if err := d.Reload(); err != nil {
				log.Error("reload refused; configuration unchanged", zap.Error(err))
			}
		case syscall.SIGUSR1:
			if err := d.WriteReport(os.Stdout); err != nil {
				log.Error("report", zap.Error(err))
			}
		default:
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
