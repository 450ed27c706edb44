package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// MaxResponseSize bounds what Call reads back. Responses are larger than
// requests (a connection table of a few million entries), but still bounded
// so that a confused peer cannot exhaust the client's memory.
const MaxResponseSize = 1 << 30

// DefaultCallTimeout applies to a Call whose context has no deadline.
const DefaultCallTimeout = HandleTimeout + 10*time.Second

// RemoteError is a failure reported by xvsd (Response.Error).
type RemoteError struct {
	Op  Op
	Msg string
}

func (e *RemoteError) Error() string { return e.Msg }

// Call sends req to the server listening at path and returns its response.
// A response that reports a failure is returned too, with a *RemoteError.
func Call(ctx context.Context, path string, req *Request) (*Response, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connecting to xvsd at %s: %w", path, err)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	_ = c.SetDeadline(deadline)
	// Cancellation interrupts blocked reads and writes.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	resp, err := exchange(c, req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			err = cerr
		}
		return nil, fmt.Errorf("xvsd at %s: %s: %w", path, req.Op, err)
	}
	if resp.Error != "" {
		return resp, &RemoteError{Op: req.Op, Msg: resp.Error}
	}
	return resp, nil
}

func exchange(c net.Conn, req *Request) (*Response, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxRequestSize {
		return nil, fmt.Errorf("request of %d bytes is larger than %d", len(b), MaxRequestSize)
	}
	_, werr := c.Write(append(b, '\n'))
	if uc, ok := c.(*net.UnixConn); ok && werr == nil {
		_ = uc.CloseWrite() // nothing more to say
	}
	// Even when the write failed, the server may have answered before
	// closing: it refuses a peer without reading its request.
	lr := &io.LimitedReader{R: bufio.NewReaderSize(c, 64<<10), N: MaxResponseSize + 1}
	var resp Response
	if err := json.NewDecoder(lr).Decode(&resp); err != nil {
		switch {
		case werr != nil:
			return nil, fmt.Errorf("sending: %w", werr)
		case lr.N <= 0:
			return nil, fmt.Errorf("response larger than %d bytes", MaxResponseSize)
		case errors.Is(err, io.EOF):
			return nil, errors.New("connection closed without a response")
		}
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	return &resp, nil
}
