package e2e

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
)

// formPostSites is an app on https://app.example.test with ResponseMode
// form_post, and its provider on another site, http://idp.other.test:
// the provider's answer is a page whose script posts the form across
// sites to the app's callback, so the login's flow cookie goes with it
// only because it is SameSite=None.
type formPostSites struct {
	provider *authtest.Provider
	app      string // https://app.example.test:PORT
}

func newFormPostSites(t *testing.T, autoApprove string) *formPostSites {
	t.Helper()
	p := authtest.NewProvider(authtest.Config{Host: "idp.other.test", AutoApprove: autoApprove})
	t.Cleanup(p.Close)
	app := startSiteApp(t, p, func(c *auth.Config) { c.ResponseMode = "form_post" }, func(*auth.Middleware) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { whoPage(w, r, "") })
	})
	return &formPostSites{provider: p, app: app}
}

// statuses records the status of each page the tab loads, and of each
// redirect on the way, by URL without its query.
type statuses struct {
	mu sync.Mutex
	by map[string]int64
}

func watchStatuses(t *testing.T, tab context.Context) *statuses {
	t.Helper()
	st := &statuses{by: map[string]int64{}}
	err := chromedp.Listen(tab, func(ev any) {
		var res *network.Response
		switch e := ev.(type) {
		case *network.EventResponseReceived:
			if e.Type == network.ResourceTypeDocument {
				res = e.Response
			}
		case *network.EventRequestWillBeSent:
			res = e.RedirectResponse // a redirect's own response
		}
		if res != nil {
			st.mu.Lock()
			st.by[withoutQuery(res.URL)] = res.Status
			st.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (st *statuses) of(u string) int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.by[u]
}

// TestBrowserFormPost logs in with response_mode=form_post: the provider's
// page posts the code from another site, the app's flow cookie
// (SameSite=None, __Host-) goes with it, and the app answers with a 303
// to the page the login started from.
func TestBrowserFormPost(t *testing.T) {
	s := newFormPostSites(t, "alice")
	tab, _ := newTab(t, time.Minute)
	st := watchStatuses(t, tab)
	if err := chromedp.Do(tab, chromedp.Navigate(s.app+"/auth/login?next=/welcome")); err != nil {
		t.Fatalf("open the login: %v", err)
	}
	page, ok := await(tab, 10*time.Second, func(p shown) bool { return strings.HasPrefix(p.URL, s.app+"/welcome") })
	if !ok || page.Text != "hello alice" {
		t.Fatalf("form_post login: the tab shows %s, want the app's /welcome saying hello alice", page)
	}
	if got := st.of(s.app + "/auth/callback"); got != http.StatusSeeOther {
		t.Errorf("callback status %d, want 303", got)
	}
	// The flow cookie was consumed; the session cookie is Lax as ever.
	cookies, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{s.app + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies.Cookies {
		if strings.Contains(c.Name, "_flow_") {
			t.Errorf("flow cookie %s left after the login", c.Name)
		}
		if c.Name == "__Host-gatehouse" && (c.SameSite != network.CookieSameSiteLax || !c.Secure || !c.HTTPOnly) {
			t.Errorf("session cookie %+v, want Secure, HttpOnly, SameSite=Lax", c)
		}
	}
	// A reload shows the page again, and posts nothing.
	if err := chromedp.Do(tab, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	if page, ok := await(tab, 5*time.Second, func(p shown) bool { return p.Text == "hello alice" }); !ok || !strings.HasPrefix(page.URL, s.app+"/welcome") {
		t.Errorf("after a reload the tab shows %s, want /welcome again", page)
	}
}

// TestBrowserFormPostNoFlowCookie: the same login, with the app's cookies
// gone while the user is at the provider, fails with 400 and the
// middleware's page: no session, no code exchanged.
func TestBrowserFormPostNoFlowCookie(t *testing.T) {
	s := newFormPostSites(t, "") // the provider shows its user chooser
	tab, _ := newTab(t, time.Minute)
	st := watchStatuses(t, tab)
	button := chromedp.CSS(`button[value="bob"]`)
	if err := chromedp.Do(tab, chromedp.Navigate(s.app+"/auth/login"), chromedp.WaitVisible(button)); err != nil {
		page, _ := look(tab)
		t.Fatalf("no user chooser at the provider: %v; the tab shows %s", err, page)
	}
	cookies, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{s.app + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	flows := 0
	for _, c := range cookies.Cookies {
		if strings.Contains(c.Name, "_flow_") {
			flows++
			if c.SameSite != network.CookieSameSiteNone || !c.Secure || !strings.HasPrefix(c.Name, "__Host-") {
				t.Errorf("flow cookie %s: SameSite %s, Secure %v; want a __Host- cookie, Secure, SameSite=None", c.Name, c.SameSite, c.Secure)
			}
		}
		if _, err := chromedp.Call(tab, network.DeleteCookies, network.DeleteCookiesParams{Name: c.Name, URL: s.app + "/"}); err != nil {
			t.Fatal(err)
		}
	}
	if flows != 1 {
		t.Fatalf("the app set %d flow cookies, want 1", flows)
	}
	if err := chromedp.Do(tab, chromedp.Click(button, chromedp.NodeVisible)); err != nil {
		t.Fatalf("choose bob: %v", err)
	}
	page, ok := await(tab, 10*time.Second, func(p shown) bool { return strings.HasPrefix(p.URL, s.app+"/auth/callback") && p.Text != "" })
	if !ok || !strings.Contains(page.Text, "Sign in again") {
		t.Errorf("the tab shows %s, want the callback's error page with a way to sign in again", page)
	}
	if got := st.of(s.app + "/auth/callback"); got != http.StatusBadRequest {
		t.Errorf("callback status %d, want 400", got)
	}
	if got := s.provider.Grants("authorization_code"); got != 0 {
		t.Errorf("authorization_code grants = %d, want 0", got)
	}
}
