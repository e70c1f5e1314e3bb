package authtest

import (
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// Browser returns an HTTP client with its own cookie jar which, if sub
// is not empty, holds a provider session for that user, as if they had
// signed in at the provider before. It does not follow redirects, so a
// test can check each hop. Browser fails the test if sub is not a user.
func (p *Provider) Browser(t testing.TB, sub string) *http.Client {
	t.Helper()
	c := p.browser(t, sub)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// Login runs the real login flow for the user sub and returns the
// browser, now holding the application's session cookie. The browser has
// a provider session for sub (none if sub is empty, leaving the choice
// to Config.AutoApprove), follows redirects, and starts with a GET of
// loginURL, the application's login path (such as app.URL +
// "/auth/login"), going through the authorization endpoint and the
// application's callback. With response_mode=form_post it posts the
// provider's form to the callback, as the page's script would.
//
// Login fails the test if the chain of redirects never reached a
// registered redirect URI with a code, or ended with a status of 400 or
// more.
func (p *Provider) Login(t testing.TB, loginURL, sub string) *http.Client {
	t.Helper()
	c := p.browser(t, sub)
	reached := false
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		if req.URL.Query().Has("code") && p.isRedirectURI(req.URL) {
			reached = true
		}
		return nil
	}
	res, err := c.Get(loginURL)
	if err == nil {
		// With response_mode=form_post, the answer is a page whose
		// script posts it to the redirect URI (formpost.go).
		var posted bool
		res, posted, err = p.submitFormPost(c, res)
		reached = reached || posted
	}
	if err != nil {
		t.Fatalf("authtest: Login(%s, %q): %v", loginURL, sub, err)
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 300))
	res.Body.Close()
	c.CheckRedirect = nil
	// The final URL may carry a code: show it without its query.
	end := *res.Request.URL
	end.RawQuery = ""
	switch {
	case !reached && end.String() == p.URL+"/authorize":
		t.Fatalf("authtest: Login(%s, %q): the provider showed its user chooser (prompt=login or select_account, or no user to approve)",
			loginURL, sub)
	case !reached:
		t.Fatalf("authtest: Login(%s, %q): never reached the callback with a code; ended at %s with status %d: %q",
			loginURL, sub, &end, res.StatusCode, body)
	case res.StatusCode >= 400:
		t.Fatalf("authtest: Login(%s, %q): ended at %s with status %d: %q", loginURL, sub, &end, res.StatusCode, body)
	}
	return c
}

// browser returns a client with a cookie jar holding a provider session
// for sub, if not empty.
func (p *Provider) browser(t testing.TB, sub string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("authtest: cookiejar.New: %v", err)
	}
	if sub != "" {
		key, ok := p.startSession(sub)
		if !ok {
			t.Fatalf("authtest: no user %q", sub)
		}
		u, _ := url.Parse(p.URL)
		jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: key, Path: "/", HttpOnly: true}})
	}
	tr := p.newTransport()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr}
}

// isRedirectURI reports whether u, ignoring its query, is a registered
// redirect URI, ignoring its query.
func (p *Provider) isRedirectURI(u *url.URL) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, prefix := range p.cfg.InsecureRedirectURIPrefixes {
		if prefix != "" && strings.HasPrefix(u.String(), prefix) {
			return true
		}
	}
	for s := range p.redirectURIs {
		r, err := url.Parse(s)
		if err == nil && r.Scheme == u.Scheme && r.Host == u.Host && r.Path == u.Path {
			return true
		}
	}
	return false
}
