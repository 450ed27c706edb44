// Command xvs-echo is the real server and the client of xvs's demo and
// end-to-end tests. As a server it answers HTTP and UDP with its own name, so
// that a client can tell which real server a director picked; as a client it
// makes real connections and reports, as JSON, who answered and whether every
// response arrived intact.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"os"
	"os/signal"

	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xvs-lb/xvs/dataplane/packet"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "client":
		err = client(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "xvs-echo:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage:
  xvs-echo serve  -name NAME [-http ADDR] [-udp ADDR]
  xvs-echo client -mode http|keepalive|udp|download|upload -addr HOST:PORT [-n N] [-size N] [-interval D] [-timeout D]`)
	os.Exit(2)
}

// body is what the server sends after its name: large enough to span several
// segments, and deterministic so the client can check it byte for byte.
func body(name string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n", name)
	for i := 0; b.Len() < 6000; i++ {
		fmt.Fprintf(&b, "%08d xvs real server payload line\n", i)
	}
	return b.Bytes()
}

// nameOf checks that p is exactly body(name) for the name on its first line.
func nameOf(p []byte) (string, error) {
	name, _, ok := bytes.Cut(p, []byte("\n"))
	if !ok {
		return "", errors.New("response has no name line")
	}
	if !bytes.Equal(p, body(string(name))) {
		return "", fmt.Errorf("response from %q is corrupt (%d bytes)", name, len(p))
	}
	return string(name), nil
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	name := fs.String("name", "", "name this server reports")
	httpAddr := fs.String("http", ":80", "HTTP listen address (empty: none)")
	udpAddr := fs.String("udp", "", "UDP listen address (empty: none)")
	toa := fs.Bool("toa", false, "learn clients' addresses from TOA options on SYNs (FullNAT) and report them")
	_ = fs.Parse(args)
	if *name == "" {
		return errors.New("serve: -name is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	payload := body(*name)
	errc := make(chan error, 2)
	if *httpAddr != "" {
		ln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			return err
		}
		var toas *toaLog
		if *toa {
			port := uint16(ln.Addr().(*net.TCPAddr).Port)
			if toas, err = captureTOA(port); err != nil {
				return err
			}
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/blob/{size}", func(w http.ResponseWriter, r *http.Request) { serveBlob(w, r, *name) })
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Real-Server", *name)
			// A request body (the client's -size) is read whole and its
			// length reported, so a client can tell it arrived.
			n, _ := io.Copy(io.Discard, r.Body)
			w.Header().Set("X-Body-Len", strconv.FormatInt(n, 10))
			// Who the real server thinks the client is: the peer,
			// and the TOA client when FullNAT hid it.
			peer, _ := netip.ParseAddrPort(r.RemoteAddr)
			w.Header().Set("X-Peer", peer.Addr().Unmap().String())
			if toas != nil {
				if c, ok := toas.client(netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())); ok {
					w.Header().Set("X-TOA-Client", c.Addr().String())
				}
			}
			_, _ = w.Write(payload)
		})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- srv.Serve(ln) }()
		defer srv.Close()
	}
	if *udpAddr != "" {
		pc, err := listenUDP(*udpAddr)
		if err != nil {
			return err
		}
		defer pc.Close()
		go func() { errc <- echoUDP(pc, *name) }()
	}
	fmt.Printf("xvs-echo %s serving http=%q udp=%q\n", *name, *httpAddr, *udpAddr)
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// hold keeps n connections open for d, each sending a request every
// interval on the same TCP connection: a director that breaks or moves an
// established connection shows as a failed request or as a connection whose
// real server changed (Moved).
func hold(rep *Report, addr string, n int, d, interval, timeout time.Duration) {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			server, requests, err := holdOne(addr, start.Add(d), interval, timeout)
			mu.Lock()
			defer mu.Unlock()
			rep.Requests += requests
			if server != "" {
				rep.Servers[server]++
			}
			if err != nil {
				rep.fail(err)
				if errors.Is(err, errMoved) {
					rep.Moved++
				}
				return
			}
			rep.OK++
		}()
		if i%50 == 49 {
			time.Sleep(10 * time.Millisecond) // do not open them all in one burst
		}
	}
	wg.Wait()
	rep.Duration = time.Since(start).Round(time.Millisecond).String()
}

var errMoved = errors.New("connection answered by another real server")

func holdOne(addr string, until time.Time, interval, timeout time.Duration) (server string, requests int, err error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", 0, err
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for first := true; first || time.Now().Before(until); first = false {
		if !first {
			time.Sleep(interval)
		}
		_ = c.SetDeadline(time.Now().Add(timeout))
		if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", addr); err != nil {
			return server, requests, fmt.Errorf("request %d: %w", requests+1, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return server, requests, fmt.Errorf("request %d: %w", requests+1, err)
		}
		p, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return server, requests, fmt.Errorf("request %d: %w", requests+1, err)
		}
		name, err := nameOf(p)
		if err != nil {
			return server, requests, err
		}
		if server != "" && name != server {
			return server, requests, fmt.Errorf("%w: %s then %s", errMoved, server, name)
		}
		server = name
		requests++
	}
	return server, requests, nil
}

// Report is what the client prints.
type Report struct {
	Mode     string         `json:"mode"`
	OK       int            `json:"ok"`
	Failed   int            `json:"failed"`
	Servers  map[string]int `json:"servers"`
	Reused   int            `json:"reused,omitempty"`   // keepalive: requests that reused the connection
	Requests int            `json:"requests,omitempty"` // hold: requests made over all connections
	Moved    int            `json:"moved,omitempty"`    // hold: connections whose real server changed
	Peers    map[string]int `json:"peers,omitempty"`    // the client address real servers saw
	TOA      map[string]int `json:"toa,omitempty"`      // the client address TOA told them
	Errors   []string       `json:"errors,omitempty"`
	Duration string         `json:"duration"`
	// download, upload: bytes that arrived intact over all requests, and
	// the best rate of one transfer.
	Bytes int64   `json:"bytes,omitempty"`
	MBps  float64 `json:"mbps,omitempty"`
}

func (r *Report) fail(err error) {
	r.Failed++
	if len(r.Errors) < 10 {
		r.Errors = append(r.Errors, err.Error())
	}
}

func client(args []string) error {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	mode := fs.String("mode", "http", "http (new connection per request), keepalive (one connection), udp, hold (many long-lived connections), "+
		"download or upload (-size bytes of a deterministic stream, checked byte for byte)")
	conns := fs.Int("conns", 100, "hold: connections to keep open")
	duration := fs.Duration("duration", 10*time.Second, "hold: how long")
	addr := fs.String("addr", "", "HOST:PORT of the service (the VIP)")
	n := fs.Int("n", 10, "requests")
	interval := fs.Duration("interval", 0, "pause between requests")
	timeout := fs.Duration("timeout", 3*time.Second, "per-request timeout")
	size := fs.Int("size", 0, "http: POST a body of this many bytes (a large request tests path MTU); download, upload: bytes to transfer")
	_ = fs.Parse(args)
	if *addr == "" {
		return errors.New("client: -addr is required")
	}
	if *n < 1 || *n > 1_000_000 {
		return errors.New("client: -n must be in 1..1000000")
	}
	rep := &Report{Mode: *mode, Servers: map[string]int{}, Peers: map[string]int{}, TOA: map[string]int{}}
	if *mode == "hold" {
		if *conns < 1 || *conns > 10000 || *duration > 10*time.Minute {
			return errors.New("client: -conns must be in 1..10000 and -duration at most 10m")
		}
		hold(rep, *addr, *conns, *duration, *interval, *timeout)
		out, _ := json.Marshal(rep)
		fmt.Println(string(out))
		return nil
	}
	start := time.Now()
	var do func() (string, error)
	switch *mode {
	case "http", "keepalive":
		tr := &http.Transport{DisableKeepAlives: *mode == "http", MaxConnsPerHost: 1}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr, Timeout: *timeout}
		url := "http://" + *addr + "/"
		do = func() (string, error) {
			trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
				if i.Reused {
					rep.Reused++
				}
			}}
			method, body := "GET", io.Reader(nil)
			if *size > 0 {
				method, body = "POST", bytes.NewReader(bytes.Repeat([]byte("x"), *size))
			}
			req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, url, body)
			if err != nil {
				return "", err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			p, err := io.ReadAll(resp.Body)
			if err != nil {
				return "", err
			}
			if *size > 0 && resp.Header.Get("X-Body-Len") != strconv.Itoa(*size) {
				return "", fmt.Errorf("server got %s of %d request bytes", resp.Header.Get("X-Body-Len"), *size)
			}
			if v := resp.Header.Get("X-Peer"); v != "" {
				rep.Peers[v]++
			}
			if v := resp.Header.Get("X-TOA-Client"); v != "" {
				rep.TOA[v]++
			}
			return nameOf(p)
		}
	case "download", "upload":
		if *size <= 0 || *size > maxBlob {
			return fmt.Errorf("client: -size must be in 1..%d for %s", maxBlob, *mode)
		}
		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: *timeout}
		do = func() (string, error) {
			start := time.Now()
			var name string
			var err error
			if *mode == "download" {
				name, err = download(hc, *addr, int64(*size))
			} else {
				name, err = upload(hc, *addr, int64(*size))
			}
			if err != nil {
				return "", err
			}
			rep.Bytes += int64(*size)
			rep.MBps = max(rep.MBps, float64(*size)/1e6/time.Since(start).Seconds())
			return name, nil
		}
	case "udp":
		conn, err := net.Dial("udp", *addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		buf := make([]byte, 2048)
		seq := 0
		do = func() (string, error) {
			seq++
			msg := fmt.Sprintf("ping %d", seq)
			_ = conn.SetDeadline(time.Now().Add(*timeout))
			if _, err := conn.Write([]byte(msg)); err != nil {
				return "", err
			}
			k, err := conn.Read(buf)
			if err != nil {
				return "", err
			}
			name, rest, ok := strings.Cut(string(buf[:k]), ":")
			if !ok || rest != msg {
				return "", fmt.Errorf("bad UDP reply %q", buf[:k])
			}
			return name, nil
		}
	default:
		return fmt.Errorf("client: unknown mode %q", *mode)
	}
	for i := 0; i < *n; i++ {
		if i > 0 && *interval > 0 {
			time.Sleep(*interval)
		}
		name, err := do()
		if err != nil {
			rep.fail(err)
			continue
		}
		rep.OK++
		rep.Servers[name]++
	}
	rep.Duration = time.Since(start).Round(time.Millisecond).String()
	out, _ := json.Marshal(rep)
	fmt.Println(string(out))
	return nil
}

// listenUDP opens a dual-stack UDP socket that learns each datagram's
// destination address (IP_PKTINFO, IPV6_RECVPKTINFO), so that replies leave
// from the address the client sent to. On an LVS-DR or TUN real server that
// address is the VIP, held on lo, while the kernel would otherwise pick the
// real server's own address and the client would discard the reply.
func listenUDP(addr string) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
			if e := unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1); serr == nil {
				serr = e
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

func echoUDP(pc *net.UDPConn, name string) error {
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for {
		n, oobn, _, from, err := pc.ReadMsgUDP(buf, oob)
		if err != nil {
			return err
		}
		var replyOOB []byte
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				switch {
				case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= unix.SizeofInet4Pktinfo:
					info := *(*unix.Inet4Pktinfo)(unsafe.Pointer(&m.Data[0]))
					replyOOB = unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: info.Addr})
				case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo:
					info := *(*unix.Inet6Pktinfo)(unsafe.Pointer(&m.Data[0]))
					replyOOB = unix.PktInfo6(&unix.Inet6Pktinfo{Addr: info.Addr})
				}
			}
		}
		reply := append([]byte(name+":"), buf[:n]...)
		_, _, _ = pc.WriteMsgUDP(reply, replyOOB, from)
	}
}

// toaLog learns, from the SYNs arriving on any interface, the client address
// a FullNAT director put in the TOA option, keyed by the connection's source
// as this host sees it (the director's local address and port).
type toaLog struct {
	mu   sync.Mutex
	seen map[netip.AddrPort]netip.AddrPort
}

func captureTOA(port uint16) (*toaLog, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("capture for TOA: %w", err)
	}
	l := &toaLog{seen: map[netip.AddrPort]netip.AddrPort{}}
	go func() {
		parser := packet.NewParser()
		var m packet.Meta
		buf := make([]byte, 65536)
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				return
			}
			if parser.Decode(buf[:n], &m) != nil || m.Proto != 6 || m.DstPort != port || m.TCPFlags&packet.FlagSYN == 0 {
				continue
			}
			if client, ok := packet.ParseTOA(buf[m.L4Off:n]); ok {
				l.mu.Lock()
				l.seen[netip.AddrPortFrom(m.Src, m.SrcPort)] = client
				l.mu.Unlock()
			}
		}
	}()
	return l, nil
}

// client returns the TOA client address of a connection from peer, waiting a
// little for the capture to catch up with the handshake.
func (l *toaLog) client(peer netip.AddrPort) (netip.AddrPort, bool) {
	for i := 0; i < 20; i++ {
		l.mu.Lock()
		c, ok := l.seen[peer]
		l.mu.Unlock()
		if ok {
			return c, true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return netip.AddrPort{}, false
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// maxBlob bounds a download or upload: enough for any test, small enough
// that a typo cannot fill a disk or run for hours.
const maxBlob = 1 << 30

// blobStream is the deterministic content of every blob: the same bytes on
// every server and client, so that either side checks a transfer byte for
// byte without keeping a copy.
func blobStream() io.Reader {
	return rand.NewChaCha8([32]byte{'x', 'v', 's'})
}

// serveBlob answers GET /blob/N with the first N bytes of blobStream, and
// POST /blob/N by reading N bytes and comparing them with it: the real
// server's half of download and upload.
func serveBlob(w http.ResponseWriter, r *http.Request, name string) {
	n, err := strconv.ParseInt(r.PathValue("size"), 10, 64)
	if err != nil || n < 0 || n > maxBlob {
		http.Error(w, "bad size", http.StatusBadRequest)
		return
	}
	w.Header().Set("X-Real-Server", name)
	switch r.Method {
	case http.MethodGet:
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		_, _ = io.CopyN(w, blobStream(), n)
	case http.MethodPost:
		if err := sameAsBlob(r.Body, n); err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		fmt.Fprintf(w, "%s\n", name)
	default:
		http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
	}
}

// sameAsBlob reads r to its end and reports how it differs from the first
// n bytes of blobStream, if it does.
func sameAsBlob(r io.Reader, n int64) error {
	want := blobStream()
	got, exp := make([]byte, 64<<10), make([]byte, 64<<10)
	var off int64
	for {
		k, err := r.Read(got)
		if k > 0 {
			if off+int64(k) > n {
				return fmt.Errorf("more than the %d bytes expected", n)
			}
			if _, err := io.ReadFull(want, exp[:k]); err != nil {
				return err
			}
			if i := firstDiff(got[:k], exp[:k]); i >= 0 {
				return fmt.Errorf("byte %d differs", off+int64(i))
			}
			off += int64(k)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d of %d bytes: %w", off, n, err)
		}
	}
	if off != n {
		return fmt.Errorf("%d of %d bytes", off, n)
	}
	return nil
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return len(a)
}

func download(hc *http.Client, addr string, n int64) (string, error) {
	resp, err := hc.Get(fmt.Sprintf("http://%s/blob/%d", addr, n))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download: %s", resp.Status)
	}
	if err := sameAsBlob(resp.Body, n); err != nil {
		return "", fmt.Errorf("download: %w", err)
	}
	return resp.Header.Get("X-Real-Server"), nil
}

func upload(hc *http.Client, addr string, n int64) (string, error) {
	resp, err := hc.Post(fmt.Sprintf("http://%s/blob/%d", addr, n), "application/octet-stream", io.LimitReader(blobStream(), n))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("upload: %s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return resp.Header.Get("X-Real-Server"), nil
}
