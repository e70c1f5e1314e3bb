// Command quickstart is the smallest complete application with Gatehouse
// login, the one README.md starts from. It needs a provider: set
// AUTH_ISSUER, AUTH_CLIENT_ID, AUTH_CLIENT_SECRET and AUTH_COOKIE_SECRET
// (32 random characters or more), and register http://127.0.0.1:8080/auth/callback at the
// provider. example/, its parent directory, is the same with an embedded
// provider and more.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"log"
	"net/http"
	"os"

	"github.com/gatehouse/auth"
)

func main() {
	a, err := auth.New(context.Background(), auth.Config{
		Issuer:       os.Getenv("AUTH_ISSUER"), // e.g. https://accounts.google.com
		ClientID:     os.Getenv("AUTH_CLIENT_ID"),
		ClientSecret: os.Getenv("AUTH_CLIENT_SECRET"),
		RedirectURL:  "http://127.0.0.1:8080/auth/callback",
		CookieSecret: []byte(os.Getenv("AUTH_COOKIE_SECRET")), // 32+ random characters (openssl rand -hex 32), stable across restarts
	})
	if err != nil {
		log.Fatal(err) // bad config or discovery failed: fail at startup
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", a.Handler(routes(a)))) // Handler also serves /auth/*
}

// routes are the application's own pages.
func routes(a *auth.Middleware) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", home)
	mux.Handle("GET /me", a.RequireLogin(http.HandlerFunc(me)))
	return mux
}

func home(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if u := auth.User(r.Context()); u != nil { // nil when anonymous
		fmt.Fprintf(w, `Hello, %s <form method="post" action="/auth/logout"><button>Log out</button></form>`, html.EscapeString(u.Name))
		return
	}
	fmt.Fprint(w, `<a href="/auth/login">Log in</a>`)
}

func me(w http.ResponseWriter, r *http.Request) {
	u := auth.User(r.Context()) // never nil behind RequireLogin
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(u)
}
