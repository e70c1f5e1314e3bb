package authtest

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// TestSweepAfterAuthorizeFlood: sign-ins that never reach the token
// endpoint (a flood of authorization requests without cookies) leave
// provider sessions and codes; once they have expired, further requests
// forget them, as token requests do for tokens.
func TestSweepAfterAuthorizeFlood(t *testing.T) {
	t.Parallel()
	p := NewProvider(Config{AutoApprove: "alice", RedirectURIs: []string{"http://app.example/cb"}})
	defer p.Close()
	p.mu.Lock()
	p.sweepMin = 100 // instead of 10,000, to keep the test fast
	p.mu.Unlock()
	q := url.Values{"client_id": {p.ClientID}, "redirect_uri": {"http://app.example/cb"}, "response_type": {"code"}, "scope": {"openid"}}
	signIns := func(n int) {
		t.Helper()
		for range n {
			w := httptest.NewRecorder()
			p.srv.Handler.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/authorize?"+q.Encode(), nil))
			if w.Code != http.StatusFound {
				t.Fatalf("GET /authorize: status %d, want 302", w.Code)
			}
		}
	}
	signIns(300)
	p.Advance(p.cfg.SessionTTL + time.Second) // every session and code so far has expired
	signIns(300)
	p.mu.Lock()
	sessions, codes := len(p.sessions), len(p.codes)
	p.mu.Unlock()
	if sessions > 300 || codes > 300 {
		t.Errorf("after 300 sign-ins, expiry, and 300 more: %d sessions and %d codes held, want at most 300 each", sessions, codes)
	}
}
