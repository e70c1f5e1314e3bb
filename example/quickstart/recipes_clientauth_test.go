package main

import (
	"context"
	"log"
	"os"

	"golang.org/x/oauth2"

	"github.com/gatehouse/auth"
)

// The README's recipes for clients that authenticate without a shared
// secret, compiled like the others (recipes_test.go).

func Example_entraCertificate() {
	pemData, err := os.ReadFile("client.pem")
	if err != nil {
		log.Fatal(err)
	}
	key, cert, err := auth.ParseClientKey(pemData) // the key, and the certificate after it
	if err != nil {
		log.Fatal(err)
	}
	entra := auth.Microsoft("organizations", os.Getenv("ENTRA_CLIENT_ID"), "", auth.MicrosoftOptions{})
	entra.ClientKey, entra.ClientCertificate = key, cert
	a, err := auth.New(ctx, auth.Config{
		Providers:    []auth.Provider{entra},
		RedirectURL:  "http://localhost:8080/auth/callback",
		CookieSecret: secret,
	})
	use(a, err)
}

// saveName stands for the application's own user records.
func saveName(ctx context.Context, subject, name string) error { return nil }

func Example_apple() {
	p8, err := os.ReadFile("AuthKey_KEY1234567.p8")
	if err != nil {
		log.Fatal(err)
	}
	key, _, err := auth.ParseClientKey(p8)
	if err != nil {
		log.Fatal(err)
	}
	a, err := auth.New(ctx, auth.Config{
		Providers: []auth.Provider{
			auth.Apple("com.example.web", "TEAM123456", "KEY1234567", key),
		},
		RedirectURL:  "https://app.example.com/auth/callback",
		CookieSecret: secret,
		OnLogin: func(ctx context.Context, u *auth.Identity, _ *oauth2.Token) error {
			if u.Name != "" { // Apple sends the name at the user's first login only
				return saveName(ctx, u.Subject, u.Name)
			}
			return nil
		},
	})
	use(a, err)
}
