package dataplane

import (
	"fmt"
	"maps"

	"github.com/xvs-lb/xvs/sched"
)

// registry hands out the stable IDs that connection entries refer to: a real
// server keeps its ID across reloads for as long as it is configured or still
// carries connections, so an established connection keeps finding it.
type registry struct {
	serviceIDs map[serviceKey]uint32
	destIDs    map[destKey]uint32
	freeSvc    []uint32
	freeDest   []uint32
	nextSvc    uint32
	nextDest   uint32
	maxDests   int
	hops       []*nextHop // by dest ID; shared by every generation
}

func newRegistry(maxDests int) *registry {
	r := &registry{
		serviceIDs: map[serviceKey]uint32{},
		destIDs:    map[destKey]uint32{},
		maxDests:   maxDests,
		hops:       make([]*nextHop, maxDests),
	}
	for i := range r.hops {
		r.hops[i] = &nextHop{}
	}
	return r
}

func (r *registry) clone() *registry {
	c := *r
	c.serviceIDs = maps.Clone(r.serviceIDs)
	c.destIDs = maps.Clone(r.destIDs)
	c.freeSvc = append([]uint32(nil), r.freeSvc...)
	c.freeDest = append([]uint32(nil), r.freeDest...)
	return &c
}

func alloc(free *[]uint32, next *uint32, limit int) (uint32, bool) {
	if n := len(*free); n > 0 {
		id := (*free)[n-1]
		*free = (*free)[:n-1]
		return id, true
	}
	if int(*next) >= limit {
		return 0, false
	}
	*next++
	return *next - 1, true
}

// build validates specs and returns the next Table. prev's real servers that
// are gone from specs stay, draining, while conns reports connections for
// them. On error the registry is unchanged.
func (r *registry) build(specs []ServiceSpec, prev *Table, conns func(dest uint32) int64) (*registry, *Table, error) {
	n := r.clone()
	t := &Table{services: map[serviceKey]*Service{}, dests: make([]*Dest, r.maxDests)}
	liveDests := map[destKey]bool{}
	for i := range specs {
		spec := &specs[i]
		if !spec.VIP.IsValid() {
			return nil, nil, fmt.Errorf("service %d: no VIP", i)
		}
		if spec.Proto != 6 && spec.Proto != 17 {
			return nil, nil, fmt.Errorf("service %s:%d: protocol %d is not TCP or UDP", spec.VIP, spec.Port, spec.Proto)
		}
		sk := makeServiceKey(spec.VIP.Unmap(), spec.Port, spec.Proto)
		if t.services[sk] != nil {
			return nil, nil, fmt.Errorf("service %s:%d/%d defined twice", spec.VIP, spec.Port, spec.Proto)
		}
		id, ok := n.serviceIDs[sk]
		if !ok {
			if id, ok = alloc(&n.freeSvc, &n.nextSvc, maxServices); !ok {
				return nil, nil, fmt.Errorf("more than %d services", maxServices)
			}
			n.serviceIDs[sk] = id
		}
		svc := &Service{ID: id, VIP: spec.VIP.Unmap(), Port: spec.Port, Proto: spec.Proto}
		sdests := make([]sched.Dest, 0, len(spec.Reals))
		for _, real := range spec.Reals {
			addr := real.Addr.Unmap()
			if addr.Is4() != svc.VIP.Is4() {
				return nil, nil, fmt.Errorf("service %s:%d: real server %s is of another address family", spec.VIP, spec.Port, addr)
			}
			if real.Weight < 0 || real.Weight > 65535 {
				return nil, nil, fmt.Errorf("service %s:%d: real server %s: weight %d out of 0..65535", spec.VIP, spec.Port, addr, real.Weight)
			}
			if real.Method == MethodDR && real.Port != spec.Port {
				return nil, nil, fmt.Errorf("service %s:%d: real server %s:%d: direct routing cannot change the port", spec.VIP, spec.Port, addr, real.Port)
			}
			dk := destKey{svc: sk, addr: addr.As16(), port: real.Port}
			if liveDests[dk] {
				return nil, nil, fmt.Errorf("service %s:%d: real server %s:%d listed twice", spec.VIP, spec.Port, addr, real.Port)
			}
			liveDests[dk] = true
			did, ok := n.destIDs[dk]
			if !ok {
				if did, ok = alloc(&n.freeDest, &n.nextDest, n.maxDests); !ok {
					return nil, nil, fmt.Errorf("more than %d real servers", n.maxDests)
				}
				n.destIDs[dk] = did
			}
			d := &Dest{ID: did, Service: id, Addr: addr, Port: real.Port, Weight: real.Weight, Method: real.Method, hop: n.hops[did]}
			t.dests[did] = d
			svc.Dests = append(svc.Dests, d)
			sdests = append(sdests, sched.Dest{ID: did, Weight: real.Weight})
		}
		s, err := sched.New(spec.Scheduler, sdests)
		if err != nil {
			return nil, nil, fmt.Errorf("service %s:%d: %w", spec.VIP, spec.Port, err)
		}
		svc.sched = s
		t.services[sk] = svc
		t.ordered = append(t.ordered, svc)
	}
	// Real servers that left the configuration: drain or forget.
	for dk, did := range n.destIDs {
		if liveDests[dk] {
			continue
		}
		if prev != nil && conns(did) > 0 {
			if old := prev.dest(did); old != nil {
				d := *old
				d.Draining, d.Weight = true, 0
				t.dests[did] = &d
				continue
			}
		}
		delete(n.destIDs, dk)
		n.freeDest = append(n.freeDest, did)
	}
	for sk, id := range n.serviceIDs {
		if t.services[sk] == nil {
			delete(n.serviceIDs, sk)
			n.freeSvc = append(n.freeSvc, id)
		}
	}
	return n, t, nil
}

// maxServices bounds the per-service counter arrays.
const maxServices = 1024
