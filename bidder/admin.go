package bidder

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/segd/segd/segments"
)

// Store is the durable side of the admin API: every write goes through it, and it
// publishes to the index only once the change is durable. Package store implements it.
type Store interface {
	PutSource(segments.Source) error
	DeleteSource(id string) error
	PutSegment(segments.Segment) error
	DeleteSegment(id string) error
	Import(ctx context.Context, source string, f segments.Format, r io.Reader) (
		segments.ImportResult, error)
	Events(ctx context.Context, r io.Reader) (segments.ImportResult, error)
	Deleter
	Backuper
}

// Deleter deletes profiles for privacy. Package store's DB implements it.
type Deleter interface {
	// DeleteProfile deletes the profile linked to id with every ID it holds, suppresses
	// those IDs and id itself so that nothing links them again, and returns the number of
	// profiles deleted.
	DeleteProfile(ctx context.Context, id segments.ID) (deleted int, err error)
}

// AdminConfig configures the admin API.
type AdminConfig struct {
	// Token, when set, is required as "Authorization: Bearer <token>" on every admin path
	// but /healthz and /readyz.
	Token string
	// Explainer answers /v1/explain; nil turns it off (404).
	Explainer interface {
		Explain(body []byte, gpc bool, caller string) Explanation
	}
	// MaxIngestStreams is how many imports and event batches may run at once; more get
	// 429 with Retry-After. 0 means 4; negative, no limit.
	MaxIngestStreams int
	// IngestRate is how many lines a second imports and event batches read together; a
	// faster sender is slowed down, not refused. 0 means no limit.
	IngestRate int
}

// Admin serves the admin API over net/http. Safe for concurrent use.
type Admin struct {
	cfg     AdminConfig
	ingest  *ingestLimiter
	ix      *segments.Index
	store   Store
	metrics *Metrics
	log     *zap.Logger
	mux     *http.ServeMux
}

// NewAdmin returns the admin API for ix, writing through st.
func NewAdmin(cfg AdminConfig, ix *segments.Index, st Store, m *Metrics, log *zap.Logger) *Admin {
	if cfg.MaxIngestStreams == 0 {
		cfg.MaxIngestStreams = 4
	}
	a := &Admin{cfg: cfg, ix: ix, store: st, metrics: m, log: log, mux: http.NewServeMux(),
		ingest: newIngestLimiter(cfg.MaxIngestStreams, cfg.IngestRate)}
	a.routes()
	return a
}

func (a *Admin) routes() {
	m := a.mux
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	m.HandleFunc("GET /readyz", a.readyz)
	m.HandleFunc("GET /metrics", a.auth(a.serveMetrics))
	m.HandleFunc("GET /v1/sources", a.auth(a.listSources))
	m.HandleFunc("GET /v1/sources/{id}", a.auth(a.getSource))
	m.HandleFunc("PUT /v1/sources/{id}", a.auth(a.putSource))
	m.HandleFunc("DELETE /v1/sources/{id}", a.auth(a.deleteSource))
	m.HandleFunc("GET /v1/segments", a.auth(a.listSegments))
	m.HandleFunc("GET /v1/segments/{id}", a.auth(a.getSegment))
	m.HandleFunc("PUT /v1/segments/{id}", a.auth(a.putSegment))
	m.HandleFunc("DELETE /v1/segments/{id}", a.auth(a.deleteSegment))
	m.HandleFunc("POST /v1/import", a.auth(a.limitIngest(a.importLines)))
	m.HandleFunc("POST /v1/events", a.auth(a.limitIngest(a.events)))
	m.HandleFunc("POST /v1/count", a.auth(a.count))
	m.HandleFunc("GET /v1/overlap", a.auth(a.overlap))
	m.HandleFunc("GET /v1/profiles", a.auth(a.profile))
	m.HandleFunc("POST /v1/explain", a.auth(a.explain))
	m.HandleFunc("GET /v1/backup", a.auth(BackupHandler(a.store, a.log)))
	m.HandleFunc("DELETE /v1/profiles", a.auth(a.deleteProfile))
	m.HandleFunc("GET /debug/pprof/", a.auth(pprof.Index))
	m.HandleFunc("GET /debug/pprof/cmdline", a.auth(pprof.Cmdline))
	m.HandleFunc("GET /debug/pprof/profile", a.auth(pprof.Profile))
	m.HandleFunc("GET /debug/pprof/symbol", a.auth(pprof.Symbol))
	m.HandleFunc("GET /debug/pprof/trace", a.auth(pprof.Trace))
}

// ServeHTTP implements http.Handler, recovering panics as 500s.
func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.log.Error("admin handler panic", zap.String("path", r.URL.Path),
				zap.Any("panic", v), zap.Stack("stack"))
			writeJSONError(w, http.StatusInternalServerError, errors.New("internal error"))
		}
	}()
	a.mux.ServeHTTP(w, r)
}

func (a *Admin) auth(h http.HandlerFunc) http.HandlerFunc {
	if a.cfg.Token == "" {
		return h
	}
	want := []byte("Bearer " + a.cfg.Token)
	return func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="segd"`)
			writeJSONError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
			return
		}
		h(w, r)
	}
}

func (a *Admin) readyz(w http.ResponseWriter, _ *http.Request) {
	if !a.ix.Ready() {
		http.Error(w, "loading", http.StatusServiceUnavailable)
		return
	}
	io.WriteString(w, "ready\n")
}

func (a *Admin) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	a.metrics.WritePrometheus(w, a.ix.Stats(), a.ix.Ready())
}

// maxDefinitionBody bounds the JSON body of a definition or a count.
const maxDefinitionBody = 1 << 20

// decodeBody decodes a JSON body into v, rejecting unknown fields and trailing data.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxDefinitionBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest{err: errors.New("bad JSON body: " + err.Error())}
	}
	if dec.More() {
		return badRequest{err: errors.New("bad JSON body: more than one value")}
	}
	return nil
}

// badRequest marks an error caused by the request.
type badRequest struct{ err error }

func (e badRequest) Error() string { return e.err.Error() }
func (e badRequest) Unwrap() error { return e.err }

// writeErr maps an error to its status, in one place.
func (a *Admin) writeErr(w http.ResponseWriter, err error) {
	var rule *segments.RuleError
	var bad badRequest
	switch {
	case errors.As(err, &rule):
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"error": err.Error(), "column": rule.Col})
	case errors.As(err, &bad):
		writeJSONError(w, http.StatusBadRequest, err)
	case errors.Is(err, segments.ErrNotFound), errors.Is(err, segments.ErrUnknownSource):
		writeJSONError(w, http.StatusNotFound, err)
	case errors.Is(err, segments.ErrInUse):
		writeJSONError(w, http.StatusConflict, err)
	case errors.Is(err, segments.ErrNoSpace):
		writeJSONError(w, http.StatusInsufficientStorage, err)
	default:
		a.log.Error("admin request failed", zap.Error(err))
		writeJSONError(w, http.StatusInternalServerError, err)
	}
}

func writeJSONError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (a *Admin) listSources(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"sources": a.ix.Sources()})
}

func (a *Admin) getSource(w http.ResponseWriter, r *http.Request) {
	s, ok := a.ix.Source(r.PathValue("id"))
	if !ok {
		a.writeErr(w, segments.ErrNotFound)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (a *Admin) putSource(w http.ResponseWriter, r *http.Request) {
	var s segments.Source
	if err := decodeBody(w, r, &s); err != nil {
		a.writeErr(w, err)
		return
	}
	if err := pathID(r, &s.ID); err != nil {
		a.writeErr(w, err)
		return
	}
	if err := s.Validate(); err != nil {
		a.writeErr(w, badRequest{err})
		return
	}
	if err := a.store.PutSource(s); err != nil {
		a.writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

// pathID fills *id from the path, refusing a body that names another ID.
func pathID(r *http.Request, id *string) error {
	p := r.PathValue("id")
	if *id != "" && *id != p {
		return badRequest{errors.New("id in the body differs from the path")}
	}
	*id = p
	return nil
}

func (a *Admin) deleteSource(w http.ResponseWriter, r *http.Request) {
	if err := a.store.DeleteSource(r.PathValue("id")); err != nil {
		a.writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *Admin) listSegments(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"segments": a.ix.Segments()})
}

func (a *Admin) getSegment(w http.ResponseWriter, r *http.Request) {
	g, ok := a.ix.Segment(r.PathValue("id"))
	if !ok {
		a.writeErr(w, segments.ErrNotFound)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

func (a *Admin) putSegment(w http.ResponseWriter, r *http.Request) {
	var g segments.Segment
	if err := decodeBody(w, r, &g); err != nil {
		a.writeErr(w, err)
		return
	}
	if err := pathID(r, &g.ID); err != nil {
		a.writeErr(w, err)
		return
	}
	if err := g.Validate(); err != nil {
		var rule *segments.RuleError
		if !errors.As(err, &rule) {
			err = badRequest{err}
		}
		a.writeErr(w, err)
		return
	}
	if err := a.store.PutSegment(g); err != nil {
		a.writeErr(w, err)
		return
	}
	a.getSegment(w, r)
}

func (a *Admin) deleteSegment(w http.ResponseWriter, r *http.Request) {
	if err := a.store.DeleteSegment(r.PathValue("id")); err != nil {
		a.writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *Admin) importLines(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	source := q.Get("source")
	if source == "" {
		a.writeErr(w, badRequest{errors.New("missing ?source=")})
		return
	}
	f := segments.Format(q.Get("format"))
	if f == "" {
		f = segments.TSV
	}
	if f != segments.TSV && f != segments.NDJSON {
		a.writeErr(w, badRequest{errors.New("format: want tsv or ndjson")})
		return
	}
	res, err := a.store.Import(r.Context(), source, f, a.ingest.reader(r.Context(), r.Body))
	a.metrics.Imported(res, err != nil)
	if err != nil {
		a.writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// limitIngest runs h when an ingest stream slot is free, and answers 429 otherwise.
func (a *Admin) limitIngest(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.ingest.acquire() {
			a.metrics.ingestBusy.Add(1)
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": fmt.Sprintf(
				"%d imports or event batches are running, the most at once", a.cfg.MaxIngestStreams)})
			return
		}
		a.metrics.ingesting.Add(1)
		defer func() {
			a.metrics.ingesting.Add(-1)
			a.ingest.release()
		}()
		h(w, r)
	}
}

func (a *Admin) events(w http.ResponseWriter, r *http.Request) {
	res, err := a.store.Events(r.Context(), a.ingest.reader(r.Context(), r.Body))
	a.metrics.Imported(res, err != nil)
	if err != nil {
		a.writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// overlap answers the pairwise intersections of ?segments=a,b,c.
func (a *Admin) overlap(w http.ResponseWriter, r *http.Request) {
	ids := strings.Split(r.URL.Query().Get("segments"), ",")
	if len(ids) < 2 || len(ids) > 50 || slices.Contains(ids, "") {
		a.writeErr(w, badRequest{errors.New("want ?segments= with 2 to 50 segment ids")})
		return
	}
	pairs, err := a.ix.Overlaps(ids)
	if err != nil {
		a.writeErr(w, err)
		return
	}
	out := make([]map[string]any, len(pairs))
	for i, p := range pairs {
		out[i] = map[string]any{"a": p.A, "b": p.B, "both": p.Both, "jaccard": p.Jaccard}
	}
	writeJSON(w, http.StatusOK, map[string]any{"pairs": out})
}

func (a *Admin) count(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Rule string `json:"rule"`
	}
	if err := decodeBody(w, r, &body); err != nil {
		a.writeErr(w, err)
		return
	}
	start := time.Now()
	n, err := a.ix.Count(body.Rule)
	if err != nil {
		a.writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"rule": body.Rule, "count": n, "took_ms": float64(time.Since(start).Microseconds()) / 1000})
}

// profile explains what segd knows of the profile behind one ID: its live traits and
// segments.
func (a *Admin) profile(w http.ResponseWriter, r *http.Request) {
	id, err := queryID(r)
	if err != nil {
		a.writeErr(w, err)
		return
	}
	p, ok := a.ix.LookupProfile(a.ix.Hasher().Hash(id), time.Now())
	if !ok {
		a.writeErr(w, segments.ErrNotFound)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"profile": p.Profile, "ids": p.IDs, "traits": p.Traits, "events": p.Events,
		"segments": p.Segments})
}

// queryID returns the ID named by ?type=...&id=..., type as in segments.ID.
func queryID(r *http.Request) (segments.ID, error) {
	q := r.URL.Query()
	id := segments.ID{Type: q.Get("type"), Value: q.Get("id")}
	if err := id.Validate(); err != nil {
		return id, badRequest{err}
	}
	return id, nil
}

// deleteProfile deletes the profile behind one ID with all of its IDs, and suppresses
// them (opt-out). It answers how many profiles went and how many IDs are now suppressed
// by it: the IDs the profile held, or the one ID given when none was linked to it. The
// count is read just before the deletion, so a link made meanwhile is deleted but not
// counted.
func (a *Admin) deleteProfile(w http.ResponseWriter, r *http.Request) {
	id, err := queryID(r)
	if err != nil {
		a.writeErr(w, err)
		return
	}
	ids := 1
	if p, ok := a.ix.LookupProfile(a.ix.Hasher().Hash(id), time.Now()); ok {
		ids = max(p.IDs, 1)
	}
	n, err := a.store.DeleteProfile(r.Context(), id)
	if err != nil {
		a.writeErr(w, err)
		return
	}
	if n == 0 {
		ids = 1
	}
	writeJSON(w, http.StatusOK, map[string]int{"deleted_profiles": n, "suppressed_ids": ids})
}

// explain runs a bid request through the request path and answers each step: the IDs
// found and dropped, the privacy verdict, the segments matched and those filtered. The
// Sec-GPC header of this call is read as the bid request's.
func (a *Admin) explain(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Explainer == nil {
		writeJSONError(w, http.StatusNotFound, errors.New("explain is off"))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDefinitionBody))
	if err != nil {
		a.writeErr(w, badRequest{fmt.Errorf("read body: %w", err)})
		return
	}
	writeJSON(w, http.StatusOK, a.cfg.Explainer.Explain(body, r.Header.Get("Sec-GPC") == "1",
		r.URL.Query().Get("caller")))
}
