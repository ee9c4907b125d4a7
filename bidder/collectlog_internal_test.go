package bidder

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestCollectConnLoggerBlanksIDs feeds the collect listener's connection logger the
// errors fasthttp gives for unreadable requests that carry IDs in the cookie, the sync
// query and a bad header line, and checks that none reaches the log while the failure is
// still named.
func TestCollectConnLoggerBlanksIDs(t *testing.T) {
	tests := []struct {
		name, req, want string
	}{
		{"bad header line", "GET /sync?partner=p&uid=SECRET-1 HTTP/1.1\r\nHost: x\r\n" +
			"Cookie: segd_id=SECRET-2\r\nno colon SECRET-3\r\n\r\n", "missing colon"},
		{"bad content length", "GET /px HTTP/1.1\r\nCookie: segd_id=SECRET-4\r\n" +
			"Content-Length: x\r\n\r\n", "content-length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req fasthttp.Request
			err := req.Read(bufio.NewReader(strings.NewReader(tt.req)))
			if err == nil {
				t.Fatal("fasthttp read the request")
			}
			core, logs := observer.New(zapcore.DebugLevel)
			collectConnLogger{zap.New(core)}.Printf(
				"error when serving connection %q<->%q: %v", "127.0.0.1:1", "127.0.0.1:2", err)
			entries := logs.All()
			if len(entries) != 1 {
				t.Fatalf("%d entries logged", len(entries))
			}
			got := entries[0].ContextMap()["detail"].(string)
			if strings.Contains(got, "SECRET") || !strings.Contains(got, tt.want) {
				t.Errorf("logged %s", got)
			}
		})
	}
}
