package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/prebid/openrtb/v20/adcom1"
	"github.com/prebid/openrtb/v20/openrtb2"

	"github.com/segd/segd/segments"
)

// Placeholder IDs of the generated bid requests. They are in no population, so a request
// is enriched only through the user.id that `segd bench run --population` puts in.
const (
	PlaceholderUserID = "bench-user-placeholder"
	placeholderIFA    = "5b0e1c2a-7f3d-4e9a-8c61-0d2f4a6b8e90"
)

// writeRequests writes the bid requests of a generated population to dir: a web page, an
// app with an advertising ID, and a page with extended IDs.
func writeRequests(dir string) error {
	reqs := map[string]*openrtb2.BidRequest{
		"site.json": siteRequest(),
		"app.json":  appRequest(),
		"eids.json": eidsRequest(),
	}
	for name, req := range reqs {
		b, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("generate %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("generate: %w", err)
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func siteRequest() *openrtb2.BidRequest {
	return &openrtb2.BidRequest{
		ID: "bench-site-1", AT: 1, TMax: 120, Cur: []string{"USD"},
		Imp: []openrtb2.Imp{{
			ID: "1", TagID: "article-top", BidFloor: 0.3, BidFloorCur: "USD", Secure: ptr[int8](1),
			Banner: &openrtb2.Banner{Format: []openrtb2.Format{{W: 300, H: 250}, {W: 300, H: 600}},
				Pos: ptr(adcom1.PositionAboveFold)},
		}},
		Site: &openrtb2.Site{ID: "site-88", Domain: "news.example",
			Page:      "https://news.example/sport/2026/cup-final-preview",
			Cat:       []string{"IAB17"},
			Publisher: &openrtb2.Publisher{ID: "pub-12", Name: "Example News"}},
		Device: &openrtb2.Device{
			UA: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 " +
				"(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			IP: "198.51.100.23", Language: "en", DeviceType: adcom1.DevicePC,
			Geo: &openrtb2.Geo{Country: "GBR", Region: "ENG", City: "Manchester"}},
		User: &openrtb2.User{ID: PlaceholderUserID},
		Regs: &openrtb2.Regs{GDPR: ptr[int8](0)},
	}
}

func appRequest() *openrtb2.BidRequest {
	return &openrtb2.BidRequest{
		ID: "bench-app-1", AT: 1, TMax: 200,
		Imp: []openrtb2.Imp{{
			ID: "1", Instl: 1, BidFloor: 1.5,
			Video: &openrtb2.Video{MIMEs: []string{"video/mp4"}, W: ptr[int64](320),
				H: ptr[int64](480), MaxDuration: 30, Protocols: []adcom1.MediaCreativeSubtype{2, 3}},
		}},
		App: &openrtb2.App{ID: "app-7", Name: "Weather Now", Bundle: "com.example.weather",
			StoreURL:  "https://play.example/store/apps/details?id=com.example.weather",
			Publisher: &openrtb2.Publisher{ID: "pub-40"}},
		Device: &openrtb2.Device{UA: "Mozilla/5.0 (Linux; Android 14; Pixel 8)",
			IP: "203.0.113.90", IFA: placeholderIFA, Lmt: ptr[int8](0), OS: "android",
			OSV: "14", Make: "Google", Model: "Pixel 8", DeviceType: adcom1.DevicePhone},
		User: &openrtb2.User{ID: PlaceholderUserID},
		Regs: &openrtb2.Regs{GDPR: ptr[int8](0)},
	}
}

func eidsRequest() *openrtb2.BidRequest {
	req := siteRequest()
	req.ID = "bench-eids-1"
	req.Site.Page = "https://news.example/travel/weekend-in-porto"
	req.User = &openrtb2.User{ID: PlaceholderUserID, EIDs: []openrtb2.EID{
		{Source: "id5-sync.com", UIDs: []openrtb2.UID{{ID: "ID5*bench-placeholder", AType: 1}}},
		{Source: "uidapi.com", UIDs: []openrtb2.UID{{ID: "bench-uid2-placeholder", AType: 3}}},
	}}
	return req
}

// writeLoadScript writes a shell script that defines the sources and segments on a
// running segd and imports the onboarding files, through the admin API.
func writeLoadScript(path string, defs []segments.Segment) error {
	var b strings.Builder
	b.WriteString(`#!/bin/sh
# Loads this population into a running segd: sources (with curl), segments and
# onboarding files (with segd). SEGD is the segd binary (default: segd), ADMIN the admin
# API (default: http://127.0.0.1:8081) and SEGD_ADMIN_TOKEN its token, if it has one.
set -eu
SEGD=${SEGD:-segd}
case $SEGD in # a relative path must survive the cd below
*/*) SEGD=$(cd "$(dirname "$SEGD")" && pwd)/$(basename "$SEGD") ;;
esac
ADMIN=${ADMIN:-http://127.0.0.1:8081}
cd "$(dirname "$0")"

put_source() {
	curl -fsS -o /dev/null -X PUT -H "Authorization: Bearer ${SEGD_ADMIN_TOKEN:-}" \
		--data-binary "$2" "$ADMIN/v1/sources/$1"
}

`)
	for _, s := range genSources() {
		body, _ := json.Marshal(s) // a source always marshals
		fmt.Fprintf(&b, "put_source %s '%s'\n", s.ID, body)
	}
	b.WriteString("\n")
	for _, g := range defs {
		fmt.Fprintf(&b, "\"$SEGD\" segments define --admin \"$ADMIN\" --name '%s' "+
			"--export-id '%s' --segtax %d '%s' '%s' >/dev/null\n",
			g.Name, g.ExportID, g.Segtax, g.ID, g.Rule)
	}
	b.WriteString("\n")
	for _, s := range genSources() {
		fmt.Fprintf(&b, "\"$SEGD\" import --admin \"$ADMIN\" --source %s %s/%s.tsv\n",
			s.ID, OnboardDir, s.ID)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o755); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	return nil
}
