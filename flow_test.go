package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
	"golang.org/x/oauth2"
)

// TestCallbackRejectsBadIDTokens runs the login flow against a provider
// that misbehaves once, and checks that no session comes out of it.
func TestCallbackRejectsBadIDTokens(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault func(p *authtest.Provider) authtest.Fault
		want  int
	}{
		{"alg none", sign("none"), http.StatusUnauthorized},
		{"bad signature", sign("bad-signature"), http.StatusUnauthorized},
		{"unknown key", sign("unknown-key"), http.StatusUnauthorized},
		{"wrong iss", claim("iss", "https://evil.example"), http.StatusUnauthorized},
		{"wrong aud", claim("aud", "another-client"), http.StatusUnauthorized},
		{"extra untrusted aud", claim("aud", []any{"test-client", "another-client"}), http.StatusUnauthorized},
		{"wrong azp", claim("azp", "another-client"), http.StatusUnauthorized},
		{"expired", func(p *authtest.Provider) authtest.Fault {
			return claim("exp", p.Now().Add(-5*time.Minute).Unix())(p)
		}, http.StatusUnauthorized},
		{"issued in the future", func(p *authtest.Provider) authtest.Fault {
			return claim("iat", p.Now().Add(time.Hour).Unix())(p)
		}, http.StatusUnauthorized},
		{"no iat", claim("iat", nil), http.StatusUnauthorized},
		{"not valid yet (nbf beyond ClockSkew)", func(p *authtest.Provider) authtest.Fault {
			return claim("nbf", p.Now().Add(2*time.Minute).Unix())(p) // go-oidc alone allows 5 minutes
		}, http.StatusUnauthorized},
		{"sub twice, case-folded (ſub)", claim("ſub", "bob"), http.StatusUnauthorized},
		{"sub twice, upper case", claim("SUB", "bob"), http.StatusUnauthorized},
		{"keys unavailable", func(p *authtest.Provider) authtest.Fault {
			// A kid the middleware must fetch, and cannot.
			p.RotateKey(false)
			return authtest.Fault{JWKSStatus: http.StatusServiceUnavailable}
		}, http.StatusBadGateway},
		{"no sub", claim("sub", nil), http.StatusUnauthorized},
		{"nonce mismatch", claim("nonce", "not-the-login-nonce"), http.StatusUnauthorized},
		{"no nonce", claim("nonce", nil), http.StatusUnauthorized},
		{"token endpoint 500", func(*authtest.Provider) authtest.Fault { return authtest.Fault{TokenStatus: 500} }, http.StatusBadGateway},
		{"token endpoint garbage", func(*authtest.Provider) authtest.Fault { return authtest.Fault{TokenBody: "not json"} }, http.StatusBadGateway},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app := apptest.New(t, authtest.Config{}, nil)
			c, res, body := app.LoginWithFault(t, "alice", tt.fault(app.P), "Accept", "text/html")
			if res.StatusCode != tt.want {
				t.Fatalf("callback: status = %d (%q), want %d", res.StatusCode, body, tt.want)
			}
			if s := apptest.SetCookies(res)["gatehouse"]; s != nil && s.MaxAge >= 0 {
				t.Errorf("callback failed but set a session cookie")
			}
			if status, _ := app.Me(t, c); status != http.StatusUnauthorized {
				t.Errorf("GET /me after failed callback: status = %d, want 401", status)
			}
			if strings.Contains(body, "eyJ") || strings.Contains(body, "auth:") {
				t.Errorf("error page = %q, want a page without tokens or error text", body)
			}
		})
	}
}

func sign(how string) func(*authtest.Provider) authtest.Fault {
	return func(*authtest.Provider) authtest.Fault { return authtest.Fault{IDTokenSigning: how} }
}

// claim sets (or, with nil, deletes) one claim of the next ID token.
func claim(name string, v any) func(*authtest.Provider) authtest.Fault {
	return func(*authtest.Provider) authtest.Fault {
		return authtest.Fault{IDToken: func(c map[string]any) {
			if v == nil {
				delete(c, name)
			} else {
				c[name] = v
			}
		}}
	}
}

func TestCallbackAcceptsWhatSpecAllows(t *testing.T) {
	for _, tt := range []struct {
		name  string
		cfg   authtest.Config
		edit  func(*auth.Config)
		fault authtest.Fault
	}{
		{"ID token without kid", authtest.Config{}, nil, authtest.Fault{IDTokenSigning: "no-kid"}},
		{"ES256", authtest.Config{SigningAlg: "ES256"}, nil, authtest.Fault{}},
		{"trusted extra audience", authtest.Config{}, func(c *auth.Config) { c.TrustedAudiences = []string{"api"} },
			authtest.Fault{IDToken: func(c map[string]any) { c["aud"] = []any{"test-client", "api"} }}},
		{"clock skew within leeway", authtest.Config{}, nil,
			authtest.Fault{IDToken: func(c map[string]any) { c["iat"] = c["iat"].(int64) + 30 }}},
		{"client_secret_post only", authtest.Config{TokenAuthMethods: []string{"client_secret_post"}}, nil, authtest.Fault{}},
		{"iss response parameter", authtest.Config{IssuerParameter: true}, nil, authtest.Fault{}},
		{"PKCE required", authtest.Config{RequirePKCE: true}, nil, authtest.Fault{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app := apptest.New(t, tt.cfg, tt.edit)
			c, res, body := app.LoginWithFault(t, "bob", tt.fault)
			if res.StatusCode != http.StatusFound {
				t.Fatalf("callback: status = %d (%q), want 302", res.StatusCode, body)
			}
			if status, u := app.Me(t, c); status != http.StatusOK || u.Subject != "bob" {
				t.Errorf("GET /me: %d %+v, want 200 bob", status, u)
			}
		})
	}
}

func TestCallbackRejectsBadRequests(t *testing.T) {
	app := apptest.New(t, authtest.Config{IssuerParameter: true}, nil)
	for _, tt := range []struct {
		name string
		edit func(q url.Values)
		want int
	}{
		{"wrong state", func(q url.Values) { q.Set("state", q.Get("state")[:20]+"tampered-tampered-tampered") }, http.StatusBadRequest},
		{"no state", func(q url.Values) { q.Del("state") }, http.StatusBadRequest},
		{"short state", func(q url.Values) { q.Set("state", "x") }, http.StatusBadRequest},
		{"no code", func(q url.Values) { q.Del("code") }, http.StatusBadRequest},
		{"wrong code", func(q url.Values) { q.Set("code", "guessed") }, http.StatusBadRequest},
		{"wrong iss (mix-up)", func(q url.Values) { q.Set("iss", "https://evil.example") }, http.StatusBadRequest},
		{"missing iss", func(q url.Values) { q.Del("iss") }, http.StatusBadRequest},
		{"access denied", func(q url.Values) {
			q.Del("code")
			q.Set("error", "access_denied")
			q.Set("error_description", "<script>alert(1)</script>")
		}, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := app.P.Browser(t, "alice")
			u, _ := url.Parse(app.StartLogin(t, c, "/me"))
			q := u.Query()
			tt.edit(q)
			u.RawQuery = q.Encode()
			res, body := apptest.Get(t, c, u.String(), "Accept", "text/html")
			if res.StatusCode != tt.want {
				t.Fatalf("callback: status = %d (%q), want %d", res.StatusCode, body, tt.want)
			}
			if strings.Contains(body, "<script>") {
				t.Errorf("error page echoes provider input: %q", body)
			}
			if status, _ := app.Me(t, c); status != http.StatusUnauthorized {
				t.Errorf("GET /me after bad callback: status = %d, want 401", status)
			}
		})
	}
}

func TestCallbackErrorAsJSON(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	res, body := apptest.Get(t, app.P.Browser(t, ""), app.URL+"/auth/callback?state=0123456789abcdefghij&code=x", "Accept", "application/json")
	if res.StatusCode != http.StatusBadRequest || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") || !strings.Contains(body, `"error"`) {
		t.Errorf("callback without flow, Accept JSON: %d %s %q, want 400 JSON error", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
}

func TestCallbackReplay(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	c := app.P.Browser(t, "alice")
	callback := app.StartLogin(t, c, "/me")
	thief := app.Clone(t, c) // holds the flow cookie too
	if res, _ := apptest.Get(t, c, callback); res.StatusCode != http.StatusFound {
		t.Fatalf("first callback: status = %d, want 302", res.StatusCode)
	}
	// Same browser again: its flow cookie is gone and it is signed in,
	// so it just goes home; no second session is made.
	res, _ := apptest.Get(t, c, callback)
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/" || apptest.SetCookies(res)["gatehouse"] != nil {
		t.Errorf("replayed callback, signed in: %d to %q, Set-Cookie %v; want 302 to / and no new session",
			res.StatusCode, res.Header.Get("Location"), res.Header["Set-Cookie"])
	}
	// A copy of the flow cookie does not help: the code is single-use.
	res, _ = apptest.Get(t, thief, callback)
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback with a copied flow cookie: status = %d, want 400", res.StatusCode)
	}
	// Another browser without the flow cookie.
	res, _ = apptest.Get(t, app.P.Browser(t, ""), callback)
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("callback in another browser: status = %d, want 400", res.StatusCode)
	}
	if got := app.P.Grants("authorization_code"); got != 1 {
		t.Errorf("authorization_code grants = %d, want 1", got)
	}
}

func TestCallbackAfterFlowExpired(t *testing.T) {
	app := apptest.New(t, authtest.Config{CodeTTL: time.Hour}, nil)
	c := app.P.Browser(t, "alice")
	callback := app.StartLogin(t, c, "/me")
	app.P.Advance(11 * time.Minute)
	if res, _ := apptest.Get(t, c, callback); res.StatusCode != http.StatusBadRequest {
		t.Errorf("callback 11 minutes after login: status = %d, want 400", res.StatusCode)
	}
}

func TestOpenRedirects(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	for _, next := range []string{"//evil.example", "https://evil.example", "/\\evil.example", "/\t/evil.example",
		"\\\\evil.example", "javascript:alert(1)", "evil.example", "/%0a/evil", "http:/evil", "///evil.example"} {
		t.Run(next, func(t *testing.T) {
			c := app.P.Browser(t, "alice")
			res, _ := apptest.Get(t, c, app.URL+"/auth/login?next="+url.QueryEscape(next))
			if res.StatusCode != http.StatusFound {
				t.Fatalf("login: status %d", res.StatusCode)
			}
			res, _ = apptest.Get(t, c, res.Header.Get("Location"))
			res, _ = apptest.Get(t, c, res.Header.Get("Location"))
			if got := res.Header.Get("Location"); got != "/" && !(strings.HasPrefix(got, "/") && !strings.HasPrefix(got, "//") && next == "/%0a/evil") {
				t.Errorf("login?next=%q returned to %q, want /", next, got)
			}
		})
	}
}

func FuzzCleanReturn(f *testing.F) {
	for _, s := range []string{"/", "/me?x=1", "//evil", "/\\evil", "https://evil", "/\t/evil", "/a#b", "/%2F%2Fevil", "/.//evil", "?x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := auth.CleanReturn(s)
		if !strings.HasPrefix(got, "/") || (len(got) > 1 && (got[1] == '/' || got[1] == '\\')) {
			t.Fatalf("CleanReturn(%q) = %q, want a path starting with exactly one /", s, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" || u.User != nil {
			t.Fatalf("CleanReturn(%q) = %q, which parses to host %q scheme %q", s, got, u.Host, u.Scheme)
		}
		for _, c := range got {
			if c < 0x20 || c == 0x7f || c == '\\' {
				t.Fatalf("CleanReturn(%q) = %q, which holds %q", s, got, c)
			}
		}
		// What a browser resolves it to stays on our origin.
		base, _ := url.Parse("https://app.example/x/y")
		if r := base.ResolveReference(u); r.Host != "app.example" {
			t.Fatalf("CleanReturn(%q) = %q resolves to host %q", s, got, r.Host)
		}
	})
}

func TestOnLogin(t *testing.T) {
	errNotStaff := errors.New("not staff")
	var seen *auth.Identity
	var tok *oauth2.Token
	app := apptest.New(t, authtest.Config{}, func(c *auth.Config) {
		c.OnLogin = func(ctx context.Context, u *auth.Identity, t *oauth2.Token) error {
			seen, tok = u, t
			if !strings.HasSuffix(u.Email, "@example.com") || u.Subject == "bob" {
				return errNotStaff
			}
			return nil
		}
	})
	app.Login(t, "alice")
	if seen == nil || seen.Subject != "alice" || tok == nil || tok.AccessToken == "" {
		t.Fatalf("OnLogin saw %+v, %v; want alice and her token", seen, tok)
	}
	c := app.P.Browser(t, "bob")
	res, body := apptest.Get(t, c, app.StartLogin(t, c, "/me"), "Accept", "text/html")
	if res.StatusCode != http.StatusForbidden || strings.Contains(body, "not staff") {
		t.Errorf("refused login: %d %q, want 403 without the hook's error text", res.StatusCode, body)
	}
	if status, _ := app.Me(t, c); status != http.StatusUnauthorized {
		t.Errorf("GET /me after refused login: status = %d, want 401", status)
	}
	if !strings.Contains(app.Logs.String(), "not staff") {
		t.Errorf("the hook's error was not logged")
	}
}

func TestUserinfo(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	for _, tt := range []struct {
		name  string
		fault authtest.Fault
		check func(t *testing.T, status int, u *auth.Identity, logs string)
	}{
		{"adds claims the ID token lacks", authtest.Fault{UserinfoClaims: func(c map[string]any) { c["locale"] = "fr"; c["name"] = "Changed" }},
			func(t *testing.T, _ int, u *auth.Identity, _ string) {
				var cl struct{ Locale, Name string }
				if u == nil || u.DecodeClaims(&cl) != nil || cl.Locale != "fr" || u.Name != "Alice Example" {
					t.Errorf("user = %+v, want locale fr from userinfo and the ID token's name", u)
				}
			}},
		{"another sub is ignored", authtest.Fault{UserinfoClaims: func(c map[string]any) { c["sub"] = "mallory"; c["locale"] = "evil" }},
			func(t *testing.T, _ int, u *auth.Identity, _ string) {
				if u == nil || u.Subject != "alice" || strings.Contains(string(u.Claims), "evil") {
					t.Errorf("user = %+v, want alice without the other sub's claims", u)
				}
			}},
		// "EMAIL" is "email" to encoding/json (and so to DecodeClaims and
		// go-oidc): the ID token's email must be the only one.
		{"a claim of the ID token in another case is not added", authtest.Fault{UserinfoClaims: func(c map[string]any) { c["EMAIL"] = "mallory@example.com"; c["locale"] = "fr" }},
			func(t *testing.T, _ int, u *auth.Identity, logs string) {
				var cl struct{ Email, Locale string }
				if u == nil || u.DecodeClaims(&cl) != nil || cl.Email != "alice@example.com" || u.Email != "alice@example.com" {
					t.Errorf("user = %+v (claims read as %+v), want alice@example.com everywhere", u, cl)
				}
				// Userinfo naming email twice (email, EMAIL) is ambiguous: ignored.
				if cl.Locale != "" || !strings.Contains(logs, "ignoring userinfo") {
					t.Errorf("locale = %q, logs %q: want userinfo ignored, and said so", cl.Locale, logs)
				}
			}},
		{"failure does not block login", authtest.Fault{UserinfoStatus: 500},
			func(t *testing.T, status int, u *auth.Identity, logs string) {
				if status != http.StatusOK || u.Subject != "alice" {
					t.Errorf("GET /me: %d %+v, want alice", status, u)
				}
				if !strings.Contains(logs, "userinfo request failed") || !strings.Contains(logs, "500") {
					t.Errorf("log = %q, want the userinfo failure with its status", logs)
				}
			}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			since := len(app.Logs.String())
			c, _, _ := app.LoginWithFault(t, "alice", tt.fault)
			status, u := app.Me(t, c)
			tt.check(t, status, u, app.Logs.String()[since:])
		})
	}
}

// TestWrongRequests: a method a route does not serve is 405 with Allow,
// in words that fit the route; the callback path opened by hand says so.
func TestWrongRequests(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	for _, tt := range []struct {
		method, path string
		status       int
		allow        string
		says         string
	}{
		{"DELETE", "/auth/login", http.StatusMethodNotAllowed, "GET, HEAD, POST", "does not accept"},
		{"PUT", "/auth/logout", http.StatusMethodNotAllowed, "GET, HEAD, POST", "does not accept"},
		{"POST", "/auth/callback", http.StatusMethodNotAllowed, "GET", "does not accept"},
		{"GET", "/auth/callback", http.StatusBadRequest, "", "start from the sign-in page"},
	} {
		req, _ := http.NewRequest(tt.method, app.URL+tt.path, nil)
		req.Header.Set("Accept", "text/html")
		res, body := apptest.Do(t, http.DefaultClient, req)
		if res.StatusCode != tt.status || res.Header.Get("Allow") != tt.allow || !strings.Contains(body, tt.says) || strings.Contains(body, "malformed") {
			t.Errorf("%s %s: %d, Allow %q, body %q; want %d, Allow %q, saying %q", tt.method, tt.path, res.StatusCode, res.Header.Get("Allow"), body, tt.status, tt.allow, tt.says)
		}
	}
}

// TestLongReturnPath: a return path that would make the flow cookie too
// large for a browser is dropped (the login goes home), not the login.
func TestLongReturnPath(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	for _, next := range []string{"/" + strings.Repeat("a", 2047), "/search?q=" + strings.Repeat("&", 700)} {
		c := app.P.Browser(t, "alice")
		res, _ := apptest.Get(t, c, app.URL+"/auth/login?next="+url.QueryEscape(next))
		for _, line := range res.Header["Set-Cookie"] {
			if len(line) >= 4096 {
				t.Errorf("login with a %d-byte next: Set-Cookie of %d bytes, want < 4096", len(next), len(line))
			}
		}
		res, _ = apptest.Get(t, c, res.Header.Get("Location"))
		res, body := apptest.Get(t, c, res.Header.Get("Location"))
		if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/" {
			t.Errorf("callback after a login with a %d-byte next: %d to %q (%s), want 302 to /", len(next), res.StatusCode, res.Header.Get("Location"), body)
		}
	}
}

// TestLoginOnAnotherLoopbackName: a login opened on localhost for a
// RedirectURL on 127.0.0.1 (or the other way round) is sent to
// RedirectURL's origin first, with the same path and query, so that its
// flow cookie reaches the callback; the whole login then works.
func TestLoginOnAnotherLoopbackName(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	u, _ := url.Parse(app.URL) // http://127.0.0.1:PORT
	local := "http://localhost:" + u.Port()
	c := app.P.Browser(t, "alice")
	res, _ := apptest.Get(t, c, local+"/auth/login?next=%2Fme")
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusFound || loc != app.URL+"/auth/login?next=%2Fme" || len(res.Cookies()) != 0 {
		t.Fatalf("GET localhost/auth/login: %d to %q, %d cookies; want 302 to %s/auth/login?next=%%2Fme and no flow cookie yet", res.StatusCode, loc, len(res.Cookies()), app.URL)
	}
	res, body, visited := apptest.Follow(t, c, local+"/auth/login?next=/me")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"alice"`) {
		t.Errorf("login started on localhost: %d %q after %v, want 200 as alice", res.StatusCode, body, visited)
	}
}

// TestCallbackWithoutFlowSaysWhy: a callback that finds no flow cookie
// logs what most likely happened (the page itself keeps a fixed sentence).
func TestCallbackWithoutFlowSaysWhy(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	res, _ := apptest.Get(t, apptest.Browser(t), app.URL+"/auth/callback?state=abcdefghijklmnopqrstuvwxyz&code=x", "Accept", "text/html")
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(app.Logs.String(), "did the login start on another host than "+app.URL) {
		t.Errorf("callback without a flow cookie: %d, log %q; want 400 and a log naming RedirectURL's origin", res.StatusCode, app.Logs)
	}
}

// TestHTTPSRedirectURLOverHTTP: an https RedirectURL with the site reached
// over plain http is warned about, once.
func TestHTTPSRedirectURLOverHTTP(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, func(c *auth.Config) { c.RedirectURL = strings.Replace(c.RedirectURL, "http:", "https:", 1) })
	for range 2 {
		apptest.Get(t, apptest.Browser(t), app.URL+"/auth/login")
	}
	if n := strings.Count(app.Logs.String(), "arrived over plain http"); n != 1 {
		t.Errorf("warnings about an https RedirectURL reached over http: %d, want 1; log:\n%s", n, app.Logs)
	}
}
