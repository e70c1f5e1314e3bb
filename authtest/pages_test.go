package authtest_test

import (
	"crypto/sha256"
	"encoding/base64"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

var (
	styleElement = regexp.MustCompile(`(?s)<style>(.*?)</style>`)
	heading      = regexp.MustCompile(`<h1>([^<]*)</h1>`)
	cancelLink   = regexp.MustCompile(`<a [^>]*href="([^"]*)"[^>]*>Cancel</a>`)
)

// checkPage checks what every HTML page of the provider has: a viewport
// for phones, no external assets, and a strict Content-Security-Policy
// whose form-action is wantForm. It returns the page's h1.
func checkPage(t *testing.T, call string, res *http.Response, body string, wantForm string) string {
	t.Helper()
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("%s: Content-Type %q, want text/html; charset=utf-8", call, ct)
	}
	if !strings.Contains(body, `<meta name="viewport" content="width=device-width, initial-scale=1">`) {
		t.Errorf("%s: no viewport meta tag", call)
	}
	for _, external := range []string{"<link", "<script", "<img", "src=", "@import", "url("} {
		if strings.Contains(body, external) {
			t.Errorf("%s: page has %q; want no external assets or scripts", call, external)
		}
	}
	csp := res.Header.Get("Content-Security-Policy")
	directives := make(map[string]string)
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	m := styleElement.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%s: no <style> element", call)
	}
	sum := sha256.Sum256([]byte(m[1]))
	wantStyle := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	for name, want := range map[string]string{
		"default-src":     "'none'",
		"style-src":       wantStyle,
		"frame-ancestors": "'none'",
		"base-uri":        "'none'",
		"form-action":     wantForm,
	} {
		if got := directives[name]; got != want {
			t.Errorf("%s: Content-Security-Policy %s %q, want %q (policy %q)", call, name, got, want, csp)
		}
	}
	h := heading.FindStringSubmatch(body)
	if h == nil {
		t.Fatalf("%s: no <h1>", call)
	}
	return html.UnescapeString(h[1])
}

func TestChooserPage(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name        string
		cfg         authtest.Config
		redirectURI string
		wantHeading string
		wantAction  string // CSP form-action: the chooser posts, then redirects
	}{
		{"defaults", authtest.Config{}, redirectURI, "Sign in to Test App", "'self' http://app.example"},
		{"ClientName", authtest.Config{ClientName: "Gatehouse <Demo>"}, "http://127.0.0.1:8080/auth/callback?x=1", "Sign in to Gatehouse <Demo>", "'self' http://127.0.0.1:8080"},
		{"custom scheme", authtest.Config{}, "com.example.app:/callback", "Sign in to Test App", "'self' com.example.app:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.cfg.SigningAlg = "ES256"
			tt.cfg.RedirectURIs = []string{tt.redirectURI}
			p := newProvider(t, tt.cfg)
			res, body, _ := authorize(t, p, p.Browser(t, ""), authParams(p, "redirect_uri", tt.redirectURI))
			if got := checkPage(t, "chooser", res, body, tt.wantAction); got != tt.wantHeading {
				t.Errorf("chooser heading %q, want %q", got, tt.wantHeading)
			}
			// Cancel goes back to the client: access_denied (RFC 6749 §4.1.2.1).
			m := cancelLink.FindStringSubmatch(body)
			if m == nil {
				t.Fatalf("chooser: no Cancel link in %s", body)
			}
			cancel, err := url.Parse(html.UnescapeString(m[1]))
			if err != nil {
				t.Fatal(err)
			}
			q := cancel.Query()
			if !strings.HasPrefix(cancel.String(), strings.Split(tt.redirectURI, "?")[0]+"?") || q.Get("error") != "access_denied" || q.Get("state") != "st" || q.Has("code") {
				t.Errorf("chooser Cancel link %s, want %s with error=access_denied, state=st", cancel, tt.redirectURI)
			}
		})
	}
}

func TestLogoutPage(t *testing.T) {
	t.Parallel()
	const bye = "http://127.0.0.1:8080/bye"
	p := newProvider(t, authtest.Config{SigningAlg: "ES256", ClientName: "Demo", PostLogoutRedirectURIs: []string{bye}})
	for _, tt := range []struct {
		name       string
		q          url.Values
		wantAction string // CSP form-action: the page posts, then redirects
		wantText   string
	}{
		{"back to the client", url.Values{"client_id": {p.ClientID}, "post_logout_redirect_uri": {bye}}, "'self' http://127.0.0.1:8080", "Demo asks to sign you out."},
		{"no redirect", url.Values{}, "'self'", "An application asks to sign you out."},
	} {
		res, body := apptest.Get(t, p.Browser(t, "alice"), p.URL+"/end_session?"+tt.q.Encode())
		if got := checkPage(t, "end_session ("+tt.name+")", res, body, tt.wantAction); got != "Sign out?" {
			t.Errorf("end_session (%s) heading %q, want %q", tt.name, got, "Sign out?")
		}
		if want := tt.wantText; !strings.Contains(body, want) {
			t.Errorf("end_session (%s): page does not say %q:\n%s", tt.name, want, body)
		}
	}
}

func TestMessagePages(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{SigningAlg: "ES256"})
	res, body, _ := authorize(t, p, p.Browser(t, ""), authParams(p, "redirect_uri", "http://evil.example/cb"))
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("GET /authorize with an unregistered redirect_uri: status %d, want 400", res.StatusCode)
	}
	checkPage(t, "authorize error", res, body, "'none'")
	res, body = apptest.Get(t, p.Browser(t, ""), p.URL+"/end_session")
	if got := checkPage(t, "signed out", res, body, "'none'"); got != "Signed out" {
		t.Errorf("end_session heading %q, want Signed out", got)
	}
}
