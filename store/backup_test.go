package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/segd/segd/segments"
	"github.com/segd/segd/store"
)

// backup takes a backup of e since the given version into a file and returns its path
// and what the file says of itself.
func (e *env) backup(since uint64, name string) (string, store.BackupInfo) {
	e.t.Helper()
	var buf bytes.Buffer
	version, err := e.db.Backup(context.Background(), &buf, since)
	if err != nil {
		e.t.Fatalf("backup since %d: %v", since, err)
	}
	info, err := store.ReadBackupInfo(bytes.NewReader(buf.Bytes()))
	if err != nil {
		e.t.Fatalf("read backup since %d: %v", since, err)
	}
	if info.Since != since || info.Version != version {
		e.t.Fatalf("backup since %d returned %d, file says %+v", since, version, info)
	}
	path := filepath.Join(e.t.TempDir(), name)
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path, info
}

// restore rebuilds a data folder from files and opens it.
func restore(t *testing.T, e *env, files ...string) *env {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "restored")
	if _, err := store.Restore(dir, files, false, zap.NewNop()); err != nil {
		t.Fatalf("restore %v: %v", files, err)
	}
	return openEnv(t, dir, e.secret, e.clk)
}

func TestBackupChainRestores(t *testing.T) {
	e := newEnv(t)
	durabilityData(t, e)
	full, fullInfo := e.backup(0, "full")
	atFull := snapshot(t, e, durabilityIDs)
	if !fullInfo.Full() || fullInfo.Version == 0 {
		t.Fatalf("full backup %+v", fullInfo)
	}

	// The first write after a backup gets the version right after the backup's: the
	// incremental must start at, not after, that one.
	e.importText("crm", segments.TSV, "uid:g\tgold\nuid:b\t-silver\n")
	e.define("silver", "crm:silver")
	if err := e.db.DeleteSegment("notgold"); err != nil {
		t.Fatal(err)
	}
	incr, incrInfo := e.backup(fullInfo.Version, "incr")
	if incrInfo.Full() || incrInfo.Version <= fullInfo.Version {
		t.Fatalf("incremental backup %+v after %+v", incrInfo, fullInfo)
	}
	empty, emptyInfo := e.backup(incrInfo.Version, "empty")
	if emptyInfo.Version != incrInfo.Version {
		t.Errorf("backup with no change moved the version: %+v", emptyInfo)
	}
	ids := append(slices.Clone(durabilityIDs), "uid:g")
	want := snapshot(t, e, ids)

	if got := snapshot(t, restore(t, e, full, incr, empty), ids); got != want {
		t.Errorf("restored chain:\n%s\nwant:\n%s", got, want)
	}
	if got := snapshot(t, restore(t, e, full), durabilityIDs); got != atFull {
		t.Errorf("restored full backup:\n%s\nwant:\n%s", got, atFull)
	}
}

func TestRestoredStoreChainsOn(t *testing.T) {
	e := newEnv(t)
	durabilityData(t, e)
	full, info := e.backup(0, "full")
	r := restore(t, e, full)
	if v := r.db.Version(); v != info.Version {
		t.Errorf("restored store at version %d, backup at %d", v, info.Version)
	}
	r.importText("crm", segments.TSV, "uid:h\tgold\n")
	incr, _ := r.backup(info.Version, "incr")
	ids := append(slices.Clone(durabilityIDs), "uid:h")
	if got, want := snapshot(t, restore(t, r, full, incr), ids), snapshot(t, r, ids); got != want {
		t.Errorf("full backup of the first store and incremental of the restored one:\n%s\n"+
			"want:\n%s", got, want)
	}
}

// TestBackupWhileImporting takes a backup while batches are imported, and checks that it
// holds each batch whole or not at all, and every batch acknowledged before it began.
func TestBackupWhileImporting(t *testing.T) {
	e := newEnv(t)
	const batches, lines = 40, 500
	acked := make(chan int, batches)
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := range batches {
			if b == batches/4 {
				close(started)
			}
			var text strings.Builder
			for i := range lines {
				fmt.Fprintf(&text, "uid:b%d-%d\tb%d\n", b, i, b)
			}
			if _, err := e.db.Import(context.Background(), "crm", segments.TSV,
				strings.NewReader(text.String())); err != nil {
				t.Errorf("batch %d: %v", b, err)
				return
			}
			acked <- b
		}
	}()
	<-started
	before := len(acked)
	path, _ := e.backup(0, "full")
	wg.Wait()

	r := restore(t, e, path)
	present := 0
	for b := range batches {
		n, err := r.ix.Count(fmt.Sprintf("crm:b%d", b))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case n != 0 && n != lines:
			t.Errorf("batch %d: %d of %d lines restored", b, n, lines)
		case n == 0 && b < before:
			t.Errorf("batch %d, acknowledged before the backup, is missing", b)
		case n == lines:
			present++
		}
	}
	t.Logf("%d of %d batches in the backup, %d acknowledged before it began",
		present, batches, before)
}

func TestBackupSinceAhead(t *testing.T) {
	e := newEnv(t)
	_, err := e.db.Backup(context.Background(), &bytes.Buffer{}, e.db.Version()+1)
	if !errors.Is(err, store.ErrSinceAhead) {
		t.Errorf("backup since a future version: %v, want ErrSinceAhead", err)
	}
}

func TestBackupCancelled(t *testing.T) {
	e := newEnv(t)
	durabilityData(t, e)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var buf bytes.Buffer
	if _, err := e.db.Backup(ctx, &buf, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled backup: %v", err)
	}
	if _, err := store.ReadBackupInfo(&buf); err == nil {
		t.Error("a cancelled backup reads as whole")
	}
}

// TestBackupDamaged cuts a backup at every length and flips bytes in it: every such file
// must be refused.
func TestBackupDamaged(t *testing.T) {
	e := newEnv(t)
	durabilityData(t, e)
	path, _ := e.backup(0, "full")
	whole, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(whole) {
		if _, err := store.ReadBackupInfo(bytes.NewReader(whole[:n])); err == nil {
			t.Fatalf("cut at %d of %d: read as whole", n, len(whole))
		}
	}
	for i := 0; i < len(whole); i += 1 + len(whole)/500 {
		b := slices.Clone(whole)
		b[i] ^= 0x20
		if _, err := store.ReadBackupInfo(bytes.NewReader(b)); err == nil {
			t.Fatalf("byte %d flipped: read as whole", i)
		}
	}
	if _, err := store.ReadBackupInfo(bytes.NewReader(append(whole, 0))); err == nil {
		t.Error("data after the trailer: read as whole")
	}
	_, err = store.ReadBackupInfo(strings.NewReader(`{"not":"a backup"} and more bytes`))
	if !errors.Is(err, store.ErrNotBackup) {
		t.Errorf("JSON file: %v, want ErrNotBackup", err)
	}
}

func TestRestoreRefusesBrokenChains(t *testing.T) {
	e := newEnv(t)
	durabilityData(t, e)
	full, info := e.backup(0, "full")
	e.importText("crm", segments.TSV, "uid:g\tgold\n")
	incr1, info1 := e.backup(info.Version, "incr1")
	e.importText("crm", segments.TSV, "uid:h\tgold\n")
	incr2, _ := e.backup(info1.Version, "incr2")
	skip, _ := e.backup(info.Version+1, "skip")

	other := openEnv(t, t.TempDir(), "another store secret", newClock(t0))
	for other.db.Version() < info.Version {
		other.source("crm", time.Hour)
	}
	otherIncr, _ := other.backup(info.Version, "other")
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, []byte("segd-bak but not really"), 0o600)

	tests := []struct {
		name  string
		files []string
		want  error
	}{
		{"no files", nil, nil},
		{"incremental first", []string{incr1, incr2}, store.ErrBackupChain},
		{"gap", []string{full, incr2}, store.ErrBackupChain},
		{"out of order", []string{full, incr2, incr1}, store.ErrBackupChain},
		{"since inside the previous", []string{full, skip}, store.ErrBackupChain},
		{"another store", []string{full, otherIncr}, store.ErrBackupChain},
		{"not a backup", []string{full, junk}, store.ErrNotBackup},
		{"missing file", []string{full, junk + ".nope"}, os.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			_, err := store.Restore(dir, tc.files, false, zap.NewNop())
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("restore: %v, want %v", err, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused restore left %s behind: %v", dir, err)
			}
		})
	}
}

func TestRestoreTarget(t *testing.T) {
	e := newEnv(t)
	durabilityData(t, e)
	full, _ := e.backup(0, "full")
	want := snapshot(t, e, durabilityIDs)

	t.Run("empty folder", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := store.Restore(dir, []string{full}, false, zap.NewNop()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("folder with other files", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o600)
		for _, force := range []bool{false, true} {
			if _, err := store.Restore(dir, []string{full}, force, zap.NewNop()); err == nil {
				t.Errorf("force %v: restored over a folder that is not Badger's", force)
			}
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "notes.txt")); string(b) != "mine" {
			t.Error("the folder's file was touched")
		}
	})
	t.Run("folder in use", func(t *testing.T) {
		if _, err := store.Restore(e.dir, []string{full}, true, zap.NewNop()); err == nil {
			t.Error("restored over the folder of an open store")
		}
	})
	t.Run("force moves a data folder aside", func(t *testing.T) {
		old := newEnv(t)
		old.importText("crm", segments.TSV, "uid:old\tgold\n")
		if err := old.db.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Restore(old.dir, []string{full}, false, zap.NewNop()); err == nil {
			t.Fatal("restored over a data folder without force")
		}
		st, err := store.Restore(old.dir, []string{full}, true, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		if got := snapshot(t, openEnv(t, old.dir, e.secret, e.clk), durabilityIDs); got != want {
			t.Errorf("restored over a data folder:\n%s\nwant:\n%s", got, want)
		}
		moved := openEnv(t, st.Replaced, e.secret, e.clk)
		if _, ok := moved.ix.LookupProfile(moved.hash("uid:old"), t0); !ok {
			t.Errorf("the folder moved aside lost its profile")
		}
	})
}
