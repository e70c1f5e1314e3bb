package apptest

import (
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
)

// This file serves apps over https, as features that need Secure cookies
// do (form_post's SameSite=None flow cookie), and drives the browser
// through pages that post a form on their own (form_post responses).

// StartTLS is Start over https, with httptest's certificate, which the
// browsers of TLSBrowser trust.
func StartTLS(t testing.TB, cfg func(appURL string) auth.Config, edit func(*auth.Config)) *App {
	t.Helper()
	return start(t, httptest.NewTLSServer, cfg, edit)
}

// NewForTLS is NewFor over https.
func NewForTLS(t testing.TB, p *authtest.Provider, edit func(*auth.Config)) *App {
	t.Helper()
	return newFor(t, p, edit, StartTLS)
}

// TLSBrowser returns a browser like Browser's (its own cookies, no
// redirects followed) that trusts the app's certificate. Like a real
// browser's cookie jar, it sends Secure cookies over https only; unlike
// one, it ignores SameSite (the e2e tests run Chromium for that).
func (app *App) TLSBrowser(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Transport: app.Client().Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// A page that posts its form on its own, as form_post responses do: a
// form, hidden fields, and a script that submits it.
var (
	postForm    = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// AutoPost returns the action and fields of body's form if body is a page
// that posts its form on its own (a script calls submit()).
func AutoPost(body string) (action string, form url.Values, ok bool) {
	m := postForm.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, ".submit()") {
		return "", nil, false
	}
	form = url.Values{}
	for _, in := range hiddenInput.FindAllStringSubmatch(body, -1) {
		form.Add(html.UnescapeString(in[1]), html.UnescapeString(in[2]))
	}
	return html.UnescapeString(m[1]), form, true
}

// FollowPosts is Follow through pages that post a form on their own, such
// as a provider's form_post response: it posts them as the page's script
// would, and goes on. It returns the last response, its body, and each
// request made ("POST URL" for a form).
func FollowPosts(t testing.TB, c *http.Client, rawURL string) (*http.Response, string, []string) {
	t.Helper()
	var visited []string
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 12 {
		req.Header.Set("Accept", "text/html")
		if req.Method == http.MethodPost {
			visited = append(visited, "POST "+req.URL.String())
		} else {
			visited = append(visited, req.URL.String())
		}
		res, body := Do(t, c, req)
		if loc, err := res.Location(); err == nil && res.StatusCode >= 300 && res.StatusCode < 400 {
			req, _ = http.NewRequest(http.MethodGet, loc.String(), nil)
			continue
		}
		action, form, ok := AutoPost(body)
		if res.StatusCode != http.StatusOK || !ok {
			return res, body, visited
		}
		req, err = http.NewRequest(http.MethodPost, action, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatalf("form action %q: %v", action, err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	t.Fatalf("too many redirects and forms: %v", visited)
	return nil, "", nil
}
