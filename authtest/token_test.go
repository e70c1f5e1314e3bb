package authtest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

func TestCodeGrantErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		authorize []string // changes to authParams
		edit      func(form url.Values)
		advance   time.Duration // between authorize and token
		wantError string        // "" for success
	}{
		{name: "valid"},
		{name: "wrong redirect_uri", edit: func(f url.Values) { f.Set("redirect_uri", "http://app.example/other") }, wantError: "invalid_grant"},
		{name: "no redirect_uri", edit: func(f url.Values) { f.Del("redirect_uri") }, wantError: "invalid_grant"},
		{name: "bad verifier", edit: func(f url.Values) { f.Set("code_verifier", strings.Repeat("a", 43)) }, wantError: "invalid_grant"},
		{name: "short verifier", edit: func(f url.Values) { f.Set("code_verifier", "abc") }, wantError: "invalid_grant"},
		{name: "no verifier", edit: func(f url.Values) { f.Del("code_verifier") }, wantError: "invalid_grant"},
		{name: "verifier without challenge", authorize: []string{"code_challenge", "", "code_challenge_method", ""}, wantError: "invalid_grant"},
		{name: "no PKCE", authorize: []string{"code_challenge", "", "code_challenge_method", ""}, edit: func(f url.Values) { f.Del("code_verifier") }},
		{name: "unknown code", edit: func(f url.Values) { f.Set("code", "nope") }, wantError: "invalid_grant"},
		{name: "no code", edit: func(f url.Values) { f.Del("code") }, wantError: "invalid_request"},
		{name: "almost expired code", advance: 59 * time.Second},
		{name: "expired code", advance: time.Minute, wantError: "invalid_grant"},
		{name: "no grant_type", edit: func(f url.Values) { f.Del("grant_type") }, wantError: "invalid_request"},
		{name: "grant_type password", edit: func(f url.Values) { f.Set("grant_type", "password") }, wantError: "unsupported_grant_type"},
		{name: "repeated parameter", edit: func(f url.Values) { f.Add("code_verifier", verifier) }, wantError: "invalid_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, authtest.Config{SigningAlg: "ES256"})
			form := codeForm(code(t, p, "alice", authParams(p, tt.authorize...)))
			if tt.edit != nil {
				tt.edit(form)
			}
			p.Advance(tt.advance)
			tr := post(t, p, "/token", form)
			checkTokenResult(t, "POST /token", tr, tt.wantError)
			if tt.wantError == "" && tr.IDToken == "" {
				t.Errorf("POST /token: no id_token")
			}
		})
	}
}

// checkTokenResult checks that tr is a success if wantError is "", or
// else a 400 with that error.
func checkTokenResult(t *testing.T, call string, tr tokenResult, wantError string) {
	t.Helper()
	switch {
	case wantError == "" && (tr.Status != http.StatusOK || tr.AccessToken == "" || tr.TokenType != "Bearer"):
		t.Errorf("%s: status %d, error %s (%s); want 200 with a Bearer access token", call, tr.Status, tr.Error, tr.ErrorDescription)
	case wantError != "" && (tr.Status != http.StatusBadRequest || tr.Error != wantError || tr.ErrorDescription == ""):
		t.Errorf("%s: status %d, error %q (%s); want 400 %s with a description", call, tr.Status, tr.Error, tr.ErrorDescription, wantError)
	}
	if got := tr.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("%s: Cache-Control %q, want no-store", call, got)
	}
	if got := tr.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", call, got)
	}
}

func TestCodeReplay(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{SigningAlg: "ES256"})
	form := codeForm(code(t, p, "alice", authParams(p)))
	first := post(t, p, "/token", form)
	checkTokenResult(t, "POST /token", first, "")
	checkTokenResult(t, "POST /token (same code)", post(t, p, "/token", form), "invalid_grant")
	// RFC 6749 §4.1.2: the tokens of the first use are revoked.
	if res, _ := userinfo(t, p, first.AccessToken); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /userinfo with the first access token: status %d, want 401", res.StatusCode)
	}
	checkTokenResult(t, "POST /token (first refresh token)", post(t, p, "/token", refreshForm(first.RefreshToken)), "invalid_grant")
}

func TestClientAuth(t *testing.T) {
	t.Parallel()
	const secret = "s3:cr/t+ü%" // needs form-encoding inside Basic
	for _, tt := range []struct {
		name       string
		methods    []string
		auth       func(r *http.Request, form url.Values)
		wantStatus int
		wantError  string
	}{
		{name: "basic", auth: basic("test-client", secret), wantStatus: http.StatusOK},
		{name: "post", auth: postAuth("test-client", secret), wantStatus: http.StatusOK},
		{name: "basic, wrong secret", auth: basic("test-client", "wrong"), wantStatus: http.StatusUnauthorized, wantError: "invalid_client"},
		{name: "post, wrong secret", auth: postAuth("test-client", "wrong"), wantStatus: http.StatusBadRequest, wantError: "invalid_client"},
		{name: "basic, not form-encoded", auth: func(r *http.Request, _ url.Values) { r.SetBasicAuth("test-client", secret) }, wantStatus: http.StatusUnauthorized, wantError: "invalid_client"},
		{name: "basic, unknown client", auth: basic("other", secret), wantStatus: http.StatusUnauthorized, wantError: "invalid_client"},
		{name: "no credentials", auth: func(*http.Request, url.Values) {}, wantStatus: http.StatusBadRequest, wantError: "invalid_client"},
		{name: "basic and post", auth: both, wantStatus: http.StatusBadRequest, wantError: "invalid_request"},
		{name: "basic, only post allowed", methods: []string{"client_secret_post"}, auth: basic("test-client", secret), wantStatus: http.StatusUnauthorized, wantError: "invalid_client"},
		{name: "basic, wrong secret, only post allowed", methods: []string{"client_secret_post"}, auth: basic("test-client", "wrong"), wantStatus: http.StatusUnauthorized, wantError: "invalid_client"},
		{name: "post, only basic allowed", methods: []string{"client_secret_basic"}, auth: postAuth("test-client", secret), wantStatus: http.StatusBadRequest, wantError: "invalid_client"},
		{name: "post, wrong secret, only post allowed", methods: []string{"client_secret_post"}, auth: postAuth("test-client", "wrong"), wantStatus: http.StatusBadRequest, wantError: "invalid_client"},
		{name: "public client", methods: []string{"none"}, auth: postAuth("test-client", ""), wantStatus: http.StatusOK},
		{name: "public client, not allowed", auth: postAuth("test-client", ""), wantStatus: http.StatusBadRequest, wantError: "invalid_client"},
		{name: "public client, unknown", methods: []string{"none"}, auth: postAuth("other", ""), wantStatus: http.StatusBadRequest, wantError: "invalid_client"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, authtest.Config{ClientSecret: secret, TokenAuthMethods: tt.methods, SigningAlg: "ES256"})
			form := codeForm(code(t, p, "alice", authParams(p)))
			req, err := http.NewRequest(http.MethodPost, p.URL+"/token", nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.auth(req, form)
			body := form.Encode()
			req.Body, req.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, resBody := apptest.Do(t, p.Client(), req)
			if res.StatusCode != tt.wantStatus || !strings.Contains(resBody, tt.wantError) {
				t.Errorf("POST /token: status %d, body %.200q; want %d %s", res.StatusCode, resBody, tt.wantStatus, tt.wantError)
			}
			// RFC 9110 §15.5.2: a 401 carries a challenge; RFC 6749
			// §5.2: one for the scheme the client used, Basic.
			if got := res.Header.Get("WWW-Authenticate"); (res.StatusCode == http.StatusUnauthorized) != strings.HasPrefix(got, "Basic ") {
				t.Errorf("POST /token: status %d, WWW-Authenticate %q; want a Basic challenge with 401 only", res.StatusCode, got)
			}
		})
	}
}

func basic(id, secret string) func(*http.Request, url.Values) {
	return func(r *http.Request, _ url.Values) { r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret)) }
}

func postAuth(id, secret string) func(*http.Request, url.Values) {
	return func(_ *http.Request, form url.Values) {
		form.Set("client_id", id)
		if secret != "" {
			form.Set("client_secret", secret)
		}
	}
}

func both(r *http.Request, form url.Values) {
	basic("test-client", "s3:cr/t+ü%")(r, form)
	postAuth("test-client", "s3:cr/t+ü%")(r, form)
}

func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	type step struct {
		advance   time.Duration
		use       int    // index of the refresh token to use: 0 from the login, then one per step that returned one
		wantError string // "" for success
		wantNew   bool   // a new refresh token in the response
	}
	for _, tt := range []struct {
		name  string
		mode  authtest.RotationMode
		steps []step
	}{
		{"Rotate", authtest.Rotate, []step{
			{use: 0, wantNew: true},
			{use: 1, wantNew: true},
			{use: 2, advance: 24 * time.Hour, wantError: "invalid_grant"}, // expired
		}},
		{"Rotate, reuse", authtest.Rotate, []step{
			{use: 0, wantNew: true},
			{use: 0, wantError: "invalid_grant"},
			{use: 1, wantError: "invalid_grant"}, // revoked with the grant
		}},
		{"RotateWithGrace", authtest.RotateWithGrace, []step{
			{use: 0, wantNew: true},
			{use: 0, advance: 9 * time.Second, wantNew: true}, // within the grace period: a fresh pair
			{use: 0, advance: 2 * time.Second, wantError: "invalid_grant"},
			{use: 1, wantNew: true}, // first use of this one
			{use: 2, wantNew: true},
		}},
		{"NoRotation", authtest.NoRotation, []step{
			{use: 0},
			{use: 0},
			{use: 0, advance: 23 * time.Hour},
			{use: 0, advance: time.Hour, wantError: "invalid_grant"}, // expired
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, authtest.Config{Rotation: tt.mode, SigningAlg: "ES256"})
			refreshTokens := []string{login(t, p, "alice").RefreshToken}
			wantGrants := 0
			for i, s := range tt.steps {
				p.Advance(s.advance)
				tr := post(t, p, "/token", refreshForm(refreshTokens[s.use]))
				call := fmt.Sprintf("step %d: POST /token (refresh_token)", i)
				checkTokenResult(t, call, tr, s.wantError)
				if s.wantError == "" {
					wantGrants++
					if tr.IDToken == "" {
						t.Errorf("%s: no id_token", call)
					}
				}
				if got := tr.RefreshToken != ""; got != s.wantNew {
					t.Errorf("%s: got refresh token %v, want %v", call, got, s.wantNew)
				}
				if tr.RefreshToken != "" {
					if slices.Contains(refreshTokens, tr.RefreshToken) {
						t.Errorf("%s: refresh token issued before", call)
					}
					refreshTokens = append(refreshTokens, tr.RefreshToken)
				}
			}
			if got := p.Grants("refresh_token"); got != wantGrants {
				t.Errorf("Grants(refresh_token) = %d, want %d", got, wantGrants)
			}
		})
	}
}

func TestRefreshScope(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{SigningAlg: "ES256"})
	rt := login(t, p, "alice", "scope", "openid email profile").RefreshToken
	for _, tt := range []struct {
		scope      string
		wantError  string
		wantScope  string
		wantClaims []string // in the ID token, besides the protocol claims
	}{
		{scope: "", wantScope: "openid email profile", wantClaims: []string{"email", "email_verified", "name", "picture"}},
		{scope: "openid email", wantScope: "openid email", wantClaims: []string{"email", "email_verified"}},
		{scope: "email", wantScope: "email"}, // no openid: no ID token
		{scope: "openid groups", wantError: "invalid_scope"},
	} {
		form := refreshForm(rt)
		if tt.scope != "" {
			form.Set("scope", tt.scope)
		}
		tr := post(t, p, "/token", form)
		call := "POST /token (refresh_token, scope " + tt.scope + ")"
		checkTokenResult(t, call, tr, tt.wantError)
		if tt.wantError != "" {
			continue
		}
		rt = tr.RefreshToken
		if tr.Scope != tt.wantScope {
			t.Errorf("%s: scope %q, want %q", call, tr.Scope, tt.wantScope)
		}
		if got := userClaimNames(t, tr.IDToken); !slices.Equal(got, tt.wantClaims) {
			t.Errorf("%s: ID token user claims %q, want %q", call, got, tt.wantClaims)
		}
	}
}

// userClaimNames returns the sorted names of the user claims (those
// beyond sub and the protocol claims) of an ID token, or nil if there is
// no ID token.
func userClaimNames(t *testing.T, idToken string) []string {
	t.Helper()
	if idToken == "" {
		return nil
	}
	var names []string
	for k := range jwtPart(t, idToken, 1) {
		switch k {
		case "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "azp", "at_hash", "sid":
		default:
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}

func TestOfflineAccessOnly(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{OfflineAccessOnly: true, SigningAlg: "ES256"})
	for _, tt := range []struct {
		scope string
		want  bool
	}{
		{"openid email", false},
		{"openid email offline_access", true},
	} {
		if got := login(t, p, "alice", "scope", tt.scope).RefreshToken != ""; got != tt.want {
			t.Errorf("POST /token after scope %q: got refresh token %v, want %v", tt.scope, got, tt.want)
		}
	}
}

func TestRevocation(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{SigningAlg: "ES256"})
	for _, tt := range []struct {
		name          string
		form          func(tr tokenResult) url.Values
		wantStatus    int
		wantUserinfo  int // status of userinfo with the access token afterwards
		wantRefreshOK bool
	}{
		{"access token", func(tr tokenResult) url.Values {
			return url.Values{"token": {tr.AccessToken}, "token_type_hint": {"access_token"}}
		}, http.StatusOK, http.StatusUnauthorized, true},
		{"refresh token", func(tr tokenResult) url.Values {
			return url.Values{"token": {tr.RefreshToken}, "token_type_hint": {"refresh_token"}}
		}, http.StatusOK, http.StatusUnauthorized, false},
		{"refresh token, wrong hint", func(tr tokenResult) url.Values {
			return url.Values{"token": {tr.RefreshToken}, "token_type_hint": {"access_token"}}
		}, http.StatusOK, http.StatusUnauthorized, false},
		{"unknown token", func(tr tokenResult) url.Values {
			return url.Values{"token": {"nope"}}
		}, http.StatusOK, http.StatusOK, true},
		{"no token", func(tr tokenResult) url.Values {
			return url.Values{}
		}, http.StatusBadRequest, http.StatusOK, true},
		{"wrong secret", func(tr tokenResult) url.Values {
			return url.Values{"token": {tr.RefreshToken}, "client_id": {p.ClientID}, "client_secret": {"wrong"}}
		}, http.StatusBadRequest, http.StatusOK, true},
	} {
		tr := login(t, p, "alice")
		before := p.Revocations()
		if got := post(t, p, "/revoke", tt.form(tr)); got.Status != tt.wantStatus {
			t.Errorf("POST /revoke (%s): status %d (%s), want %d", tt.name, got.Status, got.Error, tt.wantStatus)
		}
		wantCount := before
		if tt.wantStatus == http.StatusOK {
			wantCount++
		}
		if got := p.Revocations(); got != wantCount {
			t.Errorf("after POST /revoke (%s): Revocations() = %d, want %d", tt.name, got, wantCount)
		}
		if res, _ := userinfo(t, p, tr.AccessToken); res.StatusCode != tt.wantUserinfo {
			t.Errorf("after POST /revoke (%s): GET /userinfo status %d, want %d", tt.name, res.StatusCode, tt.wantUserinfo)
		}
		if got := post(t, p, "/token", refreshForm(tr.RefreshToken)).Status == http.StatusOK; got != tt.wantRefreshOK {
			t.Errorf("after POST /revoke (%s): refresh succeeded %v, want %v", tt.name, got, tt.wantRefreshOK)
		}
	}
}

func TestRevokeUser(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{SigningAlg: "ES256"})
	alice, alice2, bob := login(t, p, "alice"), login(t, p, "alice"), login(t, p, "bob")
	p.RevokeUser("alice")
	aliceAgain := login(t, p, "alice")
	for _, tt := range []struct {
		name string
		tr   tokenResult
		want bool
	}{
		{"alice", alice, false},
		{"alice, second login", alice2, false},
		{"bob", bob, true},
		{"alice, after RevokeUser", aliceAgain, true},
	} {
		if res, _ := userinfo(t, p, tt.tr.AccessToken); (res.StatusCode == http.StatusOK) != tt.want {
			t.Errorf("GET /userinfo (%s): status %d, want success %v", tt.name, res.StatusCode, tt.want)
		}
		if got := post(t, p, "/token", refreshForm(tt.tr.RefreshToken)); (got.Status == http.StatusOK) != tt.want {
			t.Errorf("POST /token (refresh_token, %s): status %d %s, want success %v", tt.name, got.Status, got.Error, tt.want)
		}
	}
}

// TestRefreshReuse: with strict rotation, a used refresh token presented
// again revokes every token of its grant, as RFC 9700 §4.14.2 advises; a
// stolen token is then worthless to the thief and to the client alike.
// With RotateWithGrace, a reuse within the grace period is a retry and
// revokes nothing; after it, it fails alone.
func TestRefreshReuse(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name        string
		mode        authtest.RotationMode
		advance     time.Duration // before the reuse
		wantReuse   string        // error of the reuse; "" success
		wantRevoked bool          // the newer tokens of the grant
	}{
		{"Rotate", authtest.Rotate, 0, "invalid_grant", true},
		{"RotateWithGrace, within grace", authtest.RotateWithGrace, 5 * time.Second, "", false},
		{"RotateWithGrace, after grace", authtest.RotateWithGrace, time.Minute, "invalid_grant", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, authtest.Config{Rotation: tt.mode, SigningAlg: "ES256"})
			first, other := login(t, p, "alice"), login(t, p, "alice")
			second := post(t, p, "/token", refreshForm(first.RefreshToken))
			checkTokenResult(t, "POST /token (refresh_token)", second, "")
			p.Advance(tt.advance)
			checkTokenResult(t, "POST /token (used refresh token again)", post(t, p, "/token", refreshForm(first.RefreshToken)), tt.wantReuse)

			if res, _ := userinfo(t, p, second.AccessToken); (res.StatusCode == http.StatusUnauthorized) != tt.wantRevoked {
				t.Errorf("GET /userinfo with the newer access token: status %d, want revoked %v", res.StatusCode, tt.wantRevoked)
			}
			want := "invalid_grant"
			if !tt.wantRevoked {
				want = ""
			}
			checkTokenResult(t, "POST /token (newer refresh token)", post(t, p, "/token", refreshForm(second.RefreshToken)), want)
			// Another grant of the same user is untouched.
			checkTokenResult(t, "POST /token (refresh token of another login)", post(t, p, "/token", refreshForm(other.RefreshToken)), "")
		})
	}
}
