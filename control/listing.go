package control

import (
	"bytes"
	"io"

	"github.com/xvs-lb/xvs/control/api"
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

// listing is what xvsadm -L (api.OpList) is answered with.
func (d *Director) listing(filter *api.ServiceID) *api.Response {
	return &api.Response{Services: d.list(filter), Capacity: d.eng.Conntrack().Capacity()}
}

// WriteReport writes what xvsd prints on SIGUSR1 and when it stops: the
// service table with its counters, byte for byte what xvsadm -L -n --stats
// prints, and the data path's state (xvsadm status). It is written at once,
// so that no log line lands inside it.
func (d *Director) WriteReport(w io.Writer) error {
	resp := d.listing(nil)
	resp.Status = d.status()
	var b bytes.Buffer
	if err := ipvsadm.WriteReport(&b, resp); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}
