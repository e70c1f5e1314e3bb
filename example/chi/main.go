// Command chi is the Gatehouse example on the chi router: the same
// application as the one in example/, with the same settings and routes,
// less GitHub and AUTH_SESSION_STORE. It is a module of its own, so that
// its router stays out of the other modules' requirements. From the
// repository root:
//
//	go run ./example/chi
//
// The middleware goes in with r.Use, so it serves /auth/login,
// /auth/callback and /auth/logout and puts the user in every request's
// context; a group with r.Use(a.RequireLogin) holds the pages that need a
// signed-in user. Handlers are plain net/http handlers and read the user
// with auth.User(r.Context()).
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

	"github.com/go-chi/chi/v5"

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

func newRouter(a *auth.Middleware, env *demo.Env, log *slog.Logger) http.Handler {
	r := chi.NewRouter()
	r.Use(a.Handler) // serves /auth/*; the user in every request's context

	r.Get("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		demo.HomePage.Execute(w, demo.Home{User: auth.User(r.Context()), Issuer: env.Issuer})
	})

	r.Group(func(r chi.Router) {
		r.Use(a.RequireLogin) // a browser goes to login, an API caller gets 401
		r.Get("/me", func(w http.ResponseWriter, r *http.Request) {
			u := auth.User(r.Context()) // never nil behind RequireLogin
			writeJSON(w, http.StatusOK, struct {
				Sub    string          `json:"sub"`
				Email  string          `json:"email"`
				Name   string          `json:"name"`
				Claims json.RawMessage `json:"claims"`
			}{u.Subject, u.Email, u.Name, u.Claims})
		})
		r.Get("/api/userinfo", func(w http.ResponseWriter, r *http.Request) {
			claims, err := fetchJSON(auth.Client(r.Context()), a.UserinfoURL(auth.User(r.Context()).Provider))
			if err != nil {
				log.WarnContext(r.Context(), "userinfo request failed", "error", err)
				status := http.StatusBadGateway
				if errors.Is(err, auth.ErrSessionEnded) {
					status = http.StatusUnauthorized
				}
				writeJSON(w, status, map[string]string{"error": "userinfo request failed"})
				return
			}
			writeJSON(w, http.StatusOK, claims)
		})
	})
	return r
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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
