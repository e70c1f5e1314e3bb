package authtest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
	jose "github.com/go-jose/go-jose/v4"
)

// introspect posts token to the introspection endpoint with the client's
// credentials and returns the status and the decoded answer.
func introspect(t *testing.T, p *authtest.Provider, token string, basic bool) (int, map[string]any) {
	t.Helper()
	form := url.Values{"token": {token}}
	req, _ := http.NewRequest(http.MethodPost, p.URL+"/introspect", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(p.ClientID, p.ClientSecret)
	}
	res, body := apptest.Do(t, p.Client(), req)
	var answer map[string]any
	if err := json.Unmarshal([]byte(body), &answer); err != nil {
		t.Fatalf("POST /introspect: %q: %v", body, err)
	}
	return res.StatusCode, answer
}

func TestAccessTokenJWT(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{})
	tok := p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api", Scope: "read email",
		Claims: map[string]any{"client_id": nil, "extra": "x"}})
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Header
	if h.ExtraHeaders["typ"] != "at+jwt" || h.KeyID == "" {
		t.Errorf("header typ %v, kid %q; want at+jwt and the key's ID", h.ExtraHeaders["typ"], h.KeyID)
	}
	var verified []byte
	for _, k := range jwks(t, p) {
		var key jose.JSONWebKey
		b, _ := json.Marshal(k)
		if json.Unmarshal(b, &key) == nil && key.KeyID == h.KeyID {
			verified, err = jws.Verify(key)
		}
	}
	if verified == nil || err != nil {
		t.Fatalf("the token does not verify with the JWKS: %v", err)
	}
	var c map[string]any
	json.Unmarshal(verified, &c)
	now := p.Now().Unix()
	if c["iss"] != p.URL || c["sub"] != "alice" || c["aud"] != "api" || c["scope"] != "read email" || c["email"] != "alice@example.com" ||
		c["name"] != nil || c["jti"] == "" || c["extra"] != "x" || c["client_id"] != nil ||
		int64(c["iat"].(float64)) < now-5 || int64(c["exp"].(float64)) != int64(c["iat"].(float64))+3600 {
		t.Errorf("claims %v: want RFC 9068's, alice's email (scope email, not profile), and the edits", c)
	}
	if code, a := introspect(t, p, tok, true); code != http.StatusOK || a["active"] != false {
		t.Errorf("introspection of a JWT: %d %v, want inactive (it knows opaque tokens only)", code, a)
	}
}

func TestAccessTokenOpaque(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{TokenAuthMethods: []string{"client_secret_basic"}})
	tok := p.AccessToken(authtest.AccessTokenOptions{Subject: "bob", Audience: "api", Scope: "read profile", Opaque: true, TTL: time.Minute,
		Claims: map[string]any{"extra": 1}})
	if strings.Count(tok, ".") != 0 {
		t.Errorf("opaque token %q looks like a JWT", tok)
	}
	code, a := introspect(t, p, tok, true)
	if code != http.StatusOK || a["active"] != true || a["sub"] != "bob" || a["scope"] != "read profile" || a["iss"] != p.URL ||
		a["client_id"] != p.ClientID || a["token_type"] != "Bearer" || a["name"] != "Bob Example" || a["extra"] != 1.0 {
		t.Errorf("introspection: %d %v; want bob's active token", code, a)
	}
	if aud, _ := a["aud"].([]any); len(aud) != 1 || aud[0] != "api" {
		t.Errorf("introspection aud = %v, want [api]", a["aud"])
	}
	if code, _ := introspect(t, p, tok, false); code != http.StatusBadRequest {
		t.Errorf("introspection without client authentication: %d, want 400", code)
	}
	if reqs := p.Requests(); reqs[len(reqs)-1].Endpoint != "introspect" || reqs[len(reqs)-1].Form.Get("token") != "REDACTED" {
		t.Errorf("request log: %+v, want the introspect request with its token redacted", reqs[len(reqs)-1])
	}
	p.Advance(time.Minute)
	if _, a := introspect(t, p, tok, true); len(a) != 1 || a["active"] != false {
		t.Errorf("introspection of an expired token: %v, want only active false", a)
	}

	tok = p.AccessToken(authtest.AccessTokenOptions{Subject: "bob", Opaque: true})
	if _, a := introspect(t, p, tok, true); a["active"] != true {
		t.Fatalf("introspection: %v, want active", a)
	}
	p.RevokeUser("bob")
	if _, a := introspect(t, p, tok, true); a["active"] != false {
		t.Errorf("introspection of a revoked token: %v, want inactive", a)
	}
}

// TestIntrospectLogin: the tokens of a login introspect too; its refresh
// token is marked as one.
func TestIntrospectLogin(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{})
	tr := login(t, p, "alice")
	_, a := introspect(t, p, tr.AccessToken, true)
	if aud, _ := a["aud"].([]any); a["active"] != true || a["token_use"] != "access_token" || len(aud) != 1 || aud[0] != p.ClientID || a["email"] != "alice@example.com" {
		t.Errorf("introspection of a login's access token: %v, want active for the client, with alice's email", a)
	}
	if _, a := introspect(t, p, tr.RefreshToken, true); a["active"] != true || a["token_use"] != "refresh_token" || a["token_type"] != nil {
		t.Errorf("introspection of a refresh token: %v, want active, token_use refresh_token", a)
	}
	if _, a := introspect(t, p, tr.IDToken, true); a["active"] != false {
		t.Errorf("introspection of an ID token: %v, want inactive", a)
	}
}

// TestTokenScopeFault: a provider that grants less than asked says so in
// the token response, and its refreshes grant no more.
func TestTokenScopeFault(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{})
	p.FailNext(authtest.Fault{TokenScope: "openid profile"})
	tr := login(t, p, "alice")
	if tr.Scope != "openid profile" {
		t.Errorf("token response scope %q, want openid profile", tr.Scope)
	}
	if _, a := introspect(t, p, tr.AccessToken, true); a["scope"] != "openid profile" || a["email"] != nil {
		t.Errorf("introspection: %v, want scope openid profile and no email", a)
	}
	rt := post(t, p, "/token", refreshForm(tr.RefreshToken))
	if rt.Scope != "openid profile" {
		t.Errorf("refresh response scope %q, want openid profile", rt.Scope)
	}
	if rt := post(t, p, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt.RefreshToken}, "scope": {"openid email"}}); rt.Error != "invalid_scope" {
		t.Errorf("refresh asking for email: %+v, want invalid_scope", rt)
	}
}

func TestAccessTokenPanics(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{})
	defer func() {
		if recover() == nil {
			t.Error("AccessToken without Subject did not panic")
		}
	}()
	p.AccessToken(authtest.AccessTokenOptions{})
}
