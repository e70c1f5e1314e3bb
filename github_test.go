package auth_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
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

func TestGitHubTokenExpiry(t *testing.T) {
	for _, tt := range []struct {
		name      string
		expiring  bool
		advance   time.Duration
		refreshes int
	}{
		// An OAuth app's token has no expiry: the session keeps it, with
		// no refresh, until it is revoked.
		{"OAuth app", false, 6 * 24 * time.Hour, 0},
		// A GitHub App's user token (ghu_) expires after 8 hours and
		// comes with a refresh token, which is used like any provider's.
		{"GitHub App", true, 8*time.Hour + time.Minute, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app, gh, clk := newGitHubApp(t, tt.expiring)
			c := apptest.Browser(t)
			app.LoginAt(t, c, "/auth/login")
			_, before := apptest.Get(t, c, app.URL+"/token")
			clk.Advance(tt.advance)
			res, after := apptest.Get(t, c, app.URL+"/token")
			if res.StatusCode != http.StatusOK || (after != before) != (tt.refreshes > 0) {
				t.Errorf("GET /token %v later: status %d, token changed %v; want 200, changed %v", tt.advance, res.StatusCode, after != before, tt.refreshes > 0)
			}
			if tt.expiring && (!strings.HasPrefix(before, "ghu_") || !strings.HasPrefix(after, "ghu_")) {
				t.Errorf("access tokens %q, %q; want GitHub App user tokens", before, after)
			}
			if n := gh.grantCount("refresh_token"); n != tt.refreshes {
				t.Errorf("refresh grants = %d, want %d", n, tt.refreshes)
			}
			if status, u := app.Me(t, c); status != http.StatusOK || u.Subject != "583231" || u.Provider != "github" {
				t.Errorf("GET /me %v later: %d %+v, want octocat", tt.advance, status, u)
			}
		})
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

// fakeGitHub behaves like github.com and api.github.com on the points the
// GitHub preset depends on; each is a fact from GitHub's documentation:
//
//   - "Authorizing OAuth apps"
//     (https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps):
//     GET /login/oauth/authorize redirects back with code and state;
//     POST /login/oauth/access_token takes client_id and client_secret as
//     parameters and "By default, the response takes the following form:
//     access_token=...&scope=...&token_type=bearer"; JSON only with
//     "Accept: application/json". OAuth app tokens carry no expiry.
//   - "Troubleshooting OAuth app access token request errors": errors such
//     as bad_verification_code come in the body, in the format the Accept
//     header asks for (GitHub sends them with 200 OK).
//   - "Refreshing user access tokens": a GitHub App with expiring tokens
//     gets expires_in (28800), refresh_token and refresh_token_expires_in;
//     grant_type=refresh_token returns a new pair and the old refresh token
//     stops working (bad_refresh_token).
//   - "Getting started with the REST API": "Requests with no User-Agent
//     header will be rejected"; tokens go in Authorization as "Bearer" or
//     "token".
//   - "Get the authenticated user" (GET /user): id, login, name, email (null
//     unless public), avatar_url. "List email addresses for the
//     authenticated user" (GET /user/emails, needs user:email): email,
//     primary, verified, visibility.
//   - "Delete an app token": DELETE /applications/{client_id}/token with the
//     client ID and secret as Basic credentials and {"access_token"} as the
//     body; 204.
//
// The REST API is served under /api, like GitHub Enterprise Server's
// /api/v3.
type fakeGitHub struct {
	*httptest.Server
	ClientID, ClientSecret string
	now                    func() time.Time

	mu       sync.Mutex
	user     map[string]any
	emails   []map[string]any
	expiring bool // a GitHub App with expiring user tokens
	codes    map[string]ghCode
	access   map[string]ghToken
	refresh  map[string]string // refresh token -> scope
	log      []ghRequest
	grants   map[string]int
	revoked  int
}

type ghCode struct {
	redirectURI, challenge, scope string
}

type ghToken struct {
	scope   string
	expires time.Time // zero: never
}

// ghRequest is one request fakeGitHub received.
type ghRequest struct {
	Method, Path      string
	Accept, UserAgent string
	Form              url.Values // query and form, secrets included
	ResponseType      string     // Content-Type of the answer
}

func newFakeGitHub(t testing.TB, now func() time.Time) *fakeGitHub {
	t.Helper()
	g := &fakeGitHub{
		ClientID: "Iv1.test-client", ClientSecret: "gh-test-secret", now: now,
		user: map[string]any{
			"login": "octocat", "id": 583231, "name": "The Octocat", "email": nil,
			"avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
			"html_url":   "https://github.com/octocat",
		},
		emails: []map[string]any{
			{"email": "octocat@users.noreply.github.com", "primary": false, "verified": true, "visibility": nil},
			{"email": "octocat@github.com", "primary": true, "verified": true, "visibility": "private"},
		},
		codes: map[string]ghCode{}, access: map[string]ghToken{}, refresh: map[string]string{}, grants: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", g.authorize)
	mux.HandleFunc("POST /login/oauth/access_token", g.token)
	mux.HandleFunc("GET /api/user", g.api(g.getUser))
	mux.HandleFunc("GET /api/user/emails", g.api(g.getEmails))
	mux.HandleFunc("DELETE /api/applications/{client_id}/token", g.deleteToken)
	g.Server = httptest.NewServer(mux)
	t.Cleanup(g.Close)
	return g
}

// provider returns the GitHub preset pointed at the fake.
func (g *fakeGitHub) provider() auth.Provider {
	p := auth.GitHub(g.ClientID, g.ClientSecret)
	p.AuthURL = g.URL + "/login/oauth/authorize"
	p.TokenURL = g.URL + "/login/oauth/access_token"
	p.UserURL = g.URL + "/api/user"
	return p
}

func (g *fakeGitHub) record(r *http.Request, responseType string) {
	_ = r.ParseForm()
	g.mu.Lock()
	g.log = append(g.log, ghRequest{Method: r.Method, Path: r.URL.Path, Accept: r.Header.Get("Accept"),
		UserAgent: r.Header.Get("User-Agent"), Form: r.Form, ResponseType: responseType})
	g.mu.Unlock()
}

// requests returns the requests received at path.
func (g *fakeGitHub) requests(path string) []ghRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []ghRequest
	for _, r := range g.log {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

func (g *fakeGitHub) setUser(edit func(user map[string]any, emails *[]map[string]any)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	edit(g.user, &g.emails)
}

func (g *fakeGitHub) grantCount(grant string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.grants[grant]
}

func (g *fakeGitHub) revocations() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.revoked
}

func ghRandom(prefix string) string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func (g *fakeGitHub) authorize(w http.ResponseWriter, r *http.Request) {
	g.record(r, "")
	q := r.URL.Query()
	redirect := q.Get("redirect_uri")
	if q.Get("client_id") != g.ClientID || redirect == "" {
		http.Error(w, "unknown application", http.StatusNotFound)
		return
	}
	if q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256" {
		http.Error(w, "unsupported code_challenge_method", http.StatusBadRequest)
		return
	}
	code := ghRandom("")
	g.mu.Lock()
	g.codes[code] = ghCode{redirectURI: redirect, challenge: q.Get("code_challenge"), scope: q.Get("scope")}
	g.mu.Unlock()
	back, _ := url.Parse(redirect)
	bq := back.Query()
	bq.Set("code", code)
	bq.Set("state", q.Get("state"))
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// answer writes a token endpoint response as GitHub does: form-encoded
// unless the request accepts JSON, and 200 OK even for errors.
func (g *fakeGitHub) answer(w http.ResponseWriter, r *http.Request, v url.Values) {
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		m := map[string]any{}
		for k := range v {
			m[k] = v.Get(k)
			if k == "expires_in" || k == "refresh_token_expires_in" {
				var n int
				fmt.Sscan(v.Get(k), &n)
				m[k] = n
			}
		}
		g.record(r, "application/json")
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		json.NewEncoder(w).Encode(m)
		return
	}
	g.record(r, "application/x-www-form-urlencoded")
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	io.WriteString(w, v.Encode())
}

func ghError(code, desc string) url.Values {
	return url.Values{"error": {code}, "error_description": {desc}, "error_uri": {"https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#" + code}}
}

func (g *fakeGitHub) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	g.answer(w, r, g.grant(r.PostForm))
}

// grant runs a token request and returns the response parameters.
func (g *fakeGitHub) grant(f url.Values) url.Values {
	if f.Get("client_id") != g.ClientID || f.Get("client_secret") != g.ClientSecret {
		return ghError("incorrect_client_credentials", "The client_id and/or client_secret passed are incorrect.")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var scope, grant string
	switch f.Get("grant_type") {
	case "", "authorization_code":
		grant = "authorization_code"
		c, ok := g.codes[f.Get("code")]
		delete(g.codes, f.Get("code"))
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		switch {
		case !ok:
			return ghError("bad_verification_code", "The code passed is incorrect or expired.")
		case f.Get("redirect_uri") != "" && f.Get("redirect_uri") != c.redirectURI:
			return ghError("redirect_uri_mismatch", "The redirect_uri MUST match the registered callback URL for this application.")
		case c.challenge != "" && base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge:
			return ghError("bad_verification_code", "The code passed is incorrect or expired.")
		}
		scope = c.scope
	case "refresh_token":
		grant = "refresh_token"
		s, ok := g.refresh[f.Get("refresh_token")]
		delete(g.refresh, f.Get("refresh_token")) // used once
		if !ok {
			return ghError("bad_refresh_token", "The refresh token passed is incorrect or expired.")
		}
		scope = s
	default:
		return ghError("unsupported_grant_type", "The grant type is not supported.")
	}
	g.grants[grant]++
	v := url.Values{"scope": {strings.ReplaceAll(scope, " ", ",")}, "token_type": {"bearer"}}
	if g.expiring {
		at, rt := ghRandom("ghu_"), ghRandom("ghr_")
		g.access[at] = ghToken{scope: scope, expires: g.now().Add(8 * time.Hour)}
		g.refresh[rt] = scope
		v.Set("access_token", at)
		v.Set("expires_in", "28800")
		v.Set("refresh_token", rt)
		v.Set("refresh_token_expires_in", "15897600")
	} else {
		at := ghRandom("gho_")
		g.access[at] = ghToken{scope: scope}
		v.Set("access_token", at)
	}
	return v
}

// api wraps a REST API handler with GitHub's User-Agent rule and token
// check.
func (g *fakeGitHub) api(h func(w http.ResponseWriter, r *http.Request, tok ghToken)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g.record(r, "application/json")
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if r.Header.Get("User-Agent") == "" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"message":"Request forbidden by administrative rules. Please make sure your request has a User-Agent header"}`)
			return
		}
		raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			raw, _ = strings.CutPrefix(r.Header.Get("Authorization"), "token ")
		}
		g.mu.Lock()
		tok, found := g.access[raw]
		g.mu.Unlock()
		if !found || (!tok.expires.IsZero() && !g.now().Before(tok.expires)) {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"message":"Bad credentials"}`)
			return
		}
		h(w, r, tok)
	}
}

func (g *fakeGitHub) getUser(w http.ResponseWriter, r *http.Request, _ ghToken) {
	g.mu.Lock()
	defer g.mu.Unlock()
	json.NewEncoder(w).Encode(g.user)
}

func (g *fakeGitHub) getEmails(w http.ResponseWriter, r *http.Request, tok ghToken) {
	if !strings.Contains(" "+tok.scope+" ", " user:email ") && !strings.Contains(" "+tok.scope+" ", " user ") {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"Not Found"}`)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	json.NewEncoder(w).Encode(g.emails)
}

func (g *fakeGitHub) deleteToken(w http.ResponseWriter, r *http.Request) {
	g.record(r, "")
	id, secret, ok := r.BasicAuth()
	if !ok || id != g.ClientID || secret != g.ClientSecret || r.PathValue("client_id") != g.ClientID {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		w.WriteHeader(http.StatusUnprocessableEntity)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.access[body.AccessToken]; !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	delete(g.access, body.AccessToken)
	g.revoked++
	w.WriteHeader(http.StatusNoContent)
}
