package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

const segmentsUsage = `Usage:
  segd segments list   [--admin URL] [--token TOKEN]
  segd segments define [--admin URL] [--token TOKEN] [--name NAME] [--export-id ID]
                       [--segtax N] ID 'RULE'
  segd segments count  [--admin URL] [--token TOKEN] 'RULE'
`

// runSegments runs `segd segments`, a client of the admin API.
func runSegments(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, segmentsUsage)
		return errUsage
	}
	fs := flag.NewFlagSet("segd segments "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, segmentsUsage) }
	c := adminClient{}
	fs.StringVar(&c.base, "admin", defaultAdminURL, "admin API base URL")
	fs.StringVar(&c.token, "token", os.Getenv(adminTokenEnv), "admin bearer token")
	name := fs.String("name", "", "segment name (define; default: the ID)")
	exportID := fs.String("export-id", "", "ID written to user.data (define; default: the ID)")
	segtax := fs.Int("segtax", 0, "taxonomy of the export ID (define; 0: proprietary)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "list":
		return c.list(ctx, stdout)
	case "define":
		if fs.NArg() != 2 {
			fs.Usage()
			return errUsage
		}
		body := map[string]any{"name": cmp(*name, fs.Arg(0)), "rule": fs.Arg(1),
			"export_id": *exportID, "segtax": *segtax}
		return c.do(ctx, http.MethodPut, "/v1/segments/"+url.PathEscape(fs.Arg(0)), body, stdout)
	case "count":
		if fs.NArg() != 1 {
			fs.Usage()
			return errUsage
		}
		return c.do(ctx, http.MethodPost, "/v1/count", map[string]any{"rule": fs.Arg(0)}, stdout)
	}
	fmt.Fprint(stderr, segmentsUsage)
	return errUsage
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

type adminClient struct {
	base, token string
}

func (c adminClient) request(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.base, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(out, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
		}
		return nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return out, nil
}

func (c adminClient) do(ctx context.Context, method, path string, body any, w io.Writer) error {
	out, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

func (c adminClient) list(ctx context.Context, w io.Writer) error {
	out, err := c.request(ctx, http.MethodGet, "/v1/segments", nil)
	if err != nil {
		return err
	}
	var resp struct {
		Segments []struct {
			ID       string `json:"id"`
			Name     string `json:"name"`
			Rule     string `json:"rule"`
			ExportID string `json:"export_id"`
			Segtax   int    `json:"segtax"`
			Size     uint64 `json:"size"`
		} `json:"segments"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return errors.New("unexpected answer from /v1/segments")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSIZE\tEXPORT\tSEGTAX\tRULE")
	for _, g := range resp.Segments {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\n", g.ID, g.Size, g.ExportID, g.Segtax, g.Rule)
	}
	return tw.Flush()
}
