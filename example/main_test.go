package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/example/demo"
)

// startExample runs the example as main does, with the settings in vars
// (ADDR defaults to 127.0.0.1:0 here), until the test ends.
func startExample(t *testing.T, vars map[string]string) *demo.Env {
	t.Helper()
	if vars["ADDR"] == "" {
		vars["ADDR"] = "127.0.0.1:0"
	}
	if vars["AUTH_COOKIE_SECRET"] == "" {
		vars["AUTH_COOKIE_SECRET"] = strings.Repeat("ab", 32)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	env, app, err := setup(ctx, func(k string) string { return vars[k] }, log)
	if err != nil {
		cancel()
		t.Fatalf("setup: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- env.Serve(ctx, app) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve after shutdown = %v, want nil", err)
		}
	})
	return env
}

// noRedirects is a browser that shows each redirect instead of following it.
func noRedirects() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// do sends a request with optional header pairs and returns the response
// and its body.
func do(t *testing.T, c *http.Client, method, rawURL string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, rawURL, err)
	}
	return res, string(b)
}

func TestEmbeddedProviderLoginLogout(t *testing.T) {
	env := startExample(t, map[string]string{})
	if env.Provider == nil || !strings.HasPrefix(env.Issuer, "http://localhost:") {
		t.Fatalf("issuer = %q, want the embedded provider on localhost", env.Issuer)
	}
	app := env.PublicURL

	_, body := do(t, http.DefaultClient, "GET", app+"/")
	if !strings.Contains(body, `href="/auth/login"`) || strings.Contains(body, "Hello") {
		t.Errorf("GET / anonymous: body lacks the login link or greets someone:\n%s", body)
	}

	browser := env.Provider.Login(t, app+"/auth/login", "alice")
	res, body := do(t, browser, "GET", app+"/")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Hello, Alice Example") || !strings.Contains(body, `action="/auth/logout"`) {
		t.Errorf("GET / after login: %d, want 200 with the greeting and a logout form:\n%s", res.StatusCode, body)
	}

	res, body = do(t, browser, "GET", app+"/me", "Accept", "application/json")
	var me struct {
		Sub, Email, Name string
		Claims           map[string]any
	}
	if err := json.Unmarshal([]byte(body), &me); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /me: %d %q (%v), want 200 and JSON", res.StatusCode, body, err)
	}
	if me.Sub != "alice" || me.Email != "alice@example.com" || me.Name != "Alice Example" || me.Claims["iss"] != env.Issuer {
		t.Errorf("GET /me = %+v, want alice with claims from %s", me, env.Issuer)
	}
	if !strings.HasPrefix(body, `{"sub":"alice","email":"alice@example.com","name":"Alice Example","claims":{`) {
		t.Errorf("GET /me = %s, want the fields sub, email, name, claims in that order", body)
	}

	res, body = do(t, browser, "GET", app+"/api/userinfo")
	var info map[string]any
	if err := json.Unmarshal([]byte(body), &info); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/userinfo: %d %q (%v), want 200 and JSON", res.StatusCode, body, err)
	}
	if info["sub"] != "alice" || info["email"] != "alice@example.com" {
		t.Errorf("GET /api/userinfo = %v, want alice's userinfo", info)
	}
	if n := countRequests(env.Provider, "userinfo"); n < 1 {
		t.Errorf("provider saw %d userinfo requests, want at least 1", n)
	}

	// The logout button posts the form; the provider's end-session
	// endpoint sends the browser back to /.
	res, body = do(t, browser, "POST", app+"/auth/logout")
	if res.StatusCode != http.StatusOK || res.Request.URL.String() != app+"/" || !strings.Contains(body, "not signed in") {
		t.Errorf("POST /auth/logout: ended at %s with %d, want 200 at %s/ signed out:\n%s", res.Request.URL, res.StatusCode, app, body)
	}
	if n := countRequests(env.Provider, "end_session"); n != 1 {
		t.Errorf("provider saw %d end_session requests, want 1", n)
	}
	if res, _ := do(t, browser, "GET", app+"/me", "Accept", "application/json"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /me after logout: %d, want 401", res.StatusCode)
	}
}

func countRequests(p *authtest.Provider, endpoint string) int {
	n := 0
	for _, r := range p.Requests() {
		if r.Endpoint == endpoint {
			n++
		}
	}
	return n
}

func TestRequireLoginAnonymous(t *testing.T) {
	app := startExample(t, map[string]string{}).PublicURL
	for _, tt := range []struct {
		path, accept string
		want         int
		location     string
	}{
		{"/me", "text/html,application/xhtml+xml", http.StatusFound, "/auth/login?next=%2Fme"},
		{"/me", "application/json", http.StatusUnauthorized, ""},
		{"/api/userinfo", "text/html", http.StatusFound, "/auth/login?next=%2Fapi%2Fuserinfo"},
		{"/api/userinfo", "application/json", http.StatusUnauthorized, ""},
	} {
		t.Run(tt.path+" "+tt.accept, func(t *testing.T) {
			res, body := do(t, noRedirects(), "GET", app+tt.path, "Accept", tt.accept)
			if res.StatusCode != tt.want || res.Header.Get("Location") != tt.location {
				t.Errorf("GET %s: %d to %q (%s), want %d to %q", tt.path, res.StatusCode, res.Header.Get("Location"), body, tt.want, tt.location)
			}
		})
	}
}

func TestSettings(t *testing.T) {
	for _, tt := range []struct {
		name      string
		vars      map[string]string
		wantScope string
		wantParam url.Values
	}{
		{"defaults", map[string]string{}, "openid email profile offline_access", nil},
		{"AUTH_SCOPES", map[string]string{"AUTH_SCOPES": " openid  email "}, "openid email", nil},
		{"AUTH_PARAMS", map[string]string{"AUTH_PARAMS": "access_type=offline&prompt=consent"}, "openid email profile offline_access",
			url.Values{"access_type": {"offline"}, "prompt": {"consent"}}},
		{"base64 secret", map[string]string{"AUTH_COOKIE_SECRET": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="}, "openid email profile offline_access", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := startExample(t, tt.vars)
			res, _ := do(t, noRedirects(), "GET", env.PublicURL+"/auth/login")
			loc, err := url.Parse(res.Header.Get("Location"))
			if res.StatusCode != http.StatusFound || err != nil {
				t.Fatalf("GET /auth/login: %d to %q, want 302 to the provider", res.StatusCode, res.Header.Get("Location"))
			}
			q := loc.Query()
			if got := q.Get("scope"); got != tt.wantScope {
				t.Errorf("authorize scope = %q, want %q", got, tt.wantScope)
			}
			if got := q.Get("redirect_uri"); got != env.PublicURL+"/auth/callback" {
				t.Errorf("authorize redirect_uri = %q, want %q", got, env.PublicURL+"/auth/callback")
			}
			for k := range tt.wantParam {
				if q.Get(k) != tt.wantParam.Get(k) {
					t.Errorf("authorize %s = %q, want %q", k, q.Get(k), tt.wantParam.Get(k))
				}
			}
		})
	}
}

func TestPublicURL(t *testing.T) {
	env := startExample(t, map[string]string{"PUBLIC_URL": "https://app.example.com/"})
	if env.PublicURL != "https://app.example.com" {
		t.Errorf("PublicURL = %q, want https://app.example.com", env.PublicURL)
	}
	res, _ := do(t, noRedirects(), "GET", "http://"+env.Listener.Addr().String()+"/auth/login")
	loc, _ := url.Parse(res.Header.Get("Location"))
	if got := loc.Query().Get("redirect_uri"); got != "https://app.example.com/auth/callback" {
		t.Errorf("authorize redirect_uri = %q, want https://app.example.com/auth/callback", got)
	}
}

func TestBadSettings(t *testing.T) {
	for _, tt := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"short secret", map[string]string{"AUTH_COOKIE_SECRET": "abcd"}, "AUTH_COOKIE_SECRET"},
		{"secret not encoded", map[string]string{"AUTH_COOKIE_SECRET": "this is not hex or base64, but it is long enough"}, "AUTH_COOKIE_SECRET"},
		{"issuer without client", map[string]string{"AUTH_ISSUER": "http://127.0.0.1:1"}, "AUTH_CLIENT_ID"},
		{"issuer unreachable", map[string]string{"AUTH_ISSUER": "http://127.0.0.1:1", "AUTH_CLIENT_ID": "x"}, "discover"},
		{"public URL", map[string]string{"PUBLIC_URL": "app.example.com"}, "PUBLIC_URL"},
		{"address", map[string]string{"ADDR": "127.0.0.1:http-nope"}, "listen"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"ADDR": "127.0.0.1:0"}
			for k, v := range tt.vars {
				vars[k] = v
			}
			log := slog.New(slog.NewTextHandler(t.Output(), nil))
			env, _, err := setup(context.Background(), func(k string) string { return vars[k] }, log)
			if err == nil {
				env.Close()
				t.Fatalf("setup with %v: no error, want one mentioning %s", tt.vars, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("setup with %v: %v, want an error mentioning %s", tt.vars, err, tt.want)
			}
		})
	}
}

// TestExternalIssuer runs the example against a provider named by
// AUTH_ISSUER, as with Google or Keycloak.
func TestExternalIssuer(t *testing.T) {
	p := authtest.NewProvider(authtest.Config{ClientID: "my-app", ClientSecret: "my-secret", OfflineAccessOnly: true})
	t.Cleanup(p.Close)
	env := startExample(t, map[string]string{
		"AUTH_ISSUER":        p.URL,
		"AUTH_CLIENT_ID":     "my-app",
		"AUTH_CLIENT_SECRET": "my-secret",
	})
	p.AddRedirectURI(env.PublicURL + "/auth/callback")
	p.AddPostLogoutRedirectURI(env.PublicURL + "/")
	if env.Provider != nil || env.UserinfoURL != p.URL+"/userinfo" {
		t.Errorf("with AUTH_ISSUER: embedded provider %v, userinfo %q; want none and %s/userinfo", env.Provider, env.UserinfoURL, p.URL)
	}
	browser := p.Login(t, env.PublicURL+"/auth/login?next=/api/userinfo", "bob")
	res, body := do(t, browser, "GET", env.PublicURL+"/api/userinfo")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"sub":"bob"`) {
		t.Errorf("GET /api/userinfo as bob: %d %s, want 200 with bob's claims", res.StatusCode, body)
	}
	if got := p.Grants("authorization_code"); got != 1 {
		t.Errorf("provider authorization_code grants = %d, want 1", got)
	}
}
