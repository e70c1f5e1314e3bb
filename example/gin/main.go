// Command gin is the Gatehouse example on gin: the same application as
// the one in example/, with the same settings and routes, less GitHub and
// AUTH_SESSION_STORE. It is a module of its own, so that its router stays
// out of the other modules' requirements. From the repository root:
//
//	go run ./example/gin
//
// gin middleware is not net/http middleware, so two small adapters in
// auth.go bring the middleware in: ginAuth, registered with r.Use, serves
// /auth/login, /auth/callback and /auth/logout (routes gin does not have)
// and puts the user in c.Request's context; ginRequireLogin guards the
// routes that need a signed-in user. Handlers read the user with
// auth.User(c.Request.Context()).
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

	"github.com/gin-gonic/gin"

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

func newRouter(a *auth.Middleware, env *demo.Env, log *slog.Logger) *gin.Engine {
	r := gin.New()
	r.Use(gin.Recovery())
	r.Use(ginAuth(a)) // serves /auth/*; the user in every request's context
	r.SetHTMLTemplate(demo.HomePage)

	r.GET("/", func(c *gin.Context) {
		c.Header("Cache-Control", "no-store")
		c.HTML(http.StatusOK, "home", demo.Home{User: auth.User(c.Request.Context()), Issuer: env.Issuer})
	})

	private := r.Group("/", ginRequireLogin(a)) // a browser goes to login, an API caller gets 401
	private.GET("/me", func(c *gin.Context) {
		u := auth.User(c.Request.Context()) // never nil behind ginRequireLogin
		c.Header("Cache-Control", "no-store")
		c.JSON(http.StatusOK, struct {
			Sub    string          `json:"sub"`
			Email  string          `json:"email"`
			Name   string          `json:"name"`
			Claims json.RawMessage `json:"claims"`
		}{u.Subject, u.Email, u.Name, u.Claims})
	})
	private.GET("/api/userinfo", func(c *gin.Context) {
		claims, err := fetchJSON(auth.Client(c.Request.Context()), a.UserinfoURL(auth.User(c.Request.Context()).Provider))
		c.Header("Cache-Control", "no-store")
		if err != nil {
			log.WarnContext(c.Request.Context(), "userinfo request failed", "error", err)
			status := http.StatusBadGateway
			if errors.Is(err, auth.ErrSessionEnded) {
				status = http.StatusUnauthorized
			}
			c.JSON(status, gin.H{"error": "userinfo request failed"})
			return
		}
		c.JSON(http.StatusOK, claims)
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
