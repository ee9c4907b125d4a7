package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// rightsConfig lists two callers: dsp-a limited to three segments by ID, with its key in
// the file, and dsp-b limited to proprietary IDs, with its key in the environment.
const rightsConfig = `
callers:
  - name: dsp-a
    key: dsp-a-key-0123456789
    segments: [loyal, travellers, mixed]
  - name: dsp-b
    key_env: SEGD_TEST_DSP_B_KEY
    segtax: [0]
`

const dspBKey = "dsp-b-key-9876543210"

// startRightsApp runs segd with the callers of rightsConfig.
func startRightsApp(t *testing.T, dir string) *app {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "segd.yaml")
	if err := os.WriteFile(conf, []byte(rightsConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SEGD_TEST_DSP_B_KEY": dspBKey}
	cfg, err := loadConfig([]string{"--config", conf, "--data-dir", dir,
		"--bid-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--id-secret", testSecret},
		func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := startApp(context.Background(), cfg, zap.NewNop(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// onboardRights defines one source for each kind of data right and one profile with a
// trait from each.
func onboardRights(t *testing.T, c testClient) {
	sources := map[string]string{
		"crm":     `{"name":"CRM","party":"first","ttl":"720h"}`,
		"partner": `{"name":"Partner","party":"third","ttl":"720h"}`,
		"cons": `{"name":"Consented","party":"second","ttl":"720h",` +
			`"uses":{"consent_only":true}}`,
		"excl": `{"name":"Exclusive","party":"second","ttl":"720h",` +
			`"uses":{"under_us_opt_out":true,"not_for_callers":["dsp-b"]}}`,
	}
	for _, id := range []string{"crm", "partner", "cons", "excl"} {
		c.must("PUT", c.admin+"/v1/sources/"+id, []byte(sources[id]), 200)
	}
	segs := [][2]string{
		{"loyal", `{"name":"Loyal","rule":"crm:gold","export_id":"L1"}`},
		{"travellers", `{"name":"Travel","rule":"partner:travel","export_id":"647","segtax":4}`},
		{"consented", `{"name":"Consented","rule":"cons:x","export_id":"C1","segtax":4}`},
		{"exclusive", `{"name":"Exclusive","rule":"excl:y","export_id":"E1"}`},
		// mixed reads excl only through a segment reference, and must inherit its rights.
		{"mixed", `{"name":"Mixed","rule":"segment:loyal and segment:exclusive","export_id":"M1"}`},
	}
	for _, g := range segs {
		c.must("PUT", c.admin+"/v1/segments/"+g[0], []byte(g[1]), 200)
	}
	for src, code := range map[string]string{"crm": "gold", "partner": "travel", "cons": "x",
		"excl": "y"} {
		c.must("POST", c.admin+"/v1/import?source="+src+"&format=tsv",
			[]byte("uid:rights-u1\t"+code+"\n"), 200)
	}
}

// bidWith posts body to /openrtb2/enrich with the given headers and returns the answer,
// which must have status 200.
func bidWith(t *testing.T, c testClient, body string, hdr map[string]string) []byte {
	t.Helper()
	req, err := http.NewRequest("POST", c.bid+"/openrtb2/enrich", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, out)
	}
	return out
}

// TestDataRightsEndToEnd checks that each source's declared uses and each caller's limits
// decide which segments a request carries, and that /v1/explain says why.
func TestDataRightsEndToEnd(t *testing.T) {
	a := startRightsApp(t, t.TempDir())
	defer a.close()
	c := newClient(t, a)
	onboardRights(t, c)

	const plain = `{"id":"r1","user":{"id":"rights-u1"}}`
	const optedOut = `{"id":"r2","user":{"id":"rights-u1"},"regs":{"us_privacy":"1YYN"}}`
	tests := []struct {
		name string
		body string
		key  string
		want []string // sorted export IDs; nil: the request comes back byte for byte
	}{
		// cons is consent-only, and a request outside the GDPR carries no consent.
		{"no key", plain, "", []string{"647", "E1", "L1", "M1"}},
		// partner is third-party; excl declares it may be used under an opt-out.
		{"US opt-out", optedOut, "", []string{"E1", "L1", "M1"}},
		{"Sec-GPC", plain, "gpc", []string{"E1", "L1", "M1"}},
		{"dsp-a", plain, "dsp-a-key-0123456789", []string{"647", "L1", "M1"}},
		// dsp-b takes proprietary IDs only, and excl refuses it, also through mixed.
		{"dsp-b", plain, dspBKey, []string{"L1"}},
		{"dsp-b, US opt-out", optedOut, dspBKey, []string{"L1"}},
		{"unknown key", plain, "not-a-known-key-at-all", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			switch tt.key {
			case "":
			case "gpc":
				hdr["Sec-GPC"] = "1"
			default:
				hdr["X-Api-Key"] = tt.key
			}
			out := bidWith(t, c, tt.body, hdr)
			if tt.want == nil {
				if !bytes.Equal(out, []byte(tt.body)) {
					t.Fatalf("changed, want unchanged: %s", out)
				}
				return
			}
			got := segdExportIDs(t, out)
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("segments %v, want %v", got, tt.want)
			}
		})
	}

	metrics := string(c.must("GET", c.admin+"/metrics", nil, 200))
	if !strings.Contains(metrics, `outcome="unknown_caller"} 1`) {
		t.Errorf("metrics do not count the unknown caller once:\n%s", grepLines(metrics, "unknown_caller"))
	}

	t.Run("explain", func(t *testing.T) {
		var e struct {
			Outcome  string `json:"outcome"`
			Segments []struct {
				ID       string `json:"id"`
				Served   bool   `json:"served"`
				Filtered string `json:"filtered"`
			} `json:"segments"`
		}
		out := c.must("POST", c.admin+"/v1/explain?caller=dsp-b", []byte(plain), 200)
		if err := json.Unmarshal(out, &e); err != nil {
			t.Fatal(err)
		}
		if e.Outcome != "enriched" {
			t.Errorf("outcome %q, want enriched: %s", e.Outcome, out)
		}
		why := map[string]string{}
		for _, s := range e.Segments {
			if s.Served != (s.Filtered == "") {
				t.Errorf("%s: served %v but filtered %q", s.ID, s.Served, s.Filtered)
			}
			why[s.ID] = s.Filtered
		}
		want := map[string]string{
			"loyal":      "",
			"travellers": "not for this caller",
			"consented":  "a source is consent-only and there is no TCF consent",
			"exclusive":  "not for this caller",
			"mixed":      "not for this caller",
		}
		for id, w := range want {
			if got, ok := why[id]; !ok || got != w {
				t.Errorf("%s: filtered %q (listed %v), want %q", id, got, ok, w)
			}
		}

		out = c.must("POST", c.admin+"/v1/explain?caller=nobody", []byte(plain), 200)
		if err := json.Unmarshal(out, &e); err != nil || e.Outcome != "unknown_caller" {
			t.Errorf("explain for an unknown caller: %s", out)
		}
	})
}

func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

// TestCallerConfigErrors checks that a bad callers list stops segd with a message that
// names the problem.
func TestCallerConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown field", "callers:\n  - name: a\n    key: aaaaaaaaaaaaaaaaaaaa\n    segs: [x]\n",
			"field segs not found"},
		{"no key", "callers:\n  - name: a\n", `"a": no key or key_env`},
		{"both keys", "callers:\n  - name: a\n    key: aaaaaaaaaaaaaaaaaaaa\n    key_env: X\n",
			"not both"},
		{"unset env", "callers:\n  - name: a\n    key_env: SEGD_TEST_UNSET\n",
			"SEGD_TEST_UNSET is not set"},
		{"not a list", "callers: 3\n", "want a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "segd.yaml")
			if err := os.WriteFile(conf, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadConfig([]string{"--config", conf, "--id-secret", testSecret}, noEnv,
				io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}

	// Keys too short, or shared, are refused when the server starts.
	for _, yaml := range []string{
		"callers:\n  - name: a\n    key: short\n",
		"callers:\n  - name: a\n    key: aaaaaaaaaaaaaaaaaaaa\n  - name: b\n    key: aaaaaaaaaaaaaaaaaaaa\n",
		"callers:\n  - name: a\n    key: aaaaaaaaaaaaaaaaaaaa\n  - name: a\n    key: bbbbbbbbbbbbbbbbbbbb\n",
		"callers:\n  - name: Bad Name\n    key: aaaaaaaaaaaaaaaaaaaa\n",
	} {
		conf := filepath.Join(t.TempDir(), "segd.yaml")
		if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig([]string{"--config", conf, "--data-dir", t.TempDir(),
			"--bid-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--id-secret",
			testSecret}, noEnv, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", yaml, err)
		}
		a, err := startApp(context.Background(), cfg, zap.NewNop(), io.Discard)
		if err == nil {
			a.close()
			t.Errorf("segd started with callers\n%s", yaml)
		}
	}
}
