package source

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/net/proxy"
)

// go-git's ssh transport dials with a context but runs the ssh handshake and
// opens the session without one (plumbing/transport/ssh/common.go: dial and
// connect), so a server that accepts and then says nothing blocks a fetch
// forever, whatever the caller's context says. go-git does route the dial
// through golang.org/x/net/proxy when ProxyOptions.URL is set, and proxy lets
// a scheme be registered; the scheme below is such a "proxy" that dials
// directly and closes the connection when the operation's context ends, which
// unblocks the handshake and every later read.
//
// The registration is process-wide but inert for any other URL; it happens
// once, on first use.
const ctxDialScheme = "fjord-gitops-ctxdial"

var (
	registerCtxDial sync.Once
	ctxDialSeq      atomic.Uint64
	ctxDialCtxs     sync.Map // id string → context.Context
)

// sshProxyOptions returns go-git proxy options that make ssh connections obey
// ctx; release must be called when the operation is over.
func sshProxyOptions(ctx context.Context) (transport.ProxyOptions, func()) {
	registerCtxDial.Do(func() {
		proxy.RegisterDialerType(ctxDialScheme, func(u *url.URL, _ proxy.Dialer) (proxy.Dialer, error) {
			v, ok := ctxDialCtxs.Load(u.Host)
			if !ok {
				return nil, errors.New("dialing: the operation is already over")
			}
			return ctxDialer{ctx: v.(context.Context)}, nil
		})
	})
	id := "op" + strconv.FormatUint(ctxDialSeq.Add(1), 10)
	ctxDialCtxs.Store(id, ctx)
	return transport.ProxyOptions{URL: ctxDialScheme + "://" + id}, func() { ctxDialCtxs.Delete(id) }
}

// ctxDialer dials directly and ties the connection's life to ctx.
type ctxDialer struct{ ctx context.Context }

func (d ctxDialer) Dial(network, addr string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, addr)
}

func (d ctxDialer) DialContext(dialCtx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithCancel(d.ctx)
	defer cancel()
	stopDial := context.AfterFunc(dialCtx, cancel)
	defer stopDial()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(d.ctx, func() { _ = conn.Close() })
	return &ctxConn{Conn: conn, stop: stop}, nil
}

// ctxConn is a connection closed when its operation's context ends.
type ctxConn struct {
	net.Conn
	stop func() bool
}

func (c *ctxConn) Close() error {
	c.stop()
	return c.Conn.Close()
}
