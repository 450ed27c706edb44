package control

import (
	"io"

	"github.com/xvs-lb/xvs/control/ipvsadm"
	"github.com/xvs-lb/xvs/dataplane"
)

// dests returns a service's real servers plus those draining from it.
func dests(t *dataplane.Table, s *dataplane.Service) []*dataplane.Dest {
	out := append([]*dataplane.Dest(nil), s.Dests...)
	for _, d := range t.Draining() {
		if d.Service == s.ID {
			out = append(out, d)
		}
	}
	return out
}

// WriteReport writes what xvsd prints on SIGUSR1 and when it stops: the
// service table with its counters (xvsadm -L -n --stats) and the data
// path's state (xvsadm status), with xvsadm's own writers.
func (d *Director) WriteReport(w io.Writer) {
	ipvsadm.WriteHeader(w, d.eng.Conntrack().Capacity())
	ipvsadm.WriteServices(w, d.list(nil), ipvsadm.ListOptions{Numeric: true, Stats: true})
	ipvsadm.WriteStatus(w, d.status())
}
