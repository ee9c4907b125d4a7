package bench

import (
	"fmt"
	"net"

	"github.com/valyala/fasthttp"
)

// EchoHandler answers every request with its own body, as application/json: the cheapest
// thing an HTTP server on this machine can do with a bid request. It is the ceiling that
// segd's throughput is compared with.
func EchoHandler(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	ctx.SetBody(ctx.PostBody())
}

// newEchoServer returns a server of EchoHandler with the same settings that segd's bid
// listener uses.
func newEchoServer() *fasthttp.Server {
	return &fasthttp.Server{
		Handler:               EchoHandler,
		Name:                  "segd-echo",
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
	}
}

// ServeEcho serves EchoHandler on ln with the same server settings that segd's bid
// listener uses, until the listener is closed.
func ServeEcho(ln net.Listener) error {
	return newEchoServer().Serve(ln)
}

// Echo is an echo server running in this process, the baseline of `segd bench run`.
type Echo struct {
	srv    *fasthttp.Server
	ln     net.Listener
	served chan error
}

// StartEcho starts an echo server on addr, such as "127.0.0.1:0" for a port the kernel
// chooses. It serves until Close.
func StartEcho(addr string) (*Echo, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("echo listener: %w", err)
	}
	e := &Echo{srv: newEchoServer(), ln: ln, served: make(chan error, 1)}
	go func() { e.served <- e.srv.Serve(ln) }()
	return e, nil
}

// Addr is the address the server listens on, with the port chosen.
func (e *Echo) Addr() string { return e.ln.Addr().String() }

// Close stops the server, waits for the requests in flight, and returns once it is down.
func (e *Echo) Close() error {
	err := e.srv.Shutdown()
	if serr := <-e.served; err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("echo server: %w", err)
	}
	return nil
}
