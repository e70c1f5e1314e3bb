package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
	jose "github.com/go-jose/go-jose/v4"
)

// bearerRoutes is the application of the bearer tests: apptest.Routes (/,
// /me, /token), and routes that need scopes, report what a handler sees,
// and call out with auth.Client.
func bearerRoutes(app *apptest.App) http.Handler {
	m := app.M
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux := http.NewServeMux()
	mux.Handle("/", apptest.Routes(m))
	mux.Handle("/read", m.RequireScope("read")(ok))
	mux.Handle("/read-write", m.RequireScope("read", "write")(ok))
	mux.Handle("/email", m.RequireScope("email")(ok))
	mux.HandleFunc("/has-scope", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, auth.HasScope(r.Context(), r.URL.Query().Get("scope")))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("Authorization"))
	})
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Query().Get("to"), http.StatusFound)
	})
	// /client GETs the path ?get= of this app with auth.Client.
	mux.Handle("/client", m.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := auth.Client(r.Context()).Get(app.URL + r.URL.Query().Get("get"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		fmt.Fprintf(w, "%d %s", res.StatusCode, b)
	})))
	// /tokens answers the session's ID and refresh tokens.
	mux.Handle("/tokens", m.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := auth.Token(r.Context())
		id, _ := t.Extra("id_token").(string)
		json.NewEncoder(w).Encode(map[string]string{"id_token": id, "refresh_token": t.RefreshToken})
	})))
	return mux
}

// newBearerApp starts an app that accepts bearer tokens for the audience
// "api" (and whatever edit sets).
func newBearerApp(t *testing.T, pcfg authtest.Config, edit func(*auth.Config)) *apptest.App {
	t.Helper()
	app := apptest.New(t, pcfg, func(c *auth.Config) {
		c.BearerAudiences = []string{"api"}
		if edit != nil {
			edit(c)
		}
	})
	app.Serve(bearerRoutes(app))
	return app
}

// bearerGet GETs path of app as an API client with the bearer token tok,
// and optional header pairs.
func bearerGet(t *testing.T, c *http.Client, app *apptest.App, path, tok string, header ...string) (*http.Response, string) {
	t.Helper()
	return apptest.Get(t, c, app.URL+path, append([]string{"Authorization", "Bearer " + tok}, header...)...)
}

// bearerStatus GETs path of app as an API client with the bearer token
// tok and returns the status; unlike bearerGet it can run on any goroutine.
func bearerStatus(app *apptest.App, path, tok string) (int, error) {
	req, err := http.NewRequest("GET", app.URL+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := api.Do(req)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

// api is a client without cookies that does not follow redirects.
var api = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func TestBearerJWT(t *testing.T) {
	app := newBearerApp(t, authtest.Config{}, nil)
	p := app.P
	tok := p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api", Scope: "read email profile"})

	res, body := bearerGet(t, api, app, "/me", tok)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /me with a bearer token: status %d (%s), want 200", res.StatusCode, body)
	}
	var u auth.Identity
	if err := json.Unmarshal([]byte(body), &u); err != nil {
		t.Fatal(err)
	}
	var claims struct{ Scope, Aud, Jti string }
	if err := u.DecodeClaims(&claims); err != nil {
		t.Fatal(err)
	}
	if u.Subject != "alice" || u.Provider != "" || u.Email != "alice@example.com" || u.Name != "Alice Example" || claims.Scope != "read email profile" || claims.Aud != "api" || claims.Jti == "" {
		t.Errorf("GET /me: user %+v with claims %s, want alice with her email, name and the token's claims", u, u.Claims)
	}
	if res.Header.Get("Set-Cookie") != "" {
		t.Errorf("GET /me with a bearer token: Set-Cookie %q, want none", res.Header["Set-Cookie"])
	}
	if _, body := bearerGet(t, api, app, "/token", tok); body != tok {
		t.Errorf("auth.Token(ctx).AccessToken = %q, want the bearer token", body)
	}
	// Client sends the same token to the app's own origin, and stops at
	// a redirect to another one, which never sees the token.
	if _, body := bearerGet(t, api, app, "/client?get=/echo", tok); body != "200 Bearer "+tok {
		t.Errorf("auth.Client GET /echo: %q, want 200 and the bearer token", body)
	}
	var leaked atomic.Bool
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(r.Header.Get("Authorization") != "")
	}))
	defer other.Close()
	if _, body := bearerGet(t, api, app, "/client?get=/elsewhere?to="+other.URL, tok); !strings.HasPrefix(body, "302") || leaked.Load() {
		t.Errorf("auth.Client GET a redirect off-origin: %q (token sent there: %v), want the 302 itself", body, leaked.Load())
	}

	// Repeat requests are answered from the cache: the keys were fetched
	// once, for the first.
	for range 3 {
		if res, _ := bearerGet(t, api, app, "/me", tok); res.StatusCode != http.StatusOK {
			t.Fatalf("GET /me again: status %d, want 200", res.StatusCode)
		}
	}
	if n := apptest.RequestsTo(p, "jwks"); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1", n)
	}
	if strings.Contains(app.Logs.String(), tok) {
		t.Errorf("the log holds the bearer token:\n%s", app.Logs)
	}
}

func TestBearerOpaque(t *testing.T) {
	app := newBearerApp(t, authtest.Config{}, nil)
	p := app.P
	tok := p.AccessToken(authtest.AccessTokenOptions{Subject: "bob", Audience: "api", Scope: "read email", Opaque: true})
	for range 3 {
		res, body := bearerGet(t, api, app, "/me", tok)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `"sub":"bob"`) || !strings.Contains(body, `"email":"bob@example.com"`) {
			t.Fatalf("GET /me with an opaque token: status %d (%s), want 200 and bob", res.StatusCode, body)
		}
	}
	if res, _ := bearerGet(t, api, app, "/read", tok); res.StatusCode != http.StatusOK {
		t.Errorf("GET /read (scope read): status %d, want 200", res.StatusCode)
	}
	if n := apptest.RequestsTo(p, "introspect"); n != 1 {
		t.Errorf("introspection requests = %d, want 1 (then cached)", n)
	}
	// The client authenticated as at the token endpoint (Basic), and the
	// token was sent in the body, never logged.
	for _, r := range p.Requests() {
		if r.Endpoint == "introspect" && (r.Form.Get("token") != "REDACTED" || r.Form.Get("client_secret") != "") {
			t.Errorf("introspection request form %v, want the token and Basic client authentication", r.Form)
		}
	}
	if strings.Contains(app.Logs.String(), tok) {
		t.Errorf("the log holds the bearer token:\n%s", app.Logs)
	}
}

// TestBearerRefused sends tokens that must not be accepted: each gets 401
// with error="invalid_token" (400 invalid_request for a malformed header),
// never a redirect, even as a browser navigation; the claims are checked
// before anything costly, so that none of them makes a network call, but
// for a key ID the provider never published.
func TestBearerRefused(t *testing.T) {
	app := newBearerApp(t, authtest.Config{}, func(c *auth.Config) {
		// The client ID too, so that an ID token is refused for being
		// one, not for its audience.
		c.BearerAudiences = []string{"api", "test-client"}
	})
	p := app.P
	now := p.Now()
	at := func(claims map[string]any) string {
		return p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api", Scope: "read", Claims: claims})
	}
	good := at(nil)
	if res, body := bearerGet(t, api, app, "/me", good); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /me with a valid token: %d (%s), want 200", res.StatusCode, body)
	}

	// A real ID token and refresh token, from a login.
	browser := app.Login(t, "alice")
	_, body := apptest.Get(t, browser, app.URL+"/tokens")
	var login struct{ IDToken, RefreshToken string }
	if err := json.Unmarshal([]byte(body), &struct {
		IDToken      *string `json:"id_token"`
		RefreshToken *string `json:"refresh_token"`
	}{&login.IDToken, &login.RefreshToken}); err != nil || login.IDToken == "" || login.RefreshToken == "" {
		t.Fatalf("GET /tokens: %q, want the session's ID and refresh tokens", body)
	}

	// Tokens signed by another provider's key, but naming this issuer.
	other := authtest.NewProvider(authtest.Config{})
	defer other.Close()
	foreign := other.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api", Claims: map[string]any{"iss": p.URL}})

	for _, tt := range []struct {
		name    string
		header  string // the Authorization header
		status  int
		errCode string
		desc    string
		network bool // may fetch the provider's keys
	}{
		{"wrong audience", "Bearer " + p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "other-api"}), 401, "invalid_token", "not for this audience", false},
		{"expired", "Bearer " + at(map[string]any{"exp": now.Add(-2 * time.Minute).Unix()}), 401, "invalid_token", "expired", false},
		{"no exp", "Bearer " + at(map[string]any{"exp": nil}), 401, "invalid_token", "no expiry", false},
		{"not yet valid", "Bearer " + at(map[string]any{"nbf": now.Add(10 * time.Minute).Unix()}), 401, "invalid_token", "not valid yet", false},
		{"issued in the future", "Bearer " + at(map[string]any{"iat": now.Add(10 * time.Minute).Unix()}), 401, "invalid_token", "in the future", false},
		{"unknown issuer", "Bearer " + at(map[string]any{"iss": "https://issuer.example"}), 401, "invalid_token", "issuer is not accepted", false},
		{"no subject", "Bearer " + at(map[string]any{"sub": nil}), 401, "invalid_token", "no subject", false},
		{"a claim named twice", "Bearer " + at(map[string]any{"SUB": "bob"}), 401, "invalid_token", "names a claim twice", false},
		{"aud of the wrong type", "Bearer " + at(map[string]any{"aud": 42}), 401, "invalid_token", "malformed", false},
		{"alg none", "Bearer " + resign(t, good, "none", nil), 401, "invalid_token", "algorithm", false},
		{"HS256 keyed with the public key", "Bearer " + resign(t, good, "HS256", publicKeyPEM(t, p)), 401, "invalid_token", "algorithm", false},
		{"bad signature", "Bearer " + corruptSignature(good), 401, "invalid_token", "signature is invalid", false},
		{"another provider's key", "Bearer " + foreign, 401, "invalid_token", "unknown key", true},
		{"ID token from login", "Bearer " + login.IDToken, 401, "invalid_token", "ID token is not an access token", false},
		{"ID token shape", "Bearer " + p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Type: "JWT", Claims: map[string]any{"nonce": "n"}}), 401, "invalid_token", "ID token", false},
		{"ID token without nonce or scope", "Bearer " + p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Type: "JWT"}), 401, "invalid_token", "ID token", false},
		{"at_hash", "Bearer " + p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api", Scope: "read", Type: "JWT", Claims: map[string]any{"at_hash": "x"}}), 401, "invalid_token", "ID token", false},
		{"logout token", "Bearer " + p.LogoutToken(map[string]any{"sub": "alice"}), 401, "invalid_token", "not an access token", false},
		{"opaque, unknown", "Bearer unknowntoken", 401, "invalid_token", "not active", true},
		{"opaque, wrong audience", "Bearer " + p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "other-api", Opaque: true}), 401, "invalid_token", "not for this audience", true},
		{"opaque, expired", "Bearer " + p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api", Opaque: true, TTL: time.Second, Claims: map[string]any{"exp": now.Add(-time.Hour).Unix()}}), 401, "invalid_token", "expired", true},
		{"opaque, refresh token", "Bearer " + login.RefreshToken, 401, "invalid_token", "not an access token", true},
		{"too large", "Bearer " + strings.Repeat("a", 65<<10), 401, "invalid_token", "too large", false},
		{"no token", "Bearer", 400, "invalid_request", "malformed", false},
		{"two tokens", "Bearer a b", 400, "invalid_request", "malformed", false},
		{"not a b64token", "Bearer a;b", 400, "invalid_request", "malformed", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p.Reset()
			res, body := apptest.Get(t, api, app.URL+"/me", "Authorization", tt.header, "Accept", "text/html", "Sec-Fetch-Mode", "navigate")
			want := fmt.Sprintf(`Bearer realm="%s", error="%s", error_description="`, app.URL, tt.errCode)
			if res.StatusCode != tt.status || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), want) || !strings.Contains(res.Header.Get("WWW-Authenticate"), tt.desc) {
				t.Errorf("GET /me: %d, WWW-Authenticate %q; want %d, %s...%s...", res.StatusCode, res.Header.Get("WWW-Authenticate"), tt.status, want, tt.desc)
			}
			var e struct{ Error string }
			if json.Unmarshal([]byte(body), &e); e.Error != tt.errCode {
				t.Errorf("GET /me: body %s, want error %q", body, tt.errCode)
			}
			if n := len(p.Requests()); n > 0 && !tt.network {
				t.Errorf("the provider got %d requests (%+v), want none", n, p.Requests())
			}
			// A public route lets the request through, as anonymous.
			if _, body := apptest.Get(t, api, app.URL+"/", "Authorization", tt.header); body != "anonymous" {
				t.Errorf("GET / with the token: %q, want anonymous", body)
			}
		})
	}
	// A malformed header on a request with a session cookie: the cookie is
	// still not read.
	if res, _ := apptest.Get(t, browser, app.URL+"/me", "Authorization", "Bearer a;b"); res.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /me with a cookie and a malformed bearer header: %d, want 400", res.StatusCode)
	}
	if strings.Contains(app.Logs.String(), good) || strings.Contains(app.Logs.String(), login.IDToken) {
		t.Errorf("the log holds a token")
	}
}

// resign replaces tok's header alg (keeping kid and typ) and signs it with
// HMAC-SHA256 keyed with key (alg HS256), or not at all (alg none).
func resign(t *testing.T, tok, alg string, key []byte) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]any
	if err := json.Unmarshal(hb, &h); err != nil {
		t.Fatal(err)
	}
	h["alg"] = alg
	hb, _ = json.Marshal(h)
	signed := base64.RawURLEncoding.EncodeToString(hb) + "." + parts[1]
	if alg == "none" {
		return signed + "."
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signed))
	return signed + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// publicKeyPEM returns the provider's first public key as PEM, the key of
// the classic algorithm-confusion attack.
func publicKeyPEM(t *testing.T, p *authtest.Provider) []byte {
	t.Helper()
	res, err := p.Client().Get(p.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS: %v", err)
	}
	der, err := x509.MarshalPKIXPublicKey(set.Keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TestBearerIntrospectionClientAuth: the client authenticates at the
// introspection endpoint as at the token endpoint, here with a JWT made
// with its secret (client_secret_jwt), the one method the provider takes.
func TestBearerIntrospectionClientAuth(t *testing.T) {
	app := newBearerApp(t, authtest.Config{TokenAuthMethods: []string{"client_secret_jwt"}, ClientSecret: longSecret},
		func(c *auth.Config) { c.ClientSecret = longSecret })
	tok := app.P.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api", Opaque: true})
	if res, body := bearerGet(t, api, app, "/me", tok); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /me with an opaque token: %d %s, want 200", res.StatusCode, body)
	}
	for _, r := range app.P.Requests() {
		if r.Endpoint == "introspect" && r.Form.Get("client_assertion_type") == "" {
			t.Errorf("introspection request without a client assertion: %v", r.Form)
		}
	}
}

// TestBearerRevokedCached: an introspection answer is reused for
// BearerIntrospectionTTL (30 s by default), so a token revoked at the
// provider still works that long, and no longer.
func TestBearerRevokedCached(t *testing.T) {
	app := newBearerApp(t, authtest.Config{}, nil)
	p := app.P
	tok := p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api", Opaque: true})
	if res, _ := bearerGet(t, api, app, "/me", tok); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /me: %d, want 200", res.StatusCode)
	}
	p.RevokeUser("alice")
	p.Advance(25 * time.Second)
	if res, _ := bearerGet(t, api, app, "/me", tok); res.StatusCode != http.StatusOK {
		t.Errorf("GET /me 25 s after the token was revoked: %d, want 200 (cached)", res.StatusCode)
	}
	p.Advance(10 * time.Second)
	if res, _ := bearerGet(t, api, app, "/me", tok); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /me 35 s after the token was revoked: %d, want 401", res.StatusCode)
	}
	if n := apptest.RequestsTo(p, "introspect"); n != 2 {
		t.Errorf("introspection requests = %d, want 2", n)
	}

	// Never beyond the token's exp, and not at all with a negative TTL.
	short := p.AccessToken(authtest.AccessTokenOptions{Subject: "bob", Audience: "api", Opaque: true, TTL: 10 * time.Second})
	if res, _ := bearerGet(t, api, app, "/me", short); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /me: %d, want 200", res.StatusCode)
	}
	p.Advance(10*time.Second + time.Minute + time.Second) // past exp and the clock skew
	if res, _ := bearerGet(t, api, app, "/me", short); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /me after the token expired: %d, want 401", res.StatusCode)
	}

	noCache := newBearerApp(t, authtest.Config{}, func(c *auth.Config) { c.BearerIntrospectionTTL = -1 })
	tok = noCache.P.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api", Opaque: true})
	for range 2 {
		bearerGet(t, api, noCache, "/me", tok)
	}
	noCache.P.RevokeUser("alice")
	if res, _ := bearerGet(t, api, noCache, "/me", tok); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("BearerIntrospectionTTL -1: GET /me after revocation: %d, want 401", res.StatusCode)
	}
	if n := apptest.RequestsTo(noCache.P, "introspect"); n != 3 {
		t.Errorf("BearerIntrospectionTTL -1: introspection requests = %d, want 3", n)
	}
}

// TestBearerSingleCheck: concurrent first requests of one token share one
// check: one introspection, one key fetch.
func TestBearerSingleCheck(t *testing.T) {
	app := newBearerApp(t, authtest.Config{}, nil)
	p := app.P
	opaque := p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api", Opaque: true})
	jwt := p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api"})
	for _, tok := range []string{opaque, jwt} {
		apptest.Concurrently(t, 8, func(int) error {
			if status, err := bearerStatus(app, "/me", tok); err != nil || status != http.StatusOK {
				return fmt.Errorf("GET /me: %d, %v; want 200", status, err)
			}
			return nil
		})
	}
	if i, k := apptest.RequestsTo(p, "introspect"), apptest.RequestsTo(p, "jwks"); i != 1 || k != 1 {
		t.Errorf("introspection requests %d, JWKS fetches %d; want 1 each", i, k)
	}
}

// TestBearerKeyRotation: the provider rotates its key while clients send
// tokens signed with the old and the new one: none fails, and the keys are
// fetched once more, not per request.
func TestBearerKeyRotation(t *testing.T) {
	app := newBearerApp(t, authtest.Config{}, nil)
	p := app.P
	oldTok := p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api"})
	var rotated atomic.Bool
	var failures atomic.Int32
	apptest.Concurrently(t, 4, func(i int) error {
		for j := range 12 {
			if i == 0 && j == 4 {
				p.RotateKey(true)
				rotated.Store(true)
			}
			tok := oldTok
			if rotated.Load() && j%2 == 0 {
				tok = p.AccessToken(authtest.AccessTokenOptions{Subject: fmt.Sprintf("user%d-%d", i, j), Audience: "api"})
			}
			status, err := bearerStatus(app, "/me", tok)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				failures.Add(1)
			}
		}
		return nil
	})
	if n := failures.Load(); n != 0 {
		t.Errorf("%d requests failed across the key rotation, want 0", n)
	}
	if n := apptest.RequestsTo(p, "jwks"); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (before and after the rotation)", n)
	}
	// Without the old key: new tokens still pass, at the cost of one
	// more fetch, once the budget of fetches allows another.
	p.RotateKey(false)
	p.Advance(30 * time.Second)
	if res, _ := bearerGet(t, api, app, "/me", p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api"})); res.StatusCode != http.StatusOK {
		t.Errorf("GET /me with a token of the newest key: %d, want 200", res.StatusCode)
	}
	if n := apptest.RequestsTo(p, "jwks"); n != 3 {
		t.Errorf("JWKS fetched %d times, want 3", n)
	}
}

// TestBearerScopes: scope (RFC 9068), scp as a string (Entra ID) and as an
// array (Ory Hydra); 403 with insufficient_scope and the scopes needed.
func TestBearerScopes(t *testing.T) {
	app := newBearerApp(t, authtest.Config{}, nil)
	p := app.P
	for _, tt := range []struct {
		name      string
		claims    map[string]any
		read, rw  int
		hasRead   string
		wantScope string
	}{
		{"scope", map[string]any{"scope": "read write"}, 200, 200, "true", ""},
		{"scp string", map[string]any{"scp": "write read"}, 200, 200, "true", ""},
		{"scp array", map[string]any{"scp": []string{"read", "write"}}, 200, 200, "true", ""},
		{"scope and scp", map[string]any{"scope": "read", "scp": []string{"write"}}, 200, 200, "true", ""},
		{"read only", map[string]any{"scope": "read"}, 200, 403, "true", "read write"},
		{"none", nil, 403, 403, "false", "read"},
		{"prefix is not a scope", map[string]any{"scope": "reader"}, 403, 403, "false", "read"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok := p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api", Claims: tt.claims})
			res, _ := bearerGet(t, api, app, "/read", tok)
			res2, _ := bearerGet(t, api, app, "/read-write", tok)
			if res.StatusCode != tt.read || res2.StatusCode != tt.rw {
				t.Errorf("GET /read, /read-write: %d, %d; want %d, %d", res.StatusCode, res2.StatusCode, tt.read, tt.rw)
			}
			if tt.wantScope != "" {
				bad := res
				if res.StatusCode == 200 {
					bad = res2
				}
				want := fmt.Sprintf(`Bearer realm="%s", error="insufficient_scope", error_description="the access token lacks a scope this resource needs", scope="%s"`, app.URL, tt.wantScope)
				if got := bad.Header.Get("WWW-Authenticate"); got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
			}
			if _, body := bearerGet(t, api, app, "/has-scope?scope=read", tok); body != tt.hasRead {
				t.Errorf("HasScope(read) = %s, want %s", body, tt.hasRead)
			}
		})
	}
	// Anonymous: RequireScope requires login first.
	if res, _ := apptest.Get(t, api, app.URL+"/read", "Accept", "application/json"); res.StatusCode != http.StatusUnauthorized || res.Header.Get("WWW-Authenticate") != `Bearer realm="`+app.URL+`"` {
		t.Errorf("GET /read anonymous: %d, WWW-Authenticate %q; want 401 and a bare Bearer challenge", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	defer func() {
		if recover() == nil {
			t.Errorf("RequireScope(\"a b\") did not panic")
		}
	}()
	app.M.RequireScope("a b")
}

// TestBearerWinsOverCookie: with both, the bearer token decides, and the
// session cookie is not even read; a browser session alone still works on
// the same routes.
func TestBearerWinsOverCookie(t *testing.T) {
	app := newBearerApp(t, authtest.Config{}, nil)
	p := app.P
	browser := app.Login(t, "alice")
	if status, u := app.Me(t, browser); status != http.StatusOK || u.Subject != "alice" {
		t.Fatalf("GET /me with alice's cookie: %d %+v, want alice", status, u)
	}
	bob := p.AccessToken(authtest.AccessTokenOptions{Subject: "bob", Audience: "api", Scope: "read"})
	if _, body := bearerGet(t, browser, app, "/me", bob); !strings.Contains(body, `"sub":"bob"`) {
		t.Errorf("GET /me with alice's cookie and bob's token: %s, want bob", body)
	}
	if _, body := bearerGet(t, browser, app, "/token", bob); body != bob {
		t.Errorf("auth.Token with a cookie and a bearer token: %q, want the bearer token", body)
	}
	res, _ := bearerGet(t, browser, app, "/me", corruptSignature(bob), "Accept", "text/html")
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /me with alice's cookie and a forged token: %d, want 401", res.StatusCode)
	}
	if res.Header.Get("Set-Cookie") != "" {
		t.Errorf("GET /me with a forged token: Set-Cookie %q, want the cookie left alone", res.Header["Set-Cookie"])
	}
	// Another scheme is not ours: the cookie decides.
	if _, body := apptest.Get(t, browser, app.URL+"/me", "Authorization", "Basic dXNlcjpwYXNz"); !strings.Contains(body, `"sub":"alice"`) {
		t.Errorf("GET /me with alice's cookie and Basic credentials: %s, want alice", body)
	}
	// Without BearerAudiences, bearer tokens are ignored.
	plain := apptest.New(t, authtest.Config{}, nil)
	if _, body := apptest.Get(t, plain.Login(t, "alice"), plain.URL+"/me", "Authorization", "Bearer "+plain.P.AccessToken(authtest.AccessTokenOptions{Subject: "bob"})); !strings.Contains(body, `"sub":"alice"`) {
		t.Errorf("without BearerAudiences, GET /me with alice's cookie and bob's token: %s, want alice", body)
	}
}

// TestBearerSessionScopes: a session's scopes are those its token
// response granted, or those requested when it does not say.
func TestBearerSessionScopes(t *testing.T) {
	app := newBearerApp(t, authtest.Config{}, nil)
	browser := app.Login(t, "alice") // granted as requested: openid email profile
	for path, want := range map[string]int{"/email": 200, "/read": 403} {
		if res, _ := apptest.Get(t, browser, app.URL+path, "Accept", "application/json"); res.StatusCode != want {
			t.Errorf("GET %s with a session: %d, want %d", path, res.StatusCode, want)
		}
	}
	// The user declined email: the provider says so, and the session
	// remembers it, through a refresh too.
	app.P.FailNext(authtest.Fault{TokenScope: "openid profile"})
	narrowed := app.Login(t, "bob")
	if res, _ := apptest.Get(t, narrowed, app.URL+"/email", "Accept", "application/json"); res.StatusCode != http.StatusForbidden {
		t.Errorf("GET /email with a session granted openid profile: %d, want 403", res.StatusCode)
	}
	if _, body := apptest.Get(t, narrowed, app.URL+"/has-scope?scope=profile"); body != "true" {
		t.Errorf("HasScope(profile) = %s, want true", body)
	}
	app.P.Advance(time.Hour) // the access token expires: the next request refreshes
	res, body := apptest.Get(t, narrowed, app.URL+"/email", "Accept", "application/json")
	if res.StatusCode != http.StatusForbidden || app.P.Grants("refresh_token") != 1 {
		t.Errorf("GET /email after a refresh: %d (%s), %d refreshes; want 403 after 1", res.StatusCode, body, app.P.Grants("refresh_token"))
	}
	if res, _ := apptest.Get(t, narrowed, app.URL+"/me"); res.StatusCode != http.StatusOK {
		t.Errorf("GET /me: %d, want 200", res.StatusCode)
	}
}

// TestBearerProviders: with several providers a JWT is matched to its
// provider by iss, and an opaque token is introspected at each until one
// knows it; a token of an unknown issuer costs no request to anyone.
func TestBearerProviders(t *testing.T) {
	var clock apptest.Clock
	p1 := authtest.NewProvider(authtest.Config{})
	defer p1.Close()
	p2 := authtest.NewProvider(authtest.Config{})
	defer p2.Close()
	p3 := authtest.NewProvider(authtest.Config{})
	defer p3.Close()
	app := apptest.NewProviders(t, clock.Now, func(appURL string) []auth.Provider {
		return []auth.Provider{
			{Name: "one", Issuer: p1.URL, ClientID: p1.ClientID, ClientSecret: p1.ClientSecret},
			{Name: "two", Issuer: p2.URL, ClientID: p2.ClientID, ClientSecret: p2.ClientSecret},
		}
	}, func(c *auth.Config) { c.BearerAudiences = []string{"api"} })
	for _, tt := range []struct {
		name, tok, want string
	}{
		{"JWT of one", p1.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api"}), `"provider":"one"`},
		{"JWT of two", p2.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api"}), `"provider":"two"`},
		{"opaque of two", p2.AccessToken(authtest.AccessTokenOptions{Subject: "bob", Audience: "api", Opaque: true}), `"provider":"two"`},
	} {
		if res, body := bearerGet(t, api, app, "/me", tt.tok); res.StatusCode != http.StatusOK || !strings.Contains(body, tt.want) {
			t.Errorf("%s: GET /me: %d %s, want %s", tt.name, res.StatusCode, body, tt.want)
		}
	}
	p1.Reset()
	p2.Reset()
	res, _ := bearerGet(t, api, app, "/me", p3.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api"}))
	if res.StatusCode != http.StatusUnauthorized || len(p1.Requests())+len(p2.Requests()) != 0 {
		t.Errorf("a token of another issuer: %d, and %d requests to the providers; want 401 and none", res.StatusCode, len(p1.Requests())+len(p2.Requests()))
	}
}

// TestBearerEntra: a multi-tenant Entra ID provider, whose issuer depends
// on the tenant: the token is matched by the issuer template, and its
// tenant checked as for ID tokens.
func TestBearerEntra(t *testing.T) {
	op := authtest.NewProvider(authtest.Config{})
	defer op.Close()
	entra := newFakeEntra(t, op)
	app := apptest.NewProviders(t, op.Now, func(appURL string) []auth.Provider {
		return []auth.Provider{entra.provider("common", auth.MicrosoftOptions{AllowedTenants: []string{tenantA}})}
	}, func(c *auth.Config) { c.BearerAudiences = []string{"api://app"} })
	app.Serve(bearerRoutes(app))
	entraToken := func(tid, issTenant string) string {
		return op.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api://app", Type: "JWT",
			Claims: map[string]any{"iss": entra.URL + "/" + issTenant + "/v2.0", "tid": tid, "scp": "read"}})
	}
	for _, tt := range []struct {
		name   string
		tok    string
		status int
	}{
		{"allowed tenant", entraToken(tenantA, tenantA), 200},
		{"another tenant", entraToken(tenantB, tenantB), 401},
		{"iss of another tenant", entraToken(tenantA, tenantB), 401},
		{"iss is the template", entraToken(tenantA, "{tenantid}"), 401},
	} {
		if res, body := bearerGet(t, api, app, "/read", tt.tok); res.StatusCode != tt.status {
			t.Errorf("%s: GET /read: %d (%s), want %d", tt.name, res.StatusCode, body, tt.status)
		}
	}
}

func TestBearerConfig(t *testing.T) {
	p := authtest.NewProvider(authtest.Config{})
	defer p.Close()
	gh := newFakeGitHub(t, time.Now)
	testConfigs(t, auth.Config{Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret, RedirectURL: "http://127.0.0.1:1/auth/callback", CookieSecret: apptest.Secret}, []configCase{
		{"empty audience", func(c *auth.Config) { c.BearerAudiences = []string{"api", ""} }, "BearerAudiences[1] is empty"},
		{"plain OAuth 2.0 only", func(c *auth.Config) {
			c.Issuer, c.ClientID, c.ClientSecret = "", "", ""
			c.Providers, c.BearerAudiences = []auth.Provider{gh.provider()}, []string{"api"}
		}, "needs an OpenID Connect provider"},
	})
}

// TestBearerMetrics: Config.Metrics counts requests with a valid bearer
// token, and with a refused one.
func TestBearerMetrics(t *testing.T) {
	ev := &events{}
	app := newBearerApp(t, authtest.Config{}, func(c *auth.Config) { c.Metrics = ev.Add })
	tok := app.P.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api"})
	bearerGet(t, api, app, "/me", tok)
	bearerGet(t, api, app, "/me", tok)
	bearerGet(t, api, app, "/me", corruptSignature(tok))
	if b, r, s := ev.count(auth.EventBearer), ev.count(auth.EventBearerRefused), ev.count(auth.EventSession); b != 2 || r != 1 || s != 0 {
		t.Errorf("events: %d bearer, %d bearer_refused, %d session; want 2 bearer and 1 bearer_refused", b, r, s)
	}
}

// TestBearerRequireATJWT: with the option, only tokens typed at+jwt pass.
func TestBearerRequireATJWT(t *testing.T) {
	app := newBearerApp(t, authtest.Config{}, func(c *auth.Config) { c.BearerRequireATJWT = true })
	for _, tt := range []struct {
		typ  string
		want int
	}{{"at+jwt", 200}, {"application/AT+JWT", 200}, {"JWT", 401}} {
		tok := app.P.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api", Type: tt.typ})
		if res, _ := bearerGet(t, api, app, "/me", tok); res.StatusCode != tt.want {
			t.Errorf("typ %s: GET /me: %d, want %d", tt.typ, res.StatusCode, tt.want)
		}
	}
}

// TestBearerProviderDown: when the keys or the introspection endpoint
// cannot be had, the answer is 503 with Retry-After, not a verdict on the
// token, and it is not cached.
func TestBearerProviderDown(t *testing.T) {
	app := newBearerApp(t, authtest.Config{}, nil)
	p := app.P
	tok := p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api"})
	p.FailNext(authtest.Fault{JWKSStatus: http.StatusInternalServerError})
	res, _ := bearerGet(t, api, app, "/me", tok)
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Errorf("GET /me with the JWKS failing: %d, Retry-After %q; want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if res, _ := bearerGet(t, api, app, "/me", tok); res.StatusCode != http.StatusOK {
		t.Errorf("GET /me once the JWKS answers: %d, want 200", res.StatusCode)
	}
}

// BenchmarkBearer is the per-request cost of a JWT access token, beside
// BenchmarkBearer: a bare handler, a token seen before (warm: the cache),
// a token not seen before (first: two tokens alternate in a one-entry
// cache, so every request verifies), and go-jose's parsing and RS256
// verification of the same token alone, the floor of a first request.
//
//	go test -run '^$' -bench 'BenchmarkBearer|BenchmarkHandler' -benchmem -count 10 . | tee bench.txt
func BenchmarkBearer(b *testing.B) {
	p := authtest.NewProvider(authtest.Config{})
	defer p.Close()
	newM := func(b *testing.B) *auth.Middleware {
		return benchMiddleware(b, p, func(c *auth.Config) { c.BearerAudiences = []string{"https://api.example.com"} })
	}
	mint := func() string {
		return p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "https://api.example.com", Scope: "openid email profile read write", TTL: 24 * time.Hour})
	}
	toks := []string{mint(), mint()}
	run := func(b *testing.B, h http.Handler, toks ...string) {
		reqs := make([]*http.Request, len(toks))
		for i, tok := range toks {
			reqs[i] = benchRequest("/api/data", "application/json", "Authorization", "Bearer "+tok)
			h.ServeHTTP(&discardWriter{h: http.Header{}}, reqs[i]) // fetches the keys once
		}
		serveBench(b, h, reqs)
	}
	b.Run("bare", func(b *testing.B) { run(b, helloApp, toks[0]) })
	b.Run("jwt-warm", func(b *testing.B) { run(b, newM(b).Handler(helloApp), toks[0]) })
	b.Run("jwt-first", func(b *testing.B) {
		m := newM(b)
		auth.SetBearerCacheLimits(m, 1, 1<<20)
		run(b, m.Handler(helloApp), toks...)
	})
	b.Run("go-jose-verify", func(b *testing.B) {
		res, err := p.Client().Get(p.URL + "/jwks")
		if err != nil {
			b.Fatal(err)
		}
		var set jose.JSONWebKeySet
		err = json.NewDecoder(res.Body).Decode(&set)
		res.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		key := set.Keys[0]
		algs := []jose.SignatureAlgorithm{jose.RS256}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			jws, err := jose.ParseSignedCompact(toks[i%2], algs)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := jws.Verify(&key); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(len(toks[0])), "token-bytes")
}
