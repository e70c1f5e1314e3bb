package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/demo"
	"github.com/gatehouse/auth/internal/demotest"
)

func startExample(t *testing.T, vars map[string]string) *demo.Env {
	t.Helper()
	return demotest.Start(t, setup, vars)
}

var do, noRedirects = demotest.Do, demotest.NoRedirects

func TestApp(t *testing.T) {
	env := startExample(t, nil)
	if !strings.HasPrefix(env.Issuer, "http://localhost:") || !strings.HasPrefix(env.PublicURL, "http://127.0.0.1:") {
		t.Errorf("app %s, issuer %s: want the app on 127.0.0.1 and the embedded provider on localhost", env.PublicURL, env.Issuer)
	}
	demotest.CheckApp(t, env)
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
		{"issuer without secret", map[string]string{"AUTH_ISSUER": "http://127.0.0.1:1", "AUTH_CLIENT_ID": "x"}, "ClientSecret is required"},
		{"issuer unreachable", map[string]string{"AUTH_ISSUER": "http://127.0.0.1:1", "AUTH_CLIENT_ID": "x", "AUTH_CLIENT_SECRET": "s"}, "discover"},
		{"public URL", map[string]string{"PUBLIC_URL": "app.example.com"}, "PUBLIC_URL"},
		{"address", map[string]string{"ADDR": "127.0.0.1:http-nope"}, "listen"},
		{"unknown store", map[string]string{"AUTH_SESSION_STORE": "files"}, "AUTH_SESSION_STORE must be cookie, memory or redis"},
		{"metrics", map[string]string{"AUTH_METRICS": "yes"}, "AUTH_METRICS must be 1 or 0"},
		{"redis without URL", map[string]string{"AUTH_SESSION_STORE": "redis"}, "REDIS_URL"},
		{"redis URL", map[string]string{"AUTH_SESSION_STORE": "redis", "REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"},
		{"redis unix socket", map[string]string{"AUTH_SESSION_STORE": "redis", "REDIS_URL": "unix:///run/redis.sock"}, "REDIS_URL"},
		{"redis down", map[string]string{"AUTH_SESSION_STORE": "redis", "REDIS_URL": "redis://127.0.0.1:1/0?max_retries=-1"}, "Redis at 127.0.0.1:1 does not answer"},
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

// TestBadRedisURLSecret: an unparsable REDIS_URL fails at startup without
// quoting the password it holds.
func TestBadRedisURLSecret(t *testing.T) {
	vars := map[string]string{"ADDR": "127.0.0.1:0", "AUTH_SESSION_STORE": "redis", "REDIS_URL": "redis://app:hunter2@127.0.0.1:63x79/0"}
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	env, _, err := setup(context.Background(), func(k string) string { return vars[k] }, log)
	if err == nil {
		env.Close()
		t.Fatal("setup with a bad REDIS_URL: no error")
	}
	if !strings.Contains(err.Error(), "REDIS_URL") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("setup with a bad REDIS_URL: %q, want an error that names REDIS_URL and not its password", err)
	}
}

// TestSessionStoreMemory runs the example with AUTH_SESSION_STORE=memory:
// the walk-through signs in and out as with cookies, the session cookie
// holds only an ID, and a back-channel logout from the provider ends the
// session.
func TestSessionStoreMemory(t *testing.T) {
	env := startExample(t, map[string]string{"AUTH_SESSION_STORE": "memory"})
	demotest.CheckApp(t, env)
	checkBackchannel(t, env)
}

// TestSessionStoreRedis is TestSessionStoreMemory with Redis, on the server
// named by REDIS_URL (.ci/with-redis starts one).
func TestSessionStoreRedis(t *testing.T) {
	redisURL := os.Getenv("REDIS_URL")
	if redisURL == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("REDIS_URL is not set: CI runs the tests through .ci/with-redis")
		}
		t.Skip("REDIS_URL is not set: run the tests through .ci/with-redis to test against Redis")
	}
	env := startExample(t, map[string]string{"AUTH_SESSION_STORE": "redis", "REDIS_URL": redisURL})
	demotest.CheckApp(t, env)
	checkBackchannel(t, env)
}

// TestCookieSessionsNoBackchannel: with sessions in cookies (the default)
// the server cannot end a session, so the example serves no back-channel
// logout endpoint and registers none at the provider.
func TestCookieSessionsNoBackchannel(t *testing.T) {
	env := startExample(t, map[string]string{"AUTH_SESSION_STORE": "cookie"})
	if res, body := do(t, noRedirects(), "POST", env.PublicURL+backchannelPath); res.StatusCode != http.StatusNotFound {
		t.Errorf("POST %s with cookie sessions: %d %s, want 404", backchannelPath, res.StatusCode, body)
	}
	browser := env.Provider.Login(t, env.PublicURL+"/auth/login", "alice")
	if n := cookieBytes(browser, env.PublicURL); n < 500 {
		t.Errorf("cookies with AUTH_SESSION_STORE=cookie: %d bytes, want the whole session in them", n)
	}
	if err := env.Provider.BackchannelLogout("alice"); err == nil {
		t.Error("the embedded provider has a back-channel logout URI with cookie sessions, want none")
	}
}

// checkBackchannel signs alice and bob in, has the embedded provider post
// a logout token for alice, as when she signs out at the provider, and
// checks that her session ended and not bob's.
func checkBackchannel(t *testing.T, env *demo.Env) {
	t.Helper()
	alice := env.Provider.Login(t, env.PublicURL+"/auth/login", "alice")
	bob := env.Provider.Login(t, env.PublicURL+"/auth/login", "bob")
	// With a store the cookie holds a sealed session ID, whatever the
	// tokens' size.
	if n := cookieBytes(alice, env.PublicURL); n > 250 {
		t.Errorf("alice's cookies: %d bytes, want a session ID only", n)
	}
	if res, body := do(t, alice, "GET", env.PublicURL+"/me", "Accept", "application/json"); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /me as alice: %d %s, want 200", res.StatusCode, body)
	}
	if err := env.Provider.BackchannelLogout("alice"); err != nil {
		t.Fatalf("back-channel logout of alice: %v", err)
	}
	if res, body := do(t, alice, "GET", env.PublicURL+"/me", "Accept", "application/json"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /me as alice after back-channel logout: %d %s, want 401", res.StatusCode, body)
	}
	if res, body := do(t, bob, "GET", env.PublicURL+"/me", "Accept", "application/json"); res.StatusCode != http.StatusOK {
		t.Errorf("GET /me as bob after alice's back-channel logout: %d %s, want 200", res.StatusCode, body)
	}
}

// cookieBytes adds up the names and values of the cookies c sends to
// rawURL.
func cookieBytes(c *http.Client, rawURL string) int {
	u, _ := url.Parse(rawURL)
	n := 0
	for _, ck := range c.Jar.Cookies(u) {
		n += len(ck.Name) + len(ck.Value)
	}
	return n
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
	if env.Provider != nil {
		t.Errorf("with AUTH_ISSUER: embedded provider %v, want none", env.Provider)
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

// TestTwoProviders: with GitHub configured next to the OpenID Connect
// provider, the home page offers a button each, and each provider has its
// own login and callback paths.
func TestTwoProviders(t *testing.T) {
	env := startExample(t, map[string]string{"GITHUB_CLIENT_ID": "gh-id", "GITHUB_CLIENT_SECRET": "gh-secret"})
	_, home := do(t, noRedirects(), "GET", env.PublicURL+"/")
	for _, want := range []string{`href="/auth/login/oidc"`, `href="/auth/login/github"`, "Log in with GitHub"} {
		if !strings.Contains(home, want) {
			t.Errorf("home page lacks %s:\n%s", want, home)
		}
	}
	res, _ := do(t, noRedirects(), "GET", env.PublicURL+"/auth/login/github")
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "https://github.com/login/oauth/authorize?") ||
		!strings.Contains(loc, url.QueryEscape(env.PublicURL+"/auth/callback/github")) {
		t.Errorf("GET /auth/login/github: %d to %q, want 302 to GitHub with the /auth/callback/github redirect URI", res.StatusCode, loc)
	}
	b := env.Provider.Login(t, env.PublicURL+"/auth/login/oidc?next=/me", "alice")
	res, body := do(t, b, "GET", env.PublicURL+"/api/userinfo")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"sub":"alice"`) {
		t.Errorf("GET /api/userinfo after login with oidc: %d %s, want alice's userinfo", res.StatusCode, body)
	}
	if _, home := do(t, b, "GET", env.PublicURL+"/"); !strings.Contains(home, "with oidc") {
		t.Errorf("home page after login does not say which provider:\n%s", home)
	}
}

// TestMetrics: with AUTH_METRICS=1 the example serves Prometheus counts at
// /metrics, and a sign-in shows there.
func TestMetrics(t *testing.T) {
	env := startExample(t, map[string]string{"AUTH_METRICS": "1"})
	demotest.CheckApp(t, env) // signs in, and out
	_, body := do(t, http.DefaultClient, "GET", env.PublicURL+"/metrics")
	if !strings.Contains(body, `gatehouse_events_total{event="login",provider=""} 1`) || !strings.Contains(body, `gatehouse_events_total{event="logout",provider=""} 1`) {
		t.Errorf("/metrics after a sign-in and out:\n%s\nwant a login and a logout counted", body)
	}
	env = startExample(t, nil)
	if res, _ := do(t, http.DefaultClient, "GET", env.PublicURL+"/metrics"); res.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics without AUTH_METRICS: %d, want 404", res.StatusCode)
	}
}
