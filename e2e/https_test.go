package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	p := authtest.NewProvider(authtest.Config{Host: "localhost", AutoApprove: "alice"})
	defer p.Close()
	app := httptest.NewUnstartedServer(nil)
	p.AddRedirectURI("https://" + app.Listener.Addr().String() + "/auth/callback")
	a, err := auth.New(ctx, auth.Config{
		Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		RedirectURL:  "https://" + app.Listener.Addr().String() + "/auth/callback",
		CookieSecret: []byte("an e2e test secret of at least 32 bytes"),
		HTTPClient:   p.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	app.Config.Handler = a.Handler(a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<p id="who">hello `+auth.User(r.Context()).Subject+`</p>`)
	})))
	app.StartTLS()
	defer app.Close()

	bctx, closeTab := newTab(t, time.Minute) // the browser accepts httptest's own certificate
	defer closeTab()

	// A protected page: RequireLogin sends the browser through the
	// provider and back to it.
	if err := chromedp.Do(bctx, chromedp.Navigate(app.URL+"/private")); err != nil {
		t.Fatalf("open %s/private: %v", app.URL, err)
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
	if loc, _ := chromedp.Run(bctx, chromedp.Location()); loc != app.URL+"/private" {
		t.Errorf("after login the browser is at %s, want %s/private", loc, app.URL)
	}
}
