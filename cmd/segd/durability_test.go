//go:build unix

package main

// These tests run segd as a child process, as an operator would, and hurt it: SIGKILL in
// the middle of imports, then restart and check that nothing acknowledged was lost and no
// batch is half there. They talk only to 127.0.0.1. SEGD_TEST_LONG=1 (make test-long) runs
// the full version; SEGD_TEST_SEED picks another sequence of kill points.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// buildSegd compiles this package into a temporary folder and returns the binary's path.
func buildSegd(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to build segd with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "segd")
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// child is a segd serve process listening on loopback ports.
type child struct {
	t      *testing.T
	cmd    *exec.Cmd
	bid    string // base URLs
	admin  string
	log    string // path of its stderr
	exited chan struct{}
	err    error // of Wait, set before exited is closed
}

var childStarts atomic.Int64

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startChild runs `segd serve` on dir with args added, and returns once /readyz answers
// 200. A port taken between choosing and binding it is retried with new ones.
func startChild(t *testing.T, bin, dir string, args ...string) *child {
	t.Helper()
	for attempt := 0; ; attempt++ {
		c := spawn(t, bin, dir, args)
		err := c.waitReady(2 * time.Minute)
		if err == nil {
			return c
		}
		log := c.logTail()
		c.stop(syscall.SIGKILL)
		if attempt < 3 && strings.Contains(log, "address already in use") {
			continue
		}
		t.Fatalf("segd did not become ready: %v\n%s", err, log)
	}
}

func spawn(t *testing.T, bin, dir string, args []string) *child {
	t.Helper()
	bidAddr, adminAddr := freeAddr(t), freeAddr(t)
	c := &child{t: t, bid: "http://" + bidAddr, admin: "http://" + adminAddr,
		exited: make(chan struct{}),
		log:    filepath.Join(t.TempDir(), fmt.Sprintf("segd-%d.log", childStarts.Add(1)))}
	logFile, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	all := append([]string{"serve", "--data-dir", dir, "--bid-addr", bidAddr,
		"--admin-addr", adminAddr, "--id-secret", testSecret}, args...)
	c.cmd = exec.Command(bin, all...)
	c.cmd.Env = childEnv()
	c.cmd.Stdout, c.cmd.Stderr = io.Discard, logFile
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = c.cmd.Wait()
		logFile.Close()
		close(c.exited)
	}()
	t.Cleanup(func() { c.stop(syscall.SIGKILL) })
	return c
}

// childEnv is this process's environment without SEGD_ settings, which would reach the
// child's configuration.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SEGD_") {
			env = append(env, kv)
		}
	}
	return env
}

var childClient = &http.Client{Timeout: time.Minute}

func (c *child) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-c.exited:
			return fmt.Errorf("segd exited: %v", c.err)
		case <-tick.C:
		}
		resp, err := childClient.Get(c.admin + "/readyz")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
	}
	return errors.New("not ready in time")
}

// stop sends sig unless the process has exited, and waits for it to exit.
func (c *child) stop(sig syscall.Signal) {
	select {
	case <-c.exited:
		return
	default:
	}
	c.cmd.Process.Signal(sig)
	<-c.exited
}

func (c *child) logTail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// call sends a request to the child and decodes a JSON answer into out, when not nil.
func (c *child) call(method, url, body string, out any) int {
	c.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := childClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, url, err)
	}
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, url, err, raw)
		}
	}
	return resp.StatusCode
}

func (c *child) mustCall(method, url, body string, out any) {
	c.t.Helper()
	if status := c.call(method, url, body, out); status != http.StatusOK {
		c.t.Fatalf("%s %s: status %d", method, url, status)
	}
}

func (c *child) count(rule string) uint64 {
	c.t.Helper()
	var r struct{ Count uint64 }
	body, _ := json.Marshal(map[string]string{"rule": rule})
	c.mustCall("POST", c.admin+"/v1/count", string(body), &r)
	return r.Count
}

// durabilityPlan sizes a run of TestDurabilityUnderKill.
type durabilityPlan struct {
	kills   int
	lines   int // memberships imported in all, about
	batch   int // lines per import request, at most store's batch of 4096, so one transaction
	workers int // imports in flight at once
}

// durSegments are defined over every line's codes: b<N> for batch N, g0 or g1 by the
// line's parity, and t on every third line.
var durSegments = []struct{ id, rule string }{
	{"even", "src:g0"},
	{"odd", "src:g1"},
	{"third-odd", "src:t and src:g1"},
	{"any", "segment:even or segment:odd"},
}

// inSegment reports whether line i of a batch is in the segment, by the same rules.
func inSegment(id string, i int) bool {
	switch id {
	case "even":
		return i%2 == 0
	case "odd":
		return i%2 == 1
	case "third-odd":
		return i%3 == 0 && i%2 == 1
	}
	return true
}

// batchState is what the test knows of one import request.
type batchState struct {
	sent    bool // the request was started
	acked   bool // 200 came back with every line accepted
	checked bool // a restart has seen it
	present bool // fully in the store after the first restart that saw it
}

// durability is one run: the model of what was sent and acknowledged.
type durability struct {
	t       *testing.T
	plan    durabilityPlan
	rng     *rand.Rand
	bin     string
	dir     string
	mu      sync.Mutex
	batches []batchState
	next    atomic.Int64 // the next batch number
	took    atomic.Int64 // nanoseconds of the last acknowledged import, from its start
	stats   struct {
		kills, inFlight, lost, partial, unackedPresent, unackedAbsent, checks int
	}
}

func (d *durability) body(b int) []byte {
	var buf bytes.Buffer
	for i := range d.plan.batch {
		fmt.Fprintf(&buf, "uid:b%d-%d\tb%d,g%d", b, i, b, i%2)
		if i%3 == 0 {
			buf.WriteString(",t")
		}
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

func TestDurabilityUnderKill(t *testing.T) {
	plan := durabilityPlan{kills: 3, lines: 20_000, batch: 500, workers: 2}
	if os.Getenv("SEGD_TEST_LONG") != "" {
		plan = durabilityPlan{kills: 20, lines: 1_000_000, batch: 4000, workers: 2}
	}
	seed := uint64(20260101)
	if s := os.Getenv("SEGD_TEST_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("plan %+v, seed %d", plan, seed)
	d := &durability{t: t, plan: plan, rng: rand.New(rand.NewPCG(seed, seed)),
		bin: buildSegd(t), dir: t.TempDir()}

	c := startChild(t, d.bin, d.dir, "--log-level", "warn")
	c.mustCall("PUT", c.admin+"/v1/sources/src",
		`{"name":"Source","party":"first","ttl":"720h"}`, nil)
	for _, g := range durSegments {
		c.mustCall("PUT", c.admin+"/v1/segments/"+g.id,
			`{"name":"`+g.id+`","rule":"`+g.rule+`"}`, nil)
	}
	// Round r kills in one of the last batches before r+1 rounds' share of the lines.
	perRound := (plan.lines/plan.batch + plan.kills - 1) / plan.kills
	for r := range plan.kills {
		end := (r + 1) * perRound
		target := max(end-1-d.rng.IntN(max(1, perRound/4)), int(d.next.Load()))
		d.importUntilKilled(c, target)
		c = startChild(t, d.bin, d.dir, "--log-level", "warn")
		d.verify(c)
		if t.Failed() {
			t.FailNow()
		}
	}
	c.stop(syscall.SIGTERM)
	if c.err != nil {
		t.Errorf("segd exited with %v after SIGTERM:\n%s", c.err, c.logTail())
	}

	acked := 0
	for _, st := range d.batches {
		if st.acked {
			acked++
		}
	}
	perBatch := d.plan.batch*2 + (d.plan.batch+2)/3 // b<N>, g<0|1>, and t on every third
	s := d.stats
	t.Logf("SIGKILLs %d (%d with the chosen import still in flight), restarts %d; "+
		"batches sent %d, acknowledged %d (%d lines, %d memberships); acknowledged lost %d, "+
		"partly present %d; unacknowledged present %d, absent %d; %d counts checked",
		s.kills, s.inFlight, s.kills, len(d.batches), acked, acked*d.plan.batch,
		acked*perBatch, s.lost, s.partial, s.unackedPresent, s.unackedAbsent, s.checks)
}

// importUntilKilled streams import batches from the workers until it SIGKILLs the child
// at a random point of batch target: part way through sending its body, or a random
// moment after the body went, while the server writes it.
func (d *durability) importUntilKilled(c *child, target int) {
	var once sync.Once
	var killed atomic.Bool
	kill := func() {
		once.Do(func() {
			killed.Store(true)
			c.cmd.Process.Signal(syscall.SIGKILL)
		})
	}
	midBody := d.rng.IntN(2) == 0
	cut := d.rng.Float64()
	// Anywhere in the time an import took last, and a little past it.
	took := time.Duration(d.took.Load())
	if took == 0 {
		took = time.Duration(d.plan.batch) * 10 * time.Microsecond
	}
	delay := time.Duration(d.rng.Float64() * 1.2 * float64(took))
	targetDone := make(chan bool, 1) // whether it was answered before the kill

	var wg sync.WaitGroup
	for range d.plan.workers {
		wg.Go(func() {
			for !killed.Load() {
				b := int(d.next.Add(1) - 1)
				d.mu.Lock()
				for len(d.batches) <= b {
					d.batches = append(d.batches, batchState{})
				}
				d.batches[b].sent = true
				d.mu.Unlock()
				body := d.body(b)
				var r io.Reader = bytes.NewReader(body)
				if b == target {
					r = &killReader{r: r, at: int(cut * float64(len(body))), midBody: midBody,
						delay: delay, kill: kill}
				}
				ok := d.send(c, b, r, &killed)
				if b == target {
					targetDone <- ok
				}
				if !ok {
					return
				}
			}
		})
	}
	workersDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(workersDone)
	}()
	answered := false
	select {
	case answered = <-targetDone:
	case <-workersDone:
		d.t.Fatalf("the imports stopped before batch %d", target)
	}
	kill() // in case the target was answered before its kill point
	<-workersDone
	<-c.exited
	d.stats.kills++
	if !answered {
		d.stats.inFlight++
	}
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || ws.Signal() != syscall.SIGKILL {
		d.t.Fatalf("segd ended with %v, not by SIGKILL:\n%s", c.err, c.logTail())
	}
}

// send imports one batch and records whether it was acknowledged. It returns false once
// the request failed, which is expected only after the kill.
func (d *durability) send(c *child, b int, body io.Reader, killed *atomic.Bool) bool {
	start := time.Now()
	resp, err := childClient.Post(c.admin+"/v1/import?source=src&format=tsv",
		"text/tab-separated-values", body)
	if err != nil {
		if !killed.Load() {
			d.t.Errorf("batch %d: %v", b, err)
		}
		return false
	}
	defer resp.Body.Close()
	var res struct{ Accepted, Rejected int }
	err = json.NewDecoder(resp.Body).Decode(&res)
	if err != nil || resp.StatusCode != http.StatusOK {
		if !killed.Load() {
			d.t.Errorf("batch %d: status %d, %v", b, resp.StatusCode, err)
		}
		return false
	}
	if res.Accepted != d.plan.batch || res.Rejected != 0 {
		d.t.Errorf("batch %d: accepted %d, rejected %d of %d", b, res.Accepted,
			res.Rejected, d.plan.batch)
	}
	d.took.Store(int64(time.Since(start)))
	d.mu.Lock()
	d.batches[b].acked = true
	d.mu.Unlock()
	return true
}

// killReader passes r through and calls kill once at byte at, or, when not midBody, a
// delay after the end of r.
type killReader struct {
	r       io.Reader
	n, at   int
	midBody bool
	delay   time.Duration
	kill    func()
}

func (k *killReader) Read(p []byte) (int, error) {
	if k.midBody {
		p = p[:max(1, min(len(p), k.at-k.n))]
	}
	n, err := k.r.Read(p)
	k.n += n
	if k.midBody && k.n >= k.at {
		k.kill()
	}
	if errors.Is(err, io.EOF) && !k.midBody {
		time.AfterFunc(k.delay, k.kill)
	}
	return n, err
}

// verify checks the restarted child against the model: every acknowledged batch whole,
// no batch in part, segment sizes equal to fresh counts and to the batches present, and
// an acknowledged profile enriched.
func (d *durability) verify(c *child) {
	d.t.Helper()
	want := map[string]uint64{}
	var acked []int
	for b := range d.batches {
		st := &d.batches[b]
		n := c.count(fmt.Sprintf("src:b%d", b))
		d.stats.checks++
		full := uint64(d.plan.batch)
		switch {
		case st.acked && n != full:
			d.stats.lost++
			d.t.Errorf("batch %d was acknowledged, but %d of its %d lines are there", b, n,
				full)
		case n != 0 && n != full:
			d.stats.partial++
			d.t.Errorf("batch %d is partly there: %d of %d lines", b, n, full)
		case st.checked && st.present != (n == full):
			d.t.Errorf("batch %d: present %v at an earlier restart, now %d lines", b,
				st.present, n)
		case !st.checked && !st.acked && n == full:
			d.stats.unackedPresent++
		case !st.checked && !st.acked:
			d.stats.unackedAbsent++
		}
		if !st.checked {
			st.checked, st.present = true, n == full
		}
		if st.acked {
			acked = append(acked, b)
		}
		if st.present {
			for _, g := range durSegments {
				for i := range d.plan.batch {
					if inSegment(g.id, i) {
						want[g.id]++
					}
				}
			}
		}
	}
	d.checkSegments(c, want)
	if len(acked) > 0 {
		b := acked[d.rng.IntN(len(acked))]
		req := fmt.Sprintf(`{"id":"r","user":{"id":"b%d-3"}}`, b)
		var out struct {
			User struct{ Data []struct{ ID string } }
		}
		c.mustCall("POST", c.bid+"/openrtb2/enrich", req, &out)
		if len(out.User.Data) == 0 {
			d.t.Errorf("batch %d: its profile b%d-3 is not enriched after the restart", b, b)
		}
	}
}

func (d *durability) checkSegments(c *child, want map[string]uint64) {
	d.t.Helper()
	var list struct {
		Segments []struct {
			ID   string
			Rule string
			Size uint64
		}
	}
	c.mustCall("GET", c.admin+"/v1/segments", "", &list)
	if len(list.Segments) != len(durSegments) {
		d.t.Fatalf("%d segments after the restart, want %d", len(list.Segments), len(durSegments))
	}
	for _, g := range list.Segments {
		if n := c.count(g.Rule); n != g.Size || n != want[g.ID] {
			d.t.Errorf("segment %s: size %d, count of %q %d, batches present hold %d",
				g.ID, g.Size, g.Rule, n, want[g.ID])
		}
	}
}

// TestDiskFull fills a small tmpfs under a serving segd with imports and checks that the
// import that no longer fits fails with a clear error while enrichment goes on, and that
// imports work again once there is room. It needs root to mount the tmpfs. Without the
// store's free-space reserve, Badger, which writes through mmap, would die with SIGBUS.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs",
		mnt).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })

	c := startChild(t, buildSegd(t), filepath.Join(mnt, "data"), "--log-level", "warn",
		"--badger-memtable-size", "16777216")
	c.mustCall("PUT", c.admin+"/v1/sources/src",
		`{"name":"Source","party":"first","ttl":"720h"}`, nil)
	c.mustCall("PUT", c.admin+"/v1/segments/all", `{"name":"all","rule":"src:g0 or src:g1"}`,
		nil)
	enriched := func() bool {
		var out struct {
			User struct{ Data []struct{ ID string } }
		}
		c.mustCall("POST", c.bid+"/openrtb2/enrich", `{"user":{"id":"b0-2"}}`, &out)
		return len(out.User.Data) > 0
	}
	d := &durability{plan: durabilityPlan{batch: 4000}}
	var failed string
	for b := 0; failed == ""; b++ {
		if b > 10_000 {
			t.Fatal("96 MiB never filled")
		}
		resp, err := childClient.Post(c.admin+"/v1/import?source=src&format=tsv",
			"text/tab-separated-values", bytes.NewReader(d.body(b)))
		if err != nil {
			t.Fatalf("batch %d: %v; segd:\n%s", b, err, c.logTail())
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			failed = fmt.Sprintf("status %d: %s", resp.StatusCode, raw)
		}
	}
	if !strings.Contains(failed, "space") {
		t.Errorf("the import that did not fit failed with %s, want an error about space", failed)
	}
	if !enriched() {
		t.Error("enrichment stopped when the disk filled")
	}
	remount := exec.Command("mount", "-o", "remount,size=256m", mnt)
	if out, err := remount.CombinedOutput(); err != nil {
		t.Fatalf("remount: %v: %s", err, out)
	}
	c.mustCall("POST", c.admin+"/v1/import?source=src&format=tsv", "uid:late\tg0\n", nil)
	if !enriched() {
		t.Error("enrichment stopped after the disk had room again")
	}
}
