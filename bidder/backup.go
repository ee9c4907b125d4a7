package bidder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"go.uber.org/zap"
)

// Backuper writes backups of the durable store while it serves. Package store's DB
// implements it.
type Backuper interface {
	// Backup writes a backup of every change after version since (everything for 0) to w
	// and returns the version it covers, the since of the next incremental backup.
	Backup(ctx context.Context, w io.Writer, since uint64) (uint64, error)
	// Version returns the latest version committed, so that a since beyond it is refused
	// before anything is streamed.
	Version() uint64
}

// BackupHandler serves GET /v1/backup?since=N: a full backup without since (or with 0),
// else an incremental one of the changes after version N, streamed as it is read. The
// version to pass as since next time is in the file's trailer; `segd backup` prints it.
// A since ahead of the store gets 409. A failure once streaming has begun aborts the
// connection, so a client never takes a cut stream for a whole one (the file's trailer
// would tell it too). Mount it behind the admin API's token check.
func BackupHandler(b Backuper, log *zap.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var since uint64
		if s := r.URL.Query().Get("since"); s != "" {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				writeJSONError(w, http.StatusBadRequest,
					errors.New("since: want a version number from an earlier backup"))
				return
			}
			since = n
		}
		if latest := b.Version(); since > latest {
			writeJSONError(w, http.StatusConflict, fmt.Errorf("since %d is ahead of this "+
				"store (latest version %d): take a full backup", since, latest))
			return
		}

		kind := "full"
		if since > 0 {
			kind = "since-" + strconv.FormatUint(since, 10)
		}
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", `attachment; filename="segd-`+kind+`.backup"`)
		h.Set("X-Segd-Backup-Since", strconv.FormatUint(since, 10))
		version, err := b.Backup(r.Context(), w, since)
		if err != nil {
			if r.Context().Err() == nil {
				log.Error("backup failed", zap.Uint64("since", since), zap.Error(err))
			}
			panic(http.ErrAbortHandler)
		}
		log.Info("backup taken", zap.Uint64("since", since), zap.Uint64("version", version))
	}
}
