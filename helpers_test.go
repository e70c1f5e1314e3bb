package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
)

// testApp is an application wrapped by the middleware, served on loopback
// next to an authtest provider.
type testApp struct {
	*httptest.Server
	m    *auth.Middleware
	p    *authtest.Provider
	logs *syncBuffer
}

var testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// newTestApp starts a provider and an app. edit may change the provider's
// config before it starts and the middleware's config before New.
func newTestApp(t testing.TB, pcfg authtest.Config, edit func(*auth.Config)) *testApp {
	t.Helper()
	p := authtest.NewProvider(pcfg)
	t.Cleanup(p.Close)
	return newAppFor(t, p, edit)
}

func newAppFor(t testing.TB, p *authtest.Provider, edit func(*auth.Config)) *testApp {
	t.Helper()
	app := &testApp{p: p, logs: &syncBuffer{}}
	var h http.Handler = http.NotFoundHandler()
	var mu sync.RWMutex
	app.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.RLock()
		hh := h
		mu.RUnlock()
		hh.ServeHTTP(w, r)
	}))
	t.Cleanup(app.Close)
	p.AddRedirectURI(app.URL + "/auth/callback")
	p.AddPostLogoutRedirectURI(app.URL + "/")
	cfg := auth.Config{
		Issuer:       p.URL,
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		RedirectURL:  app.URL + "/auth/callback",
		CookieSecret: testSecret,
		Logger:       slog.New(slog.NewTextHandler(app.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	m, err := auth.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	auth.SetNow(m, p.Now) // one clock for provider and middleware
	app.m = m
	mu.Lock()
	h = m.Handler(appRoutes(m))
	mu.Unlock()
	return app
}

// appRoutes is the application under test.
func appRoutes(m *auth.Middleware) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		if u := auth.User(r.Context()); u != nil {
			io.WriteString(w, "hello "+u.Name)
			return
		}
		io.WriteString(w, "anonymous")
	})
	mux.Handle("/me", m.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(auth.User(r.Context()))
	})))
	mux.Handle("/token", m.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, auth.Token(r.Context()).AccessToken)
	})))
	return mux
}

// newBrowser returns a browser that does not follow redirects, holding a
// provider session for sub.
func newBrowser(t testing.TB, p *authtest.Provider, sub string) *http.Client {
	t.Helper()
	return p.Browser(t, sub)
}

// get sends a GET with optional header pairs and returns the response with
// its body read into body.
func get(t testing.TB, c *http.Client, rawURL string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// follow GETs rawURL and follows redirects hop by hop (the browser does not)
// until a non-redirect response, returning it and the URLs visited.
func follow(t testing.TB, c *http.Client, rawURL string) (*http.Response, string, []string) {
	t.Helper()
	var visited []string
	for i := 0; i < 10; i++ {
		visited = append(visited, rawURL)
		res, body := get(t, c, rawURL, "Accept", "text/html")
		if res.StatusCode < 300 || res.StatusCode >= 400 {
			return res, body, visited
		}
		loc, err := res.Location()
		if err != nil {
			t.Fatalf("GET %s: redirect without Location", rawURL)
		}
		rawURL = loc.String()
	}
	t.Fatalf("too many redirects: %v", visited)
	return nil, "", nil
}

// login signs sub in through the real flow and returns the browser.
func (app *testApp) login(t testing.TB, sub string) *http.Client {
	t.Helper()
	c := newBrowser(t, app.p, sub)
	res, body, visited := follow(t, c, app.URL+"/auth/login?next=/me")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("login as %s: status = %d (%q) after %v, want 200", sub, res.StatusCode, body, visited)
	}
	return c
}

// startLogin runs login up to the provider's redirect back to the app and
// returns the callback URL without visiting it.
func (app *testApp) startLogin(t testing.TB, c *http.Client, next string) string {
	t.Helper()
	res, _ := get(t, c, app.URL+"/auth/login?next="+url.QueryEscape(next))
	if res.StatusCode != http.StatusFound {
		t.Fatalf("GET /auth/login: status = %d, want 302", res.StatusCode)
	}
	authz := res.Header.Get("Location")
	res, body := get(t, c, authz)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("GET authorize: status = %d (%s), want 302", res.StatusCode, body)
	}
	return res.Header.Get("Location")
}

// me returns the status of GET /me as an API call and the decoded user.
func (app *testApp) me(t testing.TB, c *http.Client) (int, *auth.Identity) {
	t.Helper()
	res, body := get(t, c, app.URL+"/me", "Accept", "application/json")
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, nil
	}
	var u auth.Identity
	if err := json.Unmarshal([]byte(body), &u); err != nil {
		t.Fatalf("GET /me: decode %q: %v", body, err)
	}
	return res.StatusCode, &u
}

// sessionCookies returns the browser's session cookies for the app.
func (app *testApp) sessionCookies(c *http.Client) []*http.Cookie {
	u, _ := url.Parse(app.URL)
	var out []*http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if strings.HasPrefix(ck.Name, "gatehouse") && !strings.Contains(ck.Name, "_flow_") {
			out = append(out, ck)
		}
	}
	return out
}

// cloneJar copies the app's cookies of one browser into a new browser,
// like a second tab or a stolen copy of the cookie.
func (app *testApp) cloneBrowser(t testing.TB, c *http.Client) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(app.URL)
	jar.SetCookies(u, c.Jar.Cookies(u))
	return &http.Client{Jar: jar, CheckRedirect: c.CheckRedirect}
}

// setCookies finds the Set-Cookie headers of res by name.
func setCookies(res *http.Response) map[string]*http.Cookie {
	out := map[string]*http.Cookie{}
	for _, c := range res.Cookies() {
		out[c.Name] = c
	}
	return out
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ = time.Second
