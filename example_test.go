package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
)

// startApp serves handler behind the middleware on a loopback server,
// with an authtest provider that signs in alice without asking. In a real
// application Issuer is the provider's URL (https://accounts.google.com)
// and the server is your own.
func startApp(routes func(a *auth.Middleware) http.Handler) (app *httptest.Server, p *authtest.Provider, a *auth.Middleware) {
	p = authtest.NewProvider(authtest.Config{AutoApprove: "alice"})
	app = httptest.NewServer(nil)
	p.AddRedirectURI(app.URL + "/auth/callback")
	a, err := auth.New(context.Background(), auth.Config{
		Issuer:       p.URL,
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		RedirectURL:  app.URL + "/auth/callback",
		CookieSecret: []byte("an example secret of at least 32 bytes"),
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	app.Config.Handler = a.Handler(routes(a))
	return app, p, a
}

// browse GETs url as a browser would, following redirects with a cookie jar.
func browse(c *http.Client, url string) string {
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "text/html")
	res, err := c.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return fmt.Sprintf("%d %s", res.StatusCode, b)
}

func newJarBrowser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

// The whole flow: an anonymous browser asks for a page that requires
// login, goes through the provider and lands back on the page, signed in.
func Example() {
	app, p, _ := startApp(func(a *auth.Middleware) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("GET /me", a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u := auth.User(r.Context())
			fmt.Fprintf(w, "signed in as %s <%s>", u.Name, u.Email)
		})))
		return mux
	})
	defer p.Close()
	defer app.Close()

	fmt.Println(browse(newJarBrowser(), app.URL+"/me"))
	// Output: 200 signed in as Alice Example <alice@example.com>
}

// New discovers the provider and checks the configuration once, at
// startup; Handler then wraps the whole application.
func ExampleNew() {
	ctx := context.Background()
	a, err := auth.New(ctx, auth.Config{
		Issuer:       os.Getenv("AUTH_ISSUER"), // e.g. https://accounts.google.com
		ClientID:     os.Getenv("AUTH_CLIENT_ID"),
		ClientSecret: os.Getenv("AUTH_CLIENT_SECRET"),
		RedirectURL:  "http://127.0.0.1:8080/auth/callback",
		CookieSecret: []byte(os.Getenv("AUTH_COOKIE_SECRET")), // >= 32 bytes, stable across restarts
	})
	if err != nil {
		fmt.Println(err) // bad config or discovery failed: fail at startup
		return
	}
	mux := http.NewServeMux()
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", a.Handler(mux))) // Handler also serves /auth/*
}

// RequireLogin sends an anonymous browser to login, and tells an API
// client 401.
func ExampleMiddleware_RequireLogin() {
	app, p, _ := startApp(func(a *auth.Middleware) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("GET /api/data", a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"data":42}`)
		})))
		return mux
	})
	defer p.Close()
	defer app.Close()

	noRedirects := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, accept := range []string{"text/html", "application/json"} {
		req, _ := http.NewRequest("GET", app.URL+"/api/data", nil)
		req.Header.Set("Accept", accept)
		res, err := noRedirects.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		res.Body.Close()
		fmt.Println(accept, res.StatusCode, res.Header.Get("Location"))
	}
	// Output:
	// text/html 302 /auth/login?next=%2Fapi%2Fdata
	// application/json 401
}

// Handlers read the signed-in user from the request's context; it is nil
// for anonymous requests, which Handler lets through.
func ExampleUser() {
	app, p, _ := startApp(func(a *auth.Middleware) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u := auth.User(r.Context()); u != nil {
				fmt.Fprintf(w, "hello %s (%s at %s)", u.Name, u.Subject, u.Email)
				return
			}
			io.WriteString(w, "hello stranger")
		})
	})
	defer p.Close()
	defer app.Close()

	b := newJarBrowser()
	fmt.Println(browse(b, app.URL+"/"))
	fmt.Println(browse(b, app.URL+"/auth/login"))
	// Output:
	// 200 hello stranger
	// 200 hello Alice Example (alice at alice@example.com)
}

// Client calls APIs with the user's access token, refreshing it when it
// expires.
func ExampleClient() {
	var userinfo string
	app, p, _ := startApp(func(a *auth.Middleware) http.Handler {
		return a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			res, err := auth.Client(r.Context()).Get(userinfo)
			if err != nil {
				http.Error(w, "provider unavailable", http.StatusBadGateway)
				return
			}
			defer res.Body.Close()
			var u struct{ Email string }
			_ = jsonDecode(res.Body, &u)
			fmt.Fprintf(w, "the provider says %s", u.Email)
		}))
	})
	defer p.Close()
	defer app.Close()
	userinfo = p.URL + "/userinfo"

	fmt.Println(browse(newJarBrowser(), app.URL+"/profile"))
	// Output: 200 the provider says alice@example.com
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

// Handler's method value is a func(http.Handler) http.Handler, so it fits
// any router's Use, as in chi: r.Use(a.Handler).
func ExampleMiddleware_Handler() {
	app, p, a := startApp(func(*auth.Middleware) http.Handler { return http.NotFoundHandler() })
	defer p.Close()
	defer app.Close()

	use := []func(http.Handler) http.Handler{a.Handler, a.RequireLogin} // a router's middleware chain
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hi %s", auth.User(r.Context()).Subject)
	})
	for i := len(use) - 1; i >= 0; i-- {
		h = use[i](h)
	}
	app.Config.Handler = h

	fmt.Println(browse(newJarBrowser(), app.URL+"/dashboard"))
	// Output: 200 hi alice
}

// RenderPage draws the pages the middleware shows a person (an error,
// the question before a logout another site asked for, the choice of
// provider) in the application's own look: here a template of its own.
func ExampleConfig_renderPage() {
	page := template.Must(template.New("page").Parse(
		`<!doctype html><title>{{.Title}} - My App</title><h1>{{.Title}}</h1><p>{{.Message}}</p>` +
			`{{with .Form}}<form method="post" action="{{.Action}}"><button>{{.Label}}</button></form>{{end}}` +
			`{{range .Links}}<a href="{{.URL}}">{{.Label}}</a> {{end}}`))
	p := authtest.NewProvider(authtest.Config{})
	defer p.Close()
	a, err := auth.New(context.Background(), auth.Config{
		Issuer:       p.URL,
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		RedirectURL:  "http://127.0.0.1:8080/auth/callback",
		CookieSecret: []byte("an example secret of at least 32 bytes"),
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		RenderPage: func(w http.ResponseWriter, r *http.Request, p *auth.Page) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(p.Status)
			page.Execute(w, p)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	// A callback that no sign-in started, as a person would open it.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "http://127.0.0.1:8080/auth/callback?state=x&code=y", nil)
	req.Header.Set("Accept", "text/html")
	a.Handler(http.NotFoundHandler()).ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body.String())
	// Output: 400 <!doctype html><title>Sign-in failed - My App</title><h1>Sign-in failed</h1><p>This sign-in link has expired or was already used. Please sign in again.</p><a href="/auth/login">Sign in again</a> <a href="/">Back to the site</a>
}
