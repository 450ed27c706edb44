package control

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// DefaultMetrics is where xvsd serves Prometheus metrics unless told
// otherwise: loopback only.
const DefaultMetrics = "127.0.0.1:9469"

// metrics reads everything at scrape time from the data plane's counters
// (a custom Collector), so nothing on the packet path knows about it.
type metrics struct {
	d *Director

	conns, pkts, bytes     *prometheus.Desc
	active, inactive       *prometheus.Desc
	weight, healthy        *prometheus.Desc
	rateConns, ratePkts    *prometheus.Desc
	rx, tx, drops          *prometheus.Desc
	csumCompleted, badCsum *prometheus.Desc
	ctEntries, ctCapacity  *prometheus.Desc
	ctInserts, ctExpired   *prometheus.Desc
	ctFull                 *prometheus.Desc
}

func newMetrics(d *Director) *metrics {
	svc := []string{"service"}
	real := []string{"service", "real"}
	dirLabel := []string{"service", "real", "direction"}
	return &metrics{
		d:         d,
		conns:     prometheus.NewDesc("xvs_real_connections_total", "Connections scheduled to a real server.", real, nil),
		pkts:      prometheus.NewDesc("xvs_real_packets_total", "Packets forwarded for a real server's connections, by direction (in: client to server).", dirLabel, nil),
		bytes:     prometheus.NewDesc("xvs_real_bytes_total", "Bytes forwarded for a real server's connections, by direction.", dirLabel, nil),
		active:    prometheus.NewDesc("xvs_real_active_connections", "ESTABLISHED connections of a real server (ipvsadm ActiveConn).", real, nil),
		inactive:  prometheus.NewDesc("xvs_real_inactive_connections", "Other connections of a real server (ipvsadm InActConn).", real, nil),
		weight:    prometheus.NewDesc("xvs_real_weight", "A real server's weight in effect (0 when quiescent or failing its checks).", real, nil),
		healthy:   prometheus.NewDesc("xvs_real_healthy", "1 when a real server passes its health checks, 0 when not; absent when unchecked.", real, nil),
		rateConns: prometheus.NewDesc("xvs_service_connections_per_second", "Smoothed new-connection rate of a service (ipvsadm --rate CPS).", svc, nil),
		ratePkts:  prometheus.NewDesc("xvs_service_packets_per_second", "Smoothed packet rate of a service, by direction.", []string{"service", "direction"}, nil),
		rx:        prometheus.NewDesc("xvs_worker_rx_frames_total", "Frames a worker received from its AF_XDP sockets.", []string{"worker"}, nil),
		tx:        prometheus.NewDesc("xvs_worker_tx_frames_total", "Frames a worker queued for transmission.", []string{"worker"}, nil),
		drops:     prometheus.NewDesc("xvs_worker_drops_total", "Frames a worker dropped, by reason.", []string{"worker", "reason"}, nil),
		csumCompleted: prometheus.NewDesc("xvs_worker_csum_completed_total",
			"TCP/UDP frames that arrived with a partial checksum (left to a NIC by their sender) and that a worker completed.", []string{"worker"}, nil),
		badCsum: prometheus.NewDesc("xvs_worker_bad_checksum_total",
			"With verify_checksums: frames with a checksum that does not verify, by direction (in: arrived so and forwarded as they came; out: sent so by xvs).",
			[]string{"worker", "direction"}, nil),
		ctEntries:  prometheus.NewDesc("xvs_conntrack_entries", "Connections in the connection table.", nil, nil),
		ctCapacity: prometheus.NewDesc("xvs_conntrack_capacity", "Connections the table holds at most.", nil, nil),
		ctInserts:  prometheus.NewDesc("xvs_conntrack_inserts_total", "Connections inserted.", nil, nil),
		ctExpired:  prometheus.NewDesc("xvs_conntrack_expired_total", "Connections expired.", nil, nil),
		ctFull:     prometheus.NewDesc("xvs_conntrack_full_drops_total", "New connections refused because the table was full.", nil, nil),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.conns, m.pkts, m.bytes, m.active, m.inactive, m.weight, m.healthy,
		m.rateConns, m.ratePkts, m.rx, m.tx, m.drops, m.csumCompleted, m.badCsum, m.ctEntries, m.ctCapacity, m.ctInserts, m.ctExpired, m.ctFull} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	d := m.d
	eng := d.eng
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	t := eng.Table()
	for _, s := range t.Services() {
		name := serviceID(s).String()
		r := d.rates.service(s)
		gauge(m.rateConns, r.CPS, name)
		gauge(m.ratePkts, r.InPPS, name, "in")
		gauge(m.ratePkts, r.OutPPS, name, "out")
		for _, dst := range dests(t, s) {
			real := net.JoinHostPort(dst.Addr.String(), strconv.Itoa(int(dst.Port)))
			c := eng.DestCounters(dst)
			counter(m.conns, c.Conns, name, real)
			counter(m.pkts, c.InPkts, name, real, "in")
			counter(m.pkts, c.OutPkts, name, real, "out")
			counter(m.bytes, c.InBytes, name, real, "in")
			counter(m.bytes, c.OutBytes, name, real, "out")
			a, i := eng.DestConns(dst)
			gauge(m.active, float64(a), name, real)
			gauge(m.inactive, float64(i), name, real)
			gauge(m.weight, float64(dst.Weight), name, real)
			if up, known := d.destHealthy(s, dst); known {
				v := 0.0
				if up {
					v = 1
				}
				gauge(m.healthy, v, name, real)
			}
		}
	}
	for i, w := range eng.WorkerStats() {
		id := strconv.Itoa(i)
		counter(m.rx, w.RxFrames.Load(), id)
		counter(m.tx, w.TxFrames.Load(), id)
		counter(m.csumCompleted, w.CsumCompleted.Load(), id)
		if eng.VerifiesChecksums() {
			counter(m.badCsum, w.BadCsumIn.Load(), id, "in")
			counter(m.badCsum, w.BadCsumOut.Load(), id, "out")
		}
		for reason, n := range w.Drops() {
			counter(m.drops, n, id, reason)
		}
	}
	ct := eng.Conntrack()
	st := ct.Stats()
	gauge(m.ctEntries, float64(ct.Len()))
	gauge(m.ctCapacity, float64(ct.Capacity()))
	counter(m.ctInserts, st.Inserts)
	counter(m.ctExpired, st.Expired)
	counter(m.ctFull, st.FullDrops)
}

// serveMetrics serves /metrics on addr until ctx ends.
func (d *Director) serveMetrics(ctx context.Context, addr string) error {
	reg := prometheus.NewRegistry()
	if err := reg.Register(newMetrics(d)); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics server", zap.Error(err))
		}
	}()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	d.log.Info("serving metrics", zap.String("addr", ln.Addr().String()))
	return nil
}
