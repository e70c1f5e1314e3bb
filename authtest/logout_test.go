package authtest_test

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

func TestEndSession(t *testing.T) {
	t.Parallel()
	const bye = "http://app.example/bye"
	other := newProvider(t, authtest.Config{SigningAlg: "ES256"})
	otherHint := login(t, other, "alice").IDToken
	for _, tt := range []struct {
		name         string
		method       string
		params       func(p *authtest.Provider, hint string) url.Values
		wantStatus   int
		wantLocation string // for 302
	}{
		{"hint", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bye}, "state": {"s1"}}
		}, http.StatusFound, bye + "?state=s1"},
		{"hint, POST", http.MethodPost, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bye}}
		}, http.StatusFound, bye},
		{"expired hint", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			p.Advance(48 * time.Hour)
			return url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bye}}
		}, http.StatusFound, bye},
		{"hint, client_id", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{"id_token_hint": {hint}, "client_id": {p.ClientID}, "post_logout_redirect_uri": {bye}, "state": {"s2"}}
		}, http.StatusFound, bye + "?state=s2"},
		{"added URI", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			p.AddPostLogoutRedirectURI("http://app.example/later?x=1")
			return url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"http://app.example/later?x=1"}}
		}, http.StatusFound, "http://app.example/later?x=1"},
		{"no redirect", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{"id_token_hint": {hint}}
		}, http.StatusOK, ""},
		{"unregistered URI", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {redirectURI}}
		}, http.StatusBadRequest, ""},
		{"URI without client", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{"post_logout_redirect_uri": {bye}}
		}, http.StatusBadRequest, ""},
		{"unknown client_id", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{"client_id": {"other"}, "post_logout_redirect_uri": {bye}}
		}, http.StatusBadRequest, ""},
		{"hint for another client_id", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{"id_token_hint": {hint}, "client_id": {"other"}}
		}, http.StatusBadRequest, ""},
		{"hint from another provider", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			return url.Values{"id_token_hint": {otherHint}, "post_logout_redirect_uri": {bye}}
		}, http.StatusBadRequest, ""},
		{"forged hint", http.MethodGet, func(p *authtest.Provider, hint string) url.Values {
			p.FailNext(authtest.Fault{IDTokenSigning: "unknown-key"})
			return url.Values{"id_token_hint": {login(t, p, "alice").IDToken}}
		}, http.StatusBadRequest, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, authtest.Config{PostLogoutRedirectURIs: []string{bye}, SigningAlg: "ES256"})
			browser := p.Browser(t, "alice")
			q := tt.params(p, login(t, p, "alice").IDToken)
			req, err := http.NewRequest(tt.method, p.URL+"/end_session?"+q.Encode(), nil)
			if tt.method == http.MethodPost {
				req, err = http.NewRequest(tt.method, p.URL+"/end_session", strings.NewReader(q.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if err != nil {
				t.Fatal(err)
			}
			res, body := apptest.Do(t, browser, req)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("%s /end_session: status %d, want %d; body %.300q", tt.method, res.StatusCode, tt.wantStatus, body)
			}
			if got := res.Header.Get("Location"); got != tt.wantLocation {
				t.Errorf("%s /end_session: Location %q, want %q", tt.method, got, tt.wantLocation)
			}
			// A successful logout ends the provider session.
			_, _, params := authorize(t, p, browser, authParams(p, "prompt", "none"))
			wantError := ""
			if tt.wantStatus != http.StatusBadRequest {
				wantError = "login_required"
			}
			if got := params.Get("error"); got != wantError {
				t.Errorf("GET /authorize with prompt=none after logout: error %q, want %q", got, wantError)
			}
		})
	}
}

// TestEndSessionAsks: without an id_token_hint, or with one for another
// user than the one signed in, the provider asks before it signs the
// user out (RP-Initiated Logout 1.0 §2).
func TestEndSessionAsks(t *testing.T) {
	t.Parallel()
	const bye = "http://app.example/bye"
	for _, tt := range []struct {
		name       string
		hintFor    string // sub of the id_token_hint; "" none
		noTarget   bool   // no post_logout_redirect_uri
		action     string // button pressed: "logout" or "cancel"
		wantStatus int    // of the answer to the button
		wantLoc    string // for 302
		wantOut    bool   // provider session ended
	}{
		{name: "no hint, sign out", action: "logout", wantStatus: http.StatusFound, wantLoc: bye + "?state=s1", wantOut: true},
		{name: "no hint, cancel", action: "cancel", wantStatus: http.StatusFound, wantLoc: bye + "?state=s1"},
		{name: "bob's hint, sign out", hintFor: "bob", action: "logout", wantStatus: http.StatusFound, wantLoc: bye + "?state=s1", wantOut: true},
		{name: "bob's hint, cancel", hintFor: "bob", action: "cancel", wantStatus: http.StatusFound, wantLoc: bye + "?state=s1"},
		{name: "no target, sign out", noTarget: true, action: "logout", wantStatus: http.StatusOK, wantOut: true},
		{name: "no target, cancel", noTarget: true, action: "cancel", wantStatus: http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t, authtest.Config{PostLogoutRedirectURIs: []string{bye}, SigningAlg: "ES256"})
			browser := p.Browser(t, "alice")
			q := url.Values{"client_id": {p.ClientID}, "post_logout_redirect_uri": {bye}, "state": {"s1"}}
			if tt.noTarget {
				q = url.Values{}
			}
			if tt.hintFor != "" {
				q.Set("id_token_hint", login(t, p, tt.hintFor).IDToken)
			}
			res, body := apptest.Get(t, browser, p.URL+"/end_session?"+q.Encode())
			if res.StatusCode != http.StatusOK || !strings.Contains(body, "<form") {
				t.Fatalf("GET /end_session: status %d, body %.300q; want 200 with a form", res.StatusCode, body)
			}
			if !signedIn(t, p, browser) {
				t.Fatalf("after GET /end_session: signed out before answering")
			}
			form := formOf(t, body)
			if !form.Has("xsrf") {
				t.Fatalf("confirmation form %v: no xsrf field", form)
			}
			// Another site's form cannot confirm: it does not know xsrf.
			forged := mergeValues(form, url.Values{"action": {"logout"}, "xsrf": {"guess"}})
			res, _ = apptest.PostForm(t, browser, p.URL+"/end_session", forged)
			if !signedIn(t, p, browser) || res.StatusCode == http.StatusFound {
				t.Fatalf("POST /end_session with a wrong xsrf: status %d, signed in %v; want no redirect, still signed in", res.StatusCode, signedIn(t, p, browser))
			}

			form.Set("action", tt.action)
			res, body = apptest.PostForm(t, browser, p.URL+"/end_session", form)
			if res.StatusCode != tt.wantStatus || res.Header.Get("Location") != tt.wantLoc {
				t.Errorf("POST /end_session (%s): status %d, Location %q; want %d, %q; body %.200q", tt.action, res.StatusCode, res.Header.Get("Location"), tt.wantStatus, tt.wantLoc, body)
			}
			if got := !signedIn(t, p, browser); got != tt.wantOut {
				t.Errorf("after POST /end_session (%s): signed out %v, want %v", tt.action, got, tt.wantOut)
			}
		})
	}
}

// TestEndSessionDoesNotAsk: with a hint for the signed-in user, or with
// nobody signed in, there is nothing to ask.
func TestEndSessionDoesNotAsk(t *testing.T) {
	t.Parallel()
	const bye = "http://app.example/bye"
	p := newProvider(t, authtest.Config{PostLogoutRedirectURIs: []string{bye}, SigningAlg: "ES256"})
	for _, tt := range []struct {
		name    string
		browser *http.Client
		q       url.Values
	}{
		{"hint for the user", p.Browser(t, "alice"), url.Values{"id_token_hint": {login(t, p, "alice").IDToken}, "post_logout_redirect_uri": {bye}}},
		{"nobody signed in", p.Browser(t, ""), url.Values{"client_id": {p.ClientID}, "post_logout_redirect_uri": {bye}}},
	} {
		res, body := apptest.Get(t, tt.browser, p.URL+"/end_session?"+tt.q.Encode())
		if res.StatusCode != http.StatusFound || res.Header.Get("Location") != bye {
			t.Errorf("GET /end_session (%s): status %d, Location %q, body %.200q; want 302 to %s", tt.name, res.StatusCode, res.Header.Get("Location"), body, bye)
		}
		if signedIn(t, p, tt.browser) {
			t.Errorf("after GET /end_session (%s): still signed in", tt.name)
		}
	}
}

// signedIn reports whether browser has a provider session: prompt=none
// gets a code.
func signedIn(t *testing.T, p *authtest.Provider, browser *http.Client) bool {
	t.Helper()
	_, _, params := authorize(t, p, browser, authParams(p, "prompt", "none"))
	return params.Get("code") != ""
}

// formOf returns the hidden fields of the first form of an HTML page.
func formOf(t *testing.T, body string) url.Values {
	t.Helper()
	end := strings.Index(body, "</form>")
	if end < 0 {
		t.Fatalf("no form in %.300q", body)
	}
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(body[:end], -1) {
		form.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return form
}
