package control

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/xvs-lb/xvs/control/api"
	"github.com/xvs-lb/xvs/control/failover"
	"github.com/xvs-lb/xvs/internal/version"
)

// DefaultMetrics is where xvsd serves Prometheus metrics unless told
// otherwise: loopback only.
const DefaultMetrics = "127.0.0.1:9469"

// The labels of a service's and a real server's metrics, one thing each,
// as node_exporter's node_ipvs_backend_* have them, so that IPVS
// dashboards carry over: a service is (vip, port, protocol), or a group's
// mark with the three empty; a real server adds (real, real_port).
var (
	serviceLabelNames = []string{"vip", "port", "protocol", "mark"}
	realLabelNames    = []string{"vip", "port", "protocol", "mark", "real", "real_port"}
)

// serviceLabels are a service's label values, in serviceLabelNames' order.
func serviceLabels(id api.ServiceID) []string {
	if id.Mark != 0 {
		return []string{"", "", "", strconv.FormatUint(uint64(id.Mark), 10)}
	}
	return []string{id.VIP.String(), strconv.Itoa(int(id.Port)), strings.ToLower(id.Protocol), ""}
}

// realLabels are a real server's, in realLabelNames' order.
func realLabels(id api.ServiceID, real string, port uint16) []string {
	return append(serviceLabels(id), real, strconv.Itoa(int(port)))
}

func with(labels []string, more ...string) []string {
	return append(append([]string(nil), labels...), more...)
}

// metrics reads everything at scrape time from the data plane's counters
// and the control plane's state (a custom Collector), so nothing on the
// packet path knows about it.
type metrics struct {
	d *Director

	svcConns, svcPkts, svcBytes     *prometheus.Desc
	conns, pkts, bytes              *prometheus.Desc
	active, inactive, persist       *prometheus.Desc
	weight, healthy                 *prometheus.Desc
	rateConns, ratePkts             *prometheus.Desc
	rx, tx, drops                   *prometheus.Desc
	csumCompleted, badCsum          *prometheus.Desc
	synProxySynAcks, synProxyOpened *prometheus.Desc
	xdpSynAcks                      *prometheus.Desc
	ctEntries, ctCapacity           *prometheus.Desc
	ctInserts, ctExpired            *prometheus.Desc
	ctFull                          *prometheus.Desc
	buildInfo, reloads, healthMove  *prometheus.Desc
	bgpUp, bgpState, bgpAnnounced   *prometheus.Desc
	syncDgrams, syncEntries         *prometheus.Desc
	syncBytes, syncDropped          *prometheus.Desc
	syncRejected, failoverMaster    *prometheus.Desc
	syncIgnored                     *prometheus.Desc
}

func newMetrics(d *Director) *metrics {
	svc, real := serviceLabelNames, realLabelNames
	svcDir, realDir := with(svc, "direction"), with(real, "direction")
	desc := prometheus.NewDesc
	return &metrics{
		d:         d,
		svcConns:  desc("xvs_service_connections_total", "Connections scheduled for a service (ipvsadm --stats Conns).", svc, nil),
		svcPkts:   desc("xvs_service_packets_total", "Packets forwarded for a service's connections, by direction (in: client to server).", svcDir, nil),
		svcBytes:  desc("xvs_service_bytes_total", "Bytes forwarded for a service's connections, by direction.", svcDir, nil),
		conns:     desc("xvs_real_connections_total", "Connections scheduled to a real server.", real, nil),
		pkts:      desc("xvs_real_packets_total", "Packets forwarded for a real server's connections, by direction (in: client to server).", realDir, nil),
		bytes:     desc("xvs_real_bytes_total", "Bytes forwarded for a real server's connections, by direction.", realDir, nil),
		active:    desc("xvs_real_active_connections", "ESTABLISHED connections of a real server (ipvsadm ActiveConn).", real, nil),
		inactive:  desc("xvs_real_inactive_connections", "Other connections of a real server (ipvsadm InActConn).", real, nil),
		persist:   desc("xvs_real_persistent_connections", "Persistence templates that point at a real server (ipvsadm PersistConn).", real, nil),
		weight:    desc("xvs_real_weight", "A real server's weight in effect (0 when quiescent, failing its checks or draining).", real, nil),
		healthy:   desc("xvs_real_healthy", "1 when a real server passes its health checks, 0 when not; absent when unchecked.", real, nil),
		rateConns: desc("xvs_service_connections_per_second", "Smoothed new-connection rate of a service (ipvsadm --rate CPS).", svc, nil),
		ratePkts:  desc("xvs_service_packets_per_second", "Smoothed packet rate of a service, by direction.", svcDir, nil),
		rx:        desc("xvs_worker_rx_frames_total", "Frames a worker received from its AF_XDP sockets.", []string{"worker"}, nil),
		tx:        desc("xvs_worker_tx_frames_total", "Frames a worker queued for transmission.", []string{"worker"}, nil),
		drops:     desc("xvs_worker_drops_total", "Frames a worker dropped, by reason.", []string{"worker", "reason"}, nil),
		csumCompleted: desc("xvs_worker_csum_completed_total",
			"TCP/UDP frames that arrived with a partial checksum (left to a NIC by their sender) and that a worker completed.", []string{"worker"}, nil),
		synProxySynAcks: desc("xvs_worker_syn_proxy_syn_acks_total",
			"SYNs of syn_proxy services that a worker answered with a SYN cookie, creating no connection.", []string{"worker"}, nil),
		xdpSynAcks: desc("xvs_xdp_syn_proxy_syn_acks_total",
			"SYNs of syn_proxy services that an interface's XDP program answered with a SYN cookie itself, before any worker.", []string{"interface"}, nil),
		synProxyOpened: desc("xvs_worker_syn_proxy_opened_total",
			"ACKs of syn_proxy services whose SYN cookie checked: connections a worker opened to a real server.", []string{"worker"}, nil),
		badCsum: desc("xvs_worker_bad_checksum_total",
			"With verify_checksums: frames with a checksum that does not verify, by direction (in: arrived so and forwarded as they came; out: sent so by xvs).",
			[]string{"worker", "direction"}, nil),
		ctEntries:    desc("xvs_conntrack_entries", "Connections in the connection table.", nil, nil),
		ctCapacity:   desc("xvs_conntrack_capacity", "Connections the table holds at most.", nil, nil),
		ctInserts:    desc("xvs_conntrack_inserts_total", "Connections inserted.", nil, nil),
		ctExpired:    desc("xvs_conntrack_expired_total", "Connections expired.", nil, nil),
		ctFull:       desc("xvs_conntrack_full_drops_total", "New connections refused because the table was full.", nil, nil),
		buildInfo:    desc("xvs_build_info", "Always 1: the version xvsd was built as, and with which Go.", []string{"version", "goversion"}, nil),
		reloads:      desc("xvs_reloads_total", "Reloads of the configuration file (SIGHUP, file change, xvsadm reload), by result: ok or failed (the running state unchanged).", []string{"result"}, nil),
		healthMove:   desc("xvs_health_transitions_total", "Health-check transitions of a real server, by the state it went to (up or down).", with(real, "to"), nil),
		bgpUp:        desc("xvs_bgp_session_up", "1 when the BGP session with a peer is established, else 0.", []string{"peer"}, nil),
		bgpState:     desc("xvs_bgp_session_state", "Always 1, for the BGP session's FSM state now (idle, connect, active, opensent, openconfirm, established).", []string{"peer", "state"}, nil),
		bgpAnnounced: desc("xvs_bgp_announced_vips", "VIPs announced to the BGP peers now.", nil, nil),
		syncDgrams:   desc("xvs_sync_datagrams_total", "Connection-sync datagrams, by direction (sent: once per peer; received: accepted).", []string{"direction"}, nil),
		syncEntries: desc("xvs_sync_entries_total", "Connections synced, by direction (sent: once per peer; received: handed to the connection table, snapshots included).",
			[]string{"direction"}, nil),
		syncBytes: desc("xvs_sync_sent_bytes_total", "Connection-sync UDP payload sent.", nil, nil),
		syncDropped: desc("xvs_sync_dropped_total", "Connections not sent to the peers, by reason (events_full: a worker's event ring; queue_full, rate_limited, invalid, send_error).",
			[]string{"reason"}, nil),
		syncRejected: desc("xvs_sync_rejected_datagrams_total", "Received connection-sync datagrams rejected, by reason.", []string{"reason"}, nil),
		syncIgnored: desc("xvs_sync_ignored_entries_total", "Synced connections received and not installed, by reason (wrong_syncid: stamped with another sync id than the backup's --syncid; not_backup: no backup role runs).",
			[]string{"reason"}, nil),
		failoverMaster: desc("xvs_failover_master", "With [failover]: 1 while this director holds the floating addresses (master), 0 as backup.", nil, nil),
	}
}

func (m *metrics) descs() []*prometheus.Desc {
	return []*prometheus.Desc{m.svcConns, m.svcPkts, m.svcBytes, m.conns, m.pkts, m.bytes, m.active, m.inactive, m.persist,
		m.weight, m.healthy, m.rateConns, m.ratePkts, m.rx, m.tx, m.drops, m.csumCompleted, m.badCsum, m.synProxySynAcks, m.synProxyOpened, m.xdpSynAcks, m.ctEntries, m.ctCapacity,
		m.ctInserts, m.ctExpired, m.ctFull, m.buildInfo, m.reloads, m.healthMove, m.bgpUp, m.bgpState, m.bgpAnnounced,
		m.syncDgrams, m.syncEntries, m.syncBytes, m.syncDropped, m.syncRejected, m.syncIgnored, m.failoverMaster}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range m.descs() {
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
	gauge(m.buildInfo, 1, version.String(), runtime.Version())
	t := eng.Table()
	persist := eng.PersistConns()
	for _, s := range t.Services() {
		svc := serviceLabels(serviceID(s))
		sc := eng.ServiceCounters(s)
		counter(m.svcConns, sc.Conns, svc...)
		counter(m.svcPkts, sc.InPkts, with(svc, "in")...)
		counter(m.svcPkts, sc.OutPkts, with(svc, "out")...)
		counter(m.svcBytes, sc.InBytes, with(svc, "in")...)
		counter(m.svcBytes, sc.OutBytes, with(svc, "out")...)
		r := d.rates.service(s)
		gauge(m.rateConns, r.CPS, svc...)
		gauge(m.ratePkts, r.InPPS, with(svc, "in")...)
		gauge(m.ratePkts, r.OutPPS, with(svc, "out")...)
		for _, dst := range dests(t, s) {
			real := realLabels(serviceID(s), dst.Addr.String(), dst.Port)
			c := eng.DestCounters(dst)
			counter(m.conns, c.Conns, real...)
			counter(m.pkts, c.InPkts, with(real, "in")...)
			counter(m.pkts, c.OutPkts, with(real, "out")...)
			counter(m.bytes, c.InBytes, with(real, "in")...)
			counter(m.bytes, c.OutBytes, with(real, "out")...)
			a, i := eng.DestConns(dst)
			gauge(m.active, float64(a), real...)
			gauge(m.inactive, float64(i), real...)
			gauge(m.persist, float64(persist[dst.ID]), real...)
			w := dst.Weight
			if dst.Draining {
				w = 0
			}
			gauge(m.weight, float64(w), real...)
			if up, known := d.destHealthy(s, dst); known {
				gauge(m.healthy, b2f(up), real...)
			}
		}
	}
	for _, h := range d.health.transitions() {
		real := realLabels(h.svc, h.real.Addr().String(), h.real.Port())
		counter(m.healthMove, h.up, with(real, "up")...)
		counter(m.healthMove, h.down, with(real, "down")...)
	}
	counter(m.reloads, d.reloadsOK.Load(), "ok")
	counter(m.reloads, d.reloadsFailed.Load(), "failed")
	for i, w := range eng.WorkerStats() {
		id := strconv.Itoa(i)
		counter(m.rx, w.RxFrames.Load(), id)
		counter(m.tx, w.TxFrames.Load(), id)
		counter(m.csumCompleted, w.CsumCompleted.Load(), id)
		counter(m.synProxySynAcks, w.SynProxySynAcks.Load(), id)
		counter(m.synProxyOpened, w.SynProxyOpened.Load(), id)
		if eng.VerifiesChecksums() {
			counter(m.badCsum, w.BadCsumIn.Load(), id, "in")
			counter(m.badCsum, w.BadCsumOut.Load(), id, "out")
		}
		for reason, n := range w.Drops() {
			counter(m.drops, n, id, reason)
		}
	}
	for port, n := range eng.SynCookiesByPort() {
		counter(m.xdpSynAcks, n, port)
	}
	ct := eng.Conntrack()
	st := ct.Stats()
	gauge(m.ctEntries, float64(ct.Len()))
	gauge(m.ctCapacity, float64(ct.Capacity()))
	counter(m.ctInserts, st.Inserts)
	counter(m.ctExpired, st.Expired)
	counter(m.ctFull, st.FullDrops)
	m.collectScaleOut(gauge, counter)
}

// collectScaleOut collects what [bgp], [sync] and [failover] run.
func (m *metrics) collectScaleOut(gauge func(*prometheus.Desc, float64, ...string), counter func(*prometheus.Desc, uint64, ...string)) {
	d := m.d
	d.mu.Lock()
	speaker, pair := d.bgp, d.failover
	d.mu.Unlock()
	syncer := d.syncer.Load()
	if speaker != nil {
		for _, p := range speaker.Peers() {
			peer := p.Address.String()
			gauge(m.bgpUp, b2f(p.State == "established"), peer)
			gauge(m.bgpState, 1, peer, p.State)
		}
		gauge(m.bgpAnnounced, float64(len(speaker.Announced())))
	}
	if syncer != nil {
		s := syncer.Stats()
		counter(m.syncDgrams, s.SentDatagrams, "sent")
		counter(m.syncDgrams, s.RecvDatagrams, "received")
		counter(m.syncEntries, s.SentEntries, "sent")
		counter(m.syncEntries, s.RecvEntries, "received")
		counter(m.syncBytes, s.SentBytes)
		counter(m.syncDropped, d.eng.SyncDropped(), "events_full")
		counter(m.syncDropped, s.Drops.QueueFull, "queue_full")
		counter(m.syncDropped, s.Drops.RateLimited, "rate_limited")
		counter(m.syncDropped, s.Drops.Invalid, "invalid")
		counter(m.syncDropped, s.Drops.SendErrors, "send_error")
		for _, r := range []struct {
			reason string
			n      uint64
		}{{"truncated", s.Truncated}, {"bad_version", s.BadVersion}, {"auth", s.AuthFailures}, {"replay", s.Replays},
			{"clock_skew", s.ClockSkew}, {"malformed", s.Malformed}, {"misdirected", s.Misdirected}} {
			counter(m.syncRejected, r.n, r.reason)
		}
		counter(m.syncIgnored, s.WrongSyncID, "wrong_syncid")
		counter(m.syncIgnored, s.NotBackup, "not_backup")
	}
	if pair != nil {
		gauge(m.failoverMaster, b2f(pair.State() == failover.Master))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// serveMetrics serves /metrics on addr until ctx ends: xvs's own, the
// process's (CPU, memory, file descriptors) and the Go runtime's.
func (d *Director) serveMetrics(ctx context.Context, addr string) error {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{newMetrics(d), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector()} {
		if err := reg.Register(c); err != nil {
			return err
		}
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
