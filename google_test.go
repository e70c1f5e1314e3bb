package auth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

// Google facts the preset depends on ("OpenID Connect",
// https://developers.google.com/identity/openid-connect/openid-connect):
// the ID token of a Google Workspace account carries hd, its domain;
// other accounts have none. The hd authorization parameter only
// streamlines the account chooser: "be sure to validate that the returned
// ID token has an hd claim value that matches what you expect". A refresh
// token is issued with access_type=offline, and again only on consent
// (prompt=consent) ("Using OAuth 2.0 for Web Server Applications").
// authtest stands in for Google's OpenID Connect endpoints; like Google, it
// ignores hd when choosing whom to sign in.

// newGoogleApp serves the app with the Google preset (pointed at an
// authtest provider) as its only provider. Users: alice (hd example.com),
// mallory (hd evil.example) and bob (a consumer account, no hd).
func newGoogleApp(t *testing.T, opts auth.GoogleOptions) (*apptest.App, *authtest.Provider) {
	t.Helper()
	users := authtest.Users()
	users[0].Extra = map[string]any{"hd": "example.com"}
	users = append(users, authtest.User{Subject: "mallory", Email: "mallory@evil.example", EmailVerified: true, Name: "Mallory", Extra: map[string]any{"hd": "evil.example"}})
	op := authtest.NewProvider(authtest.Config{Users: users})
	t.Cleanup(op.Close)
	app := apptest.NewProviders(t, op.Now, func(appURL string) []auth.Provider {
		op.AddRedirectURI(appURL + "/auth/callback")
		op.AddPostLogoutRedirectURI(appURL + "/")
		g := auth.Google(op.ClientID, op.ClientSecret, opts)
		g.Issuer = op.URL
		return []auth.Provider{g}
	}, nil)
	app.P = op
	return app, op
}

func authorizeQuery(t *testing.T, app *apptest.App) url.Values {
	t.Helper()
	res, _ := apptest.Get(t, apptest.Browser(t), app.URL+"/auth/login")
	loc, err := res.Location()
	if err != nil {
		t.Fatalf("GET /auth/login: status %d, no Location", res.StatusCode)
	}
	return loc.Query()
}

func TestGoogleOffline(t *testing.T) {
	for _, offline := range []bool{false, true} {
		app, _ := newGoogleApp(t, auth.GoogleOptions{Offline: offline})
		q := authorizeQuery(t, app)
		got := q.Get("access_type") == "offline" && q.Get("prompt") == "consent"
		if got != offline {
			t.Errorf("Offline %v: authorize access_type=%q prompt=%q", offline, q.Get("access_type"), q.Get("prompt"))
		}
		if q.Get("scope") != "openid email profile" || q.Get("nonce") == "" {
			t.Errorf("Offline %v: scope %q, nonce %q; want openid email profile and a nonce", offline, q.Get("scope"), q.Get("nonce"))
		}
	}
}

func TestGoogleLogin(t *testing.T) {
	app, op := newGoogleApp(t, auth.GoogleOptions{})
	u := app.LoginAt(t, op.Browser(t, "bob"), "/auth/login")
	if u.Provider != "google" || u.Subject != "bob" {
		t.Errorf("GET /me = %+v, want bob from google", u)
	}
}

func TestGoogleHostedDomain(t *testing.T) {
	app, op := newGoogleApp(t, auth.GoogleOptions{HostedDomain: "example.com"})
	if q := authorizeQuery(t, app); q.Get("hd") != "example.com" {
		t.Errorf("authorize hd = %q, want example.com", q.Get("hd"))
	}
	for _, tt := range []struct {
		sub  string
		want int
	}{
		{"alice", http.StatusOK},          // hd example.com
		{"bob", http.StatusForbidden},     // no hd: a consumer account
		{"mallory", http.StatusForbidden}, // another Workspace domain
	} {
		t.Run(tt.sub, func(t *testing.T) {
			c := op.Browser(t, tt.sub)
			res, _, visited := apptest.Follow(t, c, app.URL+"/auth/login?next=/me")
			if res.StatusCode != tt.want {
				t.Errorf("login as %s: status = %d after %v, want %d", tt.sub, res.StatusCode, visited, tt.want)
			}
		})
	}

	// A refreshed ID token is checked again: a user moved out of the
	// domain loses the session at the next refresh.
	c := op.Browser(t, "alice")
	app.LoginAt(t, c, "/auth/login")
	op.FailNext(authtest.Fault{IDToken: func(c map[string]any) { c["hd"] = "evil.example" }})
	op.Advance(time.Hour + time.Minute)
	if status, _ := app.Me(t, c); status != http.StatusUnauthorized {
		t.Errorf("GET /me after a refresh outside the domain: status = %d, want 401", status)
	}
	if !strings.Contains(app.Logs.String(), `hosted domain \"evil.example\" is not`) {
		t.Errorf("log does not give the hosted domain as the reason:\n%s", app.Logs)
	}
}
