package bench

import (
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

// ServeEcho serves EchoHandler on ln with the same server settings that segd's bid
// listener uses, until the listener is closed.
func ServeEcho(ln net.Listener) error {
	srv := &fasthttp.Server{
		Handler:               EchoHandler,
		Name:                  "segd-echo",
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
	}
	return srv.Serve(ln)
}
