package main

// This file holds `segd backup`, a client that saves a backup streamed by the admin API of
// a running segd, and `segd restore`, which rebuilds a data folder from backup files
// offline. The file format and the chain rules live in package store.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"go.uber.org/zap"

	"github.com/segd/segd/store"
)

const backupUsage = `Usage: segd backup [--admin URL] [--token TOKEN] [--since VERSION] --out FILE

Save a backup of a running segd, taken while it serves (GET /v1/backup). Without
--since it is a full backup; with the version printed by the backup before, it holds
only the changes since then. The file is checked as it arrives and put in place only
when whole; an existing FILE is never overwritten.

Flags:
  --admin URL        base URL of the admin API (default ` + defaultAdminURL + `)
  --token TOKEN      bearer token for the admin API (default $` + adminTokenEnv + `)
  --since VERSION    take an incremental backup of the changes after VERSION
  --out FILE         where to write the backup (required)
`

const restoreUsage = `Usage: segd restore --data-dir DIR [--force] FILE...

Rebuild the data folder DIR from backup files, offline (no segd may use DIR): one full
backup, then incrementals in the order they were taken. Every file and the chain are
checked before anything is written, and DIR is put in place only once complete. DIR
must be missing or empty; --force moves an existing data folder aside instead.
`

// runBackup runs `segd backup`; args excludes the subcommand name.
func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("segd backup", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c := adminClient{}
	fs.StringVar(&c.base, "admin", defaultAdminURL, "")
	fs.StringVar(&c.token, "token", "", "")
	since := fs.Uint64("since", 0, "")
	out := fs.String("out", "", "")
	err := fs.Parse(args)
	switch {
	case err == nil && *out == "":
		err = errors.New("--out is required")
	case err == nil && fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err != nil {
		return commandUsage(stderr, "backup", backupUsage, err)
	}
	if !isFlagSet(fs, "token") {
		c.token = os.Getenv(adminTokenEnv)
	}
	info, err := fetchBackup(ctx, c, *since, *out)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	kind := "full backup"
	if !info.Full() {
		kind = "incremental backup after version " + strconv.FormatUint(info.Since, 10)
	}
	fmt.Fprintf(stdout, "%s: %s through version %d, %s\n", *out, kind, info.Version,
		formatBytes(float64(info.Bytes)))
	fmt.Fprintf(stdout, "next incremental: segd backup --since %d --out FILE\n", info.Version)
	return nil
}

// commandUsage prints the problem and the usage of a subcommand and returns errUsage, or
// prints the usage alone for -h and returns flag.ErrHelp.
func commandUsage(stderr io.Writer, name, usage string, err error) error {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stderr, usage)
		return err
	}
	fmt.Fprintf(stderr, "segd %s: %v\n\n%s", name, err, usage)
	return errUsage
}

// fetchBackup streams a backup into out, checking the file as it arrives. It writes to a
// temporary name beside out and renames it only when the file is whole and synced.
func fetchBackup(ctx context.Context, c adminClient, since uint64, out string) (
	store.BackupInfo, error) {
	if _, err := os.Lstat(out); err == nil {
		return store.BackupInfo{}, fmt.Errorf("%s exists; backups are never overwritten", out)
	}
	base, err := parseAdminURL(c.base)
	if err != nil {
		return store.BackupInfo{}, err
	}
	u := base.JoinPath("/v1/backup")
	u.RawQuery = "since=" + strconv.FormatUint(since, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return store.BackupInfo{}, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return store.BackupInfo{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return store.BackupInfo{}, readStatusError(resp)
	}
	return saveBackup(resp.Body, out)
}

func saveBackup(body io.Reader, out string) (store.BackupInfo, error) {
	tmp := out + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return store.BackupInfo{}, err
	}
	info, err := store.ReadBackupInfo(io.TeeReader(body, f))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, out)
	}
	if err != nil {
		os.Remove(tmp)
		return info, err
	}
	if d, err := os.Open(filepath.Dir(out)); err == nil {
		d.Sync() // the rename is durable once the folder is; best effort
		d.Close()
	}
	return info, nil
}

// runRestore runs `segd restore`; args excludes the subcommand name.
func runRestore(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("segd restore", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("data-dir", "", "")
	force := fs.Bool("force", false, "")
	err := fs.Parse(args)
	switch {
	case err == nil && *dir == "":
		err = errors.New("--data-dir is required")
	case err == nil && fs.NArg() == 0:
		err = errors.New("no backup FILE given")
	}
	if err != nil {
		return commandUsage(stderr, "restore", restoreUsage, err)
	}

	log := zap.NewNop()
	st, err := store.Restore(*dir, fs.Args(), *force, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %d file(s) into %s through version %d (%s) in %s\n",
		st.Files, *dir, st.Version, formatBytes(float64(st.Bytes)), st.Took.Round(1e6))
	if st.Replaced != "" {
		fmt.Fprintf(stdout, "the folder's earlier content is in %s\n", st.Replaced)
	}
	fmt.Fprintf(stdout, "next incremental from the restored store: --since %d\n", st.Version)
	return nil
}
