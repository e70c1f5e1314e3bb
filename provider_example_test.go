package auth_test

import (
	"context"
	"log"
	"net/http"
	"os"

	"github.com/gatehouse/auth"
)

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
