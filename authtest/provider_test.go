package authtest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
	"golang.org/x/oauth2"
)

const (
	redirectURI = "http://app.example/callback"
	// verifier and challenge are the PKCE example of RFC 7636 Appendix B.
	verifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

// newProvider starts a provider with redirectURI registered, closed by
// t.Cleanup.
func newProvider(t *testing.T, cfg authtest.Config) *authtest.Provider {
	t.Helper()
	cfg.RedirectURIs = append(cfg.RedirectURIs, redirectURI)
	p := authtest.NewProvider(cfg)
	t.Cleanup(p.Close)
	return p
}

// authParams returns a valid authorization request with PKCE and a
// nonce, changed by key, value pairs; an empty value deletes the key.
func authParams(p *authtest.Provider, kv ...string) url.Values {
	q := url.Values{
		"client_id":             {p.ClientID},
		"redirect_uri":          {redirectURI},
		"response_type":         {"code"},
		"scope":                 {"openid email profile"},
		"state":                 {"st"},
		"nonce":                 {"n0nce"},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}

// authorize sends the authorization request q with browser. It returns
// the response, its body, and the query of its Location (nil if none).
func authorize(t *testing.T, p *authtest.Provider, browser *http.Client, q url.Values) (*http.Response, string, url.Values) {
	t.Helper()
	res, body := apptest.Get(t, browser, p.URL+"/authorize?"+q.Encode())
	loc, err := res.Location()
	if err != nil {
		return res, body, nil
	}
	return res, body, loc.Query()
}

// code signs sub in with q and returns the authorization code.
func code(t *testing.T, p *authtest.Provider, sub string, q url.Values) string {
	t.Helper()
	res, body, params := authorize(t, p, p.Browser(t, sub), q)
	if res.StatusCode != http.StatusFound || params.Get("code") == "" {
		t.Fatalf("GET /authorize as %s: status %d, redirect %v, body %.200q; want 302 with a code", sub, res.StatusCode, params, body)
	}
	return params.Get("code")
}

// tokenResult is a token endpoint response, successful or not.
type tokenResult struct {
	Status           int         `json:"-"`
	Header           http.Header `json:"-"`
	AccessToken      string      `json:"access_token"`
	TokenType        string      `json:"token_type"`
	ExpiresIn        int         `json:"expires_in"`
	RefreshToken     string      `json:"refresh_token"`
	IDToken          string      `json:"id_token"`
	Scope            string      `json:"scope"`
	Error            string      `json:"error"`
	ErrorDescription string      `json:"error_description"`
}

// post sends form to the endpoint path (such as "/token"), with the
// client's credentials in Basic auth unless form has client_id.
func post(t *testing.T, p *authtest.Provider, path string, form url.Values) tokenResult {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if !form.Has("client_id") {
		req.SetBasicAuth(p.ClientID, p.ClientSecret)
	}
	res, body := apptest.Do(t, p.Client(), req)
	tr := tokenResult{Status: res.StatusCode, Header: res.Header}
	if body != "" {
		if err := json.Unmarshal([]byte(body), &tr); err != nil {
			t.Fatalf("POST %s: body %.200q: %v", path, body, err)
		}
	}
	return tr
}

// codeForm is the token request that redeems code from authParams.
func codeForm(code string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}, "code_verifier": {verifier}}
}

func refreshForm(refreshToken string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
}

// login signs sub in and redeems the code; it fails unless that works.
func login(t *testing.T, p *authtest.Provider, sub string, kv ...string) tokenResult {
	t.Helper()
	tr := post(t, p, "/token", codeForm(code(t, p, sub, authParams(p, kv...))))
	if tr.Status != http.StatusOK {
		t.Fatalf("POST /token (authorization_code): status %d, error %s (%s); want 200", tr.Status, tr.Error, tr.ErrorDescription)
	}
	return tr
}

// goOIDC discovers p with go-oidc, as a relying party does, and returns
// the context for its requests (through p's client), the provider, and
// its ID token verifier on p's clock.
func goOIDC(t *testing.T, p *authtest.Provider) (context.Context, *oidc.Provider, *oidc.IDTokenVerifier) {
	t.Helper()
	ctx := oidc.ClientContext(context.Background(), p.Client())
	op, err := oidc.NewProvider(ctx, p.URL)
	if err != nil {
		t.Fatalf("oidc.NewProvider: %v", err)
	}
	return ctx, op, op.Verifier(&oidc.Config{ClientID: p.ClientID, Now: p.Now})
}

// verify checks an ID token the way a relying party does, with go-oidc
// and the provider's clock.
func verify(t *testing.T, p *authtest.Provider, rawIDToken string) (*oidc.IDToken, error) {
	t.Helper()
	ctx, _, v := goOIDC(t, p)
	return v.Verify(ctx, rawIDToken)
}

// jwtPart decodes part i (0 header, 1 claims) of a JWT without
// verifying it.
func jwtPart(t *testing.T, jwt string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT has %d parts, want 3", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("decoding JWT part %d: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decoding JWT part %d: %v", i, err)
	}
	return m
}

// userinfo calls the userinfo endpoint with accessToken and returns the
// status and claims.
func userinfo(t *testing.T, p *authtest.Provider, accessToken string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.URL+"/userinfo", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	res, body := apptest.Do(t, p.Client(), req)
	var claims map[string]any
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &claims); err != nil {
			t.Fatalf("GET /userinfo: body %.200q: %v", body, err)
		}
	}
	return res, claims
}

// TestOAuth2Client runs a full login, userinfo call and refresh with a
// plain x/oauth2 and go-oidc client.
func TestOAuth2Client(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{})
	ctx, op, idVerifier := goOIDC(t, p)
	conf := oauth2.Config{
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		Endpoint:     op.Endpoint(),
		RedirectURL:  redirectURI,
		Scopes:       []string{oidc.ScopeOpenID, "email", "profile"},
	}

	pkce := oauth2.GenerateVerifier()
	res, _ := apptest.Get(t, p.Browser(t, "alice"), conf.AuthCodeURL("state-1", oauth2.S256ChallengeOption(pkce), oidc.Nonce("nonce-1")))
	loc, err := res.Location()
	if res.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("GET /authorize: status %d, Location error %v; want 302 with a Location", res.StatusCode, err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
		t.Errorf("GET /authorize: redirected to %s, want %s", got, redirectURI)
	}
	if got := loc.Query().Get("state"); got != "state-1" {
		t.Errorf("GET /authorize: state = %q, want %q", got, "state-1")
	}

	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := idVerifier.Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if idt.Subject != "alice" || idt.Nonce != "nonce-1" {
		t.Errorf("Verify: sub %q, nonce %q; want alice, nonce-1", idt.Subject, idt.Nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("VerifyAccessToken: %v", err)
	}
	var claims struct {
		Email    string `json:"email"`
		Verified bool   `json:"email_verified"`
		Name     string `json:"name"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatalf("Claims: %v", err)
	}
	if claims.Email != "alice@example.com" || !claims.Verified || claims.Name != "Alice Example" {
		t.Errorf("Claims: got %+v, want alice@example.com, verified, Alice Example", claims)
	}

	ui, err := op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("UserInfo: %v", err)
	}
	if ui.Subject != "alice" || ui.Email != "alice@example.com" {
		t.Errorf("UserInfo: sub %q, email %q; want alice, alice@example.com", ui.Subject, ui.Email)
	}

	// An empty access token makes the token source refresh.
	refreshed, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if refreshed.RefreshToken == "" || refreshed.RefreshToken == tok.RefreshToken {
		t.Errorf("refresh: got refresh token %q, want a new one", refreshed.RefreshToken)
	}
	rawID, _ = refreshed.Extra("id_token").(string)
	if idt, err := idVerifier.Verify(ctx, rawID); err != nil || idt.Subject != "alice" || idt.Nonce != "" {
		t.Errorf("Verify(refreshed ID token): sub %v, nonce %v, err %v; want alice, no nonce", idt.Subject, idt.Nonce, err)
	}
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if re := (*oauth2.RetrieveError)(nil); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("refresh with the old refresh token: got %v, want invalid_grant", err)
	}
	if got := p.Grants("authorization_code"); got != 1 {
		t.Errorf("Grants(authorization_code) = %d, want 1", got)
	}
	if got := p.Grants("refresh_token"); got != 1 {
		t.Errorf("Grants(refresh_token) = %d, want 1", got)
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		cfg  authtest.Config
		want map[string]any
	}{
		{"defaults", authtest.Config{}, map[string]any{
			"id_token_signing_alg_values_supported":          []any{"RS256"},
			"token_endpoint_auth_methods_supported":          []any{"client_secret_basic", "client_secret_post"},
			"authorization_response_iss_parameter_supported": nil,
		}},
		{"configured", authtest.Config{Host: "localhost", SigningAlg: "ES256", IssuerParameter: true, TokenAuthMethods: []string{"client_secret_basic", "none"}},
			map[string]any{
				"id_token_signing_alg_values_supported":          []any{"ES256", "RS256"},
				"token_endpoint_auth_methods_supported":          []any{"client_secret_basic", "none"},
				"revocation_endpoint_auth_methods_supported":     []any{"client_secret_basic", "none"},
				"authorization_response_iss_parameter_supported": true,
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, tt.cfg)
			res, body := apptest.Get(t, p.Client(), p.URL+"/.well-known/openid-configuration")
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("GET discovery: status %d, Content-Type %q; want 200, application/json", res.StatusCode, res.Header.Get("Content-Type"))
			}
			var doc map[string]any
			if err := json.Unmarshal([]byte(body), &doc); err != nil {
				t.Fatalf("GET discovery: %v", err)
			}
			want := map[string]any{
				"issuer":                               p.URL,
				"authorization_endpoint":               p.URL + "/authorize",
				"token_endpoint":                       p.URL + "/token",
				"userinfo_endpoint":                    p.URL + "/userinfo",
				"jwks_uri":                             p.URL + "/jwks",
				"end_session_endpoint":                 p.URL + "/end_session",
				"revocation_endpoint":                  p.URL + "/revoke",
				"response_types_supported":             []any{"code"},
				"subject_types_supported":              []any{"public"},
				"code_challenge_methods_supported":     []any{"S256"},
				"grant_types_supported":                []any{"authorization_code", "refresh_token"},
				"scopes_supported":                     []any{"openid", "email", "profile", "offline_access", "groups"},
				"backchannel_logout_supported":         true,
				"backchannel_logout_session_supported": true,
			}
			for k, v := range tt.want {
				want[k] = v
			}
			for k, v := range want {
				if got, _ := json.Marshal(doc[k]); string(got) != mustJSON(v) {
					t.Errorf("discovery %s: got %s, want %s", k, got, mustJSON(v))
				}
			}
			if tt.cfg.Host != "" && !strings.HasPrefix(p.URL, "http://"+tt.cfg.Host+":") {
				t.Errorf("URL = %s, want host %s", p.URL, tt.cfg.Host)
			}
			// go-oidc checks the issuer and finds the keys.
			tr := login(t, p, "bob")
			if _, err := verify(t, p, tr.IDToken); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestRequestsAndGrants(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{})
	tr := login(t, p, "alice")
	post(t, p, "/token", refreshForm(tr.RefreshToken))
	post(t, p, "/token", refreshForm("unknown")) // fails
	userinfo(t, p, tr.AccessToken)

	var got []string
	for _, r := range p.Requests() {
		got = append(got, r.Endpoint+" "+r.GrantType)
	}
	want := []string{"authorize ", "token authorization_code", "token refresh_token", "token refresh_token", "userinfo "}
	if !slices.Equal(got, want) {
		t.Errorf("Requests(): got %q, want %q", got, want)
	}
	reqs := p.Requests()
	if got := reqs[1].Form; got.Get("code") != "REDACTED" || got.Get("code_verifier") != "REDACTED" || got.Get("redirect_uri") != redirectURI {
		t.Errorf("Requests()[1].Form = %v, want code and code_verifier REDACTED, redirect_uri kept", got)
	}
	if got := reqs[2].Form.Get("refresh_token"); got != "REDACTED" {
		t.Errorf("Requests()[2].Form refresh_token = %q, want REDACTED", got)
	}
	if reqs[0].Time.IsZero() || reqs[0].Method != http.MethodGet {
		t.Errorf("Requests()[0]: Time %v, Method %q; want a time and GET", reqs[0].Time, reqs[0].Method)
	}
	for _, tt := range []struct {
		grantType string
		want      int
	}{
		{"authorization_code", 1},
		{"refresh_token", 1},
		{"password", 0},
	} {
		if got := p.Grants(tt.grantType); got != tt.want {
			t.Errorf("Grants(%s) = %d, want %d", tt.grantType, got, tt.want)
		}
	}

	p.Reset()
	if got := len(p.Requests()); got != 0 {
		t.Errorf("after Reset: len(Requests()) = %d, want 0", got)
	}
	if got := p.Grants("authorization_code"); got != 0 {
		t.Errorf("after Reset: Grants(authorization_code) = %d, want 0", got)
	}
	if res, _ := userinfo(t, p, tr.AccessToken); res.StatusCode != http.StatusOK {
		t.Errorf("after Reset: GET /userinfo status %d, want 200 (tokens stay)", res.StatusCode)
	}
}

// TestConcurrentUse is for -race: many clients refresh and call userinfo
// at once.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{Rotation: authtest.NoRotation, SigningAlg: "ES256"})
	tr := login(t, p, "alice")
	const n = 20
	status := func(method, path, body string) int {
		req, err := http.NewRequest(method, p.URL+path, strings.NewReader(body))
		if err != nil {
			return 0
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
		if path == "/token" {
			req.SetBasicAuth(p.ClientID, p.ClientSecret)
		}
		res, err := p.Client().Do(req)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	apptest.Concurrently(t, n, func(int) error {
		var errs []error
		if got := status("POST", "/token", refreshForm(tr.RefreshToken).Encode()); got != http.StatusOK {
			errs = append(errs, fmt.Errorf("POST /token (refresh_token): status %d, want 200", got))
		}
		if got := status("GET", "/userinfo", ""); got != http.StatusOK {
			errs = append(errs, fmt.Errorf("GET /userinfo: status %d, want 200", got))
		}
		p.Advance(time.Millisecond)
		p.Requests()
		return errors.Join(errs...)
	})
	if got := p.Grants("refresh_token"); got != n {
		t.Errorf("Grants(refresh_token) = %d, want %d", got, n)
	}
}

// TestEmptyParametersAreOmitted: "Parameters sent without a value MUST be
// treated as if they were omitted from the request" (RFC 6749 §3.1,
// §3.2), at every endpoint.
func TestEmptyParametersAreOmitted(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{SigningAlg: "ES256", PostLogoutRedirectURIs: []string{"http://app.example/bye"}})
	t.Run("authorize", func(t *testing.T) {
		for _, k := range []string{"state", "response_mode", "request", "request_uri", "prompt", "max_age", "login_hint", "nonce"} {
			q := authParams(p)
			q.Set(k, "")
			res, body, params := authorize(t, p, p.Browser(t, "alice"), q)
			if res.StatusCode != http.StatusFound || params.Get("code") == "" {
				t.Errorf("GET /authorize with %s=: status %d, redirect %v, body %.100q; want 302 with a code", k, res.StatusCode, params, body)
			}
			if k == "state" && params.Has("state") {
				t.Errorf("GET /authorize with state=: redirect has state=%q, want none", params.Get("state"))
			}
		}
	})
	t.Run("token", func(t *testing.T) {
		form := codeForm(code(t, p, "alice", authParams(p)))
		form.Set("code", "")
		checkTokenResult(t, "POST /token with code=", post(t, p, "/token", form), "invalid_request")

		tr := login(t, p, "alice")
		form = refreshForm(tr.RefreshToken)
		form.Set("scope", "")
		if got := post(t, p, "/token", form); got.Status != http.StatusOK || got.Scope != "openid email profile" {
			t.Errorf("POST /token (refresh_token) with scope=: status %d %s, scope %q; want 200 with the granted scope", got.Status, got.Error, got.Scope)
		}

		form = codeForm(code(t, p, "alice", authParams(p)))
		form.Set("client_secret", "")
		req, err := http.NewRequest(http.MethodPost, p.URL+"/token", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(p.ClientID, p.ClientSecret)
		if res, body := apptest.Do(t, p.Client(), req); res.StatusCode != http.StatusOK {
			t.Errorf("POST /token with Basic and client_secret=: status %d %.200q, want 200", res.StatusCode, body)
		}
	})
	t.Run("end_session", func(t *testing.T) {
		hint := login(t, p, "alice").IDToken
		q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"http://app.example/bye"}, "state": {""}, "client_id": {""}}
		res, body := apptest.Get(t, p.Browser(t, "alice"), p.URL+"/end_session?"+q.Encode())
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusFound || loc != "http://app.example/bye" {
			t.Errorf("GET /end_session with state= and client_id=: status %d, Location %q, body %.200q; want 302 to http://app.example/bye", res.StatusCode, loc, body)
		}
	})
}
