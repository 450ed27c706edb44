// Command xvsadm administers xvsd as ipvsadm administers the kernel's IPVS:
// the same commands, options and output layouts, so that scripts and habits
// carry over. It sends each command to xvsd over its unix socket and prints
// the answer.
//
//	xvsadm [--socket PATH] <ipvsadm arguments>
//	xvsadm -A -t 198.18.0.100:80 -s rr
//	xvsadm -a -t 198.18.0.100:80 -r 198.18.0.11:80 -g -w 1
//	xvsadm -L -n [--stats|--rate|--thresholds|-c|--timeout] [--json]
//	xvsadm -S -n > rules; xvsadm -R < rules
//	xvsadm --start-daemon master|backup [--syncid SID]; xvsadm -L --daemon
//	xvsadm status | health | reload | save-config FILE
//	xvsadm realserver dr|tun|nat --vip VIP ... (on a real server; see -h)
//	xvsadm import-keepalived [-o FILE] keepalived.conf (see -h)
//
// The socket is --socket's, else $XVS_SOCKET's, else /run/xvs/xvsd.sock.
// (ipvsadm's -S is --save, so the socket has only a long option.)
//
// Messages and exit status are ipvsadm's: 0 on success; 255 when xvsd
// refused the change, with libipvs's message alone ("No such service"), and
// for a command line whose first option is not a command (after ipvsadm's
// "Try `ipvsadm -h'" line); 2 for any other command line that is not valid,
// with ipvsadm's message alone, and when xvsd cannot be reached.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/control/ipvsadm"
)

// SocketEnv names the environment variable with xvsd's socket.
const SocketEnv = "XVS_SOCKET"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit statuses, ipvsadm's.
const (
	exitOK      = 0
	exitRefused = 255 // xvsd refused (ipvsadm returns libipvs's -1)
	exitUsage   = 2   // bad command line, or no xvsd (ipvsadm's fail(2, ...))
	exitFailed  = 1   // a command of xvsadm's own (realserver, import-keepalived, manpage, completion) failed
)

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// fail prints an error of xvsadm's own; ipvsadm's messages (usage,
	// refusals) are printed as ipvsadm prints them, alone.
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "xvsadm: "+format+"\n", a...)
		return code
	}
	plain := func(code int, err error) int {
		var e *ipvsadm.Error
		if errors.As(err, &e) && e.TryHelp {
			fmt.Fprintf(stderr, "%v\nTry `xvsadm -h' or 'xvsadm --help' for more information.\n", err)
			return exitRefused
		}
		fmt.Fprintln(stderr, err)
		return code
	}
	if len(args) > 0 {
		if c, ok := lookupLocal(args[0]); ok {
			return c.run(args[1:], stdout, stderr)
		}
	}
	socket, args, err := socketArg(args)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	cmd, err := ipvsadm.Parse(args)
	if err != nil {
		return plain(exitUsage, err)
	}
	if cmd.Local() {
		if err := cmd.Print(stdout, &api.Response{}); err != nil {
			return fail(exitRefused, "%v", err)
		}
		return exitOK
	}

	switch cmd.Request.Op {
	case api.OpRestore:
		text, err := readRules(stdin)
		if err != nil {
			return fail(exitUsage, "restore: %v", err)
		}
		// Refuse a bad file here, with its line, before xvsd sees any of
		// it; xvsd applies all of the rules or none.
		if _, err := ipvsadm.ParseRules(text); err != nil {
			return plain(exitUsage, err)
		}
		cmd.Request.Text = text
	case api.OpSaveConfig:
		// xvsd's working directory is not ours.
		abs, err := filepath.Abs(cmd.Request.Path)
		if err != nil {
			return fail(exitUsage, "save-config: %v", err)
		}
		cmd.Request.Path = abs
	}

	resp, err := api.Call(ctx, socket, &cmd.Request)
	var remote *api.RemoteError
	switch {
	case errors.As(err, &remote):
		fmt.Fprintln(stderr, remote.Msg)
		return exitRefused
	case err != nil:
		return fail(exitUsage, "%v", err)
	}
	if err := cmd.Print(stdout, resp); err != nil {
		return fail(exitRefused, "%v", err)
	}
	if cmd.Layout == ipvsadm.LayoutConns && resp.ConnsTotal > len(resp.Conns) {
		fmt.Fprintf(stderr, "xvsadm: listing cut: %d of %d connection entries shown (xvsd sends at most %d; name a service to narrow it)\n",
			len(resp.Conns), resp.ConnsTotal, api.MaxListedConns)
	}
	return exitOK
}

// socketArg takes --socket PATH (or --socket=PATH) out of args and returns
// the socket to use.
func socketArg(args []string) (string, []string, error) {
	socket := os.Getenv(SocketEnv)
	if socket == "" {
		socket = api.DefaultSocket
	}
	rest := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return socket, append(rest, args[i:]...), nil
		case a == "--socket":
			if i+1 >= len(args) {
				return "", nil, errors.New("option `--socket' requires an argument")
			}
			i++
			socket = args[i]
		case strings.HasPrefix(a, "--socket="):
			socket = strings.TrimPrefix(a, "--socket=")
		default:
			rest = append(rest, a)
		}
	}
	if socket == "" {
		return "", nil, errors.New("empty socket path")
	}
	return socket, rest, nil
}

// readRules reads -R's rules, at most what one request may carry.
func readRules(r io.Reader) (string, error) {
	// The JSON around the text takes a few bytes of the request's limit.
	const limit = api.MaxRequestSize - 1024
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return "", fmt.Errorf("reading standard input: %w", err)
	}
	if len(b) > limit {
		return "", fmt.Errorf("more than %d bytes of rules", limit)
	}
	return string(b), nil
}
