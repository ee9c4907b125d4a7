package store_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/segd/segd/segments"
	"github.com/segd/segd/store"
)

// BenchmarkEvents measures durable event ingestion: NDJSON lines through Events, in
// batches synced to Badger, one event per profile with two traits besides the visit.
func BenchmarkEvents(b *testing.B) {
	db := benchStore(b, "web")
	const lines = 50_000
	var buf bytes.Buffer
	ts := time.Now().Format(time.RFC3339)
	for i := range lines {
		fmt.Fprintf(&buf, `{"ids":[{"type":"uid","value":"u-%d"}],"source":"web","ts":%q,`+
			`"traits":{"page":"/p%d","geo":"g%d"}}`+"\n", i, ts, i%50, i%20)
	}
	body := buf.Bytes()
	b.SetBytes(int64(len(body)))
	start := time.Now()
	for b.Loop() {
		res, err := db.Events(context.Background(), bytes.NewReader(body))
		if err != nil || res.Accepted != lines {
			b.Fatalf("accepted %d: %v %v", res.Accepted, err, res.Errors)
		}
	}
	b.ReportMetric(float64(lines*b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkImport measures durable onboarding: TSV lines of two IDs and five codes each.
func BenchmarkImport(b *testing.B) {
	db := benchStore(b, "crm")
	const lines = 50_000
	var buf bytes.Buffer
	for i := range lines {
		fmt.Fprintf(&buf, "uid:u-%d|ifa:%08x-0000-4000-8000-000000000001\tc%d,c%d,c%d,c%d,c%d\n",
			i, i, i%7, i%11, i%13, i%17, i%19)
	}
	body := buf.Bytes()
	b.SetBytes(int64(len(body)))
	start := time.Now()
	for b.Loop() {
		res, err := db.Import(context.Background(), "crm", segments.TSV, bytes.NewReader(body))
		if err != nil || res.Accepted != lines {
			b.Fatalf("accepted %d: %v", res.Accepted, err)
		}
	}
	b.ReportMetric(float64(5*lines*b.N)/time.Since(start).Seconds(), "memberships/s")
}

// benchStore opens a store in a temporary folder with the default Badger settings of segd
// serve, and defines source src.
func benchStore(b *testing.B, src string) *store.DB {
	ix := segments.New(segments.NewHasher([]byte(testSecret)), segments.Provider{ID: "segd"})
	db, err := store.Open(store.Config{Dir: b.TempDir()}, ix, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if _, err := db.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	err = db.PutSource(segments.Source{ID: src, Name: src, Party: segments.FirstParty,
		TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	return db
}
