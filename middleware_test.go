package auth_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

func TestLoginFlow(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	c := app.P.Browser(t, "alice")

	// Login: a redirect to the provider with state, nonce and PKCE S256,
	// and a flow cookie for this attempt.
	res, _ := apptest.Get(t, c, app.URL+"/auth/login?next=/me%3Fx%3D1")
	if res.StatusCode != http.StatusFound {
		t.Fatalf("GET /auth/login: status = %d, want 302", res.StatusCode)
	}
	authz, _ := url.Parse(res.Header.Get("Location"))
	q := authz.Query()
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 43 {
			t.Errorf("authorize URL %s = %q, want a 256-bit random value", k, q.Get(k))
		}
	}
	if got := q.Get("code_challenge_method"); got != "S256" {
		t.Errorf("authorize URL code_challenge_method = %q, want S256", got)
	}
	if got := q.Get("scope"); got != "openid email profile" {
		t.Errorf("authorize URL scope = %q, want %q", got, "openid email profile")
	}
	var flow *http.Cookie
	for _, ck := range res.Cookies() {
		if strings.Contains(ck.Name, "_flow_") {
			flow = ck
		}
	}
	if flow == nil {
		t.Fatalf("GET /auth/login: no flow cookie in %v", res.Header["Set-Cookie"])
	}
	if !flow.HttpOnly || flow.SameSite != http.SameSiteLaxMode || flow.MaxAge != 600 || flow.Path != "/auth" || flow.Secure {
		t.Errorf("flow cookie = %+v, want HttpOnly, SameSite=Lax, Max-Age=600, Path=/auth, not Secure on http", flow)
	}
	if strings.Contains(flow.Value, q.Get("state")) || strings.Contains(flow.Value, q.Get("nonce")) {
		t.Errorf("flow cookie value holds the state or nonce in clear")
	}

	// The provider answers with a code; the callback starts the session
	// and returns to the path the login started from.
	res, body := apptest.Get(t, c, authz.String())
	if res.StatusCode != http.StatusFound {
		t.Fatalf("GET authorize: status = %d (%s), want 302", res.StatusCode, body)
	}
	res, body = apptest.Get(t, c, res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/me?x=1" {
		t.Fatalf("GET callback: status %d Location %q (%s), want 302 to /me?x=1", res.StatusCode, res.Header.Get("Location"), body)
	}
	sc := apptest.SetCookies(res)
	s := sc["gatehouse"]
	if s == nil {
		t.Fatalf("callback: no session cookie in %v", res.Header["Set-Cookie"])
	}
	if !s.HttpOnly || s.SameSite != http.SameSiteLaxMode || s.Path != "/" || s.Secure || s.MaxAge < 7*24*3600-60 || s.MaxAge > 7*24*3600 {
		t.Errorf("session cookie = %+v, want HttpOnly, SameSite=Lax, Path=/, Max-Age=7 days", s)
	}
	if d := sc[flow.Name]; d == nil || d.MaxAge >= 0 {
		t.Errorf("callback: flow cookie not deleted (Set-Cookie %v)", res.Header["Set-Cookie"])
	}
	if got := app.P.Grants("authorization_code"); got != 1 {
		t.Errorf("provider authorization_code grants = %d, want 1", got)
	}

	status, u := app.Me(t, c)
	if status != http.StatusOK {
		t.Fatalf("GET /me after login: status = %d, want 200", status)
	}
	if u.Subject != "alice" || u.Email != "alice@example.com" || !u.EmailVerified || u.Name != "Alice Example" || u.Picture == "" {
		t.Errorf("GET /me = %+v, want alice's identity", u)
	}
	var claims struct {
		Groups []string `json:"groups"`
		Iss    string   `json:"iss"`
	}
	if err := u.DecodeClaims(&claims); err != nil || claims.Iss != app.P.URL {
		t.Errorf("claims iss = %q (err %v), want %q", claims.Iss, err, app.P.URL)
	}
	if _, body := apptest.Get(t, c, app.URL+"/"); body != "hello Alice Example" {
		t.Errorf("GET / = %q, want %q", body, "hello Alice Example")
	}
}

func TestRequireLoginAnonymous(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	for _, tt := range []struct {
		name   string
		method string
		header []string
		want   int
	}{
		{"navigation by Accept", "GET", []string{"Accept", "text/html,application/xhtml+xml"}, http.StatusFound},
		{"navigation by Sec-Fetch-Mode", "GET", []string{"Sec-Fetch-Mode", "navigate", "Accept", "*/*"}, http.StatusFound},
		{"fetch that accepts html", "GET", []string{"Sec-Fetch-Mode", "cors", "Accept", "text/html"}, http.StatusUnauthorized},
		{"json", "GET", []string{"Accept", "application/json"}, http.StatusUnauthorized},
		{"no accept", "GET", nil, http.StatusUnauthorized},
		{"post form", "POST", []string{"Accept", "text/html"}, http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, app.URL+"/me?a=1&b=2", nil)
			for i := 0; i < len(tt.header); i += 2 {
				req.Header.Set(tt.header[i], tt.header[i+1])
			}
			res, err := app.P.Browser(t, "").Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Fatalf("%s /me: status = %d, want %d", tt.method, res.StatusCode, tt.want)
			}
			switch tt.want {
			case http.StatusFound:
				if got, want := res.Header.Get("Location"), "/auth/login?next="+url.QueryEscape("/me?a=1&b=2"); got != want {
					t.Errorf("Location = %q, want %q", got, want)
				}
			case http.StatusUnauthorized:
				if res.Header.Get("WWW-Authenticate") == "" || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
					t.Errorf("401 headers = %v, want WWW-Authenticate and a JSON body", res.Header)
				}
			}
		})
	}
}

func TestAnonymousRequestPassesThrough(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	res, body := apptest.Get(t, http.DefaultClient, app.URL+"/")
	if res.StatusCode != http.StatusOK || body != "anonymous" {
		t.Errorf("GET / without cookie: %d %q, want 200 anonymous", res.StatusCode, body)
	}
	if len(res.Header["Set-Cookie"]) != 0 {
		t.Errorf("GET / without cookie set cookies %v, want none", res.Header["Set-Cookie"])
	}
}

func TestTwoTabsLogInAtOnce(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	c := app.P.Browser(t, "alice")
	first := app.StartLogin(t, c, "/first")
	second := app.StartLogin(t, c, "/second")
	for _, tt := range []struct{ callback, want string }{{second, "/second"}, {first, "/first"}} {
		res, body := apptest.Get(t, c, tt.callback)
		if res.StatusCode != http.StatusFound || res.Header.Get("Location") != tt.want {
			t.Errorf("callback: %d to %q (%s), want 302 to %q", res.StatusCode, res.Header.Get("Location"), body, tt.want)
		}
	}
}

func TestFlowCookiesAreCapped(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	c := app.P.Browser(t, "alice")
	u, _ := url.Parse(app.URL + "/auth/callback")
	for i := 0; i < 12; i++ {
		res, _ := apptest.Get(t, c, app.URL+"/auth/login")
		if res.StatusCode != http.StatusFound {
			t.Fatalf("login %d: status %d", i, res.StatusCode)
		}
		flows := 0
		for _, ck := range c.Jar.Cookies(u) {
			if strings.Contains(ck.Name, "_flow_") {
				flows++
			}
		}
		if flows > 5 {
			t.Fatalf("after %d logins the browser holds %d flow cookies, want at most 5", i+1, flows)
		}
	}
	// The newest login still completes.
	res, body := apptest.Get(t, c, app.StartLogin(t, c, "/latest"))
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/latest" {
		t.Errorf("newest login: %d to %q (%s), want 302 to /latest", res.StatusCode, res.Header.Get("Location"), body)
	}
}

func TestLogout(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	c := app.Login(t, "alice")
	stolen := app.Clone(t, c)
	res, _ := apptest.Get(t, c, app.URL+"/auth/logout")
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET /auth/logout: status = %d, want 303", res.StatusCode)
	}
	if s := apptest.SetCookies(res)["gatehouse"]; s == nil || s.MaxAge >= 0 {
		t.Errorf("logout: session cookie not deleted: %v", res.Header["Set-Cookie"])
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	if !strings.HasPrefix(loc.String(), app.P.URL) || loc.Query().Get("id_token_hint") == "" ||
		loc.Query().Get("post_logout_redirect_uri") != app.URL+"/" || loc.Query().Get("client_id") != app.P.ClientID {
		t.Errorf("logout Location = %s, want the provider's end_session_endpoint with id_token_hint, client_id, post_logout_redirect_uri", loc)
	}
	if got := app.P.Revocations(); got != 1 {
		t.Errorf("provider revocations = %d, want 1", got)
	}
	res, _, visited := apptest.Follow(t, c, loc.String())
	if res.StatusCode != http.StatusOK || visited[len(visited)-1] != app.URL+"/" {
		t.Errorf("after end_session: %d at %v, want 200 at %s/", res.StatusCode, visited, app.URL)
	}
	if status, _ := app.Me(t, c); status != http.StatusUnauthorized {
		t.Errorf("GET /me after logout: status = %d, want 401", status)
	}
	// The refresh token was revoked at the provider: even a copy of the
	// cookie taken before logout cannot refresh any more.
	app.P.Advance(2 * time.Hour)
	if status, _ := app.Me(t, stolen); status != http.StatusUnauthorized {
		t.Errorf("GET /me with the pre-logout cookie after token expiry: status = %d, want 401", status)
	}
}

func TestLogoutWithoutSession(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, func(c *auth.Config) { c.PostLogoutURL = "/bye" })
	res, _ := apptest.Get(t, app.P.Browser(t, ""), app.URL+"/auth/logout")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != app.URL+"/bye" {
		t.Errorf("logout without session: %d to %q, want 303 to %s/bye", res.StatusCode, res.Header.Get("Location"), app.URL)
	}
}

func TestConfigErrors(t *testing.T) {
	p := authtest.NewProvider(authtest.Config{})
	t.Cleanup(p.Close)
	good := auth.Config{Issuer: p.URL, ClientID: "c", ClientSecret: "s", RedirectURL: "http://127.0.0.1:1/auth/callback", CookieSecret: apptest.Secret}
	testConfigs(t, good, []configCase{
		{"good", func(*auth.Config) {}, ""},
		{"short secret", func(c *auth.Config) { c.CookieSecret = []byte("short") }, "at least 32 bytes"},
		{"short previous secret", func(c *auth.Config) { c.PreviousCookieSecrets = [][]byte{[]byte("x")} }, "PreviousCookieSecrets[0]"},
		{"no issuer", func(c *auth.Config) { c.Issuer = "" }, "Issuer is required"},
		{"no client", func(c *auth.Config) { c.ClientID = "" }, "ClientID is required"},
		{"relative redirect", func(c *auth.Config) { c.RedirectURL = "/auth/callback" }, "RedirectURL"},
		{"redirect to the root", func(c *auth.Config) { c.RedirectURL = "http://127.0.0.1:1/" }, "path of its own"},
		{"same paths", func(c *auth.Config) { c.LoginPath = "/auth/callback" }, "must differ"},
		{"foreign post-logout", func(c *auth.Config) { c.PostLogoutURL = "https://evil.example/" }, "PostLogoutURL"},
		{"reserved auth param", func(c *auth.Config) { c.AuthParams = map[string]string{"nonce": "x"} }, "nonce"},
		{"bad cookie name", func(c *auth.Config) { c.CookieName = "a b" }, "CookieName"},
		{"unreachable issuer", func(c *auth.Config) { c.Issuer = "http://127.0.0.1:1" }, "Config.Issuer: discover"},
		{"no client secret", func(c *auth.Config) { c.ClientSecret = "" }, "Config.ClientSecret is required (for a client without a secret, set Config.PublicClient)"},
		{"public client with a secret", func(c *auth.Config) { c.PublicClient = true }, "Config.PublicClient"},
	})
}

// configCase is good as edit changes it, and what New must say of it:
// an error containing want, or none if want is "".
type configCase struct {
	name string
	edit func(*auth.Config)
	want string
}

// testConfigs runs New on a copy of good (its Providers too) as each case
// edits it, and checks New's error.
func testConfigs(t *testing.T, good auth.Config, cases []configCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			cfg.Providers = slices.Clone(good.Providers)
			tt.edit(&cfg)
			_, err := auth.New(context.Background(), cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("New: %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("New: error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestSecureCookiesOnHTTPS(t *testing.T) {
	p := authtest.NewProvider(authtest.Config{})
	t.Cleanup(p.Close)
	app := httptest.NewTLSServer(nil)
	t.Cleanup(app.Close)
	p.AddRedirectURI(app.URL + "/auth/callback")
	m, err := auth.New(context.Background(), auth.Config{Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		RedirectURL: app.URL + "/auth/callback", CookieSecret: apptest.Secret})
	if err != nil {
		t.Fatal(err)
	}
	app.Config.Handler = m.Handler(apptest.Routes(m))

	// A browser that enforces the cookie prefix rules, as browsers do.
	c := p.Browser(t, "alice")
	c.Transport = app.Client().Transport
	c.Jar = &prefixJar{CookieJar: c.Jar, t: t}
	res, _ := apptest.Get(t, c, app.URL+"/auth/login?next=/me")
	// Flow cookies are __Host- too: a sibling subdomain cannot plant one
	// (with Domain=parent) to log the victim into the attacker's account.
	for _, ck := range res.Cookies() {
		if !strings.HasPrefix(ck.Name, "__Host-gatehouse_flow_") || !ck.Secure || !ck.HttpOnly || ck.Path != "/" || ck.Domain != "" {
			t.Errorf("flow cookie over https = %+v, want __Host-gatehouse_flow_*, Secure, HttpOnly, Path=/, no Domain", ck)
		}
	}
	res, body := apptest.Get(t, c, res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d %s", res.StatusCode, body)
	}
	res, body = apptest.Get(t, c, res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/me" {
		t.Fatalf("callback over https: %d %q (%s), want 302 to /me", res.StatusCode, res.Header.Get("Location"), body)
	}
	s := apptest.SetCookies(res)["__Host-gatehouse"]
	if s == nil || !s.Secure || s.Path != "/" || s.Domain != "" || !s.HttpOnly {
		t.Errorf("session cookie over https = %+v, want __Host-gatehouse, Secure, Path=/, no Domain, HttpOnly", s)
	}
	if res, body := apptest.Get(t, c, app.URL+"/me", "Accept", "application/json"); res.StatusCode != http.StatusOK || !strings.Contains(body, `"alice"`) {
		t.Errorf("GET /me over https: %d %s, want alice", res.StatusCode, body)
	}
}

// prefixJar drops cookies that break the __Host- and __Secure- prefix
// rules (RFC 6265bis 4.1.3), as browsers do, and fails the test.
type prefixJar struct {
	http.CookieJar
	t *testing.T
}

func (j *prefixJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	var ok []*http.Cookie
	for _, c := range cookies {
		host := strings.HasPrefix(c.Name, "__Host-")
		if (host || strings.HasPrefix(c.Name, "__Secure-")) && (!c.Secure || u.Scheme != "https") ||
			host && (c.Path != "/" || c.Domain != "") {
			j.t.Errorf("a browser drops cookie %s (Secure %v, Path %q, Domain %q)", c.Name, c.Secure, c.Path, c.Domain)
			continue
		}
		ok = append(ok, c)
	}
	j.CookieJar.SetCookies(u, ok)
}

func TestErrorStatus(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want int
	}{
		{auth.ErrLoginState, 400},
		{&auth.ProviderError{Code: "access_denied"}, 403},
		{&auth.ProviderError{Code: "server_error"}, 502},
		{&auth.ProviderError{Code: "invalid_client"}, 502},
		{&auth.ProviderError{Code: "invalid_grant"}, 400},
		{auth.ErrStoreUnavailable, 503},
		{auth.ErrTokenInvalid, 401},
		{auth.ErrLoginRefused, 403},
		{auth.ErrProviderUnavailable, 502},
		{errors.New("x"), 500},
	} {
		if got := auth.ErrorStatus(tt.err); got != tt.want {
			t.Errorf("ErrorStatus(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestRequestContextDerives(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	c := app.Login(t, "alice")
	type key struct{}
	var got string
	var done bool
	app.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(context.WithValue(r.Context(), key{}, "v"))
		cancel()
		<-ctx.Done()
		done = errors.Is(ctx.Err(), context.Canceled)
		if u := auth.User(ctx); u != nil && ctx.Value(key{}) == "v" {
			got = u.Subject
		}
	}))
	apptest.Get(t, c, app.URL+"/x")
	if got != "alice" || !done {
		t.Errorf("derived context: user %q, cancelled %v; want alice, true", got, done)
	}
}

func TestUserinfoURL(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	if got, want := app.M.UserinfoURL(""), app.P.URL+"/userinfo"; got != want {
		t.Errorf("UserinfoURL(\"\") = %q, want %q", got, want)
	}
	if got := app.M.UserinfoURL("nope"); got != "" {
		t.Errorf("UserinfoURL(unknown) = %q, want \"\"", got)
	}
}

// TestLogoutFromAnotherSite: a cross-site link to logout does not sign the
// user out; it shows a confirmation whose same-site POST does.
func TestLogoutFromAnotherSite(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	c := app.Login(t, "alice")
	res, body := apptest.Get(t, c, app.URL+"/auth/logout", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Mode", "navigate")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `method="post"`) || len(res.Header["Set-Cookie"]) != 0 {
		t.Errorf("cross-site GET /auth/logout: %d, Set-Cookie %v, body %q; want 200 with a POST form and no cookie change", res.StatusCode, res.Header["Set-Cookie"], body)
	}
	// The page's form is answered with a redirect to the provider's
	// end_session endpoint, which its CSP form-action must allow (Chromium
	// applies form-action to the redirect too).
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+app.P.URL+";") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("confirmation page CSP = %q, want form-action 'self' %s and no framing", csp, app.P.URL)
	}
	if status, _ := app.Me(t, c); status != http.StatusOK {
		t.Errorf("GET /me after a cross-site logout link: status %d, want 200 (still signed in)", status)
	}
	req, _ := http.NewRequest("POST", app.URL+"/auth/logout", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("POST /auth/logout: status %d, want 303", res.StatusCode)
	}
	if status, _ := app.Me(t, c); status != http.StatusUnauthorized {
		t.Errorf("GET /me after logout: status %d, want 401", status)
	}
}

// TestLogoutCSRF: only the app's own pages (same-origin) and a typed
// address (Sec-Fetch-Site: none) log out directly, whatever the method;
// any other request gets the confirmation page and changes no cookie.
func TestLogoutCSRF(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	c := app.Login(t, "alice")
	for _, tt := range []struct {
		method string
		header []string
	}{
		{"POST", []string{"Sec-Fetch-Site", "cross-site"}},
		{"POST", []string{"Sec-Fetch-Site", "same-site"}},
		{"GET", []string{"Sec-Fetch-Site", "same-site"}},
		{"POST", []string{"Origin", "https://evil.example"}},
		{"POST", []string{"Origin", "null"}},
		{"GET", []string{"Referer", "https://evil.example/page"}},
	} {
		req, _ := http.NewRequest(tt.method, app.URL+"/auth/logout", nil)
		req.Header.Set(tt.header[0], tt.header[1])
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `method="post"`) || len(res.Header["Set-Cookie"]) != 0 {
			t.Errorf("%s /auth/logout with %s: %s: %d, Set-Cookie %v; want 200, the confirmation form and no cookie change",
				tt.method, tt.header[0], tt.header[1], res.StatusCode, res.Header["Set-Cookie"])
		}
		if status, _ := app.Me(t, c); status != http.StatusOK {
			t.Fatalf("GET /me after %s /auth/logout with %s: %s: status %d, want 200 (still signed in)", tt.method, tt.header[0], tt.header[1], status)
		}
	}
	if app.P.Revocations() != 0 {
		t.Errorf("revocations = %d, want 0", app.P.Revocations())
	}
}

// TestLogoutWithoutCookieChangesNoCookie: a logout request that carries no
// session cookie must not delete one: a cross-site POST carries no Lax
// cookie, and deletion headers on its answer would still sign the user out.
func TestLogoutWithoutCookieChangesNoCookie(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	for _, method := range []string{"GET", "POST"} {
		req, _ := http.NewRequest(method, app.URL+"/auth/logout", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if len(res.Header["Set-Cookie"]) != 0 {
			t.Errorf("%s /auth/logout without a session cookie: Set-Cookie %v, want none", method, res.Header["Set-Cookie"])
		}
	}
}

// TestLogsHoldNoSecrets runs logins, refreshes, failures and a logout with
// debug logging on, then looks for every secret value the test saw in the
// log: codes, tokens, cookie values, the client and cookie secrets.
func TestLogsHoldNoSecrets(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	var secrets []string
	app.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := auth.Token(r.Context()); tok != nil {
			secrets = append(secrets, tok.AccessToken, tok.RefreshToken, tok.Extra("id_token").(string))
		}
	}))
	c := app.P.Browser(t, "alice")
	callback := app.StartLogin(t, c, "/x")
	u, _ := url.Parse(callback)
	secrets = append(secrets, u.Query().Get("code"), u.Query().Get("state"))
	apptest.Get(t, c, callback)
	apptest.Get(t, c, app.URL+"/x")
	app.P.Advance(2 * time.Hour) // refresh
	apptest.Get(t, c, app.URL+"/x")
	app.P.FailNext(authtest.Fault{TokenStatus: 500})
	app.P.Advance(2 * time.Hour) // failed refresh
	apptest.Get(t, c, app.URL+"/x")
	apptest.Get(t, c, callback) // replay
	for _, ck := range app.SessionCookies(c) {
		secrets = append(secrets, ck.Value)
	}
	apptest.Get(t, c, app.URL+"/auth/logout")
	secrets = append(secrets, app.P.ClientSecret, string(apptest.Secret))

	logs := app.Logs.String()
	if !strings.Contains(logs, "token refreshed") || !strings.Contains(logs, "refresh failed") || !strings.Contains(logs, "signed out") {
		t.Fatalf("the log lacks the records this test expects:\n%s", logs)
	}
	for _, s := range secrets {
		if len(s) >= 8 && strings.Contains(logs, s) {
			t.Errorf("the log contains a secret value (%d bytes, starting %q)", len(s), s[:4])
		}
	}
}

// TestStartupSaysWhenRefreshIsNotShared: New says once, at startup, that
// refreshes are not coordinated across instances when no Store with a
// RefreshLocker is configured, and says nothing when one is.
func TestStartupSaysWhenRefreshIsNotShared(t *testing.T) {
	for _, tt := range []struct {
		name  string
		store auth.Store
		want  int
	}{{"cookie sessions", nil, 1}, {"a store with a lock", auth.NewMemoryStore(auth.MemoryStoreOptions{}), 0}} {
		app := apptest.New(t, authtest.Config{}, func(c *auth.Config) { c.Store = tt.store })
		if n := strings.Count(app.Logs.String(), "without a lock across instances"); n != tt.want {
			t.Errorf("%s: the startup line about refreshes across instances appears %d times, want %d", tt.name, n, tt.want)
		}
	}
}
