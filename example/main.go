// Command example is a web application with OpenID Connect login by
// Gatehouse, on net/http alone. From the repository root:
//
//	go run ./example
//
// With no settings it starts the embedded authtest provider on loopback, so
// it needs no account anywhere: open the URL it logs, click "Log in" and
// choose alice or bob. Point it at a real provider with AUTH_ISSUER,
// AUTH_CLIENT_ID and AUTH_CLIENT_SECRET; README.md lists every setting.
//
// Routes:
//
//	/                public: "Hello, NAME" and a logout button, or a login link
//	/auth/login      start a login (?next=/path to return there), from the middleware
//	/auth/callback   the provider returns here, from the middleware
//	/auth/logout     end the session (POST or GET), from the middleware
//	/me              login required: the user as JSON {"sub","email","name","claims"}
//	/api/userinfo    login required: the provider's userinfo, fetched with the user's token
package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/example/demo"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, app, err := setup(ctx, os.Getenv, log)
	if err == nil {
		err = env.Serve(ctx, app) // until SIGINT or SIGTERM
	}
	if err != nil {
		log.Error("example failed", "error", err)
		os.Exit(1)
	}
}

// setup reads the settings, listens, starts the embedded provider when
// AUTH_ISSUER is empty, and returns the application ready to serve.
func setup(ctx context.Context, getenv func(string) string, log *slog.Logger) (*demo.Env, http.Handler, error) {
	env, err := demo.Start(ctx, getenv, log)
	if err != nil {
		return nil, nil, err
	}
	a, err := auth.New(ctx, auth.Config{
		Issuer:       env.Issuer,
		ClientID:     env.ClientID,
		ClientSecret: env.ClientSecret,
		RedirectURL:  env.PublicURL + "/auth/callback",
		Scopes:       env.Scopes,
		AuthParams:   env.AuthParams,
		CookieSecret: env.CookieSecret, // >= 32 bytes, stable across restarts
		HTTPClient:   env.HTTPClient,
		Logger:       log,
	})
	if err != nil {
		env.Close()
		return nil, nil, err // bad config or discovery failed: fail at startup
	}
	return env, newApp(a, env.Issuer, env.UserinfoURL, log), nil
}
