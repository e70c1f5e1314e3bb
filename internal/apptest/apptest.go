// Package apptest is the test harness that the repository's tests share:
// an application wrapped by the middleware, served on loopback next to an
// authtest provider (or providers of a test's own), a browser to drive it
// hop by hop, and the checks and chores that several test packages have
// in common (concurrent requests, a refresh storm, building a command).
// It is internal: users test their own apps with authtest.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
)

// Secret is the cookie secret of every App unless a test sets its own.
var Secret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// App is an application wrapped by the middleware, served on loopback.
type App struct {
	*httptest.Server
	M    *auth.Middleware
	P    *authtest.Provider // the provider of New and NewFor; nil for NewProviders unless a test sets it
	Logs *LogBuffer         // the middleware's log, at debug level

	mu sync.RWMutex
	h  http.Handler
}

// New starts an authtest provider with pcfg and an App signed in through
// it. edit may change the middleware's Config before New.
func New(t testing.TB, pcfg authtest.Config, edit func(*auth.Config)) *App {
	t.Helper()
	p := authtest.NewProvider(pcfg)
	t.Cleanup(p.Close)
	return NewFor(t, p, edit)
}

// NewFor starts an App that signs in through p, on p's clock.
func NewFor(t testing.TB, p *authtest.Provider, edit func(*auth.Config)) *App {
	t.Helper()
	return newFor(t, p, edit, Start)
}

func newFor(t testing.TB, p *authtest.Provider, edit func(*auth.Config), start func(testing.TB, func(string) auth.Config, func(*auth.Config)) *App) *App {
	t.Helper()
	app := start(t, func(appURL string) auth.Config {
		p.AddRedirectURI(appURL + "/auth/callback")
		p.AddPostLogoutRedirectURI(appURL + "/")
		return auth.Config{
			Issuer:       p.URL,
			ClientID:     p.ClientID,
			ClientSecret: p.ClientSecret,
			RedirectURL:  appURL + "/auth/callback",
			Now:          p.Now, // one clock for provider and middleware
		}
	}, edit)
	app.P = p
	return app
}

// NewProviders starts an App with the providers that providers returns
// for the app's URL, on the clock now.
func NewProviders(t testing.TB, now func() time.Time, providers func(appURL string) []auth.Provider, edit func(*auth.Config)) *App {
	t.Helper()
	return Start(t, func(appURL string) auth.Config {
		return auth.Config{
			Providers:   providers(appURL),
			RedirectURL: appURL + "/auth/callback",
			Now:         now,
		}
	}, edit)
}

// Start serves Routes behind a middleware made from the Config that cfg
// returns for the app's URL (with Secret and a debug logger into Logs
// unless it sets its own), then edit. The server is closed when the test
// ends.
func Start(t testing.TB, cfg func(appURL string) auth.Config, edit func(*auth.Config)) *App {
	t.Helper()
	return start(t, httptest.NewServer, cfg, edit)
}

func start(t testing.TB, serve func(http.Handler) *httptest.Server, cfg func(appURL string) auth.Config, edit func(*auth.Config)) *App {
	t.Helper()
	app := &App{Logs: &LogBuffer{}, h: http.NotFoundHandler()}
	app.Server = serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app.mu.RLock()
		h := app.h
		app.mu.RUnlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(app.Close)
	c := cfg(app.URL)
	if c.CookieSecret == nil {
		c.CookieSecret = Secret
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(app.Logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if edit != nil {
		edit(&c)
	}
	m, err := auth.New(context.Background(), c)
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	app.M = m
	app.Serve(Routes(m))
	return app
}

// Serve makes h, wrapped by the middleware's Handler, the application.
func (app *App) Serve(h http.Handler) {
	app.mu.Lock()
	app.h = app.M.Handler(h)
	app.mu.Unlock()
}

// Routes is the application under test: / says "hello NAME" or
// "anonymous", /me (RequireLogin) answers the user as JSON, /token
// (RequireLogin) the access token.
func Routes(m *auth.Middleware) http.Handler {
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

// Browser returns a browser with no session anywhere that does not follow
// redirects, so each hop can be checked.
func Browser(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Get sends a GET with optional header pairs and returns the response with
// its body read.
func Get(t testing.TB, c *http.Client, rawURL string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return Do(t, c, req)
}

// Do sends req and returns the response with its body read.
func Do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return res, string(b)
}

// PostForm POSTs form to rawURL, as a browser submits an HTML form, and
// returns the response with its body read.
func PostForm(t testing.TB, c *http.Client, rawURL string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return Do(t, c, req)
}

// Follow GETs rawURL and follows redirects hop by hop until a
// non-redirect response, returning it, its body and the URLs visited.
func Follow(t testing.TB, c *http.Client, rawURL string) (*http.Response, string, []string) {
	t.Helper()
	var visited []string
	for range 10 {
		visited = append(visited, rawURL)
		res, body := Get(t, c, rawURL, "Accept", "text/html")
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

// Login signs sub in through the real flow and returns the browser.
func (app *App) Login(t testing.TB, sub string) *http.Client {
	t.Helper()
	c := app.P.Browser(t, sub)
	res, body, visited := Follow(t, c, app.URL+"/auth/login?next=/me")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("login as %s: status = %d (%q) after %v, want 200", sub, res.StatusCode, body, visited)
	}
	return c
}

// LoginAt signs c in through loginPath (such as "/auth/login/github") and
// fails the test unless the flow ends on /me with 200.
func (app *App) LoginAt(t testing.TB, c *http.Client, loginPath string) *auth.Identity {
	t.Helper()
	res, body, visited := Follow(t, c, app.URL+loginPath+"?next=/me")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("login at %s: status = %d (%q) after %v, want 200", loginPath, res.StatusCode, body, visited)
	}
	status, u := app.Me(t, c)
	if status != http.StatusOK {
		t.Fatalf("GET /me after login at %s: status = %d, want 200", loginPath, status)
	}
	return u
}

// StartLogin runs login (returning to next) up to the provider's redirect
// back to the app, and returns that callback URL without visiting it.
func (app *App) StartLogin(t testing.TB, c *http.Client, next string) string {
	t.Helper()
	return app.toCallback(t, c, "/auth/login?next="+url.QueryEscape(next))
}

func (app *App) toCallback(t testing.TB, c *http.Client, loginPath string) string {
	t.Helper()
	res, _ := Get(t, c, app.URL+loginPath)
	if res.StatusCode != http.StatusFound {
		t.Fatalf("GET %s: status = %d, want 302", loginPath, res.StatusCode)
	}
	res, body := Get(t, c, res.Header.Get("Location"))
	if res.StatusCode != http.StatusFound {
		t.Fatalf("GET authorize: status = %d (%s), want 302", res.StatusCode, body)
	}
	return res.Header.Get("Location")
}

// LoginWithFault starts a login as sub in a new browser, makes the
// provider's next answer misbehave as fault says, and visits the callback
// with optional header pairs. It returns the browser and the callback's
// response with its body read.
func (app *App) LoginWithFault(t testing.TB, sub string, fault authtest.Fault, header ...string) (*http.Client, *http.Response, string) {
	t.Helper()
	c := app.P.Browser(t, sub)
	callback := app.StartLogin(t, c, "/me")
	app.P.FailNext(fault)
	res, body := Get(t, c, callback, header...)
	return c, res, body
}

// CallbackURL runs login at loginPath up to the provider's redirect back
// to the app, and returns that callback URL without visiting it.
func (app *App) CallbackURL(t testing.TB, c *http.Client, loginPath string) *url.URL {
	t.Helper()
	loc := app.toCallback(t, c, loginPath)
	u, err := url.Parse(loc)
	if err != nil || u.Query().Get("code") == "" {
		t.Fatalf("authorize redirected to %q, want a callback with a code", loc)
	}
	return u
}

// Me returns the status of GET /me as an API call and the decoded user.
func (app *App) Me(t testing.TB, c *http.Client) (int, *auth.Identity) {
	t.Helper()
	res, body := Get(t, c, app.URL+"/me", "Accept", "application/json")
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, nil
	}
	var u auth.Identity
	if err := json.Unmarshal([]byte(body), &u); err != nil {
		t.Fatalf("GET /me: decode %q: %v", body, err)
	}
	return res.StatusCode, &u
}

// WantEnded fails the test unless, on every one of apps, GET /me is 401
// with each browser in ended and 200 with kept; after names what ended
// the sessions.
func WantEnded(t testing.TB, apps []*App, after string, kept *http.Client, ended ...*http.Client) {
	t.Helper()
	for _, app := range apps {
		for i, c := range ended {
			if status, _ := app.Me(t, c); status != http.StatusUnauthorized {
				t.Errorf("GET %s/me with ended browser %d after %s: status %d, want 401", app.URL, i+1, after, status)
			}
		}
		if status, _ := app.Me(t, kept); status != http.StatusOK {
			t.Errorf("GET %s/me with another user's browser after %s: status %d, want 200", app.URL, after, status)
		}
	}
}

// SessionCookies returns the browser's session cookies for the app.
func (app *App) SessionCookies(c *http.Client) []*http.Cookie {
	u, _ := url.Parse(app.URL)
	var out []*http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if strings.HasPrefix(ck.Name, "gatehouse") && !strings.Contains(ck.Name, "_flow_") {
			out = append(out, ck)
		}
	}
	return out
}

// Clone copies the app's cookies of one browser into a new browser, like
// a second tab or a stolen copy of the cookie.
func (app *App) Clone(t testing.TB, c *http.Client) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(app.URL)
	jar.SetCookies(u, c.Jar.Cookies(u))
	return &http.Client{Jar: jar, CheckRedirect: c.CheckRedirect}
}

// SetCookies finds the Set-Cookie headers of res by name.
func SetCookies(res *http.Response) map[string]*http.Cookie {
	out := map[string]*http.Cookie{}
	for _, c := range res.Cookies() {
		out[c.Name] = c
	}
	return out
}

// Concurrently runs do(0) ... do(n-1) at once and waits for them all; the
// errors they return fail the test.
func Concurrently(t testing.TB, n int, do func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if err := do(i); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// RefreshStorm sends n requests for /token at once, each with a copy of
// c's session, request i to apps[i%len(apps)] (cookies are per host, not
// per port: a browser sends the same session cookie to instances on other
// ports). It fails the test unless every request succeeds with one token
// from exactly one refresh grant at p, and returns that token.
func RefreshStorm(t testing.TB, p *authtest.Provider, c *http.Client, n int, apps ...*App) string {
	t.Helper()
	tokens := make([]string, n)
	Concurrently(t, n, func(i int) error {
		app := apps[i%len(apps)]
		res, err := app.Clone(t, c).Get(app.URL + "/token")
		if err != nil {
			return fmt.Errorf("concurrent request: %w", err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		tokens[i] = string(body)
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("concurrent request: %s", res.Status)
		}
		return nil
	})
	if got := p.Grants("refresh_token"); got != 1 {
		t.Errorf("refresh_token grants for %d concurrent requests on %d instances = %d, want 1", n, len(apps), got)
	}
	for i := range tokens {
		if tokens[i] != tokens[0] {
			t.Fatalf("request %d got token %q, request 0 %q: want the same refreshed token", i, tokens[i], tokens[0])
		}
	}
	return tokens[0]
}

// RequestsTo counts p's requests to endpoint ("token", "jwks", ...).
func RequestsTo(p *authtest.Provider, endpoint string) int {
	n := 0
	for _, r := range p.Requests() {
		if r.Endpoint == endpoint {
			n++
		}
	}
	return n
}

// BuildCommand builds the command in the test's own directory, as go
// build does, and returns the path of the binary, in a directory removed
// when the test ends. It skips the test if there is no go command.
func BuildCommand(t testing.TB) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build with")
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(wd))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Recorder keeps what a hook (Config.Metrics, OnLogin) hands it; it is
// safe for concurrent use.
type Recorder[T any] struct {
	mu   sync.Mutex
	seen []T
}

// Add records v.
func (r *Recorder[T]) Add(v T) {
	r.mu.Lock()
	r.seen = append(r.seen, v)
	r.mu.Unlock()
}

// Seen returns what was recorded, oldest first.
func (r *Recorder[T]) Seen() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// Last returns what was recorded last, or the zero T.
func (r *Recorder[T]) Last() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	var v T
	if len(r.seen) > 0 {
		v = r.seen[len(r.seen)-1]
	}
	return v
}

// LogBuffer is a log sink safe for concurrent writes.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *LogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *LogBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Clock is a test clock: real time plus every Advance.
type Clock struct {
	mu  sync.Mutex
	off time.Duration
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}
