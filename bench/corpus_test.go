package bench_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/segd/segd/bench"
)

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadCorpus(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.json"), "{\"id\":\"a\"}\n")
	writeFile(t, filepath.Join(dir, "sub", "b.jsonl"), "{\"id\":\"b1\"}\n\n{\"id\":\"b2\"}\n")
	writeFile(t, filepath.Join(dir, "notes.txt"), "not a request")
	single := filepath.Join(t.TempDir(), "c.req")
	writeFile(t, single, `{"id":"c"}`)

	reqs, err := bench.LoadCorpus([]string{dir, single})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range reqs {
		var v struct{ ID string }
		if err := json.Unmarshal(r, &v); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, v.ID)
	}
	if want := []string{"a", "b1", "b2", "c"}; !slices.Equal(ids, want) {
		t.Errorf("loaded %v, want %v", ids, want)
	}
}

func TestLoadCorpusErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	writeFile(t, bad, "{\"id\":1}\n[1,2]\n")
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o755)
	tests := []struct {
		path, want string
	}{
		{bad, "bad.jsonl line 2: not a JSON object"},
		{empty, "no requests"},
		{filepath.Join(dir, "missing.json"), "no such file"},
	}
	for _, tt := range tests {
		_, err := bench.LoadCorpus([]string{tt.path})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadCorpus(%s) = %v, want an error with %q", tt.path, err, tt.want)
		}
	}
}

func TestPrepareBodies(t *testing.T) {
	corpus := [][]byte{
		[]byte(`{"id":"r1","imp":[{"id":"1"}], "user":{"buyeruid":"b","id":"old"},"tmax":100}`),
		[]byte(`{"id":"r2","site":{"page":"https://x.example/?a=<b>"}}`),
		[]byte(`{"id":"r3","user":null}`),
	}
	ids := []string{"u1", "u2", "u3"}
	mix := bench.Mix{IDs: ids, HitRate: 0.25, Size: 400, Seed: 9}
	bodies, err := bench.PrepareBodies(corpus, mix)
	if err != nil {
		t.Fatal(err)
	}
	if len(bodies) != 400 {
		t.Fatalf("%d bodies, want 400", len(bodies))
	}
	hits := 0
	for k, b := range bodies {
		var v struct {
			ID   string
			User struct{ ID, BuyerUID string }
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("body %d %s: %v", k, b, err)
		}
		if want := []string{"r1", "r2", "r3"}[k%3]; v.ID != want {
			t.Errorf("body %d is request %s, want %s", k, v.ID, want)
		}
		switch {
		case slices.Contains(ids, v.User.ID):
			hits++
		case !strings.HasPrefix(v.User.ID, "bench-miss-"):
			t.Errorf("body %d: user.id %q is neither a population ID nor a miss", k, v.User.ID)
		}
	}
	if hits != 100 {
		t.Errorf("%d hits, want exactly 100 of 400 at 0.25", hits)
	}

	again, _ := bench.PrepareBodies(corpus, mix)
	if !slices.EqualFunc(bodies, again, bytes.Equal) {
		t.Error("the same seed prepared different bodies")
	}
}

func TestPrepareBodiesKeepsBytes(t *testing.T) {
	corpus := [][]byte{
		[]byte(`{"id":"r1", "user": {"yob":1990, "id":"old", "ext":{"a":[1, 2]}}, "tmax":100}`),
		[]byte(`{"id":"r2","site":{"page":"https://x.example/?a=<b>&c"}}`),
		[]byte(`{"id":"r3","user":null}`),
	}
	want := []string{
		`{"id":"r1","user":{"yob":1990,"id":"u1","ext":{"a":[1, 2]}},"tmax":100}`,
		`{"id":"r2","site":{"page":"https://x.example/?a=<b>&c"},"user":{"id":"u1"}}`,
		`{"id":"r3","user":{"id":"u1"}}`,
	}
	bodies, err := bench.PrepareBodies(corpus, bench.Mix{IDs: []string{"u1"}, HitRate: 1,
		Size: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range bodies {
		if string(b) != want[i] {
			t.Errorf("body %d:\n%s\nwant\n%s", i, b, want[i])
		}
	}
}

func TestReadPopulation(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, bench.IDsFile), "a\n\n b \nc")
	for _, path := range []string{dir, filepath.Join(dir, bench.IDsFile)} {
		ids, err := bench.ReadPopulation(path)
		if err != nil || !slices.Equal(ids, []string{"a", "b", "c"}) {
			t.Errorf("ReadPopulation(%s) = %v, %v", path, ids, err)
		}
	}
	if _, err := bench.ReadPopulation(t.TempDir()); err == nil {
		t.Error("a folder without ids.txt gave a population")
	}
}
