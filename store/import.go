package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/segd/segd/segments"
)

// batchLines is how many lines go into one durable batch.
const batchLines = 4096

// numbered is a parsed line with its line number.
type numbered[L any] struct {
	num  int
	line L
}

// Import reads onboarding lines of the given source from r and applies them in durable
// batches. Lines that fail to parse, or whose IDs are all opted out, are reported and
// never stop the others. Every line counted as accepted is durable when Import returns,
// even with an error: the error says why the rest was not read or not written.
func (db *DB) Import(ctx context.Context, source string, f segments.Format, r io.Reader) (
	segments.ImportResult, error) {
	parse, err := lineParser(f)
	if err != nil {
		return segments.ImportResult{Errors: []segments.LineError{}}, err
	}
	if _, ok := db.ix.Source(source); !ok {
		return segments.ImportResult{Errors: []segments.LineError{}},
			fmt.Errorf("import into %q: %w", source, segments.ErrUnknownSource)
	}
	apply := func(batch []numbered[segments.Line], res *segments.ImportResult) error {
		return db.applyLines(source, batch, res)
	}
	res, err := ingest(ctx, r, parse, apply)
	if err != nil {
		return res, fmt.Errorf("import into %q: %w", source, err)
	}
	return res, nil
}

// ingest reads lines from r, parses them, and hands them to apply in batches of at most
// batchLines. Blank lines and lines starting with '#' are skipped but counted. Reading and
// parsing the next batch runs beside applying the current one, so that parsing overlaps
// the sync to disk.
func ingest[L any](ctx context.Context, r io.Reader, parse func([]byte) (L, error),
	apply func([]numbered[L], *segments.ImportResult) error) (segments.ImportResult, error) {
	res := segments.ImportResult{Errors: []segments.LineError{}}
	batches := make(chan parsedBatch[L], 1)
	done := make(chan struct{})
	defer close(done)
	go readBatches(r, parse, batches, done)
	for b := range batches {
		res.Rejected += b.rejected.Rejected
		res.Errors = append(res.Errors, b.rejected.Errors...)
		if len(b.lines) > 0 {
			if err := apply(b.lines, &res); err != nil {
				res.Trim()
				return res, err
			}
		}
		res.Trim()
		if b.err != nil {
			return res, b.err
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// parsedBatch is one batch of parsed lines, the lines rejected while parsing them, and the
// error that stopped reading, if any.
type parsedBatch[L any] struct {
	lines    []numbered[L]
	rejected segments.ImportResult
	err      error
}

// readBatches parses r into batches sent on out, which it closes at the end of input, on
// a read error (sent with the last batch), or when done is closed.
func readBatches[L any](r io.Reader, parse func([]byte) (L, error),
	out chan<- parsedBatch[L], done <-chan struct{}) {
	defer close(out)
	br := bufio.NewReaderSize(r, 256<<10)
	num := 0
	b := parsedBatch[L]{lines: make([]numbered[L], 0, batchLines)}
	for {
		line, readErr := readLine(br)
		if readErr != nil && !errors.Is(readErr, io.EOF) && !errors.Is(readErr, errLineTooLong) {
			b.err = fmt.Errorf("read line %d: %w", num+1, readErr)
		} else if readErr == nil || len(line) > 0 || errors.Is(readErr, errLineTooLong) {
			num++
			b.lines = addLine(b.lines, &b.rejected, num, line, readErr, parse)
		}
		last := b.err != nil || errors.Is(readErr, io.EOF)
		if !last && len(b.lines) < batchLines {
			continue
		}
		select {
		case out <- b:
		case <-done:
			return
		}
		if last {
			return
		}
		b = parsedBatch[L]{lines: make([]numbered[L], 0, batchLines)}
	}
}

func addLine[L any](batch []numbered[L], res *segments.ImportResult, num int, line []byte,
	readErr error, parse func([]byte) (L, error)) []numbered[L] {
	if errors.Is(readErr, errLineTooLong) {
		res.Reject(num, readErr)
		return batch
	}
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 || trimmed[0] == '#' {
		return batch
	}
	l, err := parse(line)
	if err != nil {
		res.Reject(num, err)
		return batch
	}
	return append(batch, numbered[L]{num: num, line: l})
}

func lineParser(f segments.Format) (func([]byte) (segments.Line, error), error) {
	switch f {
	case segments.TSV:
		return segments.ParseTSVLine, nil
	case segments.NDJSON:
		return segments.ParseNDJSONLine, nil
	}
	return nil, fmt.Errorf("format %q: want tsv or ndjson", f)
}

// applyLines writes one batch in a single durable Txn. A line whose IDs are all suppressed
// is rejected.
func (db *DB) applyLines(source string, batch []numbered[segments.Line],
	res *segments.ImportResult) error {
	now := db.cfg.Now()
	h := db.ix.Hasher()
	t := db.ix.Begin(now)
	src, ok := t.Source(source)
	if !ok {
		t.Rollback()
		return fmt.Errorf("source deleted meanwhile: %w", segments.ErrUnknownSource)
	}
	accepted := 0
	var ids []uint64
	for _, pl := range batch {
		ids = ids[:0]
		for _, id := range pl.line.IDs {
			ids = append(ids, h.Hash(id))
		}
		p := t.Resolve(ids)
		if p == segments.NoProfile {
			res.Reject(pl.num, segments.ErrOptedOut)
			continue
		}
		accepted++
		ttl := pl.line.TTL
		if ttl == 0 {
			ttl = src.TTL
		}
		until := expiry(now, ttl)
		for _, code := range pl.line.Add {
			t.Add(p, source+":"+code, until)
		}
		for _, code := range pl.line.Remove {
			t.Remove(p, source+":"+code)
		}
	}
	if err := db.Apply(t); err != nil {
		return fmt.Errorf("lines %d-%d: %w", batch[0].num, batch[len(batch)-1].num, err)
	}
	res.Accepted += accepted
	return nil
}

func expiry(now time.Time, ttl time.Duration) uint32 {
	s := now.Add(ttl).Unix()
	if s >= 1<<32-1 {
		return 1<<32 - 2
	}
	return uint32(s)
}

var errLineTooLong = fmt.Errorf("line longer than %d bytes", segments.MaxLineLen)

// readLine returns the next line without its newline. A line longer than MaxLineLen is
// skipped to its end and reported as errLineTooLong. At the end of input it returns the
// last unterminated line, if any, with io.EOF. The slice is valid until the next call.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n')
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return nil, errLineTooLong
	}
	if err == nil {
		line = line[:len(line)-1]
	}
	if len(line) > segments.MaxLineLen {
		return nil, errLineTooLong
	}
	return line, err
}
