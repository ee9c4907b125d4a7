package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/segd/segd/bench"
	"github.com/segd/segd/segments"
	"github.com/segd/segd/store"
)

// demoRequest is the example bid request that `make run` prints a curl for.
const demoRequest = "testdata/requests/demo.json"

// loadDemo defines the demo sources and segments and imports generated profiles through
// the same durable path as any import.
func loadDemo(ctx context.Context, cfg *config, db *store.DB, log *zap.Logger) error {
	start := time.Now()
	for _, s := range bench.DemoSources() {
		if err := db.PutSource(s); err != nil {
			return fmt.Errorf("demo source %s: %w", s.ID, err)
		}
	}
	lines := 0
	for _, s := range bench.DemoSources() {
		pr, pw := io.Pipe()
		go func() {
			pw.CloseWithError(bench.WriteDemoProfiles(pw, s.ID, cfg.DemoProfiles, 1))
		}()
		res, err := db.Import(ctx, s.ID, segments.TSV, pr)
		pr.Close()
		if err != nil {
			return fmt.Errorf("demo import %s: %w", s.ID, err)
		}
		lines += res.Accepted
	}
	for _, g := range bench.DemoSegments() {
		if err := db.PutSegment(g); err != nil {
			return fmt.Errorf("demo segment %s: %w", g.ID, err)
		}
	}
	log.Info("demo data loaded", zap.Int("lines", lines), zap.Duration("took", time.Since(start)))
	return nil
}

func printExample(w io.Writer, cfg *config) {
	host := cfg.BidAddr
	if len(host) > 0 && host[0] == ':' {
		host = "127.0.0.1" + host
	}
	fmt.Fprintf(w, `
segd is serving demo data. Try:

  curl -s -X POST --data-binary @%s http://%s/openrtb2/enrich

`, demoRequest, host)
}
