package bidder

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"slices"
	"testing"
)

// scanInputs are the requests the scanner benchmarks read: the minified request that the
// load harness sends and the pretty one beside the tests.
var scanInputs = []struct{ name, path string }{
	{"minified", "../testdata/requests/bench-2k.json"},
	{"pretty", "testdata/request-2k.json"},
}

// BenchmarkScan measures one full pass of the scanner, validation included, over each
// request of scanInputs.
func BenchmarkScan(b *testing.B) {
	for _, in := range scanInputs {
		body, err := os.ReadFile(in.path)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(in.name, func(b *testing.B) {
			s, prov := new(scan), []byte(testProv)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				s.reset(body, prov)
				if err := s.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMarkSpecial measures each implementation of markSpecial on a 4 KB window of
// the minified request, repeated.
func BenchmarkMarkSpecial(b *testing.B) {
	body, err := os.ReadFile(scanInputs[0].path)
	if err != nil {
		b.Fatal(err)
	}
	src := bytes.Repeat(body, markWords*64/len(body)+1)[:markWords*64]
	dst := make([]uint64, markWords)
	for _, name := range slices.Sorted(maps.Keys(markSpecialFuncs)) {
		mark := markSpecialFuncs[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				mark(dst, src)
			}
		})
	}
}

// BenchmarkValidJSON is a reference point for BenchmarkScan: encoding/json's validator,
// which checks the same grammar and extracts nothing.
func BenchmarkValidJSON(b *testing.B) {
	for _, in := range scanInputs {
		body, err := os.ReadFile(in.path)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if !json.Valid(body) {
					b.Fatal("invalid")
				}
			}
		})
	}
}

// BenchmarkSplice measures copying a scanned request with segd's user.data spliced in,
// the last step of an enriched answer.
func BenchmarkSplice(b *testing.B) {
	body, err := os.ReadFile(scanInputs[0].path)
	if err != nil {
		b.Fatal(err)
	}
	s := new(scan)
	s.reset(body, []byte(testProv))
	if err := s.run(); err != nil {
		b.Fatal(err)
	}
	frag := []byte(`{"id":"` + testProv + `","name":"segd","segment":[{"id":"243"},{"id":"647"}],` +
		`"ext":{"segtax":4}}`)
	out := s.appendEnriched(nil, frag, -1)
	if !json.Valid(out) || !bytes.Contains(out, frag) {
		b.Fatalf("splice gave %s", out)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		out = s.appendEnriched(out[:0], frag, -1)
	}
}
