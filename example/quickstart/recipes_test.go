package main

import (
	"context"
	"log"
	"net/http"
	"os"

	"github.com/gatehouse/auth"
)

// The README's recipes. Go compiles them with the tests, which keeps them
// true to the API; they have no Output comment, so they do not run (they
// would need the providers' real endpoints and accounts).

var (
	ctx                  = context.Background()
	secret, secretBefore []byte
	mux                  = http.NewServeMux()
)

// use stands for the rest of a program: it stops on New's error, and
// would serve a.Handler(mux).
func use(a *auth.Middleware, err error) {
	if err != nil {
		log.Fatal(err)
	}
	_ = a
}

func Example_google() {
	a, err := auth.New(ctx, auth.Config{
		Providers: []auth.Provider{
			auth.Google(os.Getenv("GOOGLE_CLIENT_ID"), os.Getenv("GOOGLE_CLIENT_SECRET"), auth.GoogleOptions{
				Offline: true, // access_type=offline and prompt=consent: a refresh token
			}),
		},
		RedirectURL:  "http://127.0.0.1:8080/auth/callback",
		CookieSecret: secret,
	})
	use(a, err)
}

func Example_microsoft() {
	a, err := auth.New(ctx, auth.Config{
		Providers: []auth.Provider{
			auth.Microsoft("organizations", os.Getenv("ENTRA_CLIENT_ID"), os.Getenv("ENTRA_CLIENT_SECRET"), auth.MicrosoftOptions{
				Offline: true, // offline_access: a refresh token
			}),
		},
		RedirectURL:  "http://localhost:8080/auth/callback",
		CookieSecret: secret,
	})
	use(a, err)
}

func Example_keycloak() {
	a, err := auth.New(ctx, auth.Config{
		Issuer:       "https://keycloak.example.com/realms/myrealm",
		ClientID:     "my-app",
		ClientSecret: os.Getenv("KEYCLOAK_CLIENT_SECRET"),
		RedirectURL:  "http://127.0.0.1:8080/auth/callback",
		CookieSecret: secret,
	})
	use(a, err)
}

func Example_gitHub() {
	a, err := auth.New(ctx, auth.Config{
		Providers: []auth.Provider{
			auth.GitHub(os.Getenv("GITHUB_CLIENT_ID"), os.Getenv("GITHUB_CLIENT_SECRET")),
		},
		RedirectURL:  "http://127.0.0.1:8080/auth/callback",
		CookieSecret: secret,
	})
	use(a, err)
}

func Example_severalProviders() {
	a, err := auth.New(ctx, auth.Config{
		Providers: []auth.Provider{
			auth.Google(os.Getenv("GOOGLE_CLIENT_ID"), os.Getenv("GOOGLE_CLIENT_SECRET"), auth.GoogleOptions{}),
			auth.GitHub(os.Getenv("GITHUB_CLIENT_ID"), os.Getenv("GITHUB_CLIENT_SECRET")),
		},
		// Callbacks: /auth/callback/google and /auth/callback/github.
		RedirectURL:  "http://127.0.0.1:8080/auth/callback",
		CookieSecret: secret,
	})
	use(a, err)
}

func Example_rotateCookieSecret() {
	a, err := auth.New(ctx, auth.Config{
		Issuer:                os.Getenv("AUTH_ISSUER"),
		ClientID:              os.Getenv("AUTH_CLIENT_ID"),
		ClientSecret:          os.Getenv("AUTH_CLIENT_SECRET"),
		RedirectURL:           "https://app.example.com/auth/callback",
		CookieSecret:          secret,                 // the new secret: writes every cookie from now on
		PreviousCookieSecrets: [][]byte{secretBefore}, // still reads the cookies written before
	})
	use(a, err)
}

func Example_claimsAndAPIs() {
	mux.HandleFunc("GET /groups", func(w http.ResponseWriter, r *http.Request) {
		u := auth.User(r.Context())
		if u == nil {
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		var claims struct {
			Groups []string `json:"groups"`
		}
		if err := u.DecodeClaims(&claims); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		// auth.Client sends the user's access token, refreshing it first
		// when it is due; the refreshed token goes back into the cookie.
		res, err := auth.Client(r.Context()).Get("https://api.example.com/v1/things")
		if err != nil {
			http.Error(w, "api unavailable", http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		// ...
	})
}
