package auth_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

// The provider's key rotation is routine: it must never end a session or
// fail a login. These tests rotate authtest's key and then send many
// sessions whose tokens are due at once, so that many refreshed ID tokens
// name a key the middleware has not fetched yet.

// dueStorm signs n users in, rotates the provider's signing key, makes
// every access token due, and sends one request per session at once. It
// returns the statuses of those requests and of a second request per
// session afterwards.
func dueStorm(t *testing.T, app *apptest.App, n int) (first, second []int) {
	t.Helper()
	browsers := make([]*http.Client, n)
	for i := range browsers {
		sub := fmt.Sprintf("user%d", i)
		app.P.AddUser(authtest.User{Subject: sub, Name: sub})
		browsers[i] = app.Login(t, sub)
	}
	app.P.RotateKey(false)
	app.P.Advance(2 * time.Hour)
	first = make([]int, n)
	var wg sync.WaitGroup
	for i, c := range browsers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Get(app.URL + "/me")
			if err != nil {
				t.Errorf("GET /me: %v", err)
				return
			}
			res.Body.Close()
			first[i] = res.StatusCode
		}()
	}
	wg.Wait()
	second = make([]int, n)
	for i, c := range browsers {
		second[i], _ = app.Me(t, c)
	}
	return first, second
}

func countNot(statuses []int, want int) int {
	n := 0
	for _, s := range statuses {
		if s != want {
			n++
		}
	}
	return n
}

// TestKeyRotationKeepsSessions: 50 sessions due at once right after a key
// rotation all refresh, verify their new ID tokens and stay signed in,
// with one JWKS fetch between them; a login right after works too.
func TestKeyRotationKeepsSessions(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	const n = 50
	before := apptest.RequestsTo(app.P, "jwks")
	first, second := dueStorm(t, app, n)
	if bad := countNot(first, http.StatusOK); bad > 0 {
		t.Errorf("after a key rotation, %d of %d due sessions did not get 200: %v", bad, n, first)
	}
	if bad := countNot(second, http.StatusOK); bad > 0 {
		t.Errorf("after a key rotation, %d of %d sessions were ended: %v", bad, n, second)
	}
	if strings.Contains(app.Logs.String(), "session ended") {
		t.Errorf("logs say a session was ended:\n%s", app.Logs)
	}
	if got := apptest.RequestsTo(app.P, "jwks") - before; got > 2 {
		t.Errorf("JWKS fetches for %d concurrent refreshes after one rotation = %d, want at most 2", n, got)
	}
	c := app.Login(t, "alice")
	if status, u := app.Me(t, c); status != http.StatusOK || u.Subject != "alice" {
		t.Errorf("login right after the rotation: GET /me = %d %+v, want 200 alice", status, u)
	}
}

// TestKeyRotationAfterJunkLogoutTokens: anonymous POSTs of junk logout
// tokens with unknown kids must not spend the key fetches that refreshes
// and logins need after the next rotation.
func TestKeyRotationAfterJunkLogoutTokens(t *testing.T) {
	app, _ := newBackchannelApp(t)
	app.Login(t, "alice") // the keys are fetched once here
	other := authtest.NewProvider(authtest.Config{})
	t.Cleanup(other.Close)
	before := apptest.RequestsTo(app.P, "jwks")
	for i := 0; i < 20; i++ {
		junk := other.LogoutToken(map[string]any{"sub": "alice", "iss": app.P.URL, "aud": app.P.ClientID}) // unknown kid
		if res, _ := postLogoutToken(t, app, url.Values{"logout_token": {junk}}); res.StatusCode != http.StatusBadRequest {
			t.Fatalf("junk logout token %d: status %d, want 400", i, res.StatusCode)
		}
	}
	if got := apptest.RequestsTo(app.P, "jwks") - before; got > 4 {
		t.Errorf("20 junk logout tokens made %d JWKS fetches, want at most 4", got)
	}
	const n = 20
	first, second := dueStorm(t, app, n)
	if bad := countNot(first, http.StatusOK); bad > 0 {
		t.Errorf("after junk logout tokens and a rotation, %d of %d due sessions did not get 200: %v", bad, n, first)
	}
	if bad := countNot(second, http.StatusOK); bad > 0 {
		t.Errorf("after junk logout tokens and a rotation, %d of %d sessions were ended: %v", bad, n, second)
	}
	c := app.Login(t, "bob")
	if status, _ := app.Me(t, c); status != http.StatusOK {
		t.Errorf("login after junk logout tokens and a rotation: GET /me = %d, want 200", status)
	}
}

// TestJunkLogoutTokensRejectedBeforeKeys: a logout token whose claims
// cannot be right (wrong audience, expired, no events claim...) is
// rejected from its unverified payload, before it can make the middleware
// fetch keys.
func TestJunkLogoutTokensRejectedBeforeKeys(t *testing.T) {
	app, _ := newBackchannelApp(t)
	app.Login(t, "alice")
	other := authtest.NewProvider(authtest.Config{})
	t.Cleanup(other.Close)
	now := app.P.Now()
	for name, claims := range map[string]map[string]any{
		"wrong audience": {"aud": "someone-else"},
		"expired":        {"exp": now.Add(-time.Hour).Unix(), "iat": now.Add(-2 * time.Hour).Unix()},
		"iat too old":    {"iat": now.Add(-time.Hour).Unix()},
		"iat in future":  {"iat": now.Add(time.Hour).Unix()},
		"no events":      {"events": nil},
		"event not obj":  {"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": "yes"}},
		"nonce":          {"nonce": "n"},
	} {
		before := apptest.RequestsTo(app.P, "jwks")
		claims["iss"] = app.P.URL
		if _, ok := claims["aud"]; !ok {
			claims["aud"] = app.P.ClientID
		}
		claims["sub"] = "alice"
		junk := other.LogoutToken(claims) // an unknown kid, so verifying would fetch keys
		if res, _ := postLogoutToken(t, app, url.Values{"logout_token": {junk}}); res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", name, res.StatusCode)
		}
		if got := apptest.RequestsTo(app.P, "jwks") - before; got != 0 {
			t.Errorf("%s: %d JWKS fetches, want none", name, got)
		}
	}
}

// TestWithdrawnKeyStopsVerifying: a key the provider withdrew stops
// verifying once the keys held are older than an hour and fetched again:
// a bearer token signed with it is then refused.
func TestWithdrawnKeyStopsVerifying(t *testing.T) {
	app := apptest.New(t, authtest.Config{AccessTokenTTL: 24 * time.Hour}, func(c *auth.Config) { c.BearerAudiences = []string{"api"} })
	tok := app.P.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api", TTL: 24 * time.Hour})
	call := func() int {
		res, _ := apptest.Get(t, http.DefaultClient, app.URL+"/me", "Authorization", "Bearer "+tok, "Accept", "application/json")
		return res.StatusCode
	}
	if status := call(); status != http.StatusOK {
		t.Fatalf("bearer token before rotation: %d, want 200", status)
	}
	app.P.RotateKey(false) // the token's key is withdrawn
	app.P.Advance(2 * time.Hour)
	var status int
	for range 50 { // the keys are fetched again in the background, and the token's cache entry lasts at most 5 minutes
		app.P.Advance(6 * time.Minute)
		if status = call(); status == http.StatusUnauthorized {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status != http.StatusUnauthorized {
		t.Errorf("bearer token signed with a withdrawn key, keys stale: %d, want 401 once the keys are fetched again", status)
	}
}
