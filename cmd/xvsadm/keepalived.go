package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/xvs-lb/xvs/control/keepalived"
)

const importUsage = `usage: xvsadm import-keepalived [-o FILE] [-interface IF,...] [-key KEY] [-config-id ID] KEEPALIVED.CONF

Writes the xvs configuration equivalent to a keepalived configuration (its
virtual servers, real servers, checkers and VRRP instances) to standard output
or -o FILE. What has no equivalent in xvs is reported on standard error with
its file and line, and "not supported". Exit status 0 unless the keepalived
configuration has a syntax error (2) or cannot be read or written (1).`

// importFlags are import-keepalived's options, also listed by xvsadm(8).
func importFlags(stderr io.Writer) (*flag.FlagSet, *string, *string, *string, *string) {
	fs := flag.NewFlagSet("import-keepalived", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, importUsage) }
	out := fs.String("o", "", "write the configuration to this file instead of standard output")
	ifs := fs.String("interface", "", "the director's interfaces, comma-separated (default: those the VRRP instances name, else eth0)")
	key := fs.String("key", "", "[failover]'s shared key, 16 bytes or more (default: derived from auth_pass, the same on both directors)")
	id := fs.String("config-id", "", "keepalived's -i: read the conditional lines @ID of this configuration id")
	return fs, out, ifs, key, id
}

// importMain runs on the operator's machine, not against xvsd.
func importMain(args []string, stdout, stderr io.Writer) int {
	fs, out, ifs, key, id := importFlags(stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	opts := keepalived.Options{Key: *key, ConfigID: *id}
	for _, i := range strings.Split(*ifs, ",") {
		if i = strings.TrimSpace(i); i != "" {
			opts.Interfaces = append(opts.Interfaces, i)
		}
	}
	res, err := keepalived.Convert(fs.Arg(0), opts)
	var syntax *keepalived.SyntaxError
	switch {
	case errors.As(err, &syntax):
		fmt.Fprintf(stderr, "xvsadm import-keepalived: %v\n", err)
		return exitUsage
	case err != nil:
		fmt.Fprintf(stderr, "xvsadm import-keepalived: %v\n", err)
		return exitFailed
	}
	for _, m := range res.Messages {
		fmt.Fprintln(stderr, m)
	}
	if *out == "" {
		if _, err := stdout.Write(res.TOML); err != nil {
			fmt.Fprintf(stderr, "xvsadm import-keepalived: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
	if err := writeFileAtomic(*out, res.TOML); err != nil {
		fmt.Fprintf(stderr, "xvsadm import-keepalived: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// writeFileAtomic writes data to path by a rename, so that a watching
// xvsd never reads half a file.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
