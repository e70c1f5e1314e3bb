package main

import (
	"testing"

	"github.com/gatehouse/auth/internal/demotest"
)

// TestApp logs in through the chi router: the middleware serves
// /auth/login, /auth/callback and /auth/logout, which have no chi route.
func TestApp(t *testing.T) {
	demotest.CheckApp(t, demotest.Start(t, setup, nil))
}
