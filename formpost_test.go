package auth_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

// newFormPostApp serves the app over https with ResponseMode form_post,
// against an authtest provider that signs alice in at once.
func newFormPostApp(t *testing.T) *apptest.App {
	t.Helper()
	p := authtest.NewProvider(authtest.Config{AutoApprove: "alice", IssuerParameter: true})
	t.Cleanup(p.Close)
	return apptest.NewForTLS(t, p, func(c *auth.Config) { c.ResponseMode = "form_post" })
}

// startFormPost runs a login up to the provider's form_post page and
// returns its form's action and fields, without posting them.
func startFormPost(t *testing.T, app *apptest.App, c *http.Client, next string) (string, url.Values, *http.Cookie) {
	t.Helper()
	res, _ := apptest.Get(t, c, app.URL+"/auth/login?next="+url.QueryEscape(next))
	if res.StatusCode != http.StatusFound {
		t.Fatalf("GET /auth/login: status %d, want 302", res.StatusCode)
	}
	var flow *http.Cookie
	for _, ck := range res.Cookies() {
		if strings.Contains(ck.Name, "_flow_") {
			flow = ck
		}
	}
	loc, _ := url.Parse(res.Header.Get("Location"))
	if got := loc.Query().Get("response_mode"); got != "form_post" {
		t.Errorf("authorization request response_mode %q, want form_post", got)
	}
	res, body := apptest.Get(t, c, loc.String())
	action, form, ok := apptest.AutoPost(body)
	if res.StatusCode != http.StatusOK || !ok {
		t.Fatalf("GET authorize: status %d, want 200 with a form_post page: %.300q", res.StatusCode, body)
	}
	return action, form, flow
}

func TestFormPostLogin(t *testing.T) {
	app := newFormPostApp(t)
	c := app.TLSBrowser(t)
	action, form, flow := startFormPost(t, app, c, "/me?x=1")
	if action != app.URL+"/auth/callback" || form.Get("code") == "" || form.Get("state") == "" || form.Get("iss") != app.P.URL {
		t.Fatalf("form_post page posts %v to %s, want code, state and iss to the callback", form, action)
	}
	// The flow cookie goes with the provider's cross-site POST: only
	// SameSite=None does, and that needs Secure. It stays __Host-.
	if flow == nil || flow.SameSite != http.SameSiteNoneMode || !flow.Secure || !strings.HasPrefix(flow.Name, "__Host-") || flow.Path != "/" || flow.Domain != "" || !flow.HttpOnly {
		t.Errorf("flow cookie %v, want __Host-, Path=/, no Domain, HttpOnly, Secure, SameSite=None", flow)
	}
	res, _ := apptest.PostForm(t, c, action, form)
	// 303: the browser GETs the return path, and a reload never posts
	// the answer again.
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/me?x=1" {
		t.Fatalf("POST callback: status %d to %q, want 303 to /me?x=1", res.StatusCode, res.Header.Get("Location"))
	}
	for _, ck := range res.Cookies() {
		if !strings.Contains(ck.Name, "_flow_") && ck.SameSite != http.SameSiteLaxMode {
			t.Errorf("session cookie %s: SameSite %v, want Lax: only the flow cookie changes", ck.Name, ck.SameSite)
		}
	}
	if status, u := app.Me(t, c); status != http.StatusOK || u.Subject != "alice" {
		t.Errorf("GET /me: %d %+v, want alice", status, u)
	}
	// Posting the same answer again finds no flow: signed in, go home.
	if res, _ := apptest.PostForm(t, c, action, form); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Errorf("POST callback again: status %d to %q, want 303 to /", res.StatusCode, res.Header.Get("Location"))
	}
	if got := app.P.Grants("authorization_code"); got != 1 {
		t.Errorf("authorization_code grants = %d, want 1", got)
	}

	// A query-mode login of the same provider is unchanged: a GET, a
	// Lax flow cookie.
	q := apptest.NewFor(t, app.P, nil)
	res, _ = apptest.Get(t, apptest.Browser(t), q.URL+"/auth/login")
	for _, ck := range res.Cookies() {
		if ck.SameSite != http.SameSiteLaxMode {
			t.Errorf("query mode: cookie %s SameSite %v, want Lax", ck.Name, ck.SameSite)
		}
	}
	if loc, _ := url.Parse(res.Header.Get("Location")); loc.Query().Has("response_mode") {
		t.Errorf("query mode: authorization request has response_mode")
	}
}

// TestFormPostRefused: a form_post callback needs this browser's flow
// cookie and its state, like any callback; and a well-formed, small POST.
func TestFormPostRefused(t *testing.T) {
	for _, tt := range []struct {
		name   string
		edit   func(c *http.Client, action string, form url.Values) (string, url.Values, string)
		status int
	}{
		{"no flow cookie", func(c *http.Client, action string, form url.Values) (string, url.Values, string) {
			u, _ := url.Parse(action)
			for _, ck := range c.Jar.Cookies(u) { // the browser lost it, or never had it
				c.Jar.SetCookies(u, []*http.Cookie{{Name: ck.Name, Path: "/", MaxAge: -1, Secure: true}})
			}
			return action, form, ""
		}, http.StatusBadRequest},
		{"another state", func(c *http.Client, action string, form url.Values) (string, url.Values, string) {
			form.Set("state", form.Get("state")[:16]+"AAAAAAAAAAAAAAAAAAAAAAAAAAA")
			return action, form, ""
		}, http.StatusBadRequest},
		{"no state", func(c *http.Client, action string, form url.Values) (string, url.Values, string) {
			form.Del("state")
			return action, form, ""
		}, http.StatusBadRequest},
		{"state in the query, not the form", func(c *http.Client, action string, form url.Values) (string, url.Values, string) {
			state := form.Get("state")
			form.Del("state")
			return action + "?state=" + url.QueryEscape(state), form, ""
		}, http.StatusBadRequest},
		{"not a form", func(c *http.Client, action string, form url.Values) (string, url.Values, string) {
			return action, form, "application/json"
		}, http.StatusBadRequest},
		{"too large", func(c *http.Client, action string, form url.Values) (string, url.Values, string) {
			form.Set("padding", strings.Repeat("x", 70<<10))
			return action, form, ""
		}, http.StatusBadRequest},
		{"provider error", func(c *http.Client, action string, form url.Values) (string, url.Values, string) {
			form.Del("code")
			form.Set("error", "access_denied")
			return action, form, ""
		}, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			app := newFormPostApp(t)
			c := app.TLSBrowser(t)
			action, form, _ := startFormPost(t, app, c, "/")
			action, form, ct := tt.edit(c, action, form)
			req, _ := http.NewRequest(http.MethodPost, action, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			res, body := apptest.Do(t, c, req)
			if res.StatusCode != tt.status {
				t.Errorf("POST callback: status %d (%q), want %d", res.StatusCode, body, tt.status)
			}
			if got := app.P.Grants("authorization_code"); got != 0 {
				t.Errorf("authorization_code grants = %d, want 0", got)
			}
			if status, _ := app.Me(t, c); status != http.StatusUnauthorized {
				t.Errorf("GET /me: status %d, want 401", status)
			}
		})
	}
}

// TestFormPostMethods: a form_post provider's callback takes POST (and
// GET, for a provider that answers an error by redirect); a query-mode
// provider's takes GET only.
func TestFormPostMethods(t *testing.T) {
	app := newFormPostApp(t)
	res, _ := apptest.Get(t, app.TLSBrowser(t), app.URL+"/auth/callback?error=invalid_request&state=x")
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("GET form_post callback: status %d, want 400 (no flow)", res.StatusCode)
	}
	q := apptest.New(t, authtest.Config{}, nil)
	req, _ := http.NewRequest(http.MethodPost, q.URL+"/auth/callback", strings.NewReader("state=x&code=y"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, _ = apptest.Do(t, apptest.Browser(t), req)
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET" {
		t.Errorf("POST query-mode callback: status %d, Allow %q; want 405, Allow GET", res.StatusCode, res.Header.Get("Allow"))
	}
}

// TestFormPostSettings: form_post needs https, and a provider that
// supports it.
func TestFormPostSettings(t *testing.T) {
	p := authtest.NewProvider(authtest.Config{})
	defer p.Close()
	testConfigs(t, auth.Config{Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret, RedirectURL: "http://127.0.0.1/auth/callback", CookieSecret: apptest.Secret}, []configCase{
		{"http", func(c *auth.Config) { c.ResponseMode = "form_post" }, "needs an https RedirectURL"},
		{"fragment", func(c *auth.Config) { c.ResponseMode = "fragment"; c.RedirectURL = "https://app.example/auth/callback" }, `"fragment" is neither query nor form_post`},
		{"AuthParams", func(c *auth.Config) { c.AuthParams = map[string]string{"response_mode": "form_post"} }, "set ResponseMode"},
	})
}
