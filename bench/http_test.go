package bench_test

import (
	"context"
	"errors"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/segd/segd/bench"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		url    string
		remote bool // --allow-remote
		ok     bool
	}{
		{"http://127.0.0.1:8080/openrtb2/enrich", false, true},
		{"http://127.9.8.7/x", false, true},
		{"http://localhost:8080/x", false, true},
		{"http://LOCALHOST/x", false, true},
		{"http://[::1]:8080/x", false, true},
		{"https://127.0.0.1/x", false, true},
		{"http://10.0.0.7:8080/x", false, false},
		{"http://192.168.1.20/x", false, false},
		{"http://0.0.0.0:8080/x", false, false},
		{"http://[::]:8080/x", false, false},
		{"http://bidder.example/x", false, false},
		{"http://localhost.example/x", false, false},
		{"http://127.0.0.1.example/x", false, false},
		{"http://10.0.0.7:8080/x", true, true},
		{"http://bidder.example/x", true, true},
	}
	for _, tt := range tests {
		u, err := bench.ParseTarget(tt.url, tt.remote)
		switch {
		case tt.ok && err != nil:
			t.Errorf("ParseTarget(%q, %v): %v", tt.url, tt.remote, err)
		case tt.ok && u.String() != tt.url:
			t.Errorf("ParseTarget(%q) = %s", tt.url, u)
		case !tt.ok && !errors.Is(err, bench.ErrRemoteTarget):
			t.Errorf("ParseTarget(%q, %v) = %v, want ErrRemoteTarget", tt.url, tt.remote, err)
		}
	}
	for _, bad := range []string{"127.0.0.1:8080", "ftp://127.0.0.1/", "http:///x", "%"} {
		if _, err := bench.ParseTarget(bad, true); err == nil {
			t.Errorf("ParseTarget(%q) accepted a URL that is not http(s) with a host", bad)
		}
	}
}

func startEcho(t *testing.T) *bench.Echo {
	t.Helper()
	e, err := bench.StartEcho("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := bench.ParseTarget(raw, false)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestHTTPTargetEcho(t *testing.T) {
	e := startEcho(t)
	target := bench.NewHTTPTarget(mustParse(t, "http://"+e.Addr()+"/openrtb2/enrich"), 2)
	defer target.Close()
	s := target.NewSender()
	for _, body := range []string{`{"id":"1"}`, `{"id":"2","user":{"id":"u"}}`} {
		status, resp, err := s.Send([]byte(body), time.Second)
		if err != nil || status != 200 || string(resp) != body {
			t.Errorf("Send(%s) = %d %s %v, want 200 and the body echoed", body, status, resp,
				err)
		}
	}
}

// TestHTTPErrorClasses sends to a closed port and to a server that never answers.
func TestHTTPErrorClasses(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open and never answered until the test ends
		}
	}()

	res := runHTTP(t, "http://"+closedAddr+"/x", time.Second)
	if res.Errors.Connect != 3 || res.Requests != 3 {
		t.Errorf("closed port: %d requests, errors %+v; want 3 connect errors", res.Requests,
			res.Errors)
	}
	res = runHTTP(t, "http://"+silent.Addr().String()+"/x", 20*time.Millisecond)
	if res.Errors.Timeout != 3 || res.Requests != 3 {
		t.Errorf("silent server: %d requests, errors %+v; want 3 timeouts", res.Requests,
			res.Errors)
	}
}

func runHTTP(t *testing.T, raw string, timeout time.Duration) *bench.Result {
	t.Helper()
	target := bench.NewHTTPTarget(mustParse(t, raw), 1)
	defer target.Close()
	res, err := bench.Run(context.Background(), bench.Config{NewSender: target.NewSender,
		Bodies: [][]byte{[]byte(`{}`)}, Connections: 1, MaxRequests: 3, Timeout: timeout,
		Duration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return res
}
