package realserver

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/control/realserver/decap"
)

// undo reverts what the state file records, in the reverse order of Apply:
// decapsulator, VIPs, sysctls (last changed first), route. It carries on
// past a failure, so that one stuck item does not pin the others, keeps the
// items it could not revert in the state file, and removes the file once
// everything is reverted.
func undo(opts Options) ([]Action, error) {
	path := opts.StateFile
	if path == "" {
		path = DefaultStateFile(opts.Interface)
	}
	st, err := readState(path)
	if err != nil {
		return nil, fmt.Errorf("realserver undo: %w", err)
	}
	if st == nil {
		return []Action{{What: "nothing to undo: no state in " + path}}, nil
	}
	if opts.Mode != 0 && opts.Mode.String() != st.Mode {
		return nil, fmt.Errorf("realserver undo: %s records a %s setup, not %v", path, st.Mode, opts.Mode)
	}
	if opts.Interface != "" && opts.Interface != st.Interface {
		return nil, fmt.Errorf("realserver undo: %s records a setup of interface %q, not %q", path, st.Interface, opts.Interface)
	}
	r := &runner{dry: opts.DryRun, st: st}
	var errs []error
	for _, step := range []func() error{r.undoDecap, r.undoAddrs, r.undoSysctls, r.undoRoute} {
		if err := step(); err != nil {
			errs = append(errs, err)
		}
	}
	if !r.dry {
		err := writeState(path, st)
		if err == nil && st.empty() {
			r.actions = append(r.actions, Action{What: "remove " + path, Done: true})
		}
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return r.actions, fmt.Errorf("realserver undo %s: %w", st.Mode, err)
	}
	return r.actions, nil
}

func (r *runner) undoDecap() error {
	if r.st.Decap == nil {
		return nil
	}
	l, err := netlink.LinkByName(r.st.Interface)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		r.note(fmt.Sprintf("interface %s is gone, and its decapsulator with it", r.st.Interface))
		r.st.Decap = nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("interface %s: %w", r.st.Interface, err)
	}
	return r.change("detach decapsulator from "+r.st.Interface, func() (string, error) {
		ok, err := decap.Detach(l.Attrs().Index)
		if err != nil {
			return "", err
		}
		r.st.Decap = nil
		if !ok {
			return "(it was gone already)", nil
		}
		return "", nil
	})
}

func (r *runner) undoAddrs() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("interface lo: %w", err)
	}
	var errs []error
	for _, s := range slices.Clone(r.st.Addrs) {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("state: address %q: %w", s, err))
			continue
		}
		err = r.change("remove "+s+" from lo", func() (string, error) {
			if err := delAddr(lo, pfx); err != nil {
				return "", err
			}
			r.st.Addrs = slices.DeleteFunc(r.st.Addrs, func(a string) bool { return a == s })
			return "", nil
		})
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (r *runner) undoSysctls() error {
	var errs []error
	for _, rec := range slices.Backward(slices.Clone(r.st.Sysctls)) {
		drop := func() {
			r.st.Sysctls = slices.DeleteFunc(r.st.Sysctls, func(x sysctlRecord) bool { return x.Path == rec.Path })
		}
		cur, err := readSysctl(rec.Path)
		if err != nil {
			// The interface it belonged to is gone.
			r.note(fmt.Sprintf("%s is gone: nothing to restore", sysctlName(rec.Path)))
			drop()
			continue
		}
		if cur == rec.Old {
			r.note(fmt.Sprintf("%s = %s: already", sysctlName(rec.Path), rec.Old))
			drop()
			continue
		}
		err = r.change(fmt.Sprintf("restore %s = %s (is %s)", sysctlName(rec.Path), rec.Old, cur), func() (string, error) {
			if err := writeSysctl(rec.Path, rec.Old); err != nil {
				return "", err
			}
			drop()
			return "", nil
		})
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (r *runner) undoRoute() error {
	ch := r.st.Route
	if ch == nil {
		return nil
	}
	family := netlink.FAMILY_V4
	if ch.Added.Family == 6 {
		family = netlink.FAMILY_V6
	}
	defs, err := defaultRoutes(family)
	if err != nil {
		return err
	}
	var ours *netlink.Route
	for i := range defs {
		if sameRoute(defs[i], family, ch.Added) {
			ours = &defs[i]
			break
		}
	}
	if ours == nil && len(ch.Removed) == 0 {
		r.note(fmt.Sprintf("default route %v is gone already", ch.Added))
		if !r.dry {
			r.st.Route = nil
		}
		return nil
	}
	what := "restore default route " + routeStrings(ch.Removed)
	if len(ch.Removed) == 0 {
		what = "remove default route " + ch.Added.String()
	} else if ours != nil {
		what += " in place of " + ch.Added.String()
	}
	return r.change(what, func() (string, error) {
		old := make([]*netlink.Route, len(ch.Removed))
		for i, rec := range ch.Removed {
			rt, err := rec.route()
			if err != nil {
				return "", err
			}
			old[i] = rt
		}
		// The old route of our metric takes ours over in one step, so
		// that there is always a default route; the others come back
		// beside it.
		replaced := -1
		if ours != nil {
			for i, rt := range old {
				if rt.Priority == ours.Priority {
					replaced = i
					break
				}
			}
			var err error
			if replaced >= 0 {
				err = netlink.RouteReplace(old[replaced])
			} else {
				err = netlink.RouteDel(ours)
			}
			if err != nil && !errors.Is(err, unix.ESRCH) {
				return "", err
			}
		}
		var errs []error
		for i, rt := range old {
			if i == replaced {
				continue
			}
			if err := ignoreExist(netlink.RouteAdd(rt)); err != nil {
				errs = append(errs, fmt.Errorf("add %v: %w", ch.Removed[i], err))
			}
		}
		if err := errors.Join(errs...); err != nil {
			return "", err
		}
		r.st.Route = nil
		return "", nil
	})
}
