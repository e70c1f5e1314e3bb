package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/auth/authtest"
)

// TestBearer runs the example with AUTH_BEARER_AUDIENCE: an API client
// with an access token from the provider gets /me and /api/userinfo
// without a cookie, and one without a token gets 401.
func TestBearer(t *testing.T) {
	env := startExample(t, map[string]string{"AUTH_BEARER_AUDIENCE": "https://api.example.com, api2"})
	for _, tt := range []struct {
		name string
		opts authtest.AccessTokenOptions
		path string
		want int
	}{
		{"JWT", authtest.AccessTokenOptions{Subject: "alice", Audience: "https://api.example.com"}, "/me", 200},
		{"JWT for the second audience", authtest.AccessTokenOptions{Subject: "bob", Audience: "api2"}, "/me", 200},
		{"opaque, userinfo", authtest.AccessTokenOptions{Subject: "alice", Audience: "api2", Scope: "openid email", Opaque: true}, "/api/userinfo", 200},
		{"another audience", authtest.AccessTokenOptions{Subject: "alice", Audience: "https://other.example.com"}, "/me", 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok := env.Provider.AccessToken(tt.opts)
			res, body := do(t, noRedirects(), "GET", env.PublicURL+tt.path, "Authorization", "Bearer "+tok)
			if res.StatusCode != tt.want || (tt.want == 200 && !strings.Contains(body, `"sub":"`+tt.opts.Subject+`"`)) {
				t.Errorf("GET %s: %d %s, want %d for %s", tt.path, res.StatusCode, body, tt.want, tt.opts.Subject)
			}
		})
	}
	res, _ := do(t, noRedirects(), "GET", env.PublicURL+"/me", "Accept", "application/json")
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /me without a token: %d, want 401", res.StatusCode)
	}
}
