package control

import (
	"context"
	"sync"
	"time"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/dataplane"
)

// rateEstimator turns counters into the per-second rates of ipvsadm
// --rate, as IPVS's estimator does: sampled every two seconds, smoothed.
type rateEstimator struct {
	eng   *dataplane.Engine
	mu    sync.Mutex
	last  map[uint32]dataplane.Counters
	rates map[uint32]api.Rates
}

const rateInterval = 2 * time.Second

func newRateEstimator(eng *dataplane.Engine) *rateEstimator {
	return &rateEstimator{eng: eng, last: map[uint32]dataplane.Counters{}, rates: map[uint32]api.Rates{}}
}

func (r *rateEstimator) run(ctx context.Context) {
	tick := time.NewTicker(rateInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			r.sample()
		}
	}
}

// ewma weighs the newest interval by a quarter, as IPVS's estimator.
func ewma(old, now float64) float64 { return old + (now-old)/4 }

func (r *rateEstimator) sample() {
	t := r.eng.Table()
	sec := rateInterval.Seconds()
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[uint32]bool{}
	for _, s := range t.Services() {
		for _, d := range dests(t, s) {
			seen[d.ID] = true
			c := r.eng.DestCounters(d)
			prev, ok := r.last[d.ID]
			r.last[d.ID] = c
			if !ok || c.Conns < prev.Conns || c.InPkts < prev.InPkts {
				continue // new, or zeroed with -Z
			}
			old := r.rates[d.ID]
			r.rates[d.ID] = api.Rates{
				CPS:    ewma(old.CPS, float64(c.Conns-prev.Conns)/sec),
				InPPS:  ewma(old.InPPS, float64(c.InPkts-prev.InPkts)/sec),
				OutPPS: ewma(old.OutPPS, float64(c.OutPkts-prev.OutPkts)/sec),
				InBPS:  ewma(old.InBPS, float64(c.InBytes-prev.InBytes)/sec),
				OutBPS: ewma(old.OutBPS, float64(c.OutBytes-prev.OutBytes)/sec),
			}
		}
	}
	for id := range r.last {
		if !seen[id] {
			delete(r.last, id)
			delete(r.rates, id)
		}
	}
}

func (r *rateEstimator) dest(id uint32) api.Rates {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rates[id]
}

func (r *rateEstimator) service(s *dataplane.Service) api.Rates {
	r.mu.Lock()
	defer r.mu.Unlock()
	var sum api.Rates
	for _, d := range s.Dests {
		x := r.rates[d.ID]
		sum.CPS += x.CPS
		sum.InPPS += x.InPPS
		sum.OutPPS += x.OutPPS
		sum.InBPS += x.InBPS
		sum.OutBPS += x.OutBPS
	}
	return sum
}
