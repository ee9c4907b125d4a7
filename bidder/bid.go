package bidder

import (
	"crypto/sha256"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"

	"github.com/segd/segd/segments"
)

// state is the per-request working memory, pooled and reused.
type state struct {
	scan  scan
	slots []uint32
	frag  []byte
	out   []byte
}

// maxPooledBuf is the largest buffer kept in the pool; an outsized request's buffers are
// left to the garbage collector rather than pinned.
const maxPooledBuf = 512 << 10

func (s *Server) getState() *state { return s.states.Get().(*state) }

func (s *Server) putState(st *state) {
	if cap(st.out) > maxPooledBuf || cap(st.scan.scratch) > maxPooledBuf {
		return
	}
	st.scan.body = nil
	s.states.Put(st)
}

var (
	typeUID  = []byte(segments.TypeUID)
	typeBUID = []byte(segments.TypeBUID)
	typeIFA  = []byte(segments.TypeIFA)
	typeEID  = []byte("eid:")
)

// maxSlots bounds the segments one request carries.
const maxSlots = 512

// match scans body and finds its segments. It returns segd's user.data objects,
// comma-joined, in st.frag, and the outcome. A syntax error is returned as err, with
// outInvalid.
//
// gpc is whether the request carried Sec-GPC: 1, and caller the number of the caller it
// came from, or segments.NoCaller. tr, when not nil, records each step for /v1/explain;
// the request path passes nil and allocates nothing.
func (s *Server) match(st *state, body []byte, now time.Time, gpc bool, caller int,
	tr *trace) (outcome, error) {
	sc := &st.scan
	sc.reset(body, s.prov)
	if err := sc.run(); err != nil {
		return outInvalid, err
	}
	switch {
	case !s.ix.Ready():
		return outNotReady, nil
	case sc.ambiguous:
		return outSkipped, nil
	}
	sig := sc.signals(gpc)
	v := s.policy.decide(&sig)
	if tr != nil {
		tr.policy(v)
	}
	if !v.allow {
		return outPrivacy, nil
	}
	if len(sc.ids) == 0 {
		return outNoID, nil
	}

	cat := s.ix.Catalog()
	h := s.ix.Hasher()
	sec := uint32(now.Unix())
	st.slots = st.slots[:0]
	for i := range sc.ids {
		id := &sc.ids[i]
		if drop := dropID(id.kind, v); drop != "" {
			if tr != nil {
				tr.id(sc, id, drop, 0)
			}
			continue
		}
		typ, ext := typeFor(id.kind), []byte(nil)
		if id.kind == kindEID {
			ext = sc.bytes(id.src, id.srcEsc)
		}
		n := len(st.slots)
		st.slots = s.ix.Lookup(st.slots, cat, h.HashID(typ, ext, sc.bytes(id.val, id.valEsc)), sec)
		if tr != nil {
			tr.id(sc, id, "", len(st.slots)-n)
		}
		if len(st.slots) >= maxSlots {
			st.slots = st.slots[:maxSlots]
			break
		}
	}
	return s.permit(st, cat, v, caller, tr)
}

// permit drops the segments whose sources' rights the request does not meet, and renders
// the rest.
func (s *Server) permit(st *state, cat *segments.Catalog, v verdict, caller int,
	tr *trace) (outcome, error) {
	if len(st.slots) == 0 {
		return outNoMatch, nil
	}
	var has segments.Needs
	if v.consented {
		has |= segments.NeedsConsent
	}
	if !v.usOptedOut {
		has |= segments.NeedsNoUSOptOut
	}
	if tr != nil {
		tr.segments(cat, st.slots, has, caller)
	}
	var removed int
	st.slots, removed = cat.Permit(st.slots, has, caller)
	if len(st.slots) == 0 {
		if removed > 0 {
			return outPrivacy, nil
		}
		return outNoMatch, nil
	}
	st.frag, _ = cat.AppendUserData(st.frag[:0], st.slots)
	return outEnriched, nil
}

// dropID says why a kind of ID may not be used under v, or "" when it may.
func dropID(k idKind, v verdict) string {
	switch {
	case k == kindIFA && v.noIFA:
		return "limit ad tracking or ATT: the IFA is not used"
	case (k == kindUID || k == kindBUID) && v.noCookies:
		return "no TCF purpose 1 consent: cookie IDs are not read"
	}
	return ""
}

// requestTime is when the handler was called, or now for a context that no server set up.
func requestTime(ctx *fasthttp.RequestCtx) time.Time {
	if t := ctx.Time(); !t.IsZero() {
		return t
	}
	return time.Now()
}

func typeFor(k idKind) []byte {
	switch k {
	case kindUID:
		return typeUID
	case kindBUID:
		return typeBUID
	case kindIFA:
		return typeIFA
	}
	return typeEID
}

// bid answers one bid request on endpoint ep.
func (s *Server) bid(ctx *fasthttp.RequestCtx, ep endpoint) {
	start := requestTime(ctx)
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		writeError(ctx, fasthttp.StatusMethodNotAllowed, errMethod)
		s.metrics.observe(ep, outInvalid, time.Since(start))
		return
	}
	n := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	if n > int64(s.cfg.MaxInflight) {
		s.shed(ctx, ep)
		s.metrics.observe(ep, outOverload, time.Since(start))
		return
	}

	st := s.getState()
	oc := outInvalid
	defer s.finish(ctx, st, ep, &oc)

	body := ctx.PostBody()
	gpc := ctx.Request.Header.Peek("Sec-GPC")
	caller, known := s.caller(ctx.Request.Header.Peek(CallerHeader))
	oc, err := s.match(st, body, start, len(gpc) == 1 && gpc[0] == '1', caller, nil)
	if err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, err)
		return
	}
	if !known {
		oc = outCaller // the body was valid JSON, but this caller gets nothing
	}
	if oc == outEnriched && time.Since(start) >= s.budget(&st.scan) {
		oc = outOverBudget
	}
	ctx.SetContentType("application/json")
	switch ep {
	case epEnrich:
		if oc == outEnriched {
			// Splice straight into the response's own buffer: one copy of the body, as
			// for an unchanged answer.
			out := st.scan.appendEnriched(ctx.Response.SwapBody(nil)[:0], st.frag, -1)
			ctx.Response.SwapBody(out)
		} else {
			ctx.SetBody(body)
		}
	case epSegments:
		ctx.Response.AppendBodyString("[")
		if oc == outEnriched {
			ctx.Response.AppendBody(st.frag)
		}
		ctx.Response.AppendBodyString("]")
	case epAuction:
		if s.forward(ctx, st, oc) != nil {
			oc = outUpstreamErr
		}
	}
}

// caller finds the caller whose API key is key. It returns segments.NoCaller and true for
// a request without a key when none is required, and false for an unknown key. Keys are
// compared by their SHA-256, so the lookup's timing says nothing about a key's bytes.
func (s *Server) caller(key []byte) (int, bool) {
	if len(key) == 0 {
		return segments.NoCaller, !s.cfg.RequireCaller
	}
	if len(s.callers) == 0 {
		return segments.NoCaller, true
	}
	n, ok := s.callers[sha256.Sum256(key)]
	if !ok {
		return segments.NoCaller, false
	}
	return n, true
}

// budget is how long a request may take from being read to being spliced: its tmax less
// the margin, capped by MaxBudget; MaxBudget when it has no tmax. It is zero or negative
// when the tmax leaves nothing, and then no request is spliced.
func (s *Server) budget(sc *scan) time.Duration {
	if !sc.tmax.ok() {
		return s.cfg.MaxBudget
	}
	tmax := time.Duration(parseUint(sc.body[sc.tmax.start:sc.tmax.end])) * time.Millisecond
	return min(tmax-s.cfg.TmaxMargin, s.cfg.MaxBudget)
}

// parseUint reads the decimal digits of b, which the scan has checked to be 1 to 9 digits,
// without allocating.
func parseUint(b []byte) int64 {
	var n int64
	for _, c := range b {
		n = n*10 + int64(c-'0')
	}
	return n
}

// shed answers a request beyond MaxInflight without reading it: the body unchanged, no
// segments, or in proxy mode 503, so that the caller can go on without segd.
func (s *Server) shed(ctx *fasthttp.RequestCtx, ep endpoint) {
	switch ep {
	case epEnrich:
		ctx.SetContentType("application/json")
		ctx.SetBody(ctx.PostBody())
	case epSegments:
		ctx.SetContentType("application/json")
		ctx.SetBodyString("[]")
	case epAuction:
		ctx.Response.Header.Set("Retry-After", "1")
		writeError(ctx, fasthttp.StatusServiceUnavailable, errOverload)
	}
}

// finish recovers a panic by answering the request unchanged, counts the request, and
// returns st to the pool. Requests are never logged on success.
func (s *Server) finish(ctx *fasthttp.RequestCtx, st *state, ep endpoint, oc *outcome) {
	if r := recover(); r != nil {
		*oc = outPanic
		s.log.Error("bid handler panic", zap.String("endpoint", endpointNames[ep]),
			zap.Any("panic", r), zap.Stack("stack"))
		ctx.ResetBody()
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetContentType("application/json")
		switch ep {
		case epSegments:
			ctx.SetBodyString("[]")
		case epAuction:
			ctx.SetStatusCode(fasthttp.StatusNoContent) // no bid
		default:
			ctx.SetBody(ctx.PostBody())
		}
		st = new(state) // the pooled one may be inconsistent
	}
	s.metrics.observe(ep, *oc, time.Since(requestTime(ctx)))
	s.putState(st)
}

// forward sends the request, enriched when oc says so, to the upstream bidder with tmax
// reduced by the time spent here, and relays the answer.
func (s *Server) forward(ctx *fasthttp.RequestCtx, st *state, oc outcome) error {
	if s.client == nil {
		writeError(ctx, fasthttp.StatusNotFound, errNoUpstream)
		return nil
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	resp.Header.SetNoDefaultContentType(true) // relay the upstream's, not one of fasthttp's

	ctx.Request.Header.CopyTo(&req.Header)
	req.Header.Del("Content-Length")
	req.Header.Del("Connection")
	req.Header.Del(CallerHeader) // segd's key is not the bidder's business
	req.SetRequestURI(s.cfg.Upstream)
	req.Header.SetMethod(fasthttp.MethodPost)

	spent := time.Since(requestTime(ctx))
	tmax, timeout := remainingTmax(st.scan.body, st.scan.tmax, spent, s.cfg.UpstreamTimeout)
	if oc == outEnriched {
		st.out = st.scan.appendEnriched(st.out[:0], st.frag, tmax)
	} else {
		st.out = st.scan.appendTmax(st.out[:0], tmax)
	}
	req.SetBody(st.out)

	if err := s.client.DoTimeout(req, resp, timeout); err != nil {
		status, e := fasthttp.StatusBadGateway, errUpstream
		if errors.Is(err, fasthttp.ErrTimeout) {
			status, e = fasthttp.StatusGatewayTimeout, errUpTimeout
		}
		writeError(ctx, status, e)
		return err
	}
	ctx.SetStatusCode(resp.StatusCode())
	ctx.Response.Header.SetContentTypeBytes(resp.Header.ContentType())
	if enc := resp.Header.ContentEncoding(); len(enc) > 0 {
		// The caller's Accept-Encoding went upstream, so the body may be compressed.
		ctx.Response.Header.SetContentEncodingBytes(enc)
	}
	ctx.SetBody(resp.Body())
	return nil
}

// remainingTmax returns the request's tmax less the time already spent, at least 1 ms, and
// the timeout for the upstream call; tmax is -1 when the request has none.
func remainingTmax(body []byte, sp span, spent, fallback time.Duration) (int, time.Duration) {
	if !sp.ok() {
		return -1, fallback
	}
	tmax, err := strconv.Atoi(string(body[sp.start:sp.end]))
	if err != nil || tmax <= 0 {
		return -1, fallback
	}
	left := tmax - int((spent+time.Millisecond-1)/time.Millisecond)
	left = max(left, 1)
	return left, time.Duration(left) * time.Millisecond
}
