package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
)

// TestMe is the README's recipe for testing your own handlers: the real
// login flow against authtest, then a request as the signed-in user.
func TestMe(t *testing.T) {
	p := authtest.NewProvider(authtest.Config{}) // users alice and bob
	defer p.Close()
	app := httptest.NewUnstartedServer(nil)
	appURL := "http://" + app.Listener.Addr().String()
	p.AddRedirectURI(appURL + "/auth/callback")

	a, err := auth.New(context.Background(), auth.Config{
		Issuer:       p.URL,
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		RedirectURL:  appURL + "/auth/callback",
		CookieSecret: []byte("a test secret of at least 32 bytes"),
	})
	if err != nil {
		t.Fatal(err)
	}
	app.Config.Handler = a.Handler(routes(a))
	app.Start()
	defer app.Close()

	browser := p.Login(t, appURL+"/auth/login", "alice") // holds alice's session cookie
	res, err := browser.Get(appURL + "/me")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var u auth.Identity
	if err := json.NewDecoder(res.Body).Decode(&u); err != nil || u.Subject != "alice" {
		t.Errorf("GET /me = %+v (%v), want alice", u, err)
	}

	// Anonymous: an API caller gets 401.
	res, err = http.Get(appURL + "/me")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /me anonymous: %d, want 401", res.StatusCode)
	}
}
