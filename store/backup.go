package store

// Backups are Badger's own backup stream wrapped in a small frame of ours, so that a restore
// can tell a full backup from an incremental one, put a chain of them in order, refuse a
// file of another store, and notice a file cut short. The layout, integers little-endian:
//
//	header   "segd-bak", uint32 format (1), uint32 flags (0), uint64 since,
//	         uint64 fingerprint of the ID secret
//	chunks   uint32 length (1 to maxBackupChunk), then that many bytes of Badger's stream
//	end      uint32 0
//	trailer  uint64 version, uint64 stream bytes, uint32 CRC-32C of every byte before it
//
// A backup holds every change with a Badger version above since, up to version, which is
// the since of the next incremental. A full backup has since 0.
//
// Limitation: Badger drops a deletion marker once compaction has nothing older left for it
// to hide, so an incremental backup may miss a deletion that happened after its since. A
// restore then brings back the deleted key (a source, a segment, or a profile removed by
// expiry or by "-code" lines). Take full backups often enough that this stays harmless.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/zap"
)

const (
	backupMagic      = "segd-bak"
	backupFormat     = 1
	backupHeaderLen  = 32
	backupTrailerLen = 20
	maxBackupChunk   = 4 << 20
	backupChunk      = 1 << 20 // what the writer aims for
	// backupReaders is how many goroutines read Badger for a backup: few, so that a bid
	// host taking a backup keeps its CPU for requests.
	backupReaders = 2
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Backup errors.
var (
	// ErrSinceAhead means a backup was asked for changes after a version this store has
	// not reached: the since belongs to another store, or to one restored from an older
	// backup. Take a full backup.
	ErrSinceAhead = errors.New("since is ahead of this store's latest version")
	// ErrNotBackup means a file does not start like a segd backup.
	ErrNotBackup = errors.New("not a segd backup file")
	// ErrBackupDamaged means a backup file is cut short or its checksum does not match.
	ErrBackupDamaged = errors.New("backup file is damaged or incomplete")
	// ErrBackupChain means the files given to Restore do not form one chain: a full
	// backup, then incrementals each starting where the one before ended, of one store.
	ErrBackupChain = errors.New("backup files do not form a chain")
)

// BackupInfo describes one backup file.
type BackupInfo struct {
	Since       uint64 // changes after this version are in the file; 0 for a full backup
	Version     uint64 // the last version covered: the since of the next incremental
	Fingerprint uint64 // of the ID secret of the store it came from
	Bytes       int64  // of Badger's stream inside the file
}

// Full reports whether the backup holds the whole store rather than changes.
func (b BackupInfo) Full() bool { return b.Since == 0 }

// Version returns the latest version committed to the store. A backup since it would hold
// nothing yet.
func (db *DB) Version() uint64 { return db.bdb.MaxVersion() }

// Backup writes to w a backup of every change after version since, or of everything when
// since is 0, while the store keeps serving; it reads one consistent snapshot. It returns
// the version the backup covers, to pass as since next time. When it fails, what reached w
// is not a valid backup, and ReadBackupInfo says so.
func (db *DB) Backup(ctx context.Context, w io.Writer, since uint64) (uint64, error) {
	if latest := db.Version(); since > latest {
		return 0, fmt.Errorf("backup since %d (latest %d): %w", since, latest, ErrSinceAhead)
	}
	bw := &backupWriter{ctx: ctx, w: w, crc: crc32.New(crcTable)}
	if err := bw.header(since, db.ix.Hasher().Fingerprint()); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	stream := db.bdb.NewStream()
	stream.NumGo = backupReaders
	stream.LogPrefix = "segd backup"
	stream.SinceTs = since
	last, err := stream.Backup(bw, since)
	if err == nil {
		err = bw.flush()
	}
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	// Badger reports the highest version it wrote, 0 when there was none: nothing changed
	// after since, so the next incremental starts there again.
	version := max(last, since)
	if err := bw.trailer(version); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	return version, nil
}

// backupWriter frames Badger's stream into chunks and keeps the checksum. Badger calls
// Write from one goroutine at a time.
type backupWriter struct {
	ctx   context.Context
	w     io.Writer
	crc   hash.Hash32
	buf   []byte
	bytes uint64
}

func (bw *backupWriter) emit(b []byte) error {
	bw.crc.Write(b)
	_, err := bw.w.Write(b)
	return err
}

func (bw *backupWriter) header(since, fingerprint uint64) error {
	b := make([]byte, 0, backupHeaderLen)
	b = append(b, backupMagic...)
	b = binary.LittleEndian.AppendUint32(b, backupFormat)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint64(b, since)
	b = binary.LittleEndian.AppendUint64(b, fingerprint)
	return bw.emit(b)
}

// Write buffers p and writes a chunk whenever the buffer is full. It stops with the
// context's error once the context is done.
func (bw *backupWriter) Write(p []byte) (int, error) {
	if err := bw.ctx.Err(); err != nil {
		return 0, err
	}
	bw.buf = append(bw.buf, p...)
	bw.bytes += uint64(len(p))
	if len(bw.buf) >= backupChunk {
		if err := bw.flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (bw *backupWriter) flush() error {
	for len(bw.buf) > 0 {
		n := min(len(bw.buf), maxBackupChunk)
		if err := bw.emit(binary.LittleEndian.AppendUint32(nil, uint32(n))); err != nil {
			return err
		}
		if err := bw.emit(bw.buf[:n]); err != nil {
			return err
		}
		bw.buf = bw.buf[n:]
	}
	bw.buf = bw.buf[:0]
	return nil
}

func (bw *backupWriter) trailer(version uint64) error {
	b := binary.LittleEndian.AppendUint32(nil, 0)
	b = binary.LittleEndian.AppendUint64(b, version)
	b = binary.LittleEndian.AppendUint64(b, bw.bytes)
	if err := bw.emit(b); err != nil {
		return err
	}
	_, err := bw.w.Write(binary.LittleEndian.AppendUint32(nil, bw.crc.Sum32()))
	return err
}

// backupReader reads the Badger stream out of a backup file and checks the frame as it
// goes: at the end it returns io.EOF only when the trailer and checksum are right.
type backupReader struct {
	src  *bufio.Reader
	tee  io.Reader // src, through the checksum
	crc  hash.Hash32
	left uint32 // bytes left in the current chunk
	info BackupInfo
	err  error // sticky; io.EOF once the trailer was read and checked
}

func newBackupReader(r io.Reader) (*backupReader, error) {
	br := &backupReader{src: bufio.NewReaderSize(r, 256<<10), crc: crc32.New(crcTable)}
	br.tee = io.TeeReader(br.src, br.crc)
	var h [backupHeaderLen]byte
	if _, err := io.ReadFull(br.tee, h[:]); err != nil {
		return nil, fmt.Errorf("read header: %w", ErrNotBackup)
	}
	if string(h[:8]) != backupMagic {
		return nil, ErrNotBackup
	}
	if f := binary.LittleEndian.Uint32(h[8:]); f != backupFormat {
		return nil, fmt.Errorf("backup format %d, this segd reads %d: %w", f, backupFormat,
			ErrNotBackup)
	}
	br.info.Since = binary.LittleEndian.Uint64(h[16:])
	br.info.Fingerprint = binary.LittleEndian.Uint64(h[24:])
	return br, nil
}

func (br *backupReader) Read(p []byte) (int, error) {
	if br.err != nil {
		return 0, br.err
	}
	if br.left == 0 {
		if br.err = br.nextChunk(); br.err != nil {
			return 0, br.err
		}
	}
	n, err := br.tee.Read(p[:min(len(p), int(br.left))])
	br.left -= uint32(n)
	br.info.Bytes += int64(n)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		br.err = ErrBackupDamaged
		return n, br.err
	}
	return n, err
}

// nextChunk reads the next chunk length, or the end and the trailer.
func (br *backupReader) nextChunk() error {
	var l [4]byte
	if _, err := io.ReadFull(br.tee, l[:]); err != nil {
		return damaged(err)
	}
	n := binary.LittleEndian.Uint32(l[:])
	if n > maxBackupChunk {
		return ErrBackupDamaged
	}
	if n > 0 {
		br.left = n
		return nil
	}
	var t [backupTrailerLen]byte
	if _, err := io.ReadFull(br.tee, t[:16]); err != nil {
		return damaged(err)
	}
	sum := br.crc.Sum32()
	if _, err := io.ReadFull(br.src, t[16:]); err != nil {
		return damaged(err)
	}
	br.info.Version = binary.LittleEndian.Uint64(t[:])
	bytes := binary.LittleEndian.Uint64(t[8:])
	if binary.LittleEndian.Uint32(t[16:]) != sum || bytes != uint64(br.info.Bytes) ||
		br.info.Version < br.info.Since {
		return ErrBackupDamaged
	}
	if _, err := br.src.ReadByte(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("data after the trailer: %w", ErrBackupDamaged)
	}
	return io.EOF
}

func damaged(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrBackupDamaged
	}
	return err
}

// ReadBackupInfo reads a whole backup file from r, checking its frame and checksum, and
// describes it.
func ReadBackupInfo(r io.Reader) (BackupInfo, error) {
	br, err := newBackupReader(r)
	if err != nil {
		return BackupInfo{}, err
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return br.info, err
	}
	return br.info, nil
}

// RestoreStats describes a restore.
type RestoreStats struct {
	Files    int
	Version  uint64 // the last version restored: the since of the next incremental
	Bytes    int64  // of Badger's streams read
	Replaced string // where the folder's earlier content was moved, with Force
	Took     time.Duration
}

// Restore rebuilds a data folder from backup files: one full backup, then incrementals in
// order, each starting where the one before ended. It checks every file and the chain
// before it writes anything, restores into a new folder beside dir, and puts it in place
// only once complete. dir must be missing or empty; with force, a Badger folder that no
// process has open is moved aside (RestoreStats.Replaced names where) rather than refused.
// It runs offline: the store must not be open.
func Restore(dir string, files []string, force bool, log *zap.Logger) (RestoreStats, error) {
	start := time.Now()
	st := RestoreStats{Files: len(files)}
	infos, err := checkChain(files)
	if err != nil {
		return st, fmt.Errorf("restore: %w", err)
	}
	replace, err := checkTarget(dir, force)
	if err != nil {
		return st, fmt.Errorf("restore into %q: %w", dir, err)
	}
	tmp := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".restoring")
	if err := os.RemoveAll(tmp); err != nil {
		return st, fmt.Errorf("restore: clear %s: %w", tmp, err)
	}
	if st.Bytes, err = loadBackups(tmp, files, infos[0].Fingerprint, log); err != nil {
		os.RemoveAll(tmp)
		return st, fmt.Errorf("restore: %w", err)
	}
	if st.Replaced, err = swapIn(tmp, dir, replace); err != nil {
		return st, fmt.Errorf("restore into %q: %w", dir, err)
	}
	st.Version = infos[len(infos)-1].Version
	st.Took = time.Since(start)
	return st, nil
}

// checkChain reads every file through and checks that they form one chain.
func checkChain(files []string) ([]BackupInfo, error) {
	if len(files) == 0 {
		return nil, errors.New("no backup files")
	}
	infos := make([]BackupInfo, len(files))
	for i, name := range files {
		info, err := readInfoFile(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		infos[i] = info
		switch {
		case i == 0 && !info.Full():
			return nil, fmt.Errorf("%s is an incremental backup (since %d); the first "+
				"file must be a full one: %w", name, info.Since, ErrBackupChain)
		case i > 0 && info.Fingerprint != infos[0].Fingerprint:
			return nil, fmt.Errorf("%s comes from a store with another ID secret: %w",
				name, ErrBackupChain)
		case i > 0 && info.Since != infos[i-1].Version:
			return nil, fmt.Errorf("%s starts after version %d, but %s ends at %d: %w",
				name, info.Since, files[i-1], infos[i-1].Version, ErrBackupChain)
		}
	}
	return infos, nil
}

func readInfoFile(name string) (BackupInfo, error) {
	f, err := os.Open(name)
	if err != nil {
		return BackupInfo{}, err
	}
	defer f.Close()
	return ReadBackupInfo(f)
}

// checkTarget checks that dir can take a restore. It reports whether dir holds a Badger
// folder to move aside.
func checkTarget(dir string, force bool) (bool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) || err == nil && len(entries) == 0 {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !force {
		return false, errors.New("the folder is not empty (--force moves a data folder aside)")
	}
	if _, err := os.Stat(filepath.Join(dir, "MANIFEST")); err != nil {
		return false, errors.New("the folder is not empty and holds no Badger data; " +
			"not touching it even with --force")
	}
	// Opening takes Badger's folder lock, so it fails while a segd serves from dir.
	bdb, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		return false, fmt.Errorf("the folder is in use or unreadable (stop segd first): %w", err)
	}
	if err := bdb.Close(); err != nil {
		return false, err
	}
	return true, nil
}

// loadBackups creates a Badger folder at dir and loads the files into it in order. It
// returns the stream bytes read.
func loadBackups(dir string, files []string, fingerprint uint64, log *zap.Logger) (int64, error) {
	bdb, err := badger.Open(badger.DefaultOptions(dir).
		WithLogger(badgerLogger{log.Named("badger")}).
		WithNumVersionsToKeep(1))
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", dir, err)
	}
	var total int64
	for _, name := range files {
		n, err := loadBackup(bdb, name)
		total += n
		if err != nil {
			bdb.Close()
			return total, fmt.Errorf("load %s: %w", name, err)
		}
		log.Info("backup loaded", zap.String("file", name), zap.Int64("bytes", n))
	}
	if err := checkFingerprint(bdb, fingerprint); err != nil {
		bdb.Close()
		return total, err
	}
	if err := bdb.Close(); err != nil {
		return total, fmt.Errorf("close %s: %w", dir, err)
	}
	return total, nil
}

func loadBackup(bdb *badger.DB, name string) (int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	br, err := newBackupReader(f)
	if err != nil {
		return 0, err
	}
	err = bdb.Load(br, 256)
	return br.info.Bytes, err
}

// checkFingerprint checks that the restored data carries the ID-secret fingerprint that
// the backup headers name.
func checkFingerprint(bdb *badger.DB, want uint64) error {
	return bdb.View(func(tx *badger.Txn) error {
		item, err := tx.Get(keyFingerprint)
		if err != nil {
			return fmt.Errorf("restored data has no ID-secret fingerprint: %w", err)
		}
		return item.Value(func(v []byte) error {
			if len(v) != 8 || binary.LittleEndian.Uint64(v) != want {
				return errors.New("restored data's ID-secret fingerprint differs from the " +
					"backup header's")
			}
			return nil
		})
	})
}

// swapIn puts the restored folder tmp at dir, first moving dir aside when replace is set.
// It returns where dir went.
func swapIn(tmp, dir string, replace bool) (string, error) {
	aside := ""
	if replace {
		aside = dir + ".replaced-" + strconv.FormatInt(time.Now().Unix(), 10)
		if err := os.Rename(dir, aside); err != nil {
			return "", err
		}
	} else if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err // an empty folder is removed, so that the rename can take its name
	}
	if err := os.Rename(tmp, dir); err != nil {
		return aside, err
	}
	return aside, syncDir(filepath.Dir(dir))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
