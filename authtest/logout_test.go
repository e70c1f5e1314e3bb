package authtest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth/authtest"
)

func TestEndSession(t *testing.T) {
	t.Parallel()
	const bye = "http://app.example/bye"
	other := newProvider(t, authtest.Config{SigningAlg: "ES256"})
	otherHint := login(t, other, "alice").IDToken
	for _, tt := range []struct {
		name         string
		method       string
		params       func(p *authtest.Provider, hint string) url.Values
		wantStatus   int
		wantLocation string // for 302
	}{
		{"hint", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bye}, "state": {"s1"}}
		}, http.StatusFound, bye + "?state=s1"},
		{"hint, POST", http.MethodPost, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bye}}
		}, http.StatusFound, bye},
		{"expired hint", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			p.Advance(48 * time.Hour)
			return url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bye}}
		}, http.StatusFound, bye},
		{"client_id", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{"client_id": {p.ClientID}, "post_logout_redirect_uri": {bye}, "state": {"s2"}}
		}, http.StatusFound, bye + "?state=s2"},
		{"added URI", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			p.AddPostLogoutRedirectURI("http://app.example/later?x=1")
			return url.Values{"client_id": {p.ClientID}, "post_logout_redirect_uri": {"http://app.example/later?x=1"}}
		}, http.StatusFound, "http://app.example/later?x=1"},
		{"no redirect", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{}
		}, http.StatusOK, ""},
		{"unregistered URI", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {redirectURI}}
		}, http.StatusBadRequest, ""},
		{"URI without client", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{"post_logout_redirect_uri": {bye}}
		}, http.StatusBadRequest, ""},
		{"unknown client_id", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{"client_id": {"other"}, "post_logout_redirect_uri": {bye}}
		}, http.StatusBadRequest, ""},
		{"hint for another client_id", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{"id_token_hint": {hint}, "client_id": {"other"}}
		}, http.StatusBadRequest, ""},
		{"hint from another provider", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{"id_token_hint": {otherHint}, "post_logout_redirect_uri": {bye}}
		}, http.StatusBadRequest, ""},
		{"forged hint", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			p.FailNext(authtest.Fault{IDTokenSigning: "unknown-key"})
			return url.Values{"id_token_hint": {login(t, p, "alice").IDToken}}
		}, http.StatusBadRequest, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, authtest.Config{PostLogoutRedirectURIs: []string{bye}, SigningAlg: "ES256"})
			browser := p.Browser(t, "alice")
			q := tt.params(p, login(t, p, "alice").IDToken)
			req, err := http.NewRequest(tt.method, p.URL+"/end_session?"+q.Encode(), nil)
			if tt.method == http.MethodPost {
				req, err = http.NewRequest(tt.method, p.URL+"/end_session", strings.NewReader(q.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if err != nil {
				t.Fatal(err)
			}
			res, body := do(t, browser, req)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("%s /end_session: status %d, want %d; body %.300q", tt.method, res.StatusCode, tt.wantStatus, body)
			}
			if got := res.Header.Get("Location"); got != tt.wantLocation {
				t.Errorf("%s /end_session: Location %q, want %q", tt.method, got, tt.wantLocation)
			}
			// A successful logout ends the provider session.
			_, _, params := authorize(t, p, browser, authParams(p, "prompt", "none"))
			wantError := ""
			if tt.wantStatus != http.StatusBadRequest {
				wantError = "login_required"
			}
			if got := params.Get("error"); got != wantError {
				t.Errorf("GET /authorize with prompt=none after logout: error %q, want %q", got, wantError)
			}
		})
	}
}
