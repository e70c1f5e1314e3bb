package authtest_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"golang.org/x/oauth2"
)

// newApp starts the application under test in these examples, which
// signs users in at p with x/oauth2 and go-oidc: /login starts the flow,
// /callback finishes it and sets a session cookie, and /me greets the
// signed-in user. It registers its callback with p.
func newApp(p *authtest.Provider) *httptest.Server {
	op, err := oidc.NewProvider(context.Background(), p.URL)
	if err != nil {
		panic(err)
	}
	app := httptest.NewUnstartedServer(nil)
	conf := &oauth2.Config{
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		Endpoint:     op.Endpoint(),
		RedirectURL:  "http://" + app.Listener.Addr().String() + "/callback",
		Scopes:       []string{oidc.ScopeOpenID, "email"},
	}
	p.AddRedirectURI(conf.RedirectURL)
	verifier := op.Verifier(&oidc.Config{ClientID: p.ClientID})
	var mu sync.Mutex
	emails := make(map[string]string) // by session cookie

	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		state, pkce := rand.Text(), oauth2.GenerateVerifier()
		http.SetCookie(w, &http.Cookie{Name: "flow", Value: state + "." + pkce, Path: "/callback", HttpOnly: true})
		http.Redirect(w, r, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(pkce)), http.StatusFound)
	})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie("flow")
		if err != nil {
			http.Error(w, "no login in progress", http.StatusBadRequest)
			return
		}
		state, pkce, _ := strings.Cut(c.Value, ".")
		if r.FormValue("state") != state {
			http.Error(w, "wrong state", http.StatusBadRequest)
			return
		}
		tok, err := conf.Exchange(r.Context(), r.FormValue("code"), oauth2.VerifierOption(pkce))
		if err != nil {
			http.Error(w, "login failed", http.StatusBadGateway)
			return
		}
		rawIDToken, _ := tok.Extra("id_token").(string)
		idToken, err := verifier.Verify(r.Context(), rawIDToken)
		var claims struct {
			Email string `json:"email"`
		}
		if err != nil || idToken.Claims(&claims) != nil {
			http.Error(w, "login failed", http.StatusUnauthorized)
			return
		}
		session := rand.Text()
		mu.Lock()
		emails[session] = claims.Email
		mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "session", Value: session, Path: "/", HttpOnly: true})
		http.Redirect(w, r, "/me", http.StatusFound)
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		var email string
		if c, err := r.Cookie("session"); err == nil {
			mu.Lock()
			email = emails[c.Value]
			mu.Unlock()
		}
		if email == "" {
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "hello %s", email)
	})
	app.Config.Handler = mux
	app.Start()
	return app
}

// A browser with a cookie jar signs in to an application, newApp here,
// which uses the provider like any other. AutoApprove signs alice in
// without a page.
func Example() {
	p := authtest.NewProvider(authtest.Config{AutoApprove: "alice"})
	defer p.Close()
	app := newApp(p)
	defer app.Close()

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	res, err := browser.Get(app.URL + "/login") // through the provider and back
	if err != nil {
		log.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(string(body))
	fmt.Println("authorization_code grants:", p.Grants("authorization_code"))
	// Output:
	// hello alice@example.com
	// authorization_code grants: 1
}

// greeting GETs app's /me with the browser: the signed-in user's greeting.
func greeting(t *testing.T, browser *http.Client, app string) string {
	res, err := browser.Get(app + "/me")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return string(body)
}

// A test of your own handler signs a user in with Login, then calls the
// handler with the browser Login returns, which holds the application's
// session cookie.
func ExampleProvider_Login() {
	var t *testing.T // in a test: func TestMe(t *testing.T)

	p := authtest.NewProvider(authtest.Config{})
	defer p.Close()
	app := newApp(p)
	defer app.Close()

	browser := p.Login(t, app.URL+"/login", "bob")
	if got := greeting(t, browser, app.URL); got != "hello bob@example.com" {
		t.Errorf("GET /me: got %q, want %q", got, "hello bob@example.com")
	}
}

// The same test for an application behind the auth middleware: start the
// provider, point auth.New at it, and Login through the middleware's own
// login path.
func ExampleProvider_Login_middleware() {
	var t *testing.T // in a test: func TestMe(t *testing.T)

	p := authtest.NewProvider(authtest.Config{})
	defer p.Close()
	app := httptest.NewServer(nil)
	defer app.Close()
	p.AddRedirectURI(app.URL + "/auth/callback")
	a, err := auth.New(context.Background(), auth.Config{
		Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		RedirectURL:  app.URL + "/auth/callback",
		CookieSecret: []byte("a test secret of at least 32 bytes!"),
	})
	if err != nil {
		t.Fatal(err)
	}
	app.Config.Handler = a.Handler(a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", auth.User(r.Context()).Email) // your handler
	})))

	browser := p.Login(t, app.URL+"/auth/login", "bob")
	if got := greeting(t, browser, app.URL); got != "hello bob@example.com" {
		t.Errorf("GET /me: got %q, want %q", got, "hello bob@example.com")
	}
}

// FailNext makes the provider misbehave once, here by signing the next
// ID token with a key that is not in its JWKS.
func ExampleProvider_FailNext() {
	p := authtest.NewProvider(authtest.Config{AutoApprove: "alice"})
	defer p.Close()
	app := newApp(p)
	defer app.Close()

	p.FailNext(authtest.Fault{IDTokenSigning: "unknown-key"})
	for range 2 {
		jar, _ := cookiejar.New(nil)
		res, err := (&http.Client{Jar: jar}).Get(app.URL + "/login")
		if err != nil {
			log.Fatal(err)
		}
		res.Body.Close()
		fmt.Println(res.Status)
	}
	// Output:
	// 401 Unauthorized
	// 200 OK
}
