package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"

	"github.com/segd/segd/bench"
)

const benchUsage = `Usage:
  segd bench echo [--addr 127.0.0.1:9090]   serve a fasthttp echo baseline until interrupted
`

// runBench runs `segd bench`.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "echo" {
		fmt.Fprint(stderr, benchUsage)
		return errUsage
	}
	fs := flag.NewFlagSet("segd bench echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9090", "listen address")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("echo listener: %w", err)
	}
	fmt.Fprintf(stdout, "echo baseline listening on %s\n", ln.Addr())
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	err = bench.ServeEcho(ln)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
