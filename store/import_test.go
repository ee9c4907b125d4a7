package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/segd/segd/segments"
)

// errorLines returns the line numbers of an import's reported errors.
func errorLines(res segments.ImportResult) []int {
	var out []int
	for _, le := range res.Errors {
		out = append(out, le.Line)
	}
	return out
}

func checkResult(t *testing.T, res segments.ImportResult, accepted int, lines []int) {
	t.Helper()
	if res.Accepted != accepted || res.Rejected != len(lines) {
		t.Errorf("accepted %d, rejected %d; want %d and %d (errors %+v)", res.Accepted,
			res.Rejected, accepted, len(lines), res.Errors)
	}
	if got := errorLines(res); !slices.Equal(got, lines) {
		t.Errorf("errors on lines %v, want %v (%+v)", got, lines, res.Errors)
	}
}

func TestImportTSV(t *testing.T) {
	e := newEnv(t)
	e.define("gold", "crm:gold")
	e.define("silver", "crm:silver")
	text := strings.Join([]string{
		"uid:u1\tgold,silver",           // 1
		"",                              // 2 blank
		"# a comment",                   // 3
		"no tab here",                   // 4 bad
		"uid:u2|ifa:AB-CD\tgold",        // 5
		"mail:x\tgold",                  // 6 bad id type
		"uid:u3\t",                      // 7 no codes
		"   ",                           // 8 blank
		"uid:u4\tgold\textra",           // 9 three fields
		"ifa:0000-0000\tgold",           // 10 zero ifa
		"uid:u5\tbad code",              // 11 bad code
		"uid:u6\t-gold",                 // 12 removal for an unknown ID
		"eid:id5.io:x\tsilver",          // 13
		"\tgold",                        // 14 no ID
		"uid:u1|eid:id5.io:x\tbronze",   // 15 links two profiles
		"  # an indented comment",       // 16
		"uid:u7\tgold,silver,-silver\t", // 17 three fields
	}, "\n")
	res := e.importText("crm", segments.TSV, text)
	checkResult(t, res, 5, []int{4, 6, 7, 9, 10, 11, 14, 17})
	for _, le := range res.Errors {
		if le.Error == "" {
			t.Errorf("line %d: empty error", le.Line)
		}
	}

	e.expectServed(map[string][]string{
		"uid:u1":       {"gold", "silver"},
		"eid:id5.io:x": {"gold", "silver"},
		"uid:u2":       {"gold"},
		"ifa:ab-cd":    {"gold"}, // advertising IDs match whatever their case
		"uid:u6":       nil,
		"uid:u3":       nil,
	})
	e.expectSizes(map[string]uint64{"gold": 2, "silver": 1})
	if n, err := e.ix.Count("crm:bronze"); n != 1 || err != nil {
		t.Errorf("Count(crm:bronze) = %d, %v; want 1", n, err)
	}
}

func TestImportNDJSON(t *testing.T) {
	e := newEnv(t)
	e.define("travel", "web:travel")
	e.define("auto", "web:auto")
	text := strings.Join([]string{
		`{"ids":[{"type":"uid","value":"u1"}],"add":["travel"],"ttl":"240h"}`, // 1
		`{"ids":[{"type":"ifa","value":"AB-CD"}],"add":["auto","travel"]}`,    // 2
		`{"ids":[],"add":["travel"]}`,                                         // 3 no ids
		``,                                                                    // 4
		`# comment`,                                                           // 5
		`{"ids":[{"type":"uid","value":"u2"}],"add":["auto"],"ttl":"forever"}`, // 6
		`{"ids":[{"type":"uid","value":"u3"}],"add":["auto"],"tags":["x"]}`,    // 7
		`{"ids":[{"type":"uid","value":"u4"}],"add":["auto"]`,                  // 8
		`not json`, // 9
		`{"ids":[{"type":"ifa","value":"ab-cd"}],"remove":["travel"]}`,           // 10
		`{"ids":[{"type":"uid","value":"u5"}],"add":["auto"]} {"ids":[]}`,        // 11
		`{"ids":[{"type":"eid:id5.io","value":"e"}],"add":["auto"],"ttl":"30d"}`, // 12
	}, "\n") + "\n"
	res := e.importText("web", segments.NDJSON, text)
	checkResult(t, res, 4, []int{3, 6, 7, 8, 9, 11})
	e.expectServed(map[string][]string{
		"uid:u1":       {"travel"},
		"ifa:AB-CD":    {"auto"},
		"eid:id5.io:e": {"auto"},
		"uid:u2":       nil,
		"uid:u3":       nil,
	})
	e.expectSizes(map[string]uint64{"travel": 1, "auto": 2})

	p, ok := e.ix.LookupProfile(e.hash("uid:u1"), e.clk.Now())
	if !ok || len(p.Traits) != 1 || !p.Traits[0].Until.Equal(t0.Add(240*3600e9)) {
		t.Errorf("u1: %+v, want web:travel until %v", p, t0.Add(240*3600e9))
	}
	p, _ = e.ix.LookupProfile(e.hash("eid:id5.io:e"), e.clk.Now())
	if len(p.Traits) != 1 || !p.Traits[0].Until.Equal(t0.Add(30*24*3600e9)) {
		t.Errorf("eid: %+v, want web:auto until 30 days on", p)
	}
	p, _ = e.ix.LookupProfile(e.hash("ifa:ab-cd"), e.clk.Now())
	if len(p.Traits) != 1 || !p.Traits[0].Until.Equal(t0.Add(2*3600e9)) {
		t.Errorf("ifa: %+v, want web:auto until the source's TTL of 2h", p)
	}
}

// TestImportReportsFirstErrors checks that only the first 100 errors are listed, all are
// counted, and the good lines among them are kept.
func TestImportReportsFirstErrors(t *testing.T) {
	e := newEnv(t)
	e.define("gold", "crm:gold")
	var b strings.Builder
	var bad []int
	for i := 1; i <= 300; i++ {
		if i%3 == 0 {
			fmt.Fprintf(&b, "uid:u%d\tgold\n", i)
		} else {
			fmt.Fprintf(&b, "uid:u%d gold\n", i)
			bad = append(bad, i)
		}
	}
	res := e.importText("crm", segments.TSV, b.String())
	if res.Accepted != 100 || res.Rejected != 200 {
		t.Errorf("accepted %d, rejected %d; want 100 and 200", res.Accepted, res.Rejected)
	}
	if got := errorLines(res); !slices.Equal(got, bad[:segments.MaxReportedErrors]) {
		t.Errorf("reported lines %v, want the first 100 bad ones", got)
	}
	e.expectSizes(map[string]uint64{"gold": 100})
}

func TestImportLongLines(t *testing.T) {
	e := newEnv(t)
	e.define("gold", "crm:gold")
	limit := "uid:limit\t" + strings.Repeat("c", segments.MaxLineLen-len("uid:limit\t"))
	text := strings.Join([]string{
		"uid:a\tgold", // 1
		limit + "c",   // 2 one byte over
		"uid:b\tgold," + strings.Repeat("x", 300<<10), // 3 longer than the read buffer
		"uid:c\tgold",                           // 4
		limit,                                   // 5 exactly at the limit
		"uid:d\tgold",                           // 6
		"uid:e\t" + strings.Repeat("y", 70<<10), // 7 at the end, unterminated
	}, "\n")
	res := e.importText("crm", segments.TSV, text)
	checkResult(t, res, 4, []int{2, 3, 7})
	for _, le := range res.Errors {
		if !strings.Contains(le.Error, "longer than") {
			t.Errorf("line %d: error %q, want one about the length", le.Line, le.Error)
		}
	}
	e.expectServed(map[string][]string{
		"uid:a": {"gold"}, "uid:b": nil, "uid:c": {"gold"}, "uid:d": {"gold"}, "uid:e": nil,
	})
	if _, ok := e.ix.LookupProfile(e.hash("uid:limit"), t0); !ok {
		t.Errorf("the line at the limit was not imported")
	}
}

func TestImportCRLF(t *testing.T) {
	e := newEnv(t)
	e.define("gold", "crm:gold")
	e.define("travel", "web:travel")
	tsv := "uid:c1\tgold\r\nuid:c2\tgold,silver\r\n# comment\r\n\r\nuid:c2\t-silver\r\n" +
		"uid:c3\tgold\r"
	res := e.importText("crm", segments.TSV, tsv)
	checkResult(t, res, 4, nil)
	nd := `{"ids":[{"type":"uid","value":"c1"}],"add":["travel"]}` + "\r\n\r\n" +
		`{"ids":[{"type":"uid","value":"c4"}],"add":["travel"]}` + "\r\n"
	res = e.importText("web", segments.NDJSON, nd)
	checkResult(t, res, 2, nil)

	e.expectServed(map[string][]string{
		"uid:c1": {"gold", "travel"}, "uid:c2": {"gold"}, "uid:c3": {"gold"},
		"uid:c4": {"travel"},
	})
	if n, _ := e.ix.Count("crm:silver"); n != 0 {
		t.Errorf("crm:silver held by %d profiles after its removal", n)
	}
}

func TestImportBatches(t *testing.T) {
	e := newEnv(t)
	e.define("gold", "crm:gold")
	const lines = 9000 // more than two durable batches
	var b strings.Builder
	for i := 1; i <= lines; i++ {
		if i == 4097 {
			b.WriteString("broken\n")
			continue
		}
		fmt.Fprintf(&b, "uid:u%d\tgold\n", i)
	}
	res := e.importText("crm", segments.TSV, b.String())
	checkResult(t, res, lines-1, []int{4097})
	e.expectSizes(map[string]uint64{"gold": lines - 1})

	e = e.reopen()
	e.expectSizes(map[string]uint64{"gold": lines - 1})
	e.expectServed(map[string][]string{
		"uid:u1": {"gold"}, "uid:u4096": {"gold"}, "uid:u4098": {"gold"},
		"uid:u9000": {"gold"}, "uid:u4097": nil,
	})
}

func TestImportRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.db.Import(ctx, "nope", segments.TSV, strings.NewReader("uid:a\tgold\n"))
	if !errors.Is(err, segments.ErrUnknownSource) {
		t.Errorf("unknown source: %v, want ErrUnknownSource", err)
	}
	_, err = e.db.Import(ctx, "crm", "csv", strings.NewReader("uid:a,gold\n"))
	if err == nil {
		t.Error("unknown format accepted")
	}
	res := e.importText("crm", segments.TSV, "")
	checkResult(t, res, 0, nil)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	res, err = e.db.Import(cancelled, "crm", segments.TSV, strings.NewReader("uid:a\tgold\n"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled import: %v", err)
	}
	if res.Accepted != 0 {
		// Whatever it accepted must be durable.
		if _, ok := e.reopen().ix.LookupProfile(e.hash("uid:a"), t0); !ok {
			t.Error("a line counted as accepted was not kept")
		}
	}
}

// failingReader returns its data, then an error that is not io.EOF.
type failingReader struct{ data string }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, errors.New("disk on fire")
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestImportReadError(t *testing.T) {
	e := newEnv(t)
	_, err := e.db.Import(context.Background(), "crm", segments.TSV,
		&failingReader{data: "uid:a\tgold\nuid:b\tgold\n"})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("read error: %v", err)
	}
}
