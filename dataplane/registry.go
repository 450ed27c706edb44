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
	t := &Table{services: map[serviceKey]*Service{}, dests: make([]*Dest, r.maxDests), byID: make([]*Service, maxServices), byKey: map[serviceKey]*Service{}}
	liveDests := map[destKey]bool{}
	lookups := 0
	for i := range specs {
		spec := &specs[i]
		ms := spec.matches()
		for _, m := range ms {
			if !m.VIP.IsValid() {
				return nil, nil, fmt.Errorf("service %d: no VIP", i)
			}
			if m.Proto != 6 && m.Proto != 17 {
				return nil, nil, fmt.Errorf("service %s:%d: protocol %d is not TCP or UDP", m.VIP, m.FromPort, m.Proto)
			}
			if m.FromPort == 0 || m.ToPort < m.FromPort {
				return nil, nil, fmt.Errorf("service %s: bad port range %d-%d", m.VIP, m.FromPort, m.ToPort)
			}
			if m.VIP.Unmap().Is4() != ms[0].VIP.Unmap().Is4() {
				return nil, nil, fmt.Errorf("group %q mixes address families", spec.Name)
			}
		}
		sk := makeServiceKey(ms[0].VIP.Unmap(), ms[0].FromPort, ms[0].Proto)
		name := fmt.Sprintf("%s:%d", ms[0].VIP, ms[0].FromPort)
		if len(spec.Matches) > 0 {
			if spec.Mark == 0 {
				return nil, nil, fmt.Errorf("group %q has no mark", spec.Name)
			}
			sk = serviceKey{mark: spec.Mark}
			name = fmt.Sprintf("group %q", spec.Name)
		}
		if t.byKey[sk] != nil {
			return nil, nil, fmt.Errorf("service %s defined twice", name)
		}
		id, ok := n.serviceIDs[sk]
		if !ok {
			if id, ok = alloc(&n.freeSvc, &n.nextSvc, maxServices); !ok {
				return nil, nil, fmt.Errorf("more than %d services", maxServices)
			}
			n.serviceIDs[sk] = id
		}
		svc := &Service{
			ID: id, Name: spec.Name, VIP: ms[0].VIP.Unmap(), Port: ms[0].FromPort, Proto: ms[0].Proto,
			Flags: spec.Flags, persist: int64(spec.Persistence), persistPrefix: spec.PersistPrefix,
			toa: spec.TOA, noFastPath: spec.NoFastPath, synProxy: spec.SynProxy,
		}
		for _, m := range ms {
			if spec.SynProxy && m.Proto != 6 {
				return nil, nil, fmt.Errorf("service %s: syn_proxy is for TCP services", name)
			}
		}
		if len(spec.LocalAddrs) > 256 {
			return nil, nil, fmt.Errorf("service %s: more than 256 local addresses", name)
		}
		for _, a := range spec.LocalAddrs {
			// A connection leaves from a local address of its own family.
			if a = a.Unmap(); a.Is4() == svc.VIP.Is4() {
				svc.lips = append(svc.lips, a)
			}
		}
		svc.lportMin, svc.lportMax = DefaultLocalPortMin, DefaultLocalPortMax
		if spec.LocalPortMin != 0 || spec.LocalPortMax != 0 {
			if spec.LocalPortMin == 0 || spec.LocalPortMin > spec.LocalPortMax {
				return nil, nil, fmt.Errorf("service %s: local ports %d-%d: want 1 <= first <= last", name, spec.LocalPortMin, spec.LocalPortMax)
			}
			svc.lportMin, svc.lportMax = uint32(spec.LocalPortMin), uint32(spec.LocalPortMax)
		}
		if len(spec.Matches) > 0 {
			svc.Mark, svc.Matches, svc.Port = spec.Mark, ms, 0
		}
		sdests := make([]sched.Dest, 0, len(spec.Reals))
		for _, real := range spec.Reals {
			addr := real.Addr.Unmap()
			if addr.Is4() != svc.VIP.Is4() {
				return nil, nil, fmt.Errorf("service %s: real server %s is of another address family", name, addr)
			}
			if real.Weight < 0 || real.Weight > 65535 {
				return nil, nil, fmt.Errorf("service %s: real server %s: weight %d out of 0..65535", name, addr, real.Weight)
			}
			if (real.Method == MethodDR || real.Method == MethodTUN) && real.Port != svc.Port {
				return nil, nil, fmt.Errorf("service %s: real server %s:%d: %s cannot change the port", name, addr, real.Port, real.Method)
			}
			if real.Method == MethodFullNAT {
				ok := false
				for _, l := range svc.lips {
					ok = ok || l.Is4() == addr.Is4()
				}
				if !ok {
					return nil, nil, fmt.Errorf("service %s: real server %s uses FullNAT but the service has no local address of its family", name, addr)
				}
			}
			if spec.SynProxy && real.Method != MethodNAT && real.Method != MethodFullNAT {
				// The client's half keeps the proxy's sequence numbers: a
				// reply that bypasses the director would carry the real
				// server's, which the client rejects.
				return nil, nil, fmt.Errorf("service %s: real server %s: syn_proxy needs NAT or FullNAT (%s replies bypass the director, which translates their sequence numbers)", name, addr, real.Method)
			}
			if real.Port == 0 && len(spec.Matches) == 0 {
				return nil, nil, fmt.Errorf("service %s: real server %s has no port", name, addr)
			}
			dk := destKey{svc: sk, addr: addr.As16(), port: real.Port}
			if liveDests[dk] {
				return nil, nil, fmt.Errorf("service %s: real server %s:%d listed twice", name, addr, real.Port)
			}
			liveDests[dk] = true
			did, ok := n.destIDs[dk]
			if !ok {
				if did, ok = alloc(&n.freeDest, &n.nextDest, n.maxDests); !ok {
					return nil, nil, fmt.Errorf("more than %d real servers", n.maxDests)
				}
				n.destIDs[dk] = did
			}
			d := &Dest{
				ID: did, Service: id, Addr: addr, Port: real.Port, Weight: real.Weight, Method: real.Method,
				UpperThreshold: real.UpperThreshold, LowerThreshold: real.LowerThreshold, hop: n.hops[did],
			}
			t.dests[did] = d
			svc.Dests = append(svc.Dests, d)
			sdests = append(sdests, sched.Dest{
				ID: did, Weight: real.Weight, Addr: addr.As16(), Port: real.Port,
				UpperThreshold: real.UpperThreshold, LowerThreshold: real.LowerThreshold,
			})
		}
		s, err := sched.NewWithOptions(spec.Scheduler, sdests, sched.Options{Flags: spec.Flags, Seed: schedSeed})
		if err != nil {
			return nil, nil, fmt.Errorf("service %s: %w", name, err)
		}
		svc.sched = s
		t.byKey[sk] = svc
		t.byID[id] = svc
		for _, m := range ms {
			for p := int(m.FromPort); p <= int(m.ToPort); p++ {
				k := makeServiceKey(m.VIP.Unmap(), uint16(p), m.Proto)
				if t.services[k] != nil {
					return nil, nil, fmt.Errorf("service %s: %s:%d/%d is already another service's", name, m.VIP, p, m.Proto)
				}
				if lookups++; lookups > maxLookups {
					return nil, nil, fmt.Errorf("more than %d (VIP, port, protocol) entries", maxLookups)
				}
				t.services[k] = svc
			}
		}
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
	// A removed service's ID stays taken while real servers drain from it,
	// so that no other service takes it over with their connections (and
	// the same service added back finds them).
	drainingFrom := map[uint32]bool{}
	for _, d := range t.dests {
		if d != nil && d.Draining {
			drainingFrom[d.Service] = true
		}
	}
	for sk, id := range n.serviceIDs {
		if t.byKey[sk] == nil && !drainingFrom[id] {
			delete(n.serviceIDs, sk)
			n.freeSvc = append(n.freeSvc, id)
		}
	}
	return n, t, nil
}

const (
	// maxServices bounds the per-service arrays.
	maxServices = 1024
	// maxLookups bounds the (VIP, port, protocol) entries that groups'
	// port ranges expand to, here and in the steering program's map.
	maxLookups = 1 << 16
	// schedSeed makes hashing schedulers (mh) build the same table on
	// every director with the same real servers.
	schedSeed = 0x7876735f6d616776
)
