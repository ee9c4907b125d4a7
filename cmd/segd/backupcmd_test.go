package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/segd/segd/bidder"
)

// backupURL returns an admin base URL that serves GET /v1/backup for a: the admin listener
// itself once it routes the path, else a loopback server with just that route.
func backupURL(t *testing.T, a *app, c testClient) string {
	t.Helper()
	if status, _ := c.do("GET", c.admin+"/v1/backup?since=18446744073709551615", nil); status ==
		http.StatusConflict {
		return c.admin
	}
	mux := http.NewServeMux()
	mux.Handle("GET /v1/backup", bidder.BackupHandler(a.db, zap.NewNop()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

var versionLine = regexp.MustCompile(`through version (\d+)`)

// runBackupCmd runs `segd backup` and returns the version it printed.
func runBackupCmd(t *testing.T, admin string, since uint64, out string) uint64 {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args := []string{"backup", "--admin", admin, "--out", out}
	if since > 0 {
		args = append(args, "--since", strconv.FormatUint(since, 10))
	}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("segd %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	m := versionLine.FindStringSubmatch(stdout.String())
	if m == nil {
		t.Fatalf("segd backup printed no version: %s", stdout.String())
	}
	v, _ := strconv.ParseUint(m[1], 10, 64)
	return v
}

// extraRequests enrich the profiles that the test adds around its backups.
var extraRequests = map[string]string{
	"kept":    `{"id":"x1","user":{"id":"extra-1"}}`,
	"removed": `{"id":"x2","user":{"id":"extra-2"}}`,
	"late":    `{"id":"x3","user":{"id":"extra-3"}}`,
}

func enrichExtra(t *testing.T, c testClient) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, body := range extraRequests {
		out[name] = string(c.must("POST", c.bid+"/openrtb2/enrich", []byte(body), 200))
	}
	return out
}

// TestBackupRestore backs up a serving segd fully, then incrementally after more imports,
// restores both into an empty folder with the commands, and serves from it.
func TestBackupRestore(t *testing.T) {
	a := startTestApp(t, t.TempDir())
	c := newClient(t, a)
	onboard(t, c)
	c.must("POST", c.admin+"/v1/import?source=crm&format=tsv",
		[]byte("uid:extra-1\tgold,vip\nuid:extra-2\tgold\n"), 200)
	admin := backupURL(t, a, c)
	files := t.TempDir()
	full := filepath.Join(files, "full.backup")
	v1 := runBackupCmd(t, admin, 0, full)

	c.must("POST", c.admin+"/v1/import?source=crm&format=tsv",
		[]byte("uid:extra-2\t-gold\nuid:extra-3\tvip\n"), 200)
	c.must("PUT", c.admin+"/v1/segments/vip",
		[]byte(`{"name":"VIP","rule":"crm:vip","export_id":"VIP"}`), 200)
	incr := filepath.Join(files, "incr.backup")
	v2 := runBackupCmd(t, admin, v1, incr)
	if v2 <= v1 {
		t.Fatalf("incremental through version %d after a full one through %d", v2, v1)
	}
	checkBackupRefusals(t, admin, incr, v2)

	sizes := segmentSizes(t, c)
	before := enrichAll(t, c)
	extra := enrichExtra(t, c)
	if !strings.Contains(extra["kept"], `"VIP"`) || strings.Contains(extra["removed"], `"L1"`) {
		t.Fatalf("the changes after the full backup did not apply: %v", extra)
	}
	a.close()

	restored := filepath.Join(t.TempDir(), "restored")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"restore", "--data-dir", restored, full, incr},
		&stdout, &stderr)
	if err != nil {
		t.Fatalf("segd restore: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "through version "+strconv.FormatUint(v2, 10)) {
		t.Errorf("segd restore printed %q", stdout.String())
	}

	b := startTestApp(t, restored)
	defer b.close()
	c = newClient(t, b)
	if got := segmentSizes(t, c); !equalMaps(got, sizes) {
		t.Errorf("restored segment sizes %v, want %v", got, sizes)
	}
	after := enrichAll(t, c)
	for name := range before {
		if !bytes.Equal(before[name], after[name]) {
			t.Errorf("%s: differs after restore:\n%s\n%s", name, before[name], after[name])
		}
	}
	for name, want := range extra {
		if got := enrichExtra(t, c)[name]; got != want {
			t.Errorf("%s: %s after restore, want %s", name, got, want)
		}
	}
}

// checkBackupRefusals checks that segd backup refuses what it must.
func checkBackupRefusals(t *testing.T, admin, existing string, latest uint64) {
	t.Helper()
	var out bytes.Buffer
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"existing file", []string{"--out", existing}, "exists"},
		{"since ahead", []string{"--since", strconv.FormatUint(latest+1000, 10),
			"--out", filepath.Join(dir, "ahead")}, "409"},
	} {
		args := append([]string{"backup", "--admin", admin}, tc.args...)
		err := run(context.Background(), args, &out, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "*")); len(matches) != 0 {
		t.Errorf("a refused backup left %v", matches)
	}
}
