// Package bidder is segd's OpenRTB and HTTP edge: the bid listener that enriches requests
// (and proxies them in front of a bidder), and the admin API.
//
// The request path scans each body once, looks its IDs up in the index, and splices
// pre-rendered user.data objects into the original bytes; it never decodes the whole
// request and allocates nothing per request. Nothing here touches Badger: writes go
// through the Store interface, which package store implements.
package bidder

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/segd/segd/segments"
)

// Config configures the bid listener. The zero value of each field means its default.
type Config struct {
	// ProviderID is the user.data id that segd writes and later recognises as its own;
	// default "segd".
	ProviderID string
	// Privacy says how privacy signals are read; see PrivacyConfig.
	Privacy PrivacyConfig
	// MaxBodySize is the largest bid request accepted, in bytes; default 256 KiB. Larger
	// bodies get 413.
	MaxBodySize int
	// MaxHeaderSize is the largest request header block, in bytes; default 8 KiB. Larger
	// headers get 431.
	MaxHeaderSize int
	// ReadTimeout, WriteTimeout and IdleTimeout bound each connection; defaults 5s, 5s
	// and 60s.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// Upstream is the bidder URL that /openrtb2/auction forwards to; empty turns proxy
	// mode off.
	Upstream string
	// UpstreamTimeout bounds a forwarded request without tmax; default 1s.
	UpstreamTimeout time.Duration
	// TmaxMargin is the part of a request's tmax left to the caller and the network: a
	// request's budget is its tmax less this margin, capped by MaxBudget. Default 10ms.
	TmaxMargin time.Duration
	// MaxBudget caps the time from reading a request to splicing segments into it,
	// whatever its tmax, and is the budget of a request without tmax; default 20ms. A
	// request whose scan and lookup end past its budget is answered unchanged.
	MaxBudget time.Duration
	// MaxInflight is how many bid requests may be in the handler at once; default 1024.
	// Each one beyond is answered at once and unchanged (503 in proxy mode), not queued.
	MaxInflight int
	// Callers are the clients that identify themselves with an API key in the
	// X-Api-Key header, each limited to some segments or taxonomies. A request with a
	// key that is not here is answered unchanged.
	Callers []Caller
	// RequireCaller answers unchanged every request without an X-Api-Key header. When
	// false, such a request gets every segment that its privacy signals allow.
	RequireCaller bool
}

// Caller is one client of the bid listener and what it may receive.
type Caller struct {
	segments.Caller
	// Key is the API key the caller sends in X-Api-Key; at least 16 bytes.
	Key string
}

// CallerHeader is the request header that carries a caller's API key.
const CallerHeader = "X-Api-Key"

// minKeyLen is the shortest API key accepted: shorter ones are guessable.
const minKeyLen = 16

func (c *Config) setDefaults() {
	if c.ProviderID == "" {
		c.ProviderID = "segd"
	}
	if c.MaxBodySize == 0 {
		c.MaxBodySize = 256 << 10
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
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = time.Second
	}
	if c.TmaxMargin == 0 {
		c.TmaxMargin = 10 * time.Millisecond
	}
	if c.MaxBudget == 0 {
		c.MaxBudget = 20 * time.Millisecond
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = 1024
	}
}

// Validate reports every problem with c at once.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxBodySize < 0 || c.MaxHeaderSize < 0 {
		errs = append(errs, errors.New("body and header limits must not be negative"))
	}
	if c.Upstream != "" {
		u, err := url.Parse(c.Upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("upstream %q: want an http or https URL", c.Upstream))
		}
	}
	if c.UpstreamTimeout < 0 {
		errs = append(errs, errors.New("upstream timeout must not be negative"))
	}
	if c.TmaxMargin < 0 || c.MaxBudget < 0 {
		errs = append(errs, errors.New("tmax margin and max budget must not be negative"))
	}
	if c.MaxInflight < 0 {
		errs = append(errs, errors.New("max in-flight requests must not be negative"))
	}
	keys := make(map[string]bool, len(c.Callers))
	for _, cl := range c.Callers {
		if len(cl.Key) < minKeyLen {
			errs = append(errs, fmt.Errorf("caller %q: key: want at least %d bytes", cl.Name, minKeyLen))
		}
		if keys[cl.Key] {
			errs = append(errs, fmt.Errorf("caller %q: key: already used by another caller", cl.Name))
		}
		keys[cl.Key] = true
	}
	if c.RequireCaller && len(c.Callers) == 0 {
		errs = append(errs, errors.New("require caller: no callers are defined"))
	}
	return errors.Join(errs...)
}

// Server is the bid listener. Safe for concurrent use.
type Server struct {
	cfg     Config
	ix      *segments.Index
	metrics *Metrics
	log     *zap.Logger
	prov    []byte
	policy  *policy
	states  sync.Pool
	client  *fasthttp.Client
	srv     *fasthttp.Server

	inflight atomic.Int64 // bid requests in the handler now

	callers  map[[sha256.Size]byte]int // SHA-256 of an API key -> caller number
	callerNo map[string]int            // caller name -> caller number
}

// maxConns is fasthttp's cap on open connections. A connection beyond it is answered 503
// by fasthttp itself, which breaks the promise that no request yields a 5xx, so the cap
// sits high (fasthttp's own default, written out) and overload is handled per request by
// MaxInflight instead, which costs an atomic add rather than a refused connection.
const maxConns = 256 << 10

// NewServer returns a bid listener that enriches from ix and counts into m.
func NewServer(cfg Config, ix *segments.Index, m *Metrics, log *zap.Logger) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("bid config: %w", err)
	}
	s := &Server{cfg: cfg, ix: ix, metrics: m, log: log, prov: []byte(cfg.ProviderID),
		policy: newPolicy(cfg.Privacy), callers: make(map[[sha256.Size]byte]int),
		callerNo: make(map[string]int)}
	cs := make([]segments.Caller, len(cfg.Callers))
	for i, cl := range cfg.Callers {
		cs[i] = cl.Caller
		s.callers[sha256.Sum256([]byte(cl.Key))] = i
		s.callerNo[cl.Name] = i
	}
	if err := ix.SetCallers(cs); err != nil {
		return nil, fmt.Errorf("bid config: %w", err)
	}
	s.states.New = func() any { return new(state) }
	if cfg.Upstream != "" {
		s.client = &fasthttp.Client{
			Name:                          "segd",
			MaxConnsPerHost:               4096,
			MaxIdleConnDuration:           30 * time.Second,
			NoDefaultUserAgentHeader:      true,
			DisableHeaderNamesNormalizing: true,
		}
	}
	s.srv = &fasthttp.Server{
		Handler:               s.Handle,
		ErrorHandler:          s.handleReadError,
		Name:                  "segd",
		Concurrency:           maxConns,
		MaxRequestBodySize:    cfg.MaxBodySize,
		ReadBufferSize:        cfg.MaxHeaderSize,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		CloseOnShutdown:       true,
		Logger:                connLogger{log},
	}
	return s, nil
}

// connLogger takes fasthttp's connection-level messages (a client that sent garbage or
// went away) at debug level: they are the client's failures, counted in metrics, and
// logging each at a higher level would let any client flood the log. fasthttp quotes the
// bytes it could not read, which may hold raw IDs, and the peer's address; every quoted
// part is blanked, so only the kind of failure is logged.
type connLogger struct{ log *zap.Logger }

func (l connLogger) Printf(format string, args ...any) {
	if ce := l.log.Check(zap.DebugLevel, "bid connection error"); ce != nil {
		ce.Write(zap.String("detail", blankQuoted(fmt.Sprintf(format, args...))))
	}
}

// maxDetail bounds a logged connection error, in bytes.
const maxDetail = 300

// blankQuoted replaces the content of every double-quoted part of s with "...", and cuts
// the result to maxDetail bytes. An unterminated quote blanks the rest.
func blankQuoted(s string) string {
	b := make([]byte, 0, min(len(s), maxDetail))
	for i := 0; i < len(s) && len(b) < maxDetail; i++ {
		b = append(b, s[i])
		if s[i] != '"' {
			continue
		}
		for i++; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' {
				i++
			}
		}
		b = append(b, "...\""...)
	}
	return string(b[:min(len(b), maxDetail)])
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	return s.srv.Serve(ln)
}

// Shutdown stops accepting, waits for in-flight requests to finish, and returns.
func (s *Server) Shutdown() error {
	return s.srv.Shutdown()
}

// Handle routes one request of the bid listener.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/openrtb2/enrich":
		s.bid(ctx, epEnrich)
	case "/openrtb2/segments":
		s.bid(ctx, epSegments)
	case "/openrtb2/auction":
		s.bid(ctx, epAuction)
	case "/healthz":
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("ok\n")
	case "/readyz":
		ctx.SetContentType("text/plain; charset=utf-8")
		if !s.ix.Ready() {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString("loading\n")
			return
		}
		ctx.SetBodyString("ready\n")
	default:
		writeError(ctx, fasthttp.StatusNotFound, errNotFound)
	}
}

var (
	errNotFound    = errors.New("no such endpoint")
	errMethod      = errors.New("method not allowed: use POST")
	errTooLarge    = errors.New("body too large")
	errHeaderLarge = errors.New("request header too large")
	errBadRequest  = errors.New("malformed HTTP request")
	errNoUpstream  = errors.New("proxy mode is off: start segd with --upstream")
	errUpstream    = errors.New("upstream bidder failed")
	errUpTimeout   = errors.New("upstream bidder timed out")
	errOverload    = errors.New("overloaded: too many requests in flight")
)

// handleReadError answers requests that fasthttp could not read.
func (s *Server) handleReadError(ctx *fasthttp.RequestCtx, err error) {
	var sizeErr *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, errTooLarge)
	case errors.As(err, &sizeErr):
		writeError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, errHeaderLarge)
	default:
		writeError(ctx, fasthttp.StatusBadRequest, errBadRequest)
	}
	s.metrics.requests[epEnrich][outInvalid].Add(1)
}

// writeError answers status with {"error":"..."}. Error texts are constants without
// characters that need escaping.
func writeError(ctx *fasthttp.RequestCtx, status int, err error) {
	ctx.ResetBody()
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.AppendBodyString(`{"error":"`)
	ctx.Response.AppendBodyString(err.Error())
	ctx.Response.AppendBodyString(`"}`)
}
