package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
)

// TestBrowserHTTPSLogin logs in over https, where every cookie is Secure
// and the session cookie has the __Host- prefix, whose rules (Path=/, no
// Domain) the browser enforces: a flow cookie that broke them would be
// dropped and no login could complete.
func TestBrowserHTTPSLogin(t *testing.T) {
	findBrowser(t)
	p := authtest.NewProvider(authtest.Config{Host: "localhost", AutoApprove: "alice"})
	defer p.Close()
	app := startSiteApp(t, p, nil, func(a *auth.Middleware) http.Handler {
		return a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { whoPage(w, r, "") }))
	})

	bctx, closeTab := newTab(t, time.Minute)
	defer closeTab()

	// A protected page: RequireLogin sends the browser through the
	// provider and back to it.
	if err := chromedp.Do(bctx, chromedp.Navigate(app+"/private")); err != nil {
		t.Fatalf("open %s/private: %v", app, err)
	}
	wait, cancelWait := context.WithTimeout(bctx, 15*time.Second)
	defer cancelWait()
	if err := chromedp.Do(wait, chromedp.WaitVisible(chromedp.CSS("#who"))); err != nil {
		loc, _ := chromedp.Run(bctx, chromedp.Location())
		body, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("login over https: %v; the browser is at %s showing %q", err, loc, strings.TrimSpace(body))
	}
	who, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#who")))
	if err != nil || strings.TrimSpace(who) != "hello alice" {
		t.Errorf("page after login over https = %q (%v), want %q", who, err, "hello alice")
	}
	if loc, _ := chromedp.Run(bctx, chromedp.Location()); loc != app+"/private" {
		t.Errorf("after login the browser is at %s, want %s/private", loc, app)
	}
}
