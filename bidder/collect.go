package bidder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/segd/segd/segments"
)

// CollectConfig configures the public collect listener. The zero value of each field means
// its default.
type CollectConfig struct {
	// Source is the segd source that events are recorded under; default "web". An admin
	// must define it first: until then the store refuses every event, and the listener
	// counts them as unknown_source.
	Source string
	// IDType is the ID type under which the cookie ID is recorded, as it will appear in
	// bid requests; default "buid", for a DSP whose collect domain is its own and which
	// sees its cookie as user.buyeruid. SSP and publisher setups use "uid"; "eid:<source>"
	// is accepted too. "ifa" is not: a cookie is no advertising ID.
	IDType string
	// CookieName is the name of the first-party cookie; default "segd_id".
	CookieName string
	// CookieDomain is the cookie's Domain attribute; default none, a host-only cookie.
	CookieDomain string
	// CookieTTL is the cookie's Max-Age, renewed on every answer so that it runs from the
	// last visit; default 390 days, at most 400 (browsers cap longer lifetimes).
	CookieTTL time.Duration
	// RedirectHosts lists where /sync may redirect: an entry "example.com" matches that
	// host only, and ".example.com" matches every host below it but not example.com itself.
	// Matching ignores case. Empty: /sync never redirects.
	RedirectHosts []string
	// RecordTimeout bounds the wait for the store to acknowledge one event; default 2s.
	// An event not acknowledged by then is counted as a timeout (it may still land).
	RecordTimeout time.Duration
	// MaxHeaderSize is the largest request header block, query string included, in bytes;
	// default 8 KiB. Larger headers get 431.
	MaxHeaderSize int
	// ReadTimeout, WriteTimeout and IdleTimeout bound each connection; defaults 5s, 5s
	// and 60s.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
}

// SyncIDMacro, in the redirect URL of /sync, is replaced by the cookie ID, URL-escaped, so
// that the partner learns segd's ID for the user: /sync?partner=p&uid=U&redirect=
// https://p.example/s?segd=${SEGD_ID} (the redirect parameter itself URL-encoded).
const SyncIDMacro = "${SEGD_ID}"

// maxCookieTTL is the longest cookie lifetime that browsers honour.
const maxCookieTTL = 400 * 24 * time.Hour

func (c *CollectConfig) setDefaults() {
	if c.Source == "" {
		c.Source = "web"
	}
	if c.IDType == "" {
		c.IDType = segments.TypeBUID
	}
	if c.CookieName == "" {
		c.CookieName = "segd_id"
	}
	if c.CookieTTL == 0 {
		c.CookieTTL = 390 * 24 * time.Hour
	}
	if c.RecordTimeout == 0 {
		c.RecordTimeout = 2 * time.Second
	}
	if c.MaxHeaderSize == 0 {
		c.MaxHeaderSize = 8 << 10
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 5 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 5 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 60 * time.Second
	}
}

// Validate reports every problem with c at once. Zero fields stand for their defaults.
func (c *CollectConfig) Validate() error {
	d := *c
	d.setDefaults()
	return d.validate()
}

func (c *CollectConfig) validate() error {
	var errs []error
	if !segments.ValidID(c.Source) || c.Source == "segment" {
		errs = append(errs, fmt.Errorf("source %q: want a source id", c.Source))
	}
	id := segments.ID{Type: c.IDType, Value: "x"}
	if id.Validate() != nil || c.IDType == segments.TypeIFA {
		errs = append(errs, fmt.Errorf("id type %q: want uid, buid or eid:<source>", c.IDType))
	}
	if !validCookieName(c.CookieName) {
		errs = append(errs, fmt.Errorf("cookie name %q: want 1-64 of A-Z, a-z, 0-9, _ - .",
			c.CookieName))
	}
	if c.CookieDomain != "" && !validHost(strings.TrimPrefix(c.CookieDomain, ".")) {
		errs = append(errs, fmt.Errorf("cookie domain %q: want a host name", c.CookieDomain))
	}
	if c.CookieTTL < time.Second || c.CookieTTL > maxCookieTTL {
		errs = append(errs, fmt.Errorf("cookie ttl %s: want 1s to %s", c.CookieTTL, maxCookieTTL))
	}
	for _, h := range c.RedirectHosts {
		if !validHost(strings.TrimPrefix(h, ".")) {
			errs = append(errs, fmt.Errorf("redirect host %q: want host or .suffix", h))
		}
	}
	if c.RecordTimeout < 0 || c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.IdleTimeout < 0 {
		errs = append(errs, errors.New("collect timeouts must not be negative"))
	}
	if c.MaxHeaderSize < 0 {
		errs = append(errs, errors.New("collect header limit must not be negative"))
	}
	return errors.Join(errs...)
}

func validCookieName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
			b == '_' || b == '-' || b == '.') {
			return false
		}
	}
	return true
}

// validHost reports whether s is a DNS host name of letters, digits, '-' and dots between
// non-empty labels, or an IP address.
func validHost(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' ||
				b == '-') {
				return false
			}
		}
	}
	return true
}

// Recorder writes one event durably; store.DB implements it. The error says why the event
// was refused or not written.
type Recorder interface {
	Record(ctx context.Context, ev segments.EventLine) error
}

// Collector is the public collect listener: GET /px records a first-party event against
// the cookie ID, GET /sync links a partner's ID to it, GET or POST /optout deletes the
// cookie ID's profile (see Deleter), GET /healthz answers ok. HEAD is answered like GET
// but records and deletes nothing. Safe for concurrent use.
type Collector struct {
	cfg      CollectConfig
	rec      Recorder
	del      Deleter // rec, when it implements Deleter; else nil and /optout answers 501
	log      *zap.Logger
	srv      *fasthttp.Server
	exact    map[string]bool // RedirectHosts matched whole, lower case
	suffixes []string        // RedirectHosts matched as ".example.com", lower case

	results  [numCollectEndpoints][numCollectResults]atomic.Uint64
	minted   atomic.Uint64 // cookie IDs issued
	lastWarn atomic.Int64  // unix ns of the last warning about an unrecorded event
}

// NewCollector returns a collect listener that records through rec.
func NewCollector(cfg CollectConfig, rec Recorder, log *zap.Logger) (*Collector, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("collect config: %w", err)
	}
	c := &Collector{cfg: cfg, rec: rec, log: log, exact: map[string]bool{}}
	c.del, _ = rec.(Deleter)
	for _, h := range cfg.RedirectHosts {
		h = strings.ToLower(h)
		if strings.HasPrefix(h, ".") {
			c.suffixes = append(c.suffixes, h)
		} else {
			c.exact[h] = true
		}
	}
	c.srv = &fasthttp.Server{
		Handler:               c.Handle,
		ErrorHandler:          c.handleReadError,
		Name:                  "segd",
		Concurrency:           maxConns,
		MaxRequestBodySize:    1 << 10, // GET and HEAD only; a larger body gets 413
		ReadBufferSize:        cfg.MaxHeaderSize,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		CloseOnShutdown:       true,
		Logger:                collectConnLogger{log},
	}
	return c, nil
}

// collectConnLogger takes fasthttp's connection-level messages at debug level, as
// connLogger does for the bid listener: they are the clients' failures. fasthttp quotes
// the request it could not read, cookie IDs and sync partner IDs included, so every
// quoted part is blanked, as connLogger does.
type collectConnLogger struct{ log *zap.Logger }

func (l collectConnLogger) Printf(format string, args ...any) {
	if ce := l.log.Check(zap.DebugLevel, "collect connection error"); ce != nil {
		ce.Write(zap.String("detail", blankQuoted(fmt.Sprintf(format, args...))))
	}
}

// Serve accepts connections on ln until Shutdown.
func (c *Collector) Serve(ln net.Listener) error {
	return c.srv.Serve(ln)
}

// Shutdown stops accepting, waits for in-flight requests (and their records) to finish,
// and returns.
func (c *Collector) Shutdown() error {
	return c.srv.Shutdown()
}

var (
	errCollectMethod   = errors.New("method not allowed: use GET")
	errSyncPartner     = errors.New("partner: want 1-128 of a-z, 0-9, '.', '_' and '-'")
	errSyncUID         = errors.New("uid: want a non-empty partner ID of at most 256 bytes")
	errSyncRedirect    = errors.New("redirect: want an absolute http or https URL")
	errSyncRedirectOff = errors.New("redirect: host not allowed")
)

// Handle routes one request of the collect listener.
func (c *Collector) Handle(ctx *fasthttp.RequestCtx) {
	ep := numCollectEndpoints
	res := crRecorded
	defer c.finish(ctx, &ep, &res)
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	switch string(ctx.Path()) {
	case "/px":
		ep = epPixel
	case "/sync":
		ep = epSync
	case "/optout":
		ep = epOptout
	case "/healthz":
	default:
		writeError(ctx, fasthttp.StatusNotFound, errNotFound)
		return
	}
	if ep == epOptout && !ctx.IsGet() && !ctx.IsHead() && !ctx.IsPost() {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD, POST")
		writeError(ctx, fasthttp.StatusMethodNotAllowed, errOptoutMethod)
		res = crBadRequest
		return
	}
	if ep != epOptout && !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
		writeError(ctx, fasthttp.StatusMethodNotAllowed, errCollectMethod)
		res = crBadRequest
		return
	}
	switch ep {
	case epPixel:
		res = c.pixel(ctx)
	case epSync:
		res = c.sync(ctx)
	case epOptout:
		res = c.optout(ctx)
	default:
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
	}
}

// finish recovers a panic by answering the pixel, and counts the request.
func (c *Collector) finish(ctx *fasthttp.RequestCtx, ep *collectEndpoint, res *collectResult) {
	if r := recover(); r != nil {
		*res = crPanic
		c.log.Error("collect handler panic", zap.Any("panic", r), zap.Stack("stack"))
		ctx.Response.Header.Del(fasthttp.HeaderLocation)
		writePixel(ctx, crPanic)
	}
	if *ep < numCollectEndpoints {
		c.results[*ep][*res].Add(1)
	}
}

// pixel records the query parameters as traits of the cookie ID's profile and answers the
// GIF whatever happens.
func (c *Collector) pixel(ctx *fasthttp.RequestCtx) collectResult {
	id := c.cookieID(ctx)
	traits, res := c.traits(ctx.QueryArgs())
	if res == crRecorded {
		res = c.record(ctx, segments.EventLine{
			IDs:    []segments.ID{{Type: c.cfg.IDType, Value: id}},
			Source: c.cfg.Source,
			Traits: traits,
		})
	}
	writePixel(ctx, res)
	return res
}

// reservedParams are /px query parameters that are no traits: cb is a cache-buster.
var reservedParams = []string{"cb"}

// traits returns the event traits of the query parameters, "key=value" sorted without
// duplicates, checked as segments.ParseEventLine checks the traits of an event line.
func (c *Collector) traits(args *fasthttp.Args) ([]string, collectResult) {
	var out []string
	res := crRecorded
	for k, v := range args.All() {
		if slices.Contains(reservedParams, string(k)) || res != crRecorded {
			continue
		}
		kv := string(k) + "=" + string(v)
		switch {
		case len(out) == segments.MaxEventTraits:
			res = crTooManyTraits
		case !segments.ValidID(string(k)) || len(v) == 0 ||
			!segments.ValidTraitName(c.cfg.Source+":"+kv):
			res = crBadTrait
		}
		out = append(out, kv)
	}
	if res != crRecorded {
		return nil, res
	}
	slices.Sort(out)
	return slices.Compact(out), crRecorded
}

// sync links the partner's ID to the cookie ID's profile and answers the GIF, or a
// redirect when one is asked for. Bad parameters get 400 and record nothing.
func (c *Collector) sync(ctx *fasthttp.RequestCtx) collectResult {
	args := ctx.QueryArgs()
	partner := string(args.Peek("partner"))
	if !validPartner(partner) {
		writeError(ctx, fasthttp.StatusBadRequest, errSyncPartner)
		return crBadRequest
	}
	pid := segments.ID{Type: "eid:" + partner, Value: string(args.Peek("uid"))}
	if pid.Validate() != nil {
		writeError(ctx, fasthttp.StatusBadRequest, errSyncUID)
		return crBadRequest
	}
	id := c.newOrCookieID(ctx)
	var loc string
	if args.Has("redirect") {
		var err error
		if loc, err = c.redirectURL(string(args.Peek("redirect")), id); err != nil {
			writeError(ctx, fasthttp.StatusBadRequest, err)
			return crBadRequest
		}
	}
	c.setCookie(ctx, id)
	res := c.record(ctx, segments.EventLine{
		IDs:     []segments.ID{{Type: c.cfg.IDType, Value: id}, pid},
		Source:  c.cfg.Source,
		Traits:  []string{"sync=" + partner},
		NoVisit: true,
	})
	if loc == "" {
		writePixel(ctx, res)
		return res
	}
	setRefused(ctx, res)
	ctx.Response.Header.Set(fasthttp.HeaderLocation, loc)
	ctx.SetStatusCode(fasthttp.StatusFound)
	return res
}

var errOptoutMethod = errors.New("method not allowed: use GET or POST")

// The plain-text answers of /optout, for the person who clicked an opt-out link.
const (
	optoutDone = "Done: the data linked to this browser's ID is deleted, and that ID " +
		"will never be linked again.\n"
	optoutNothing = "Nothing to delete: this browser carries no ID of ours.\n"
	optoutFailed  = "The opt-out did not go through. Please try again later.\n"
	optoutOff     = "Opt-out is not available on this server.\n"
)

// optout deletes the profile of the cookie ID, with every ID linked to it (partner IDs
// from syncs included), suppresses them all, and clears the cookie. It answers a short
// confirmation in plain text. Without a cookie ID there is nothing to delete; a HEAD
// deletes nothing; when the store fails the cookie stays, so that a retry can find the
// profile.
//
// Only the cookie names what to delete, so a page cannot opt out anyone but the browser
// that loads it. A later /px or /sync from the same browser gets a new cookie ID, which
// starts a new profile: the opt-out deletes what was known and blocks the old ID, but
// does not mark the browser.
func (c *Collector) optout(ctx *fasthttp.RequestCtx) collectResult {
	ctx.SetContentType("text/plain; charset=utf-8")
	v := ctx.Request.Header.Cookie(c.cfg.CookieName)
	if !validCookieID(v) {
		if len(v) > 0 {
			c.clearCookie(ctx)
		}
		ctx.SetBodyString(optoutNothing)
		return crRecorded
	}
	if ctx.IsHead() {
		return crHead
	}
	if c.del == nil {
		ctx.SetStatusCode(fasthttp.StatusNotImplemented)
		ctx.SetBodyString(optoutOff)
		return crFailed
	}
	dctx, cancel := context.WithTimeout(context.Background(), c.cfg.RecordTimeout)
	defer cancel()
	_, err := c.del.DeleteProfile(dctx, segments.ID{Type: c.cfg.IDType, Value: string(v)})
	if err != nil {
		res := classifyRecordErr(err)
		if c.mayWarn() {
			c.log.Warn("collect opt-out failed", zap.String("result", collectResultNames[res]),
				zap.Error(err))
		}
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString(optoutFailed)
		return res
	}
	c.clearCookie(ctx)
	ctx.SetBodyString(optoutDone)
	return crRecorded
}

// clearCookie tells the browser to drop the cookie now (Max-Age=0), with the same name,
// path and domain that setCookie gives it.
func (c *Collector) clearCookie(ctx *fasthttp.RequestCtx) {
	ck := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(ck)
	ck.SetKey(c.cfg.CookieName)
	ck.SetPath("/")
	ck.SetDomain(c.cfg.CookieDomain)
	ck.SetMaxAge(-1) // written as Max-Age=0
	ck.SetHTTPOnly(true)
	ck.SetSecure(true)
	ck.SetSameSite(fasthttp.CookieSameSiteNoneMode)
	ctx.Response.Header.SetCookie(ck)
}

// redirectURL returns raw with SyncIDMacro replaced by id, if it is an absolute http or
// https URL to an allowed host without user info.
func (c *Collector) redirectURL(raw, id string) (string, error) {
	if strings.ContainsRune(raw, '\\') {
		// Browsers read a backslash as a slash, Go's parser does not: the two could
		// disagree on the host.
		return "", errSyncRedirect
	}
	u, err := url.Parse(strings.ReplaceAll(raw, SyncIDMacro, url.QueryEscape(id)))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil {
		return "", errSyncRedirect
	}
	if !c.allowedHost(strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")) {
		return "", errSyncRedirectOff
	}
	return u.String(), nil
}

func (c *Collector) allowedHost(host string) bool {
	if c.exact[host] {
		return true
	}
	for _, s := range c.suffixes {
		if len(host) > len(s) && strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// cookieID returns the request's cookie ID or a new one, and sets the cookie.
func (c *Collector) cookieID(ctx *fasthttp.RequestCtx) string {
	id := c.newOrCookieID(ctx)
	c.setCookie(ctx, id)
	return id
}

// cookieIDLen is the length of a cookie ID: 16 random bytes in lower-case hex.
const cookieIDLen = 32

// newOrCookieID returns the request's cookie ID if it is one that segd issued, or else a
// new random one.
func (c *Collector) newOrCookieID(ctx *fasthttp.RequestCtx) string {
	if v := ctx.Request.Header.Cookie(c.cfg.CookieName); validCookieID(v) {
		return string(v)
	}
	var raw [cookieIDLen / 2]byte
	rand.Read(raw[:]) // never fails; it crashes the program instead
	c.minted.Add(1)
	return hex.EncodeToString(raw[:])
}

func validCookieID(v []byte) bool {
	if len(v) != cookieIDLen {
		return false
	}
	for _, b := range v {
		if !('0' <= b && b <= '9' || 'a' <= b && b <= 'f') {
			return false
		}
	}
	return true
}

// setCookie sets the cookie to id on the answer. It is sent on every answer, so that its
// lifetime runs from the last visit.
func (c *Collector) setCookie(ctx *fasthttp.RequestCtx, id string) {
	ck := fasthttp.AcquireCookie()
	defer fasthttp.ReleaseCookie(ck)
	ck.SetKey(c.cfg.CookieName)
	ck.SetValue(id)
	ck.SetPath("/")
	ck.SetDomain(c.cfg.CookieDomain)
	ck.SetMaxAge(int(c.cfg.CookieTTL / time.Second))
	ck.SetHTTPOnly(true)
	ck.SetSecure(true)
	ck.SetSameSite(fasthttp.CookieSameSiteNoneMode)
	ctx.Response.Header.SetCookie(ck)
}

// record writes ev unless the request is a HEAD, and classifies the outcome. Failures are
// counted by the caller and warned about at most once per warnEvery.
func (c *Collector) record(ctx *fasthttp.RequestCtx, ev segments.EventLine) collectResult {
	if ctx.IsHead() {
		return crHead
	}
	rctx, cancel := context.WithTimeout(context.Background(), c.cfg.RecordTimeout)
	defer cancel()
	err := c.rec.Record(rctx, ev)
	res := classifyRecordErr(err)
	if res != crRecorded && res != crOptedOut {
		c.warn(res, err)
	}
	return res
}

// classifyRecordErr maps a Recorder error to a result.
func classifyRecordErr(err error) collectResult {
	switch {
	case err == nil:
		return crRecorded
	case errors.Is(err, context.DeadlineExceeded):
		return crTimeout
	case errors.Is(err, segments.ErrUnknownSource),
		// store.RefusedError carries its reason as text only, so the cause is matched by
		// its message until it wraps the error itself.
		strings.Contains(err.Error(), segments.ErrUnknownSource.Error()):
		return crUnknownSource
	case errors.Is(err, segments.ErrOptedOut),
		strings.Contains(err.Error(), segments.ErrOptedOut.Error()):
		return crOptedOut
	}
	return crFailed
}

// warnEvery is the least time between two warnings about unrecorded events.
const warnEvery = time.Minute

func (c *Collector) warn(res collectResult, err error) {
	if !c.mayWarn() {
		return
	}
	c.log.Warn("collect event not recorded", zap.String("result", collectResultNames[res]),
		zap.String("source", c.cfg.Source), zap.Error(err))
}

// mayWarn reports whether a warning may be logged now: at most one per warnEvery across the
// listener.
func (c *Collector) mayWarn() bool {
	now := time.Now().UnixNano()
	last := c.lastWarn.Load()
	return now-last >= int64(warnEvery) && c.lastWarn.CompareAndSwap(last, now)
}

// writePixel answers the transparent GIF, naming in X-Segd-Refused why the event was not
// recorded.
func writePixel(ctx *fasthttp.RequestCtx, res collectResult) {
	setRefused(ctx, res)
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("image/gif")
	ctx.SetBody(pixelGIF)
}

// setRefused names a result that is neither recorded nor HEAD in X-Segd-Refused.
func setRefused(ctx *fasthttp.RequestCtx, res collectResult) {
	if res != crRecorded && res != crHead {
		ctx.Response.Header.Set("X-Segd-Refused", collectResultNames[res])
	}
}

// pixelGIF is a 1x1 GIF89a whose only pixel is transparent: a two-colour table, a graphic
// control extension marking colour 0 transparent, and one LZW-coded pixel of colour 0.
var pixelGIF = []byte{
	'G', 'I', 'F', '8', '9', 'a',
	1, 0, 1, 0, 0x80, 0, 0, // 1x1, global table of 2 colours
	0, 0, 0, 0xff, 0xff, 0xff, // black, white
	0x21, 0xf9, 4, 1, 0, 0, 0, 0, // colour 0 is transparent
	0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0, // image at 0,0, 1x1
	2, 2, 0x44, 0x01, 0, // LZW: clear, pixel 0, end
	0x3b,
}

// handleReadError answers requests that fasthttp could not read.
func (c *Collector) handleReadError(ctx *fasthttp.RequestCtx, err error) {
	var sizeErr *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, errTooLarge)
	case errors.As(err, &sizeErr):
		writeError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, errHeaderLarge)
	default:
		writeError(ctx, fasthttp.StatusBadRequest, errBadRequest)
	}
}

// collectEndpoint is a collect route, for metrics.
type collectEndpoint uint8

const (
	epPixel collectEndpoint = iota
	epSync
	// epOptout counts recorded when the store acknowledged the deletion or there was no
	// cookie ID to delete, and timeout or failed when the deletion did not go through.
	epOptout
	numCollectEndpoints
)

var collectEndpointNames = [numCollectEndpoints]string{"px", "sync", "optout"}

// collectResult is how a collect request ended. Every result but recorded and head is also
// the value of X-Segd-Refused on answers that reach the pixel or the redirect.
type collectResult uint8

const (
	crRecorded      collectResult = iota // the store acknowledged the event
	crHead                               // HEAD: answered, nothing recorded
	crBadRequest                         // 400 or 405: bad sync parameters or method
	crBadTrait                           // a query parameter is no valid trait
	crTooManyTraits                      // more than segments.MaxEventTraits
	crUnknownSource                      // the source is not defined
	crTimeout                            // the store did not answer within RecordTimeout
	crFailed                             // the store failed or refused otherwise
	crPanic                              // the handler panicked and answered the pixel
	crOptedOut                           // every ID of the event was deleted by an opt-out
	numCollectResults
)

var collectResultNames = [numCollectResults]string{
	"recorded", "head", "bad_request", "bad_trait", "too_many_traits", "unknown_source",
	"timeout", "failed", "panic", "opted_out",
}

// WritePrometheus writes the collect listener's counters in the Prometheus text format.
func (c *Collector) WritePrometheus(w io.Writer) {
	const name = "segd_collect_requests_total"
	b := make([]byte, 0, 4<<10)
	b = append(b, "# HELP "+name+" Collect requests by endpoint and result.\n"...)
	b = append(b, "# TYPE "+name+" counter\n"...)
	for ep := range numCollectEndpoints {
		for res := range numCollectResults {
			b = appendSample(b, name, `endpoint="`+collectEndpointNames[ep]+
				`",result="`+collectResultNames[res]+`"`, float64(c.results[ep][res].Load()))
		}
	}
	const minted = "segd_collect_cookies_issued_total"
	b = append(b, "# HELP "+minted+" Cookie IDs issued to browsers without a valid one.\n"...)
	b = append(b, "# TYPE "+minted+" counter\n"...)
	b = appendSample(b, minted, "", float64(c.minted.Load()))
	w.Write(b)
}

// validPartner reports whether p can name an extended-ID source: usually the partner's
// domain, as in user.eids[].source (id5-sync.com).
func validPartner(p string) bool {
	if p == "" || len(p) > segments.MaxEIDSourceLen {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
