package bench

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// ErrRemoteTarget means a load target is not on this machine and remote targets were not
// allowed.
var ErrRemoteTarget = errors.New("target is not a loopback address")

// ParseTarget parses the URL of a load target: http or https, with a host. Unless
// allowRemote is set, the host must be localhost, an address in 127.0.0.0/8, or ::1,
// because load aimed at another machine lands on a host and a network that the caller may
// not own, and a mistyped address should not turn a benchmark into a flood. Names other
// than localhost are refused without being resolved.
func ParseTarget(raw string, allowRemote bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("target %q: want an http:// or https:// URL", raw)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("target %q: no host", raw)
	}
	if !allowRemote && !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("target host %s: %w: load is sent only to this machine "+
			"(127.0.0.0/8, ::1, localhost) unless --allow-remote says the target is yours "+
			"and can take it", u.Hostname(), ErrRemoteTarget)
	}
	return u, nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// HTTPTarget posts request bodies to one URL over a bounded pool of fasthttp connections.
// It is safe for concurrent use; each of its Senders is not.
type HTTPTarget struct {
	client *fasthttp.HostClient
	uri    string
}

// NewHTTPTarget returns a target that posts to u over at most conns connections. u should
// come from ParseTarget.
func NewHTTPTarget(u *url.URL, conns int) *HTTPTarget {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return &HTTPTarget{
		client: &fasthttp.HostClient{
			Addr:                     net.JoinHostPort(u.Hostname(), port),
			IsTLS:                    u.Scheme == "https",
			MaxConns:                 conns,
			MaxIdleConnDuration:      time.Minute,
			NoDefaultUserAgentHeader: true,
		},
		uri: u.String(),
	}
}

// NewSender returns a Sender with its own request and response buffers.
func (t *HTTPTarget) NewSender() Sender {
	s := &httpSender{client: t.client}
	s.req.SetRequestURI(t.uri)
	s.req.Header.SetMethod(fasthttp.MethodPost)
	s.req.Header.SetContentType("application/json")
	return s
}

// Close closes the idle connections. Senders must not be used after it.
func (t *HTTPTarget) Close() { t.client.CloseIdleConnections() }

type httpSender struct {
	client *fasthttp.HostClient
	req    fasthttp.Request
	resp   fasthttp.Response
}

func (s *httpSender) Send(body []byte, timeout time.Duration) (int, []byte, error) {
	s.req.SetBodyRaw(body) // body stays unchanged for the whole run, never pooled
	if err := s.client.DoTimeout(&s.req, &s.resp, timeout); err != nil {
		return 0, nil, err
	}
	return s.resp.StatusCode(), s.resp.Body(), nil
}

// classify sorts the outcome of a request.
func classify(status int, err error) class {
	if err != nil {
		return errClass(err)
	}
	switch {
	case status >= 200 && status < 300:
		return classOK
	case status >= 400 && status < 500:
		return class4xx
	case status >= 500 && status < 600:
		return class5xx
	}
	return classOther
}

func errClass(err error) class {
	var op *net.OpError
	switch {
	case errors.Is(err, fasthttp.ErrDialTimeout), errors.Is(err, syscall.ECONNREFUSED),
		errors.As(err, &op) && op.Op == "dial":
		return classConnect
	case isTimeout(err):
		return classTimeout
	}
	return classOther
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
