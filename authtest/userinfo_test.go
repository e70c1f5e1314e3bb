package authtest_test

import (
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

func TestIDTokenClaims(t *testing.T) {
	t.Parallel()
	users := authtest.Users()
	users[0].Extra = map[string]any{"tenant": "acme", "sub": "mallory"}
	p := newProvider(t, authtest.Config{Users: users})
	start := p.Now().Unix()
	tr := login(t, p, "alice", "scope", "openid email profile groups")

	header := jwtPart(t, tr.IDToken, 0)
	if header["typ"] != "JWT" || header["alg"] != "RS256" || header["kid"] == nil {
		t.Errorf("ID token header = %v, want typ JWT, alg RS256 and a kid", header)
	}
	idt, err := verify(t, p, tr.IDToken)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := idt.VerifyAccessToken(tr.AccessToken); err != nil {
		t.Errorf("VerifyAccessToken (at_hash): %v", err)
	}
	claims := jwtPart(t, tr.IDToken, 1)
	iat, _ := claims["iat"].(float64)
	if int64(iat) < start || int64(iat) > start+5 || claims["exp"] != iat+3600 || claims["auth_time"] != iat {
		t.Errorf("ID token iat %v, exp %v, auth_time %v; want iat about %d, exp iat+3600, auth_time iat", claims["iat"], claims["exp"], claims["auth_time"], start)
	}
	for k, want := range map[string]any{
		"iss":            p.URL,
		"sub":            "alice",
		"aud":            p.ClientID,
		"azp":            p.ClientID,
		"nonce":          "n0nce",
		"email":          "alice@example.com",
		"email_verified": true,
		"name":           "Alice Example",
		"picture":        "https://example.com/avatars/alice.png",
		"groups":         []any{"admins", "users"},
		"tenant":         "acme",
	} {
		if got := claims[k]; mustJSON(got) != mustJSON(want) {
			t.Errorf("ID token %s = %v, want %v", k, got, want)
		}
	}
	if sid, _ := claims["sid"].(string); sid == "" {
		t.Errorf("ID token sid = %v, want a session id", claims["sid"])
	}

	// A refresh keeps sub, auth_time and sid, drops the nonce.
	p.Advance(time.Hour)
	refreshed := jwtPart(t, post(t, p, "/token", refreshForm(tr.RefreshToken)).IDToken, 1)
	for _, k := range []string{"iss", "sub", "aud", "auth_time", "sid", "email"} {
		if refreshed[k] != claims[k] && mustJSON(refreshed[k]) != mustJSON(claims[k]) {
			t.Errorf("refreshed ID token %s = %v, want %v", k, refreshed[k], claims[k])
		}
	}
	if _, ok := refreshed["nonce"]; ok {
		t.Errorf("refreshed ID token nonce = %v, want none", refreshed["nonce"])
	}
	if got, _ := refreshed["iat"].(float64); got < iat+3600 {
		t.Errorf("refreshed ID token iat = %v, want at least %v", got, iat+3600)
	}
}

func TestScopes(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{SigningAlg: "ES256"})
	for _, tt := range []struct {
		scope string
		want  []string
	}{
		{"openid", nil},
		{"openid email", []string{"email", "email_verified"}},
		{"openid profile", []string{"name", "picture"}},
		{"openid groups", []string{"groups"}},
	} {
		tr := login(t, p, "bob", "scope", tt.scope)
		if got := userClaimNames(t, tr.IDToken); !slices.Equal(got, tt.want) {
			t.Errorf("ID token for scope %q: user claims %q, want %q", tt.scope, got, tt.want)
		}
		_, claims := userinfo(t, p, tr.AccessToken)
		delete(claims, "sub")
		if got := slices.Sorted(maps.Keys(claims)); !slices.Equal(got, tt.want) {
			t.Errorf("userinfo for scope %q: claims %q, want %q", tt.scope, got, tt.want)
		}
	}
}

func TestUserinfo(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{SigningAlg: "ES256"})
	tr := login(t, p, "bob")
	noOpenID := post(t, p, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "scope": {"email"}})
	expired := login(t, p, "bob")
	for _, tt := range []struct {
		name          string
		req           func() *http.Request
		wantStatus    int
		wantChallenge string // in WWW-Authenticate
	}{
		{"GET", func() *http.Request { return bearerRequest(http.MethodGet, p.URL+"/userinfo", tr.AccessToken) }, http.StatusOK, ""},
		{"POST", func() *http.Request { return bearerRequest(http.MethodPost, p.URL+"/userinfo", tr.AccessToken) }, http.StatusOK, ""},
		{"POST form", func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, p.URL+"/userinfo", strings.NewReader("access_token="+tr.AccessToken))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, http.StatusOK, ""},
		{"no token", func() *http.Request { r, _ := http.NewRequest(http.MethodGet, p.URL+"/userinfo", nil); return r }, http.StatusUnauthorized, "Bearer"},
		{"unknown token", func() *http.Request { return bearerRequest(http.MethodGet, p.URL+"/userinfo", "nope") }, http.StatusUnauthorized, `error="invalid_token"`},
		{"refresh token", func() *http.Request { return bearerRequest(http.MethodGet, p.URL+"/userinfo", tr.RefreshToken) }, http.StatusUnauthorized, `error="invalid_token"`},
		{"no openid scope", func() *http.Request { return bearerRequest(http.MethodGet, p.URL+"/userinfo", noOpenID.AccessToken) }, http.StatusForbidden, `error="insufficient_scope"`},
		{"expired token", func() *http.Request {
			p.Advance(time.Hour)
			return bearerRequest(http.MethodGet, p.URL+"/userinfo", expired.AccessToken)
		}, http.StatusUnauthorized, `error="invalid_token"`},
	} {
		req := tt.req()
		res, body := apptest.Do(t, p.Client(), req)
		if res.StatusCode != tt.wantStatus {
			t.Errorf("%s /userinfo (%s): status %d, want %d", req.Method, tt.name, res.StatusCode, tt.wantStatus)
		}
		if got := res.Header.Get("WWW-Authenticate"); !strings.Contains(got, tt.wantChallenge) || (tt.wantChallenge == "") != (got == "") {
			t.Errorf("%s /userinfo (%s): WWW-Authenticate %q, want %q", req.Method, tt.name, got, tt.wantChallenge)
		}
		if tt.wantStatus == http.StatusOK && (!strings.Contains(body, `"sub":"bob"`) || res.Header.Get("Content-Type") != "application/json") {
			t.Errorf("%s /userinfo (%s): body %.200q, Content-Type %q; want JSON with sub bob", req.Method, tt.name, body, res.Header.Get("Content-Type"))
		}
	}
}

func bearerRequest(method, url, token string) *http.Request {
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		panic(err)
	}
	r.Header.Set("Authorization", "Bearer "+token)
	return r
}
