package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// prober runs one target's probes. It is used by one goroutine at a time.
type prober interface {
	probe(ctx context.Context) error
	close()
}

// newProber builds the prober for a valid, defaulted spec.
func newProber(addr netip.AddrPort, s Spec) (prober, error) {
	switch s.Kind {
	case KindTCP:
		return tcpProber{addr: addr.String()}, nil
	case KindHTTP, KindHTTPS:
		return newHTTPProber(addr, s)
	case KindUDP:
		return &udpProber{addr: addr.String(), send: s.Send, expect: s.Expect, buf: make([]byte, maxDatagram+1)}, nil
	}
	return nil, fmt.Errorf("unknown kind %q", s.Kind)
}

type tcpProber struct{ addr string }

func (p tcpProber) probe(ctx context.Context) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return err
	}
	return c.Close()
}

func (tcpProber) close() {}

type httpProber struct {
	client *http.Client
	url    string
	host   string
	status int
	expect []byte
	buf    []byte // for the body, when expect is set
}

func newHTTPProber(addr netip.AddrPort, s Spec) (*httpProber, error) {
	u, err := requestPath(s.Path)
	if err != nil {
		return nil, err
	}
	u.Scheme, u.Host = s.Kind, addr.String()
	tr := &http.Transport{
		// Proxies from the environment would check the proxy, not the
		// real server.
		Proxy:       nil,
		DialContext: (&net.Dialer{}).DialContext,
		// A fresh connection per probe, as keepalived's checkers make:
		// a server that accepts no new connections must fail.
		DisableKeepAlives:  true,
		DisableCompression: true,
		// Insecure is the configuration's explicit choice: real servers
		// behind a director often have self-signed certificates, or
		// certificates for the service's name only.
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: s.Insecure},
		MaxResponseHeaderBytes: MaxBody,
	}
	if s.Host != "" {
		h := s.Host
		if hostOnly, _, err := net.SplitHostPort(h); err == nil {
			h = hostOnly
		}
		tr.TLSClientConfig.ServerName = h
	}
	p := &httpProber{
		client: &http.Client{
			Transport: tr,
			// A redirect is an answer: following it would check
			// another server, or another page.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		url:    u.String(),
		host:   s.Host,
		status: s.ExpectStatus,
	}
	if s.ExpectBody != "" {
		p.expect = []byte(s.ExpectBody)
		p.buf = make([]byte, MaxBody)
	}
	return p, nil
}

func (p *httpProber) probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return err
	}
	if p.host != "" {
		req.Host = p.host
	}
	req.Header.Set("User-Agent", "xvs-health-check")
	req.Close = true
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != p.status {
		return fmt.Errorf("GET %s: status %d, want %d", p.url, resp.StatusCode, p.status)
	}
	if p.expect == nil {
		return nil
	}
	n, err := io.ReadFull(resp.Body, p.buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("GET %s: read body: %w", p.url, err)
	}
	if !bytes.Contains(p.buf[:n], p.expect) {
		return fmt.Errorf("GET %s: body (%d bytes read) does not contain %q", p.url, n, p.expect)
	}
	return nil
}

func (p *httpProber) close() { p.client.CloseIdleConnections() }

type udpProber struct {
	addr         string
	send, expect []byte
	buf          []byte // one byte over a datagram, never filled
}

func (p *udpProber) probe(ctx context.Context) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", p.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := c.SetDeadline(dl); err != nil {
			return err
		}
	}
	// The deadline bounds the probe; cancellation must end it too, or
	// Close would wait out the timeout.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write(p.send); err != nil {
		return err
	}
	// A connected socket takes replies from the target only, and reports
	// an ICMP port unreachable as ECONNREFUSED.
	n, err := c.Read(p.buf)
	if err != nil {
		return err
	}
	if p.expect != nil && !bytes.Contains(p.buf[:n], p.expect) {
		return fmt.Errorf("reply from %s (%d bytes) does not contain %q", p.addr, n, p.expect)
	}
	return nil
}

func (*udpProber) close() {}
