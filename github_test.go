package auth_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/internal/apptest"
)

// newGitHubApp serves the app with the GitHub preset (pointed at a fake
// GitHub) as its only provider.
func newGitHubApp(t *testing.T, expiring bool) (*apptest.App, *fakeGitHub, *apptest.Clock) {
	t.Helper()
	clk := &apptest.Clock{}
	gh := newFakeGitHub(t, clk.Now)
	gh.expiring = expiring
	app := apptest.NewProviders(t, clk.Now, func(string) []auth.Provider { return []auth.Provider{gh.provider()} }, nil)
	return app, gh, clk
}

func TestGitHubLogin(t *testing.T) {
	app, gh, _ := newGitHubApp(t, false)
	c := apptest.Browser(t)

	// The authorization request: GitHub's scopes, state and PKCE, and no
	// nonce, since there is no ID token to carry it back.
	res, _ := apptest.Get(t, c, app.URL+"/auth/login?next=/me")
	if res.StatusCode != http.StatusFound {
		t.Fatalf("GET /auth/login: status = %d, want 302", res.StatusCode)
	}
	loc, _ := res.Location()
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), gh.URL+"/login/oauth/authorize?") {
		t.Errorf("login redirects to %s, want GitHub's authorize endpoint", loc)
	}
	if got := q.Get("scope"); got != "read:user user:email" {
		t.Errorf("authorize scope = %q, want %q", got, "read:user user:email")
	}
	if len(q.Get("state")) < 43 || len(q.Get("code_challenge")) < 43 || q.Get("code_challenge_method") != "S256" {
		t.Errorf("authorize URL %s lacks state or a PKCE S256 challenge", loc)
	}
	if q.Has("nonce") {
		t.Errorf("authorize URL has a nonce for a provider without ID tokens")
	}
	if got := q.Get("redirect_uri"); got != app.URL+"/auth/callback" {
		t.Errorf("redirect_uri = %q, want the plain callback for a single provider", got)
	}

	u := app.LoginAt(t, c, "/auth/login")
	if u.Provider != "github" || u.Subject != "583231" || u.Name != "The Octocat" ||
		u.Picture != "https://avatars.githubusercontent.com/u/583231?v=4" {
		t.Errorf("GET /me = %+v, want octocat from GitHub with id as sub", u)
	}
	// The profile's email is private (null): the verified primary
	// address comes from /user/emails.
	if u.Email != "octocat@github.com" || !u.EmailVerified {
		t.Errorf("email = %q verified %v, want the verified primary address", u.Email, u.EmailVerified)
	}
	var claims struct {
		Login string `json:"login"`
	}
	if err := u.DecodeClaims(&claims); err != nil || claims.Login != "octocat" {
		t.Errorf("claims login = %q (err %v), want octocat", claims.Login, err)
	}

	// The token endpoint answered form-encoded, GitHub's default, with
	// the client credentials as parameters.
	toks := gh.requests("/login/oauth/access_token")
	if len(toks) != 1 {
		t.Fatalf("token requests = %d, want 1", len(toks))
	}
	if toks[0].ResponseType != "application/x-www-form-urlencoded" || toks[0].Form.Get("client_secret") != gh.ClientSecret || toks[0].Form.Get("code_verifier") == "" {
		t.Errorf("token request %+v, want client_secret and code_verifier in the form and a form-encoded answer", toks[0])
	}
	// The REST API calls identify us and ask for GitHub's media type.
	for _, path := range []string{"/api/user", "/api/user/emails"} {
		reqs := gh.requests(path)
		if len(reqs) != 1 {
			t.Errorf("requests to %s = %d, want 1", path, len(reqs))
			continue
		}
		if !strings.HasPrefix(reqs[0].UserAgent, "gatehouse") || reqs[0].Accept != "application/vnd.github+json" {
			t.Errorf("%s: User-Agent %q, Accept %q; want ours and application/vnd.github+json", path, reqs[0].UserAgent, reqs[0].Accept)
		}
	}
	if strings.Contains(app.Logs.String(), gh.ClientSecret) {
		t.Errorf("logs contain the client secret")
	}
}

func TestGitHubEmail(t *testing.T) {
	for _, tt := range []struct {
		name         string
		public       any
		emails       []map[string]any
		want         string
		wantVerified bool
	}{
		{"public and verified", "octo@example.com", []map[string]any{
			{"email": "octocat@github.com", "primary": true, "verified": true},
			{"email": "octo@example.com", "primary": false, "verified": true},
		}, "octo@example.com", true},
		{"private", nil, []map[string]any{
			{"email": "old@example.com", "primary": false, "verified": true},
			{"email": "octocat@github.com", "primary": true, "verified": true},
		}, "octocat@github.com", true},
		{"primary unverified", nil, []map[string]any{
			{"email": "octocat@github.com", "primary": true, "verified": false},
		}, "", false},
		{"public but unverified", "octo@example.com", []map[string]any{
			{"email": "octo@example.com", "primary": false, "verified": false},
		}, "octo@example.com", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app, gh, _ := newGitHubApp(t, false)
			gh.setUser(func(u map[string]any, emails *[]map[string]any) {
				u["email"] = tt.public
				*emails = tt.emails
			})
			u := app.LoginAt(t, apptest.Browser(t), "/auth/login")
			if u.Email != tt.want || u.EmailVerified != tt.wantVerified {
				t.Errorf("email = %q verified %v, want %q verified %v", u.Email, u.EmailVerified, tt.want, tt.wantVerified)
			}
		})
	}
}

func TestGitHubWithoutEmailScope(t *testing.T) {
	// A user who did not grant user:email (GitHub answers 404 for the
	// emails list) still signs in, with the public address unverified.
	clk := &apptest.Clock{}
	gh := newFakeGitHub(t, clk.Now)
	gh.setUser(func(u map[string]any, _ *[]map[string]any) { u["email"] = "octo@example.com" })
	app := apptest.NewProviders(t, clk.Now, func(string) []auth.Provider {
		p := gh.provider()
		p.Scopes = []string{"read:user"}
		return []auth.Provider{p}
	}, nil)
	u := app.LoginAt(t, apptest.Browser(t), "/auth/login")
	if u.Subject != "583231" || u.Email != "octo@example.com" || u.EmailVerified {
		t.Errorf("GET /me = %+v, want octocat with the public address unverified", u)
	}
}

func TestGitHubTokenWithoutExpiry(t *testing.T) {
	// An OAuth app's token has no expiry: the session keeps it, with no
	// refresh, until it is revoked.
	app, gh, clk := newGitHubApp(t, false)
	c := apptest.Browser(t)
	app.LoginAt(t, c, "/auth/login")
	_, before := apptest.Get(t, c, app.URL+"/token")
	clk.Advance(6 * 24 * time.Hour)
	res, after := apptest.Get(t, c, app.URL+"/token")
	if res.StatusCode != http.StatusOK || after != before {
		t.Errorf("GET /token 6 days later: status %d, token changed %v; want 200 and the same token", res.StatusCode, after != before)
	}
	if n := gh.grantCount("refresh_token"); n != 0 {
		t.Errorf("refresh grants = %d, want 0", n)
	}
}

func TestGitHubAppExpiringTokens(t *testing.T) {
	// A GitHub App's user token expires after 8 hours and comes with a
	// refresh token, which is used like any provider's.
	app, gh, clk := newGitHubApp(t, true)
	c := apptest.Browser(t)
	app.LoginAt(t, c, "/auth/login")
	_, before := apptest.Get(t, c, app.URL+"/token")
	if !strings.HasPrefix(before, "ghu_") {
		t.Fatalf("access token %q, want a GitHub App user token", before)
	}
	clk.Advance(8*time.Hour + time.Minute)
	res, after := apptest.Get(t, c, app.URL+"/token")
	if res.StatusCode != http.StatusOK || after == before || !strings.HasPrefix(after, "ghu_") {
		t.Errorf("GET /token after expiry: status %d, new token %v; want 200 and a refreshed token", res.StatusCode, after != before)
	}
	if n := gh.grantCount("refresh_token"); n != 1 {
		t.Errorf("refresh grants = %d, want 1", n)
	}
	if status, u := app.Me(t, c); status != http.StatusOK || u.Subject != "583231" || u.Provider != "github" {
		t.Errorf("GET /me after refresh: %d %+v, want octocat", status, u)
	}
}

func TestGitHubTokenErrors(t *testing.T) {
	// GitHub reports a bad code in a 200 response; the login fails as a
	// provider error, not as a success without a token.
	app, gh, _ := newGitHubApp(t, false)
	c := apptest.Browser(t)
	cb := app.CallbackURL(t, c, "/auth/login")
	q := cb.Query()
	q.Set("code", "not-a-code")
	cb.RawQuery = q.Encode()
	res, _ := apptest.Get(t, c, cb.String())
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("callback with a bad code: status = %d, want 400", res.StatusCode)
	}
	if !strings.Contains(app.Logs.String(), "invalid_grant") {
		t.Errorf("logs do not report bad_verification_code as invalid_grant:\n%s", app.Logs)
	}
	if n := gh.grantCount("authorization_code"); n != 0 {
		t.Errorf("code grants = %d, want 0", n)
	}
}

func TestGitHubLogoutRevokes(t *testing.T) {
	app, gh, _ := newGitHubApp(t, false)
	c := apptest.Browser(t)
	app.LoginAt(t, c, "/auth/login")
	res, _ := apptest.Get(t, c, app.URL+"/auth/logout")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != app.URL+"/" {
		t.Errorf("logout: %d to %q, want 303 to %s/", res.StatusCode, res.Header.Get("Location"), app.URL)
	}
	if n := gh.revocations(); n != 1 {
		t.Errorf("GitHub token deletions = %d, want 1", n)
	}
	if status, _ := app.Me(t, c); status != http.StatusUnauthorized {
		t.Errorf("GET /me after logout: status = %d, want 401", status)
	}
}

func TestGitHubAppRefreshRejected(t *testing.T) {
	// GitHub rejects a used or revoked refresh token with
	// bad_refresh_token (in a 200 response): the session ends, as with
	// any provider's invalid_grant, instead of retrying forever.
	app, gh, clk := newGitHubApp(t, true)
	c := apptest.Browser(t)
	app.LoginAt(t, c, "/auth/login")
	gh.mu.Lock()
	clear(gh.refresh) // revoked at GitHub
	gh.mu.Unlock()
	clk.Advance(8*time.Hour + time.Minute)
	if status, _ := app.Me(t, c); status != http.StatusUnauthorized {
		t.Errorf("GET /me after a rejected refresh: status = %d, want 401", status)
	}
}
