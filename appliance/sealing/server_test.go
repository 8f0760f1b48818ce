package sealing

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHTTPAPIServesOnlyThisHost(t *testing.T) {
	h := localOnly(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	for _, tc := range []struct {
		remote string
		want   int
	}{
		{"127.0.0.1:40000", http.StatusTeapot},
		{"[::1]:40000", http.StatusTeapot},
		{"203.0.113.7:40000", http.StatusForbidden}, // TEST-NET-3: never this host
		{"garbage", http.StatusForbidden},
	} {
		req := httptest.NewRequest(http.MethodGet, "/v1/cert.pem", nil)
		req.RemoteAddr = tc.remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("from %s: %d, want %d", tc.remote, rec.Code, tc.want)
		}
	}
}
