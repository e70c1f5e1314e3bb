package e2e

import (
	"fmt"
	"html"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// These tests attack the login and logout paths from other origins, in a
// real browser whose cookie and SameSite rules decide what gets through:
// what a browser accepts from a sibling subdomain, sends with a cross-site
// POST, or lets a page's Content-Security-Policy block is not something a
// test of the handlers alone can tell.

// TestBrowserLoginCSRFPlantedFlowCookie is login CSRF from a sibling
// subdomain: mallory starts a login of her own, signs in at the provider,
// and stops before her callback URL. Her page on evil.example.test plants
// her flow cookie for the whole site (Domain=example.test, which a
// __Secure- cookie may have) and sends the victim to that callback URL.
// The app must not sign the victim in as mallory: a flow cookie must be
// one a sibling cannot set, such as a __Host- cookie (Secure, Path=/, no
// Domain: draft-ietf-httpbis-rfc6265bis-12, 4.1.3.2), so the browser
// refuses the planted one and the callback finds no flow to complete.
func TestBrowserLoginCSRFPlantedFlowCookie(t *testing.T) {
	s := newSites(t)
	tab, _ := newTab(t, 30*time.Second)

	// Mallory, with a script: her own login at the app...
	mallory := s.client(t)
	res, err := mallory.Get(s.app + "/auth/login")
	if err != nil {
		t.Fatalf("mallory starts a login: %v", err)
	}
	res.Body.Close()
	authorize := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(authorize, s.provider.URL+"/authorize?") {
		t.Fatalf("GET /auth/login = %d to %q, want 302 to the provider's authorization endpoint", res.StatusCode, authorize)
	}
	// ...whose flow cookie is the one cookie it sets with a value.
	var flow *http.Cookie
	for _, c := range res.Cookies() {
		if c.Value == "" || c.MaxAge < 0 {
			continue
		}
		if flow != nil {
			t.Fatalf("GET /auth/login set cookies %s and %s: cannot tell which is the flow cookie", flow.Name, c.Name)
		}
		flow = c
	}
	if flow == nil {
		t.Fatalf("GET /auth/login set no cookie with a value; Set-Cookie: %d headers", len(res.Header.Values("Set-Cookie")))
	}
	t.Logf("mallory's flow cookie: %s (Path=%q, Secure=%v)", flow.Name, flow.Path, flow.Secure)

	// ...then at the provider, signed in as mallory, up to the redirect
	// to the callback, which she does not follow.
	res, err = s.provider.Browser(t, "mallory").Get(authorize)
	if err != nil {
		t.Fatalf("mallory at the provider: %v", err)
	}
	res.Body.Close()
	callback := res.Header.Get("Location")
	if !strings.HasPrefix(callback, s.app+"/auth/callback?") || !strings.Contains(callback, "code=") {
		t.Fatalf("the provider answered mallory %d to %q, want a redirect to the app's callback with a code", res.StatusCode, withoutQuery(callback))
	}

	// Her page on the sibling subdomain plants the flow cookie for the
	// parent domain, where the app's callback will see it, and links to
	// her callback URL.
	path := flow.Path
	if path == "" {
		path = "/"
	}
	planted := &http.Cookie{
		Name: flow.Name, Value: flow.Value, Domain: "example.test", Path: path,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 600,
	}
	trap := s.evil("evil.example.test", "/plant", evilPage{
		html:    `<a id="go" href="` + html.EscapeString(callback) + `">continue</a>`,
		cookies: []*http.Cookie{planted},
	})

	// The victim, signed in nowhere, opens mallory's page and follows
	// the link.
	if err := chromedp.Do(tab, chromedp.Navigate(trap), chromedp.WaitVisible(chromedp.CSS("#go"))); err != nil {
		t.Fatalf("open %s: %v", trap, err)
	}
	if jar, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{callback}}); err == nil {
		kept := "refused it"
		for _, c := range jar.Cookies {
			if c.Name == planted.Name {
				kept = fmt.Sprintf("kept it (Domain=%s, Path=%s)", c.Domain, c.Path)
			}
		}
		t.Logf("planted %s (Domain=%s, Path=%s); the browser %s", planted.Name, planted.Domain, planted.Path, kept)
	}
	end, err := chromedp.RunResponse(tab, chromedp.Click(chromedp.CSS("#go"), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("follow mallory's callback URL: %v", err)
	}

	if who := s.who(t, tab); who == "hello mallory" {
		t.Errorf("the victim followed mallory's callback URL from evil.example.test, which planted her flow cookie: the app now says %q (login CSRF)", who)
	}
	if !strings.HasPrefix(end.URL, s.app+"/auth/callback?") || end.Status < 400 || end.Status >= 500 {
		t.Errorf("the victim's visit to mallory's callback URL ended at %s with status %d, want the callback itself to answer 4xx (no flow of this browser's to complete)", withoutQuery(end.URL), end.Status)
	}

	// The test can tell: a login of the victim's own still works here.
	s.signIn(t, tab, "alice")
}

// TestBrowserLogoutCSRF: a page on another origin posts a form to the
// logout path. Whether or not the browser sends the session cookie with
// it (not cross-site, as the cookie is SameSite=Lax; yes same-site), it
// must not sign the user out, here or at the provider: the answer is the
// confirmation page, and no cookie is cleared. A POST from the app's own
// page signs out.
func TestBrowserLogoutCSRF(t *testing.T) {
	s := newSites(t)
	for _, tc := range []struct{ name, host string }{
		{"cross-site", "evil.test"},
		{"same-site", "evil.example.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab, _ := newTab(t, 30*time.Second)
			s.signIn(t, tab, "alice")
			// The attacker's page submits the form by itself once it
			// has loaded.
			page := s.evil(tc.host, "/logout-"+tc.name, evilPage{html: `<form id="f" method="post" action="` +
				html.EscapeString(s.app+"/auth/logout") + `"></form>
<script>addEventListener("load", () => setTimeout(() => document.getElementById("f").submit()))</script>`})
			if err := chromedp.Do(tab, chromedp.Navigate(page)); err != nil {
				t.Fatalf("open %s: %v", page, err)
			}
			got, ok := await(tab, 5*time.Second, func(p shown) bool { return strings.HasPrefix(p.URL, s.app+"/") })
			if !ok {
				t.Fatalf("the form on %s posted to the logout path and the tab never showed a page of the app; it shows %s", page, got)
			}
			if !strings.Contains(got.Text, "Sign out of this site?") {
				t.Errorf("a page on %s posted to the logout path: the tab shows %s, want the confirmation page (\"Sign out of this site?\")", tc.host, got)
			}
			if who := s.who(t, tab); who != "hello alice" {
				t.Errorf("after a page on %s posted to the logout path, the app says %q, want %q (logout CSRF)", tc.host, who, "hello alice")
			}
		})
	}
	t.Run("same-origin", func(t *testing.T) {
		tab, _ := newTab(t, 30*time.Second)
		s.signIn(t, tab, "alice")
		if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS("#logout"), chromedp.NodeVisible)); err != nil {
			t.Fatalf("click the app's sign-out button: %v", err)
		}
		got, ok := await(tab, 5*time.Second, func(p shown) bool { return p.URL == s.app+"/" && strings.Contains(p.Text, "anonymous") })
		if !ok {
			t.Errorf("after the app's own sign-out button the tab shows %s, want the app's home page, anonymous", got)
		}
		if who := s.who(t, tab); who != "anonymous" {
			t.Errorf("after the app's own sign-out button, the app says %q, want anonymous", who)
		}
	})
}

// TestBrowserLogoutConfirmation follows a link from another site to the
// logout path, which asks first, and confirms: the user must end up
// signed out, back on the app (the post-logout URL) by way of the
// provider's end_session_endpoint (OpenID Connect RP-Initiated Logout
// 1.0, section 2), and signed out at the provider too. The confirmation
// page's Content-Security-Policy must let its form's POST be redirected to
// the provider: form-action applies to the redirects after a form
// submission (Content Security Policy Level 3, 6.4.1), so form-action
// 'self' alone blocks it.
func TestBrowserLogoutConfirmation(t *testing.T) {
	s := newSites(t)
	tab, _ := newTab(t, 30*time.Second)
	s.signIn(t, tab, "alice")

	link := s.evil("evil.test", "/link", evilPage{html: `<a id="go" href="` + html.EscapeString(s.app+"/auth/logout") + `">sign out of the app</a>`})
	if err := chromedp.Do(tab, chromedp.Navigate(link), chromedp.Click(chromedp.CSS("#go"), chromedp.NodeVisible)); err != nil {
		t.Fatalf("follow the link on %s: %v", link, err)
	}
	confirm, ok := await(tab, 5*time.Second, func(p shown) bool { return strings.HasPrefix(p.URL, s.app+"/auth/logout") })
	if !ok || !strings.Contains(confirm.Text, "Sign out of this site?") {
		t.Fatalf("a link from another site to the logout path: the tab shows %s, want the confirmation page (\"Sign out of this site?\")", confirm)
	}

	// Note what the page's policy blocks, to say why if it stays.
	if err := chromedp.Do(tab, chromedp.Evaluate[chromedp.Void](`window.cspViolations = [];
document.addEventListener("securitypolicyviolation", e => cspViolations.push(e.violatedDirective + " blocked " + e.blockedURI))`),
		chromedp.Click(chromedp.CSS("form button"), chromedp.NodeVisible)); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	got, ok := await(tab, 3*time.Second, func(p shown) bool { return p.URL == s.app+"/" })
	if !ok {
		violations, _ := chromedp.Run(tab, chromedp.Evaluate[[]string](`window.cspViolations || null`))
		t.Fatalf("after confirming, the tab shows %s, want the app's home page %s/; Content-Security-Policy violations on the page: %q", got, s.app, violations)
	}
	if !strings.Contains(got.Text, "anonymous") {
		t.Errorf("after confirming, the app's home page says %q, want anonymous", got.Text)
	}
	if who := s.who(t, tab); who != "anonymous" {
		t.Errorf("after confirming and a reload, the app says %q, want anonymous", who)
	}

	// Signed out at the provider too: a new login shows its user
	// chooser instead of signing alice in again.
	if err := chromedp.Do(tab, chromedp.Navigate(s.app+"/auth/login")); err != nil {
		t.Fatalf("log in again: %v", err)
	}
	again, _ := await(tab, 5*time.Second, func(p shown) bool {
		return strings.HasPrefix(p.URL, s.provider.URL+"/") || p.URL == s.app+"/"
	})
	chooser, _ := chromedp.Run(tab, chromedp.Evaluate[bool](`!!document.querySelector('button[value="alice"]')`))
	if !strings.HasPrefix(again.URL, s.provider.URL+"/authorize") || !chooser {
		t.Errorf("a new login after logout shows %s, want the provider's user chooser (its session ended)", again)
	}
}
