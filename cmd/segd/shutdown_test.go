//go:build unix

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGracefulShutdown holds a proxied auction at the upstream, sends SIGTERM, and checks
// that segd stops accepting at once, finishes the auction, exits 0 after logging each
// step, and leaves Badger closed cleanly.
func TestGracefulShutdown(t *testing.T) {
	received := make(chan struct{})
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		close(received)
		<-release
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"held","seatbid":[]}`)
	}))
	defer up.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release) // a failed test must not leave the upstream's handler waiting
		}
	}()

	bin := buildSegd(t)
	dir := t.TempDir()
	c := startChild(t, bin, dir, "--upstream", up.URL+"/bid", "--upstream-timeout", "1m",
		"--shutdown-timeout", "1m")
	c.mustCall("PUT", c.admin+"/v1/sources/crm", `{"name":"CRM","party":"first","ttl":"720h"}`,
		nil)
	c.mustCall("POST", c.admin+"/v1/import?source=crm", "uid:kept\tgold\n", nil)

	type answer struct {
		status int
		body   string
		err    error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := childClient.Post(c.bid+"/openrtb2/auction", "application/json",
			strings.NewReader(`{"id":"held","user":{"id":"kept"}}`))
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		done <- answer{status: resp.StatusCode, body: string(body), err: err}
	}()
	select {
	case <-received:
	case <-time.After(time.Minute):
		t.Fatal("the auction never reached the upstream")
	}

	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{c.bid, c.admin} {
		if err := waitRefused(strings.TrimPrefix(addr, "http://"), 30*time.Second); err != nil {
			t.Fatalf("%s after SIGTERM: %v", addr, err)
		}
	}
	select {
	case a := <-done:
		t.Fatalf("the held auction ended before the upstream answered: %+v", a)
	default:
	}

	close(release)
	a := <-done
	if a.err != nil || a.status != http.StatusOK || a.body != `{"id":"held","seatbid":[]}` {
		t.Errorf("held auction: status %d, body %q, error %v; want 200 and the upstream's "+
			"answer", a.status, a.body, a.err)
	}
	<-c.exited
	if c.err != nil {
		t.Fatalf("segd exited with %v, want 0:\n%s", c.err, c.logTail())
	}
	checkShutdownLog(t, c.log)

	// Badger flushes and removes its memtable files only when it is closed cleanly.
	if mem, _ := filepath.Glob(filepath.Join(dir, "*.mem")); len(mem) != 0 {
		t.Errorf("memtable files left after shutdown: %v", mem)
	}
	c = startChild(t, bin, dir)
	if n := c.count("crm:gold"); n != 1 {
		t.Errorf("after the restart crm:gold counts %d, want 1", n)
	}
	c.stop(syscall.SIGTERM)
}

// waitRefused waits until a connection to addr is refused.
func waitRefused(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				return nil
			}
			continue
		}
		conn.Close()
		time.Sleep(5 * time.Millisecond) // still accepting: poll again
	}
	return errors.New("still accepting connections")
}

// checkShutdownLog checks that the log holds the shutdown steps in order, each once.
func checkShutdownLog(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := []string{"shutting down", "listeners stopped", "store closed"}
	var got []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			t.Errorf("log line is not JSON: %s", sc.Bytes())
			continue
		}
		if line.Level == "error" || line.Level == "warn" {
			t.Errorf("log: %s", sc.Bytes())
		}
		for _, w := range want {
			if line.Msg == w {
				got = append(got, w)
			}
		}
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("shutdown steps logged: %v, want %v", got, want)
	}
}
