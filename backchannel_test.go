package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

const backchannelPath = "/auth/backchannel-logout"

// newBackchannelApp starts an app whose sessions live in a memStore, with
// the back-channel logout endpoint registered at the provider.
func newBackchannelApp(t *testing.T) (*apptest.App, *memStore) {
	t.Helper()
	store := newMemStore()
	app := apptest.New(t, authtest.Config{}, func(c *auth.Config) {
		c.Store = store
		c.BackchannelLogoutPath = backchannelPath
	})
	app.P.SetBackchannelLogoutURI(app.URL + backchannelPath)
	return app, store
}

// postLogoutToken posts form to the back-channel logout endpoint and
// returns the status and the decoded error code.
func postLogoutToken(t *testing.T, app *apptest.App, form url.Values) (*http.Response, string) {
	t.Helper()
	res, err := http.PostForm(app.URL+backchannelPath, form)
	if err != nil {
		t.Fatalf("POST %s: %v", backchannelPath, err)
	}
	defer res.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(res.Body).Decode(&e)
	return res, e.Error
}

// sid returns the sid claim of the browser's session.
func sid(t *testing.T, app *apptest.App, c *http.Client) string {
	t.Helper()
	status, u := app.Me(t, c)
	if status != http.StatusOK {
		t.Fatalf("GET /me: status %d, want 200", status)
	}
	var claims struct{ Sid string }
	if err := u.DecodeClaims(&claims); err != nil || claims.Sid == "" {
		t.Fatalf("session sid = %q (%v), want one", claims.Sid, err)
	}
	return claims.Sid
}

func TestBackchannelLogoutFromProvider(t *testing.T) {
	app, store := newBackchannelApp(t)
	alice1, alice2, bob := app.Login(t, "alice"), app.Login(t, "alice"), app.Login(t, "bob")
	if err := app.P.BackchannelLogout("alice"); err != nil {
		t.Fatalf("BackchannelLogout(alice): %v", err)
	}
	apptest.WantEnded(t, []*apptest.App{app}, "alice's back-channel logout", bob, alice1, alice2)
	if got := store.Len(); got != 1 {
		t.Errorf("sessions in the store = %d, want 1 (bob's)", got)
	}
}

func TestBackchannelLogoutScope(t *testing.T) {
	app, _ := newBackchannelApp(t)
	alice1, alice2, bob := app.Login(t, "alice"), app.Login(t, "alice"), app.Login(t, "bob")
	signedIn := func(c *http.Client) bool { status, _ := app.Me(t, c); return status == http.StatusOK }

	// sid (with or without sub): that provider session only.
	res, _ := postLogoutToken(t, app, url.Values{"logout_token": {app.P.LogoutToken(map[string]any{"sid": sid(t, app, alice1)})}})
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST logout token with sid: status %d, Cache-Control %q; want 200, no-store", res.StatusCode, res.Header.Get("Cache-Control"))
	}
	if signedIn(alice1) || !signedIn(alice2) || !signedIn(bob) {
		t.Errorf("after a logout token for alice1's sid: signed in alice1 %v, alice2 %v, bob %v; want false, true, true", signedIn(alice1), signedIn(alice2), signedIn(bob))
	}
	// sub only: every session of the user.
	res, _ = postLogoutToken(t, app, url.Values{"logout_token": {app.P.LogoutToken(map[string]any{"sub": "alice"})}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("POST logout token with sub: status %d, want 200", res.StatusCode)
	}
	if signedIn(alice2) || !signedIn(bob) {
		t.Errorf("after a logout token for sub alice: signed in alice2 %v, bob %v; want false, true", signedIn(alice2), signedIn(bob))
	}
	// Nobody left to log out is still a success.
	if err := app.P.BackchannelLogout("alice"); err != nil {
		t.Errorf("BackchannelLogout(alice) with no session left: %v, want nil", err)
	}
}

func TestBackchannelLogoutRejects(t *testing.T) {
	app, _ := newBackchannelApp(t)
	bob := app.Login(t, "bob")
	other := authtest.NewProvider(authtest.Config{})
	t.Cleanup(other.Close)
	now := app.P.Now()
	replayed := app.P.LogoutToken(map[string]any{"sub": "alice"})
	if res, _ := postLogoutToken(t, app, url.Values{"logout_token": {replayed}}); res.StatusCode != http.StatusOK {
		t.Fatalf("first POST of a logout token: status %d, want 200", res.StatusCode)
	}
	bad := func(claims map[string]any) url.Values {
		claims["sub"] = "bob"
		return url.Values{"logout_token": {app.P.LogoutToken(claims)}}
	}
	for _, tt := range []struct {
		name string
		form url.Values
	}{
		{"no token", url.Values{}},
		{"two tokens", url.Values{"logout_token": {app.P.LogoutToken(map[string]any{"sub": "bob"}), app.P.LogoutToken(map[string]any{"sub": "bob"})}}},
		{"garbage", url.Values{"logout_token": {"not.a.jwt"}}},
		{"replayed jti", url.Values{"logout_token": {replayed}}},
		{"another provider", url.Values{"logout_token": {other.LogoutToken(map[string]any{"sub": "bob"})}}},
		{"another provider's key", url.Values{"logout_token": {other.LogoutToken(map[string]any{"sub": "bob", "iss": app.P.URL, "aud": app.P.ClientID})}}},
		{"bad signature", url.Values{"logout_token": {corruptSignature(app.P.LogoutToken(map[string]any{"sub": "bob"}))}}},
		{"unsigned", url.Values{"logout_token": {unsigned(app.P.LogoutToken(map[string]any{"sub": "bob"}))}}},
		{"wrong iss", bad(map[string]any{"iss": app.P.URL + "/other"})},
		{"wrong aud", bad(map[string]any{"aud": "someone-else"})},
		{"untrusted extra aud", bad(map[string]any{"aud": []string{app.P.ClientID, "someone-else"}})},
		{"wrong azp", bad(map[string]any{"azp": "someone-else"})},
		{"no iat", bad(map[string]any{"iat": nil})},
		{"iat in the future", bad(map[string]any{"iat": now.Add(10 * time.Minute).Unix()})},
		{"iat too old", bad(map[string]any{"iat": now.Add(-time.Hour).Unix(), "exp": now.Add(time.Hour).Unix()})},
		{"no exp", bad(map[string]any{"exp": nil})},
		{"expired", bad(map[string]any{"iat": now.Add(-5 * time.Minute).Unix(), "exp": now.Add(-3 * time.Minute).Unix()})},
		{"no jti", bad(map[string]any{"jti": nil})},
		{"no event", bad(map[string]any{"events": nil})},
		{"another event", bad(map[string]any{"events": map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}})},
		{"event not an object", bad(map[string]any{"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": "yes"}})},
		{"nonce", bad(map[string]any{"nonce": "n"})},
		{"neither sub nor sid", url.Values{"logout_token": {app.P.LogoutToken(map[string]any{})}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, code := postLogoutToken(t, app, tt.form)
			if res.StatusCode != http.StatusBadRequest || code != "invalid_request" {
				t.Errorf("POST logout token: status %d, error %q; want 400 invalid_request", res.StatusCode, code)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("POST logout token: Content-Type %q, want application/json", ct)
			}
			if status, _ := app.Me(t, bob); status != http.StatusOK {
				t.Fatalf("GET /me as bob after a rejected logout token: status %d, want 200", status)
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		res, _ := apptest.Get(t, http.DefaultClient, app.URL+backchannelPath+"?logout_token="+app.P.LogoutToken(map[string]any{"sub": "bob"}))
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "POST" {
			t.Errorf("GET %s: status %d, Allow %q; want 405, POST", backchannelPath, res.StatusCode, res.Header.Get("Allow"))
		}
	})
	if logs := app.Logs.String(); strings.Contains(logs, replayed) || strings.Contains(logs, strings.Split(replayed, ".")[1]) {
		t.Errorf("logs contain a logout token: %q", logs)
	}
}

// TestBackchannelLogoutIDToken: a real ID token of the provider, posted as
// a logout token, is rejected (it has a nonce and no logout event).
func TestBackchannelLogoutIDToken(t *testing.T) {
	app, _ := newBackchannelApp(t)
	c := app.Login(t, "alice")
	// Read the raw ID token from the session, through the middleware.
	var idToken string
	probe := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idToken, _ = auth.Token(r.Context()).Extra("id_token").(string)
	})
	req := httptest.NewRequest(http.MethodGet, app.URL+"/probe", nil)
	u, _ := url.Parse(app.URL)
	for _, ck := range c.Jar.Cookies(u) {
		req.AddCookie(ck)
	}
	app.M.Handler(probe).ServeHTTP(httptest.NewRecorder(), req)
	if idToken == "" {
		t.Fatal("no ID token in the session")
	}
	if res, code := postLogoutToken(t, app, url.Values{"logout_token": {idToken}}); res.StatusCode != http.StatusBadRequest || code != "invalid_request" {
		t.Errorf("POST an ID token as logout token: status %d, error %q; want 400 invalid_request", res.StatusCode, code)
	}
	if status, _ := app.Me(t, c); status != http.StatusOK {
		t.Errorf("GET /me after a rejected ID token: status %d, want 200", status)
	}
}

// TestBackchannelLogoutStoreDown: a logout that fails answers 400 and does
// not burn the token's jti, so the provider can send it again.
func TestBackchannelLogoutStoreDown(t *testing.T) {
	app, store := newBackchannelApp(t)
	c := app.Login(t, "alice")
	tok := app.P.LogoutToken(map[string]any{"sub": "alice"})
	store.setDown(true)
	if res, code := postLogoutToken(t, app, url.Values{"logout_token": {tok}}); res.StatusCode != http.StatusBadRequest || code != "temporarily_unavailable" {
		t.Errorf("POST logout token with the store down: status %d, error %q; want 400 temporarily_unavailable", res.StatusCode, code)
	}
	store.setDown(false)
	if res, _ := postLogoutToken(t, app, url.Values{"logout_token": {tok}}); res.StatusCode != http.StatusOK {
		t.Errorf("POST the same logout token with the store back: status %d, want 200", res.StatusCode)
	}
	if status, _ := app.Me(t, c); status != http.StatusUnauthorized {
		t.Errorf("GET /me after the retried logout: status %d, want 401", status)
	}
}

func TestBackchannelLogoutConfig(t *testing.T) {
	p := authtest.NewProvider(authtest.Config{})
	t.Cleanup(p.Close)
	testConfigs(t, auth.Config{
		Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		RedirectURL: "http://127.0.0.1:1/auth/callback", CookieSecret: apptest.Secret,
		BackchannelLogoutPath: backchannelPath,
	}, []configCase{
		{"cookie sessions", func(c *auth.Config) {}, "needs a Config.Store"},
		{"store without deletion", func(c *auth.Config) { c.Store = plainStore{newMemStore()} }, "implements SIDDeleter and SubjectDeleter"},
		{"relative path", func(c *auth.Config) { c.Store = newMemStore(); c.BackchannelLogoutPath = "bcl" }, "must start with /"},
		{"logout path", func(c *auth.Config) { c.Store = newMemStore(); c.BackchannelLogoutPath = "/auth/logout" }, "already the path"},
		{"plain OAuth 2.0 only", func(c *auth.Config) {
			c.Store = newMemStore()
			c.Issuer, c.ClientID, c.ClientSecret = "", "", ""
			c.Providers = []auth.Provider{auth.GitHub("id", "secret")}
		}, "needs an OpenID Connect provider"},
		{"memory store", func(c *auth.Config) { c.Store = newMemStore() }, ""},
	})
}

// TestBackchannelNotMounted: without BackchannelLogoutPath, the path is the
// application's.
func TestBackchannelNotMounted(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, func(c *auth.Config) { c.Store = newMemStore() })
	res, _ := http.PostForm(app.URL+backchannelPath, url.Values{"logout_token": {app.P.LogoutToken(map[string]any{"sub": "alice"})}})
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("POST %s without BackchannelLogoutPath: status %d, want 404 from the app", backchannelPath, res.StatusCode)
	}
}

func TestEndSessions(t *testing.T) {
	store := newMemStore()
	app := newStoreApp(t, store, authtest.Config{})
	alice1, alice2, bob := app.Login(t, "alice"), app.Login(t, "alice"), app.Login(t, "bob")
	n, err := app.M.EndSessions(context.Background(), "", "alice")
	if err != nil || n != 2 {
		t.Fatalf("EndSessions(alice) = %d, %v; want 2, nil", n, err)
	}
	apptest.WantEnded(t, []*apptest.App{app}, "EndSessions(alice)", bob, alice1, alice2)

	store.setDown(true)
	if _, err := app.M.EndSessions(context.Background(), "", "bob"); !errors.Is(err, auth.ErrStoreUnavailable) {
		t.Errorf("EndSessions with the store down: %v, want ErrStoreUnavailable", err)
	}
}

func TestEndSessionsUnsupported(t *testing.T) {
	for name, store := range map[string]auth.Store{"cookie sessions": nil, "plain store": plainStore{newMemStore()}} {
		t.Run(name, func(t *testing.T) {
			app := apptest.New(t, authtest.Config{}, func(c *auth.Config) { c.Store = store })
			if _, err := app.M.EndSessions(context.Background(), "", "alice"); !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("EndSessions: %v, want errors.ErrUnsupported", err)
			}
		})
	}
}

// plainStore hides everything but the Store methods.
type plainStore struct{ s *memStore }

func (p plainStore) Load(ctx context.Context, id string) ([]byte, bool, error) {
	return p.s.Load(ctx, id)
}
func (p plainStore) Save(ctx context.Context, id string, data []byte, info auth.SessionInfo) error {
	return p.s.Save(ctx, id, data, info)
}
func (p plainStore) Delete(ctx context.Context, id string) error { return p.s.Delete(ctx, id) }

// unsigned replaces a JWT's header by alg none and drops its signature.
func unsigned(jwt string) string {
	parts := strings.Split(jwt, ".")
	return "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."
}
