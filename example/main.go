// Command example is a web application with OpenID Connect login by
// Gatehouse, on net/http alone. From the repository root:
//
//	go run ./example
//
// With no settings it starts the embedded authtest provider on loopback, so
// it needs no account anywhere: open the URL it logs, click "Log in" and
// choose alice or bob. Point it at a real provider with AUTH_ISSUER,
// AUTH_CLIENT_ID and AUTH_CLIENT_SECRET (or AUTH_CLIENT_KEY_FILE, for a
// client that signs its assertions); README.md lists every setting.
// Sessions live in the cookie, or with AUTH_SESSION_STORE=memory or redis
// (and REDIS_URL) on the server.
//
// Routes:
//
//	/                         public: "Hello, NAME" and a logout button, or a login link
//	/auth/login               start a login (?next=/path to return there), from the middleware
//	/auth/callback            the provider returns here, from the middleware
//	/auth/logout              end the session (POST or GET), from the middleware
//	/auth/backchannel-logout  with a session store: the provider's logout tokens, from the middleware
//	/me                       login required: the user as JSON {"sub","email","name","claims"}
//	/api/userinfo             login required: the provider's userinfo, fetched with the user's token
//	/metrics                  with AUTH_METRICS=1: counts of sign-ins, refreshes... for Prometheus
//
// With AUTH_BEARER_AUDIENCE (audiences, separated by commas), /me and
// /api/* also accept "Authorization: Bearer <access token>" from the
// provider, for an SPA, a mobile app or another service.
//
// This directory is a module of its own, github.com/gatehouse/auth/example,
// so that go-redis stays out of the library's go.mod; go.work at the
// repository root is what lets the command above find it from there.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/internal/demo"
	"github.com/gatehouse/auth/promauth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
	store, closeStore, err := sessionStore(ctx, getenv, log)
	if err != nil {
		return nil, nil, err
	}
	env, err := demo.Start(ctx, getenv, log)
	if err != nil {
		closeStore()
		return nil, nil, err
	}
	env.OnClose(closeStore) // once the server has stopped
	cfg := auth.Config{
		Issuer:       env.Issuer,
		ClientID:     env.ClientID,
		ClientSecret: env.ClientSecret,
		RedirectURL:  env.PublicURL + "/auth/callback",
		Scopes:       env.Scopes,
		AuthParams:   env.AuthParams,
		CookieSecret: env.CookieSecret, // >= 32 bytes, stable across restarts
		HTTPClient:   env.HTTPClient,
		Logger:       log,
	}
	// AUTH_CLIENT_KEY_FILE, AUTH_CLIENT_KEY_ID and AUTH_RESPONSE_MODE
	// (clientkey.go): a client that signs assertions instead of sending a
	// secret, and a provider that answers with form_post.
	if err := clientSettings(getenv, env, &cfg); err != nil {
		env.Close()
		return nil, nil, err
	}
	if aud := getenv("AUTH_BEARER_AUDIENCE"); aud != "" {
		// Requests that carry an access token from the provider for one
		// of these audiences are signed in too, with no cookie.
		for _, a := range strings.Split(aud, ",") {
			if a = strings.TrimSpace(a); a != "" {
				cfg.BearerAudiences = append(cfg.BearerAudiences, a)
			}
		}
	}
	if store != nil {
		// The cookie holds only a session ID, and the provider can end
		// sessions by posting a logout token to backchannelPath.
		cfg.Store = store
		cfg.BackchannelLogoutPath = backchannelPath
		if env.Provider != nil {
			env.Provider.SetBackchannelLogoutURI(env.PublicURL + backchannelPath)
		} else {
			log.Info("register the back-channel logout URI at the provider", "uri", env.PublicURL+backchannelPath)
		}
	}
	var logins []demo.Login
	if env.GitHubClientID != "" {
		// A second provider: each gets /auth/login/{name} and
		// /auth/callback/{name}, and the home page a button each.
		gh := auth.GitHub(env.GitHubClientID, env.GitHubClientSecret)
		cfg.Providers = []auth.Provider{{
			Name:         demo.OIDCName,
			DisplayName:  issuerHost(env.Issuer),
			Issuer:       cfg.Issuer,
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Scopes:       cfg.Scopes,
			AuthParams:   cfg.AuthParams,

			ClientKey:         cfg.ClientKey,
			ClientKeyID:       cfg.ClientKeyID,
			ClientCertificate: cfg.ClientCertificate,
			ResponseMode:      cfg.ResponseMode,
		}, gh}
		cfg.Issuer, cfg.ClientID, cfg.ClientSecret, cfg.Scopes, cfg.AuthParams = "", "", "", nil, nil
		cfg.ClientKey, cfg.ClientKeyID, cfg.ClientCertificate, cfg.ResponseMode = nil, "", nil, ""
		logins = []demo.Login{
			{Label: "Log in with " + issuerHost(env.Issuer), Path: "/auth/login/" + demo.OIDCName},
			{Label: "Log in with GitHub", Path: "/auth/login/" + gh.Name},
		}
	}
	var metrics http.Handler
	switch getenv("AUTH_METRICS") {
	case "", "0":
	case "1":
		// Counts of sign-ins, refreshes, ended sessions... at /metrics,
		// for Prometheus.
		reg := prometheus.NewRegistry()
		cfg.Metrics = promauth.New(reg)
		metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	default:
		env.Close()
		return nil, nil, errors.New("AUTH_METRICS must be 1 or 0")
	}
	a, err := auth.New(ctx, cfg)
	if err != nil {
		env.Close()
		return nil, nil, err // bad config or discovery failed: fail at startup
	}
	return env, newApp(a, env.Issuer, logins, metrics, log), nil
}

// issuerHost labels the OpenID Connect provider by its issuer's host.
func issuerHost(issuer string) string {
	if u, err := url.Parse(issuer); err == nil && u.Host != "" {
		return u.Host
	}
	return issuer
}
