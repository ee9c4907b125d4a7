package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// LoadCorpus reads bid requests from files and folders. A .jsonl file holds one request a
// line, blank lines skipped; any other file is one request. A folder contributes its .json
// and .jsonl files, sub-folders included, in name order. Each request must be a JSON object.
func LoadCorpus(paths []string) ([][]byte, error) {
	var reqs [][]byte
	for _, p := range paths {
		files, err := corpusFiles(p)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if reqs, err = appendCorpusFile(reqs, f); err != nil {
				return nil, err
			}
		}
	}
	if len(reqs) == 0 {
		return nil, errors.New("corpus: no requests found")
	}
	return reqs, nil
}

// corpusFiles returns path if it is a file, or the request files under it if a folder.
func corpusFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		ext := filepath.Ext(p)
		if !d.IsDir() && (ext == ".json" || ext == ".jsonl") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	return files, nil
}

func appendCorpusFile(reqs [][]byte, path string) ([][]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	if filepath.Ext(path) != ".jsonl" {
		if err := checkRequest(raw); err != nil {
			return nil, fmt.Errorf("corpus %s: %w", path, err)
		}
		return append(reqs, raw), nil
	}
	for i, line := range bytes.Split(raw, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if err := checkRequest(line); err != nil {
			return nil, fmt.Errorf("corpus %s line %d: %w", path, i+1, err)
		}
		reqs = append(reqs, line)
	}
	return reqs, nil
}

func checkRequest(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' || !json.Valid(b) {
		return errors.New("not a JSON object")
	}
	return nil
}

// ReadPopulation reads the user IDs of a population, one a line: path is a file, or a
// folder written by Generate, whose ids.txt is read.
func ReadPopulation(path string) ([]string, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, IDsFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("population: %w", err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if id := strings.TrimSpace(sc.Text()); id != "" {
			ids = append(ids, id)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("population %s: %w", path, err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("population %s: no IDs", path)
	}
	return ids, nil
}

// Mix says how PrepareBodies sets user.id.
type Mix struct {
	// IDs are the user IDs that the target knows.
	IDs []string
	// HitRate is the share of bodies, 0 to 1, whose user.id is taken from IDs; the others
	// get an ID that is in no population.
	HitRate float64
	// Size is how many bodies to prepare; default 4096, and never fewer than the corpus.
	Size int
	// Seed picks the IDs and which bodies hit; the same seed gives the same bodies.
	Seed uint64
}

// PrepareBodies returns Size bodies built from the corpus in turn, each with user.id
// replaced (a user object is added where there is none): exactly round(HitRate*Size) of
// them, spread at random, with an ID from IDs. The other IDs of a request are left as they
// are. Keys keep their order and values their bytes; only whitespace between the fields of
// the request and of its user object is dropped.
func PrepareBodies(corpus [][]byte, m Mix) ([][]byte, error) {
	if len(m.IDs) == 0 || m.HitRate < 0 || m.HitRate > 1 {
		return nil, errors.New("prepare bodies: want population IDs and a hit rate from 0 to 1")
	}
	size := max(cmpOr(m.Size, 4096), len(corpus))
	rng := rand.New(rand.NewPCG(m.Seed, 0x6d6978))
	hits := int(math.Round(m.HitRate * float64(size)))
	order := rng.Perm(size)
	known := make(map[string]bool, len(m.IDs))
	for _, id := range m.IDs {
		known[id] = true
	}

	bodies := make([][]byte, size)
	for k := range bodies {
		id := missID(rng, known)
		if order[k] < hits {
			id = m.IDs[rng.IntN(len(m.IDs))]
		}
		b, err := setUserID(corpus[k%len(corpus)], id)
		if err != nil {
			return nil, fmt.Errorf("prepare bodies: corpus request %d: %w", k%len(corpus), err)
		}
		bodies[k] = b
	}
	return bodies, nil
}

func cmpOr(v, def int) int {
	if v != 0 {
		return v
	}
	return def
}

// missID returns a user ID that is not in known.
func missID(rng *rand.Rand, known map[string]bool) string {
	for {
		id := fmt.Sprintf("bench-miss-%016x", rng.Uint64())
		if !known[id] {
			return id
		}
	}
}

// field is one member of a JSON object, its value as it was written.
type field struct {
	key   string
	value json.RawMessage
}

// setUserID returns req with user.id set to id.
func setUserID(req []byte, id string) ([]byte, error) {
	fields, err := objectFields(req)
	if err != nil {
		return nil, err
	}
	idJSON, _ := json.Marshal(id) // a string always marshals
	i := slices.IndexFunc(fields, func(f field) bool { return f.key == "user" })
	if i < 0 {
		fields = append(fields, field{key: "user"})
		i = len(fields) - 1
	}
	user := fields[i].value
	if len(user) == 0 || string(user) == "null" {
		user = []byte("{}")
	}
	ufields, err := objectFields(user)
	if err != nil {
		return nil, fmt.Errorf("user: %w", err)
	}
	if j := slices.IndexFunc(ufields, func(f field) bool { return f.key == "id" }); j >= 0 {
		ufields[j].value = idJSON
	} else {
		ufields = slices.Insert(ufields, 0, field{key: "id", value: idJSON})
	}
	fields[i].value = appendObject(nil, ufields)
	return appendObject(make([]byte, 0, len(req)+len(idJSON)), fields), nil
}

// objectFields splits a JSON object into its members, in order.
func objectFields(b []byte) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var fields []field
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("bad JSON: %w", err)
		}
		var f field
		f.key, _ = tok.(string) // inside an object, a token before a value is its key
		if err := dec.Decode(&f.value); err != nil {
			return nil, fmt.Errorf("bad JSON: %w", err)
		}
		fields = append(fields, f)
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	return fields, nil
}

func appendObject(dst []byte, fields []field) []byte {
	dst = append(dst, '{')
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		key, _ := json.Marshal(f.key)
		dst = append(dst, key...)
		dst = append(dst, ':')
		dst = append(dst, f.value...)
	}
	return append(dst, '}')
}
