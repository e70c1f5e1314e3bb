// Command echo is the Gatehouse example on Echo v5: the same application as
// the one in example/, with the same settings and routes, less GitHub and
// AUTH_SESSION_STORE. It is a module of its own, so that its router stays
// out of the other modules' requirements. From the repository root:
//
//	go run ./example/echo
//
// Echo adapts net/http middleware itself with echo.WrapMiddleware:
// e.Use(echo.WrapMiddleware(a.Handler)) serves /auth/login, /auth/callback
// and /auth/logout (Echo runs e.Use middleware for paths without a route
// too) and puts the user in the request's context; the routes that need a
// signed-in user take echo.WrapMiddleware(a.RequireLogin). Handlers read
// the user with auth.User(c.Request().Context()). With Echo v4
// (github.com/labstack/echo/v4), handlers take an echo.Context instead of a
// *echo.Context and e.Logger is not a *slog.Logger; the rest is the same.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/labstack/echo/v5"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/internal/demo"
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
		CookieSecret: env.CookieSecret,
		HTTPClient:   env.HTTPClient,
		Logger:       log,
	})
	if err != nil {
		env.Close()
		return nil, nil, err
	}
	return env, newRouter(a, env, log), nil
}

func newRouter(a *auth.Middleware, env *demo.Env, log *slog.Logger) *echo.Echo {
	e := echo.New()
	e.Logger = log // Echo v5 logs with log/slog
	e.Renderer = &echo.TemplateRenderer{Template: demo.HomePage}
	// The middleware serves /auth/* and puts the user in every request's context.
	e.Use(echo.WrapMiddleware(a.Handler))
	// For routes that need a user: a browser goes to login, an API caller gets 401.
	requireLogin := echo.WrapMiddleware(a.RequireLogin)

	e.GET("/", func(c *echo.Context) error {
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Render(http.StatusOK, "home", demo.Home{User: auth.User(c.Request().Context()), Issuer: env.Issuer})
	})

	e.GET("/me", func(c *echo.Context) error {
		u := auth.User(c.Request().Context()) // never nil behind requireLogin
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.JSON(http.StatusOK, struct {
			Sub    string          `json:"sub"`
			Email  string          `json:"email"`
			Name   string          `json:"name"`
			Claims json.RawMessage `json:"claims"`
		}{u.Subject, u.Email, u.Name, u.Claims})
	}, requireLogin)

	e.GET("/api/userinfo", func(c *echo.Context) error {
		claims, err := fetchJSON(auth.Client(c.Request().Context()), a.UserinfoURL(auth.User(c.Request().Context()).Provider))
		c.Response().Header().Set("Cache-Control", "no-store")
		if err != nil {
			log.WarnContext(c.Request().Context(), "userinfo request failed", "error", err)
			status := http.StatusBadGateway
			if errors.Is(err, auth.ErrSessionEnded) {
				status = http.StatusUnauthorized
			}
			return c.JSON(status, map[string]string{"error": "userinfo request failed"})
		}
		return c.JSON(http.StatusOK, claims)
	}, requireLogin)
	return e
}

// fetchJSON GETs url with c, which sends the user's access token, and
// returns the JSON it answers with.
func fetchJSON(c *http.Client, url string) (json.RawMessage, error) {
	res, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, res.StatusCode)
	}
	var v json.RawMessage
	err = json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&v)
	return v, err
}
