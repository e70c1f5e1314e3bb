// Package demotest checks that an example application behaves as README.md
// promises, whichever router it is written for: every example's test runs
// [CheckApp] against it. Like package demo, it is internal to this
// repository.
package demotest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/auth/internal/apptest"
	"github.com/gatehouse/auth/internal/demo"
)

// Setup is an example's setup function: it reads the settings through
// getenv, starts listening (and the embedded provider) and returns the
// application to serve.
type Setup func(ctx context.Context, getenv func(string) string, log *slog.Logger) (*demo.Env, http.Handler, error)

// testSecret is the cookie secret Start uses unless vars has one.
const testSecret = "67617465686f7573652d6578616d706c652d746573742d7365637265742d3332"

// Start runs setup with the settings in vars, where ADDR defaults to
// 127.0.0.1:0 and AUTH_COOKIE_SECRET to [testSecret], and serves the
// application until the test ends, when it checks that it shut down
// cleanly.
func Start(t testing.TB, setup Setup, vars map[string]string) *demo.Env {
	t.Helper()
	env := map[string]string{"ADDR": "127.0.0.1:0", "AUTH_COOKIE_SECRET": testSecret}
	for k, v := range vars {
		env[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	e, app, err := setup(ctx, func(k string) string { return env[k] }, log)
	if err != nil {
		cancel()
		t.Fatalf("setup: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx, app) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve after shutdown = %v, want nil", err)
		}
	})
	return e
}

// CheckApp walks through a running example with the embedded provider, as a
// user would: the public page, login required on /me and /api/userinfo
// (a redirect for a browser, 401 for an API caller), login as alice through
// the real flow, the greeting, /me, /api/userinfo, and logout with the
// form's POST, which ends at the home page signed out.
func CheckApp(t *testing.T, env *demo.Env) {
	t.Helper()
	if env.Provider == nil {
		t.Fatalf("CheckApp needs the embedded provider; AUTH_ISSUER = %q", env.Issuer)
	}
	app := env.PublicURL

	t.Run("anonymous", func(t *testing.T) {
		res, body := Do(t, http.DefaultClient, "GET", app+"/")
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `href="/auth/login"`) || strings.Contains(body, "Hello") {
			t.Errorf("GET / anonymous: %d, want 200 with a login link and no greeting:\n%s", res.StatusCode, body)
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET /: Content-Type %q, want text/html", ct)
		}
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
			res, body := Do(t, NoRedirects(), "GET", app+tt.path, "Accept", tt.accept)
			if res.StatusCode != tt.want || res.Header.Get("Location") != tt.location {
				t.Errorf("GET %s, Accept %s: %d to %q (%s), want %d to %q",
					tt.path, tt.accept, res.StatusCode, res.Header.Get("Location"), body, tt.want, tt.location)
			}
		}
		res, _ = Do(t, NoRedirects(), "GET", app+"/auth/login?next=/me")
		if res.StatusCode != http.StatusFound || !strings.HasPrefix(res.Header.Get("Location"), env.Issuer+"/authorize?") {
			t.Errorf("GET /auth/login: %d to %q, want 302 to %s/authorize", res.StatusCode, res.Header.Get("Location"), env.Issuer)
		}
	})

	t.Run("login", func(t *testing.T) {
		browser := env.Provider.Login(t, app+"/auth/login?next=/me", "alice")
		res, body := Do(t, browser, "GET", app+"/")
		if res.StatusCode != http.StatusOK || !strings.Contains(body, "Hello, Alice Example") || !strings.Contains(body, `<form method="post" action="/auth/logout">`) {
			t.Errorf("GET / after login: %d, want 200 with the greeting and a logout form:\n%s", res.StatusCode, body)
		}

		res, body = Do(t, browser, "GET", app+"/me", "Accept", "application/json")
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
		if want := `{"sub":"alice","email":"alice@example.com","name":"Alice Example","claims":{`; !strings.HasPrefix(body, want) {
			t.Errorf("GET /me = %s, want it to start with %s", body, want)
		}

		before := apptest.RequestsTo(env.Provider, "userinfo")
		res, body = Do(t, browser, "GET", app+"/api/userinfo")
		var info map[string]any
		if err := json.Unmarshal([]byte(body), &info); err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/userinfo: %d %q (%v), want 200 and JSON", res.StatusCode, body, err)
		}
		if info["sub"] != "alice" || info["email"] != "alice@example.com" {
			t.Errorf("GET /api/userinfo = %v, want alice's userinfo", info)
		}
		if n := apptest.RequestsTo(env.Provider, "userinfo") - before; n != 1 {
			t.Errorf("GET /api/userinfo made %d userinfo requests to the provider, want 1", n)
		}

		// The logout button posts the form; the provider's end-session
		// endpoint sends the browser back to /.
		res, body = Do(t, browser, "POST", app+"/auth/logout")
		if res.StatusCode != http.StatusOK || res.Request.URL.String() != app+"/" || !strings.Contains(body, "not signed in") {
			t.Errorf("POST /auth/logout: ended at %s with %d, want 200 at %s/ signed out:\n%s", res.Request.URL, res.StatusCode, app, body)
		}
		if res, _ := Do(t, browser, "GET", app+"/me", "Accept", "application/json"); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET /me after logout: %d, want 401", res.StatusCode)
		}
	})
}

// NoRedirects returns a client that shows each redirect instead of
// following it.
func NoRedirects() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Do sends a request with optional header name, value pairs and returns
// the response with its body read.
func Do(t testing.TB, c *http.Client, method, rawURL string, header ...string) (*http.Response, string) {
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
