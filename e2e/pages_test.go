package e2e

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
)

// TestPageScreenshots opens the four pages a person may see that are not
// the application's (the middleware's error page, its logout question
// and its provider chooser, and authtest's user chooser), checks that each
// shows its title and a way on, with no Content-Security-Policy violation,
// and saves a screenshot of each in e2e/artifacts/ (page-error.png,
// page-logout.png, page-chooser.png, authtest-chooser.png).
func TestPageScreenshots(t *testing.T) {
	tab, _ := newTab(t, 30*time.Second)
	p := authtest.NewProvider(authtest.Config{Host: "localhost", ClientName: "Example App"})
	defer p.Close()
	app := httptest.NewServer(nil)
	defer app.Close()
	providers := []auth.Provider{{Name: "corp", DisplayName: "Corp SSO", Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret},
		auth.GitHub("gh-client", "gh-secret")}
	for _, pr := range providers[:1] {
		p.AddRedirectURI(app.URL + "/auth/callback/" + pr.Name)
	}
	a, err := auth.New(context.Background(), auth.Config{
		Providers:    providers,
		RedirectURL:  app.URL + "/auth/callback",
		CookieSecret: []byte("a page screenshot test secret of 32+ bytes"),
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	app.Config.Handler = a.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<!doctype html><title>Elsewhere</title><a id="out" href="`+app.URL+`/auth/logout">Sign out</a>`)
	}))
	other := httptest.NewServer(app.Config.Handler) // another site (another port), linking to the logout
	defer other.Close()

	for _, tt := range []struct {
		file, open string
		click      string // a link to click first, on another site
		title, way string
	}{
		{"page-error.png", app.URL + "/auth/callback?state=stale-or-used-state&code=x", "", "Sign-in failed", "Sign in again"},
		{"page-logout.png", strings.Replace(other.URL, "127.0.0.1", "localhost", 1) + "/", "#out", "Sign out of this site?", "Cancel, stay signed in"},
		{"page-chooser.png", app.URL + "/auth/login?next=/", "", "Sign in", "Sign in with GitHub"},
		{"authtest-chooser.png", app.URL + "/auth/login/corp", "", "Sign in to Example App", "Alice Example"},
	} {
		if err := chromedp.Do(tab, chromedp.Navigate(tt.open)); err != nil {
			t.Errorf("%s: open %s: %v", tt.file, withoutQuery(tt.open), err)
			continue
		}
		if tt.click != "" {
			if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(tt.click), chromedp.NodeVisible)); err != nil {
				t.Errorf("%s: click %s: %v", tt.file, tt.click, err)
				continue
			}
		}
		page, ok := await(tab, 5*time.Second, func(p shown) bool { return strings.HasPrefix(p.Text, tt.title) })
		if !ok {
			t.Errorf("%s: the tab shows %s, want a page titled %q", tt.file, page, tt.title)
			continue
		}
		// A policy that blocked the page's own style would show here.
		styled, _ := chromedp.Run(tab, chromedp.Evaluate[bool](`getComputedStyle(document.querySelector("main")).borderRadius !== "0px"`))
		if !strings.Contains(page.Text, tt.way) || !styled {
			t.Errorf("%s: %s, styled %v; want a way on (%q), in the page's own look", tt.file, page, styled, tt.way)
		}
		if shot, err := chromedp.Run(tab, chromedp.CaptureScreenshot()); err == nil {
			saveArtifact(t, tt.file, shot)
		}
	}
}
