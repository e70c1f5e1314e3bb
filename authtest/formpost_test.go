package authtest_test

import (
	"crypto/sha256"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

var (
	formElement   = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	scriptElement = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
)

// formPost reads a form_post page: its form's action and fields.
func formPost(t *testing.T, res *http.Response, body string) (string, url.Values) {
	t.Helper()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("form_post response: status %d, want 200 with a page: %.300q", res.StatusCode, body)
	}
	m := formElement.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("form_post page has no post form: %.300q", body)
	}
	form := url.Values{}
	for _, in := range hiddenInput.FindAllStringSubmatch(body, -1) {
		form.Add(html.UnescapeString(in[1]), html.UnescapeString(in[2]))
	}
	return html.UnescapeString(m[1]), form
}

func TestFormPost(t *testing.T) {
	t.Parallel()
	p := newProvider(t, authtest.Config{IssuerParameter: true, SigningAlg: "ES256"})
	res, body := apptest.Get(t, p.Browser(t, "alice"), p.URL+"/authorize?"+authParams(p, "response_mode", "form_post", "state", `st&"<>`).Encode())
	action, form := formPost(t, res, body)
	if action != redirectURI {
		t.Errorf("form action %q, want the redirect URI %q", action, redirectURI)
	}
	if form.Get("code") == "" || form.Get("state") != `st&"<>` || form.Get("iss") != p.URL || len(form) != 3 {
		t.Errorf("form fields %v, want code, the state as sent and iss", form)
	}
	// The form is what the token endpoint redeems.
	checkTokenResult(t, "POST /token with the posted code", post(t, p, "/token", codeForm(form.Get("code"))), "")

	// A script posts the form, allowed by its hash; a button does
	// without script. Nothing else may run or load, and the form may
	// only go to the client.
	csp := res.Header.Get("Content-Security-Policy")
	s := scriptElement.FindStringSubmatch(body)
	if s == nil || !strings.Contains(s[1], "submit()") {
		t.Fatalf("form_post page: no script that submits the form: %.400q", body)
	}
	sum := sha256.Sum256([]byte(s[1]))
	for _, want := range []string{"default-src 'none'", "script-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'", "form-action http://app.example", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("form_post page: Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if !strings.Contains(body, "<noscript>") || !strings.Contains(body, `<button class="primary" type="submit">`) {
		t.Errorf("form_post page: no button for browsers without script")
	}
	if got := res.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("form_post page: Cache-Control %q, want no-store", got)
	}

	// Errors go back the same way (Form Post Response Mode 2).
	res, body = apptest.Get(t, p.Browser(t, ""), p.URL+"/authorize?"+authParams(p, "response_mode", "form_post", "prompt", "none").Encode())
	_, form = formPost(t, res, body)
	if form.Get("error") != "login_required" || form.Get("state") != "st" {
		t.Errorf("prompt=none without a session, form_post: fields %v, want error login_required and the state", form)
	}
}

// TestLoginFormPost: Login posts the provider's form to the client, as a
// browser would.
func TestLoginFormPost(t *testing.T) {
	t.Parallel()
	p := authtest.NewProvider(authtest.Config{})
	t.Cleanup(p.Close)
	var mu sync.Mutex
	var got url.Values
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login":
			q := url.Values{"client_id": {p.ClientID}, "redirect_uri": {"http://" + r.Host + "/callback"}, "response_type": {"code"},
				"scope": {"openid"}, "state": {"s1"}, "response_mode": {"form_post"}}
			http.Redirect(w, r, p.URL+"/authorize?"+q.Encode(), http.StatusFound)
		case "/callback":
			if r.Method != http.MethodPost {
				http.Error(w, "want POST", http.StatusMethodNotAllowed)
				return
			}
			r.ParseForm()
			mu.Lock()
			got = r.PostForm
			mu.Unlock()
			http.Redirect(w, r, "/", http.StatusSeeOther)
		default:
			io.WriteString(w, "home")
		}
	}))
	t.Cleanup(app.Close)
	p.AddRedirectURI(app.URL + "/callback")
	p.Login(t, app.URL+"/login", "bob")
	mu.Lock()
	defer mu.Unlock()
	if got.Get("code") == "" || got.Get("state") != "s1" {
		t.Errorf("callback form %v, want a code and state s1", got)
	}
}
