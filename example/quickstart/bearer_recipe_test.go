package main

import (
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/gatehouse/auth"
)

// The README's recipe "An API for your SPA or mobile app", compiled like
// the recipes in recipes_test.go.

func Example_api() {
	a, err := auth.New(ctx, auth.Config{
		Issuer:          "https://keycloak.example.com/realms/myrealm",
		ClientID:        "my-app",
		ClientSecret:    os.Getenv("KEYCLOAK_CLIENT_SECRET"),
		RedirectURL:     "https://app.example.com/auth/callback",
		CookieSecret:    secret,
		BearerAudiences: []string{"https://api.example.com"}, // the aud of the access tokens this API accepts
	})
	if err != nil {
		log.Fatal(err)
	}
	// A browser with a session cookie, or a client with a bearer token
	// that was granted the scope groups:read.
	mux.Handle("GET /api/groups", a.RequireScope("groups:read")(http.HandlerFunc(groups)))
	// Any signed-in caller; HasScope tells what its token may do.
	mux.Handle("GET /api/me", a.RequireLogin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := auth.User(r.Context())
		fmt.Fprintf(w, "%s (may write: %v)", u.Subject, auth.HasScope(r.Context(), "groups:write"))
	})))
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", a.Handler(mux)))
}

func groups(w http.ResponseWriter, r *http.Request) {}
