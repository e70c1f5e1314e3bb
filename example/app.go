package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/internal/demo"
)

// newApp returns the application: its routes, wrapped by the middleware,
// which serves /auth/login, /auth/callback and /auth/logout itself and puts
// the signed-in user in every other request's context.
// With several providers, logins lists one button per provider.
// metrics, when not nil, serves /metrics.
func newApp(a *auth.Middleware, issuer string, logins []demo.Login, metrics http.Handler, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		demo.HomePage.Execute(w, demo.Home{User: auth.User(r.Context()), Issuer: issuer, Logins: logins})
	})
	mux.Handle("GET /me", a.RequireLogin(http.HandlerFunc(me)))
	mux.Handle("GET /api/userinfo", a.RequireLogin(userinfo(a, log)))
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return a.Handler(mux)
}

// me writes the signed-in user as JSON.
func me(w http.ResponseWriter, r *http.Request) {
	u := auth.User(r.Context()) // never nil behind RequireLogin
	writeJSON(w, http.StatusOK, struct {
		Sub    string          `json:"sub"`
		Email  string          `json:"email"`
		Name   string          `json:"name"`
		Claims json.RawMessage `json:"claims"` // every claim, as the provider sent them
	}{u.Subject, u.Email, u.Name, u.Claims})
}

// userinfo calls the userinfo endpoint of the provider that signed the
// user in, with the user's access token, which auth.Client sends and
// refreshes, and returns its JSON.
func userinfo(a *auth.Middleware, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		endpoint := a.UserinfoURL(auth.User(r.Context()).Provider)
		res, err := auth.Client(r.Context()).Get(endpoint)
		if err != nil {
			status := http.StatusBadGateway
			if errors.Is(err, auth.ErrSessionEnded) {
				status = http.StatusUnauthorized // the provider revoked the session
			}
			log.WarnContext(r.Context(), "userinfo request failed", "error", err)
			writeJSON(w, status, map[string]string{"error": "userinfo request failed"})
			return
		}
		defer res.Body.Close()
		var claims json.RawMessage
		if res.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", res.StatusCode)
		} else {
			err = json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&claims)
		}
		if err != nil {
			log.WarnContext(r.Context(), "userinfo response rejected", "error", err)
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": "userinfo request failed"})
			return
		}
		writeJSON(w, http.StatusOK, claims)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
