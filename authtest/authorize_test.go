package authtest_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

func TestAuthorizeErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name       string
		cfg        authtest.Config
		sub        string // provider session
		edit       func(q url.Values)
		wantStatus int    // 400: error page, no redirect
		wantError  string // error in the redirect, "" for a code
	}{
		{name: "valid", sub: "alice", edit: func(url.Values) {}, wantStatus: http.StatusFound},
		{name: "unregistered redirect_uri", sub: "alice", edit: func(q url.Values) { q.Set("redirect_uri", "http://evil.example/callback") }, wantStatus: http.StatusBadRequest},
		{name: "redirect_uri prefix", sub: "alice", edit: func(q url.Values) { q.Set("redirect_uri", redirectURI+"/x") }, wantStatus: http.StatusBadRequest},
		{name: "no redirect_uri", sub: "alice", edit: func(q url.Values) { q.Del("redirect_uri") }, wantStatus: http.StatusBadRequest},
		{name: "unknown client_id", sub: "alice", edit: func(q url.Values) { q.Set("client_id", "other") }, wantStatus: http.StatusBadRequest},
		{name: "no response_type", sub: "alice", edit: func(q url.Values) { q.Del("response_type") }, wantStatus: http.StatusFound, wantError: "invalid_request"},
		{name: "response_type token", sub: "alice", edit: func(q url.Values) { q.Set("response_type", "token") }, wantStatus: http.StatusFound, wantError: "unsupported_response_type"},
		{name: "scope without openid", sub: "alice", edit: func(q url.Values) { q.Set("scope", "email profile") }, wantStatus: http.StatusFound, wantError: "invalid_scope"},
		{name: "PKCE plain", sub: "alice", edit: func(q url.Values) { q.Set("code_challenge_method", "plain") }, wantStatus: http.StatusFound, wantError: "invalid_request"},
		{name: "PKCE without method", sub: "alice", edit: func(q url.Values) { q.Del("code_challenge_method") }, wantStatus: http.StatusFound, wantError: "invalid_request"},
		{name: "PKCE malformed challenge", sub: "alice", edit: func(q url.Values) { q.Set("code_challenge", "abc") }, wantStatus: http.StatusFound, wantError: "invalid_request"},
		{name: "no PKCE", sub: "alice", edit: func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, wantStatus: http.StatusFound},
		{name: "no PKCE but required", cfg: authtest.Config{RequirePKCE: true}, sub: "alice", edit: func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, wantStatus: http.StatusFound, wantError: "invalid_request"},
		{name: "repeated parameter", sub: "alice", edit: func(q url.Values) { q.Add("scope", "openid") }, wantStatus: http.StatusFound, wantError: "invalid_request"},
		{name: "request object", sub: "alice", edit: func(q url.Values) { q.Set("request", "eyJ.x.y") }, wantStatus: http.StatusFound, wantError: "request_not_supported"},
		{name: "response_mode fragment", sub: "alice", edit: func(q url.Values) { q.Set("response_mode", "fragment") }, wantStatus: http.StatusFound, wantError: "invalid_request"},
		{name: "prompt none without session", edit: func(q url.Values) { q.Set("prompt", "none") }, wantStatus: http.StatusFound, wantError: "login_required"},
		{name: "prompt none and login", sub: "alice", edit: func(q url.Values) { q.Set("prompt", "none login") }, wantStatus: http.StatusFound, wantError: "invalid_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.SigningAlg = "ES256" // fast keys; signing doesn't matter here
			p := newProvider(t, tt.cfg)
			q := authParams(p)
			tt.edit(q)
			res, body, params := authorize(t, p, p.Browser(t, tt.sub), q)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("GET /authorize: status %d, want %d; body %.200q", res.StatusCode, tt.wantStatus, body)
			}
			if tt.wantStatus == http.StatusBadRequest {
				if loc := res.Header.Get("Location"); loc != "" {
					t.Errorf("GET /authorize: Location %q, want none", loc)
				}
				return
			}
			loc, _ := res.Location()
			if got := loc.Scheme + "://" + loc.Host + loc.Path; got != redirectURI {
				t.Errorf("GET /authorize: redirected to %s, want %s", got, redirectURI)
			}
			if got := params.Get("state"); got != "st" {
				t.Errorf("GET /authorize: state = %q, want st", got)
			}
			if got := params.Get("error"); got != tt.wantError {
				t.Errorf("GET /authorize: error = %q (%s), want %q", got, params.Get("error_description"), tt.wantError)
			}
			if tt.wantError != "" && (params.Get("error_description") == "" || params.Has("code")) {
				t.Errorf("GET /authorize: redirect %v, want an error_description and no code", params)
			}
			if tt.wantError == "" && params.Get("code") == "" {
				t.Errorf("GET /authorize: redirect %v, want a code", params)
			}
			if params.Has("iss") {
				t.Errorf("GET /authorize: iss = %q, want none without IssuerParameter", params.Get("iss"))
			}
		})
	}
}

func TestIssuerParameter(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{IssuerParameter: true, SigningAlg: "ES256"})
	for _, tt := range []struct {
		name string
		q    url.Values
	}{
		{"success", authParams(p)},
		{"error", authParams(p, "scope", "email")},
	} {
		_, _, params := authorize(t, p, p.Browser(t, "alice"), tt.q)
		if got := params.Get("iss"); got != p.URL {
			t.Errorf("GET /authorize (%s): iss = %q, want %q", tt.name, got, p.URL)
		}
	}
}

func TestAddRedirectURI(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{SigningAlg: "ES256"})
	const uri = "http://other.example/cb?tenant=7"
	q := authParams(p, "redirect_uri", uri)
	if res, _, _ := authorize(t, p, p.Browser(t, "alice"), q); res.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /authorize before AddRedirectURI: status %d, want 400", res.StatusCode)
	}
	p.AddRedirectURI(uri)
	res, _, params := authorize(t, p, p.Browser(t, "alice"), q)
	if res.StatusCode != http.StatusFound || params.Get("tenant") != "7" || params.Get("code") == "" {
		t.Fatalf("GET /authorize after AddRedirectURI: status %d, redirect %v; want 302 with tenant=7 and a code", res.StatusCode, params)
	}
	form := codeForm(params.Get("code"))
	form.Set("redirect_uri", uri)
	if tr := post(t, p, "/token", form); tr.Status != http.StatusOK {
		t.Errorf("POST /token: status %d (%s), want 200", tr.Status, tr.ErrorDescription)
	}
}

// TestWhoSignsIn checks which user the authorization endpoint approves,
// or whether it shows the chooser.
func TestWhoSignsIn(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name        string
		autoApprove string
		session     string // provider session of this user
		kv          []string
		want        string // sub of the ID token; "" the chooser page
	}{
		{name: "session", session: "bob", want: "bob"},
		{name: "session, prompt none", session: "bob", kv: []string{"prompt", "none"}, want: "bob"},
		{name: "session, prompt login", session: "bob", kv: []string{"prompt", "login"}},
		{name: "session, prompt select_account", session: "bob", kv: []string{"prompt", "select_account"}},
		{name: "session, max_age 0", session: "bob", kv: []string{"max_age", "0"}},
		{name: "session, max_age 3600", session: "bob", kv: []string{"max_age", "3600"}, want: "bob"},
		{name: "no session"},
		{name: "no session, login_hint", kv: []string{"login_hint", "bob"}},
		{name: "auto", autoApprove: "alice", want: "alice"},
		{name: "auto, login_hint", autoApprove: "alice", kv: []string{"login_hint", "bob"}, want: "bob"},
		{name: "auto, unknown login_hint", autoApprove: "alice", kv: []string{"login_hint", "zoe"}, want: "alice"},
		{name: "auto, session", autoApprove: "alice", session: "bob", want: "bob"},
		{name: "auto, session, max_age 0", autoApprove: "alice", session: "bob", kv: []string{"max_age", "0"}, want: "bob"},
		{name: "auto, prompt login", autoApprove: "alice", kv: []string{"prompt", "login"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, authtest.Config{AutoApprove: tt.autoApprove, SigningAlg: "ES256"})
			res, body, params := authorize(t, p, p.Browser(t, tt.session), authParams(p, tt.kv...))
			if tt.want == "" {
				if res.StatusCode != http.StatusOK || !strings.Contains(body, "<form") {
					t.Errorf("GET /authorize: status %d, body %.100q; want 200 with the chooser", res.StatusCode, body)
				}
				return
			}
			if res.StatusCode != http.StatusFound || params.Get("code") == "" {
				t.Fatalf("GET /authorize: status %d, redirect %v; want 302 with a code", res.StatusCode, params)
			}
			tr := post(t, p, "/token", codeForm(params.Get("code")))
			if got := jwtPart(t, tr.IDToken, 1)["sub"]; got != tt.want {
				t.Errorf("ID token sub = %v, want %s", got, tt.want)
			}
		})
	}
}

var (
	hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	userButton  = regexp.MustCompile(`<button type="submit" name="sub" value="([^"]*)">`)
)

func TestChooser(t *testing.T) {
	t.Parallel()
	users := append(authtest.Users(), authtest.User{Subject: `eve"1`, Name: "<script>alert(1)</script>"})
	p := newProvider(t, authtest.Config{Users: users, SigningAlg: "ES256"})
	browser := p.Browser(t, "")
	q := authParams(p, "state", `"><b>x`)
	res, body, _ := authorize(t, p, browser, q)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /authorize: status %d, Content-Type %q; want 200 text/html", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, "<b>x") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("chooser page does not escape user and request data:\n%s", body)
	}
	var subs []string
	for _, m := range userButton.FindAllStringSubmatch(body, -1) {
		subs = append(subs, html.UnescapeString(m[1]))
	}
	if got, want := strings.Join(subs, ","), `alice,bob,eve"1`; got != want {
		t.Errorf("chooser buttons: got %s, want %s", got, want)
	}

	// Submit the first form as if bob's button were pressed there.
	form := url.Values{"sub": {"bob"}}
	for _, m := range hiddenInput.FindAllStringSubmatch(body[:strings.Index(body, "</form>")], -1) {
		form.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	if got, want := form.Encode(), (mergeValues(q, url.Values{"sub": {"bob"}})).Encode(); got != want {
		t.Errorf("chooser form fields:\ngot  %s\nwant %s", got, want)
	}
	req, err := http.NewRequest(http.MethodPost, p.URL+"/authorize", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, _ = apptest.Do(t, browser, req)
	loc, err := res.Location()
	if res.StatusCode != http.StatusFound || err != nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != `"><b>x` {
		t.Fatalf("POST /authorize: status %d, Location %v; want 302 with a code and the state", res.StatusCode, loc)
	}
	if !hasCookie(res, "authtest_session") {
		t.Errorf("POST /authorize: Set-Cookie %q, want authtest_session", res.Header.Values("Set-Cookie"))
	}
	tr := post(t, p, "/token", codeForm(loc.Query().Get("code")))
	if got := jwtPart(t, tr.IDToken, 1)["sub"]; got != "bob" {
		t.Errorf("ID token sub = %v, want bob", got)
	}

	// Now the browser has a provider session: no page.
	res, _, params := authorize(t, p, browser, authParams(p))
	if res.StatusCode != http.StatusFound || params.Get("code") == "" {
		t.Fatalf("GET /authorize with the session: status %d, want 302 with a code", res.StatusCode)
	}
	tr = post(t, p, "/token", codeForm(params.Get("code")))
	if got := jwtPart(t, tr.IDToken, 1)["sub"]; got != "bob" {
		t.Errorf("ID token sub with the session = %v, want bob", got)
	}
}

func mergeValues(vs ...url.Values) url.Values {
	out := url.Values{}
	for _, v := range vs {
		for k, x := range v {
			out[k] = x
		}
	}
	return out
}

func hasCookie(res *http.Response, name string) bool {
	for _, c := range res.Cookies() {
		if c.Name == name && c.Value != "" {
			return true
		}
	}
	return false
}

// TestSessionTTL: a provider session ends after SessionTTL without use;
// each use starts the period again.
func TestSessionTTL(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{SigningAlg: "ES256", SessionTTL: time.Hour})
	browser := p.Browser(t, "alice")
	silent := authParams(p, "prompt", "none")
	for i := range 3 {
		p.Advance(50 * time.Minute)
		if _, _, params := authorize(t, p, browser, silent); params.Get("code") == "" {
			t.Fatalf("GET /authorize, prompt=none, used every 50m (%d): redirect %v, want a code", i+1, params)
		}
	}
	p.Advance(time.Hour)
	if _, _, params := authorize(t, p, browser, silent); params.Get("error") != "login_required" {
		t.Errorf("GET /authorize, prompt=none, 1h after last use: redirect %v, want error login_required", params)
	}
}

// TestIDTokenHint: an id_token_hint names the user the client expects
// (OIDC Core §3.1.2.1). If another user is signed in, prompt=none
// answers login_required and otherwise the user chooses again, or
// AutoApprove signs the hinted user in.
func TestIDTokenHint(t *testing.T) {
	t.Parallel()
	other := newProvider(t, authtest.Config{SigningAlg: "ES256"})
	for _, tt := range []struct {
		name        string
		autoApprove string
		session     string // provider session of this user
		hintFor     string
		hint        func(p *authtest.Provider) string // instead of hintFor
		kv          []string
		want        string // sub of the code; "" the chooser; "error:x" an error
	}{
		{name: "same user, prompt none", session: "alice", hintFor: "alice", kv: []string{"prompt", "none"}, want: "alice"},
		{name: "same user", session: "alice", hintFor: "alice", want: "alice"},
		{name: "other user, prompt none", session: "alice", hintFor: "bob", kv: []string{"prompt", "none"}, want: "error:login_required"},
		{name: "other user", session: "alice", hintFor: "bob"},
		{name: "other user, auto", autoApprove: "alice", session: "alice", hintFor: "bob", want: "bob"},
		{name: "no session, auto", autoApprove: "alice", hintFor: "bob", want: "bob"},
		{name: "no session, prompt none", hintFor: "alice", kv: []string{"prompt", "none"}, want: "error:login_required"},
		{name: "expired hint", session: "alice", hint: func(p *authtest.Provider) string {
			hint := login(t, p, "alice").IDToken
			p.Advance(2 * time.Hour)
			return hint
		}, kv: []string{"prompt", "none"}, want: "alice"},
		{name: "another provider's hint", session: "alice", hint: func(*authtest.Provider) string { return login(t, other, "alice").IDToken }, want: "error:invalid_request"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, authtest.Config{AutoApprove: tt.autoApprove, SigningAlg: "ES256"})
			var hint string
			if tt.hint != nil {
				hint = tt.hint(p)
			} else {
				hint = login(t, p, tt.hintFor).IDToken
			}
			q := authParams(p, append([]string{"id_token_hint", hint}, tt.kv...)...)
			res, body, params := authorize(t, p, p.Browser(t, tt.session), q)
			switch {
			case tt.want == "":
				if res.StatusCode != http.StatusOK || !strings.Contains(body, "<form") {
					t.Fatalf("GET /authorize: status %d, body %.100q; want 200 with the chooser", res.StatusCode, body)
				}
				if strings.Contains(body, hint) || strings.Contains(body, "id_token_hint") {
					t.Errorf("chooser page holds the id_token_hint")
				}
			case strings.HasPrefix(tt.want, "error:"):
				if got := params.Get("error"); got != strings.TrimPrefix(tt.want, "error:") {
					t.Errorf("GET /authorize: status %d, redirect %v; want error %s", res.StatusCode, params, tt.want[6:])
				}
			default:
				if res.StatusCode != http.StatusFound || params.Get("code") == "" {
					t.Fatalf("GET /authorize: status %d, redirect %v; want 302 with a code", res.StatusCode, params)
				}
				tr := post(t, p, "/token", codeForm(params.Get("code")))
				if got := jwtPart(t, tr.IDToken, 1)["sub"]; got != tt.want {
					t.Errorf("ID token sub = %v, want %s", got, tt.want)
				}
			}
		})
	}
}

// TestInsecureRedirectURIPrefixes: prefix matching of redirect URIs is
// an explicit opt-in; exact matching is the rule (RFC 9700 §2.1).
func TestInsecureRedirectURIPrefixes(t *testing.T) {
	t.Parallel()
	const uri = "http://127.0.0.1:4321/auth/callback"
	for _, tt := range []struct {
		name     string
		prefixes []string
		want     int
	}{
		{"exact match only", nil, http.StatusBadRequest},
		{"prefix", []string{"http://127.0.0.1:"}, http.StatusFound},
		{"other prefix", []string{"http://localhost:"}, http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, authtest.Config{SigningAlg: "ES256", InsecureRedirectURIPrefixes: tt.prefixes})
			res, _, params := authorize(t, p, p.Browser(t, "alice"), authParams(p, "redirect_uri", uri))
			if res.StatusCode != tt.want {
				t.Fatalf("GET /authorize with redirect_uri %s: status %d, want %d", uri, res.StatusCode, tt.want)
			}
			if tt.want != http.StatusFound {
				return
			}
			form := codeForm(params.Get("code"))
			form.Set("redirect_uri", uri)
			checkTokenResult(t, "POST /token", post(t, p, "/token", form), "")
		})
	}
}
