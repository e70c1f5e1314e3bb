package main

import (
	"net/http"
	"testing"

	"github.com/gatehouse/auth/internal/demotest"
)

// TestApp logs in through Echo: echo.WrapMiddleware(a.Handler) serves
// /auth/login, /auth/callback and /auth/logout, which have no Echo route,
// and echo.WrapMiddleware(a.RequireLogin) guards /me and /api/userinfo.
func TestApp(t *testing.T) {
	demotest.CheckApp(t, demotest.Start(t, setup, nil))
}

// TestAuthPathsDespiteRoutes checks the middleware answers its paths for
// any method, and that Echo's own 404 and 405 still work.
func TestAuthPathsDespiteRoutes(t *testing.T) {
	env := demotest.Start(t, setup, nil)
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/auth/login", http.StatusFound},
		{"POST", "/auth/login", http.StatusFound},
		{"GET", "/auth/logout", http.StatusSeeOther},
		{"POST", "/auth/logout", http.StatusSeeOther},
		{"GET", "/auth/callback", http.StatusBadRequest}, // no state: the middleware's error page
		{"GET", "/nowhere", http.StatusNotFound},
		{"POST", "/", http.StatusMethodNotAllowed},
	} {
		res, body := demotest.Do(t, demotest.NoRedirects(), tt.method, env.PublicURL+tt.path)
		if res.StatusCode != tt.want {
			t.Errorf("%s %s: %d (%s), want %d", tt.method, tt.path, res.StatusCode, body, tt.want)
		}
	}
}
