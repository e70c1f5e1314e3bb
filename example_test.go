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
	"strings"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
)

// startApp serves routes behind the middleware on a loopback server,
// with an authtest provider that signs in alice without asking; configure
// may add to the middleware's Config. In a real application Issuer is the
// provider's URL (https://accounts.google.com) and the server is your own.
func startApp(routes func(a *auth.Middleware) http.Handler, configure ...func(*auth.Config)) (app *httptest.Server, p *authtest.Provider, a *auth.Middleware) {
	p = authtest.NewProvider(authtest.Config{AutoApprove: "alice"})
	app = httptest.NewServer(nil)
	p.AddRedirectURI(app.URL + "/auth/callback")
	cfg := auth.Config{
		Issuer:       p.URL,
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		RedirectURL:  app.URL + "/auth/callback",
		CookieSecret: []byte("an example secret of at least 32 bytes"),
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, f := range configure {
		f(&cfg)
	}
	a, err := auth.New(context.Background(), cfg)
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
	app, p, _ := startApp(func(*auth.Middleware) http.Handler { return http.NotFoundHandler() }, func(c *auth.Config) {
		c.RenderPage = func(w http.ResponseWriter, r *http.Request, p *auth.Page) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(p.Status)
			page.Execute(w, p)
		}
	})
	defer p.Close()
	defer app.Close()

	// A callback that no sign-in started, as a person would open it.
	fmt.Println(browse(newJarBrowser(), app.URL+"/auth/callback?state=x&code=y"))
	// Output: 400 <!doctype html><title>Sign-in failed - My App</title><h1>Sign-in failed</h1><p>This sign-in link has expired or was already used. Please sign in again.</p><a href="/auth/login">Sign in again</a> <a href="/">Back to the site</a>
}

// An API for an SPA, a mobile app or another service: a request with an
// access token from the provider for this API's audience is signed in as a
// browser with a session is, and RequireScope checks the token's scopes.
// In a test, authtest mints the tokens.
func ExampleMiddleware_RequireScope() {
	app, p, _ := startApp(func(a *auth.Middleware) http.Handler {
		mux := http.NewServeMux()
		mux.Handle("GET /api/groups", a.RequireScope("groups:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "the groups of %s", auth.User(r.Context()).Subject)
		})))
		return mux
	}, func(c *auth.Config) {
		c.BearerAudiences = []string{"https://api.example.com"} // the aud of this API's access tokens
	})
	defer p.Close()
	defer app.Close()

	for _, scope := range []string{"groups:read", "profile"} {
		tok := p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "https://api.example.com", Scope: scope})
		req, _ := http.NewRequest("GET", app.URL+"/api/groups", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Printf("%s: %d %s\n", scope, res.StatusCode, strings.TrimSpace(string(body)))
	}
	// Output:
	// groups:read: 200 the groups of alice
	// profile: 403 {"error":"insufficient_scope","error_description":"the access token lacks a scope this resource needs"}
}

// Several providers at once: any OpenID Connect provider by its issuer URL
// (Keycloak here; Okta, Auth0, Dex or Authentik alike), and presets for
// GitHub, Google and Microsoft. Each is served at /auth/login/{Name} and
// answers at RedirectURL/{Name}, the URL to register with it:
// https://app.example.com/auth/callback/keycloak for Keycloak, and so on.
// /auth/login shows a button per provider.
func ExampleProvider() {
	a, err := auth.New(context.Background(), auth.Config{
		Providers: []auth.Provider{
			{
				Name:         "keycloak",
				DisplayName:  "Example Corp",
				Issuer:       "https://sso.example.com/realms/staff",
				ClientID:     os.Getenv("KEYCLOAK_CLIENT_ID"),
				ClientSecret: os.Getenv("KEYCLOAK_CLIENT_SECRET"),
				Scopes:       []string{"openid", "email", "profile", "offline_access"},
			},
			auth.GitHub(os.Getenv("GITHUB_CLIENT_ID"), os.Getenv("GITHUB_CLIENT_SECRET")),
			auth.Google(os.Getenv("GOOGLE_CLIENT_ID"), os.Getenv("GOOGLE_CLIENT_SECRET"), auth.GoogleOptions{Offline: true}),
			auth.Microsoft("organizations", os.Getenv("ENTRA_CLIENT_ID"), os.Getenv("ENTRA_CLIENT_SECRET"), auth.MicrosoftOptions{}),
		},
		RedirectURL:  "https://app.example.com/auth/callback",
		CookieSecret: []byte(os.Getenv("COOKIE_SECRET")),
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /me", a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := auth.User(r.Context())
		// Subjects are unique per provider: key accounts on both.
		log.Printf("signed in with %s as %s", u.Provider, u.Subject)
	})))
	log.Fatal(http.ListenAndServe(":8080", a.Handler(mux)))
}
