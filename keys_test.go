package auth_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

// The tests of the provider's signing keys as the middleware fetches and
// uses them (keys.go). Key rotation is routine: it must never end a
// session or fail a login.

// rotateUnderLoad signs n users in, rotates the provider's signing key,
// makes every access token due, and sends one request per session at
// once, so that many refreshed ID tokens name a key the middleware has not
// fetched yet. It fails the test unless every one of those requests, a
// second request per session afterwards, and a new login all succeed.
func rotateUnderLoad(t *testing.T, app *apptest.App, n int, after string) {
	t.Helper()
	browsers := make([]*http.Client, n)
	for i := range browsers {
		sub := fmt.Sprintf("user%d", i)
		app.P.AddUser(authtest.User{Subject: sub, Name: sub})
		browsers[i] = app.Login(t, sub)
	}
	app.P.RotateKey(false)
	app.P.Advance(2 * time.Hour)
	apptest.Concurrently(t, n, func(i int) error {
		res, err := browsers[i].Get(app.URL + "/me")
		if err != nil {
			return fmt.Errorf("GET /me of due session %d after %s: %w", i, after, err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /me of due session %d after %s: %d, want 200", i, after, res.StatusCode)
		}
		return nil
	})
	for i, c := range browsers {
		if status, _ := app.Me(t, c); status != http.StatusOK {
			t.Errorf("GET /me of session %d again after %s: %d, want 200 (the session ended)", i, after, status)
		}
	}
	c := app.Login(t, "alice")
	if status, u := app.Me(t, c); status != http.StatusOK || u.Subject != "alice" {
		t.Errorf("login right after %s: GET /me = %d %+v, want 200 alice", after, status, u)
	}
}

// TestKeyRotationKeepsSessions: 50 sessions due at once right after a key
// rotation all refresh, verify their new ID tokens and stay signed in,
// with one JWKS fetch between them; a login right after works too.
func TestKeyRotationKeepsSessions(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	const n = 50
	before := apptest.RequestsTo(app.P, "jwks")
	rotateUnderLoad(t, app, n, "a key rotation")
	if strings.Contains(app.Logs.String(), "session ended") {
		t.Errorf("logs say a session was ended:\n%s", app.Logs)
	}
	if got := apptest.RequestsTo(app.P, "jwks") - before; got > 2 {
		t.Errorf("JWKS fetches for %d concurrent refreshes after one rotation = %d, want at most 2", n, got)
	}
}

// corruptSignature flips bits in the middle of a JWT's signature.
func corruptSignature(jwt string) string {
	i := strings.LastIndexByte(jwt, '.')
	sig, _ := base64.RawURLEncoding.DecodeString(jwt[i+1:])
	sig[len(sig)/2] ^= 0xff
	return jwt[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// floodForgedLogoutTokens posts n forged logout tokens to the app's
// back-channel logout endpoint, which takes tokens from anyone: every
// other one names a key the provider never had, the rest carry a bad
// signature. It fails the test unless each is refused and all of them
// together make at most 4 JWKS fetches, not one per request.
func floodForgedLogoutTokens(t *testing.T, app *apptest.App, n int) {
	t.Helper()
	other := authtest.NewProvider(authtest.Config{})
	t.Cleanup(other.Close)
	before := apptest.RequestsTo(app.P, "jwks")
	for i := range n {
		forged := other.LogoutToken(map[string]any{"sub": "alice", "iss": app.P.URL, "aud": app.P.ClientID}) // unknown kid
		if i%2 == 1 {
			forged = corruptSignature(app.P.LogoutToken(map[string]any{"sub": "alice"})) // known kid
		}
		if res, _ := postLogoutToken(t, app, url.Values{"logout_token": {forged}}); res.StatusCode != http.StatusBadRequest {
			t.Fatalf("forged logout token %d: status %d, want 400", i, res.StatusCode)
		}
	}
	if got := apptest.RequestsTo(app.P, "jwks") - before; got > 4 {
		t.Errorf("%d forged logout tokens made %d JWKS fetches, want at most 4", n, got)
	}
}

// TestForgedLogoutTokensDoNotFloodJWKS: after a flood of forged logout
// tokens a genuine one still works, and after a while one signed with a
// rotated key is verified too.
func TestForgedLogoutTokensDoNotFloodJWKS(t *testing.T) {
	app, _ := newBackchannelApp(t)
	app.Login(t, "alice") // the keys are fetched once here
	floodForgedLogoutTokens(t, app, 30)
	if res, _ := postLogoutToken(t, app, url.Values{"logout_token": {app.P.LogoutToken(map[string]any{"sub": "alice"})}}); res.StatusCode != http.StatusOK {
		t.Errorf("genuine logout token after the flood: status %d, want 200", res.StatusCode)
	}
	app.P.RotateKey(false)
	app.P.Advance(time.Minute)
	if res, _ := postLogoutToken(t, app, url.Values{"logout_token": {app.P.LogoutToken(map[string]any{"sub": "bob"})}}); res.StatusCode != http.StatusOK {
		t.Errorf("logout token signed with a rotated key: status %d, want 200", res.StatusCode)
	}
}

// TestKeyRotationAfterJunkLogoutTokens: anonymous POSTs of junk logout
// tokens must not spend the key fetches that refreshes and logins need
// after the next rotation.
func TestKeyRotationAfterJunkLogoutTokens(t *testing.T) {
	app, _ := newBackchannelApp(t)
	app.Login(t, "alice") // the keys are fetched once here
	floodForgedLogoutTokens(t, app, 20)
	rotateUnderLoad(t, app, 20, "junk logout tokens and a rotation")
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

func TestKeyRotation(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	app.Login(t, "alice") // caches the first key
	app.P.RotateKey(false)
	c := app.Login(t, "bob") // signed with a kid the middleware has not seen
	if status, u := app.Me(t, c); status != http.StatusOK || u.Subject != "bob" {
		t.Errorf("GET /me after key rotation: %d %+v, want bob", status, u)
	}
}

// TestIDTokenWithoutKid: a token without kid names no key; it is accepted
// only when it still names one key among those the provider publishes.
func TestIDTokenWithoutKid(t *testing.T) {
	for _, tt := range []struct {
		name   string
		cfg    authtest.Config
		rotate bool // two keys in the JWKS
		want   int
	}{
		{"two provider keys", authtest.Config{}, true, http.StatusUnauthorized},
		// With ES256 the provider's JWKS also lists an RS256 key (OpenID
		// Connect Discovery requires RS256); a kid-less ES256 token still
		// names one key, the only EC one.
		{"ES256", authtest.Config{SigningAlg: "ES256"}, false, http.StatusFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app := apptest.New(t, tt.cfg, nil)
			if tt.rotate {
				app.P.RotateKey(true)
			}
			if _, res, body := app.LoginWithFault(t, "alice", authtest.Fault{IDTokenSigning: "no-kid"}); res.StatusCode != tt.want {
				t.Errorf("callback with a kid-less ID token: %d %q, want %d", res.StatusCode, body, tt.want)
			}
		})
	}
}

// TestRefreshWhileKeysUnavailable: the refreshed ID token is signed with a
// new key and the provider's JWKS cannot be fetched; the new tokens are
// kept (the old refresh token was rotated away), the identity stays.
func TestRefreshWhileKeysUnavailable(t *testing.T) {
	app := apptest.New(t, authtest.Config{Rotation: authtest.Rotate}, nil)
	c := app.Login(t, "alice")
	_, before := apptest.Get(t, c, app.URL+"/token")
	app.P.RotateKey(false)
	app.P.Advance(2 * time.Hour)
	app.P.FailNext(authtest.Fault{JWKSStatus: http.StatusServiceUnavailable})
	res, after := apptest.Get(t, c, app.URL+"/token")
	if res.StatusCode != http.StatusOK || after == before {
		t.Fatalf("GET /token while the JWKS is down: %d %q, want 200 with a new token", res.StatusCode, after)
	}
	if status, u := app.Me(t, c); status != http.StatusOK || u.Subject != "alice" {
		t.Errorf("GET /me: %d %+v, want alice still signed in", status, u)
	}
	// The next refresh, with the keys back, verifies its ID token.
	app.P.Advance(2 * time.Hour)
	app.P.FailNext(authtest.Fault{IDToken: func(c map[string]any) { c["name"] = "Alice Back" }})
	if _, u := app.Me(t, c); u == nil || u.Name != "Alice Back" {
		t.Errorf("user after the keys are back = %+v, want the refreshed name", u)
	}
	if n := app.P.Grants("refresh_token"); n != 2 {
		t.Errorf("refresh_token grants = %d, want 2", n)
	}
}
