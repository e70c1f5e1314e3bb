// Package demo is the support code that the Gatehouse examples share: it
// reads their settings from the environment, starts the embedded authtest
// provider when no issuer is configured, renders the home page and serves
// until SIGINT or SIGTERM.
//
// Each example (example/ on net/http, example/chi, example/gin and
// example/echo) keeps what a user of its router writes: the [auth.Config]
// literal, the routes and the handlers. Being internal, this package is not
// part of the library's API: only this repository's modules can import it.
package demo

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse/auth/authtest"
)

// OIDCName names the OpenID Connect provider when GitHub is configured too:
// its paths are then /auth/login/oidc and /auth/callback/oidc.
const OIDCName = "oidc"

// Defaults of the settings that have one.
const (
	defaultAddr   = "127.0.0.1:8080"
	defaultScopes = "openid email profile offline_access"
)

// Env is an example's settings, read from the environment by [Start], with
// the listener and the embedded provider it started.
type Env struct {
	// Issuer, ClientID and ClientSecret identify the provider and this
	// client: AUTH_ISSUER, AUTH_CLIENT_ID and AUTH_CLIENT_SECRET, or the
	// embedded provider's.
	Issuer, ClientID, ClientSecret string
	// Scopes is AUTH_SCOPES split on spaces. Default [defaultScopes].
	Scopes []string
	// AuthParams is AUTH_PARAMS, a query string such as
	// "access_type=offline&prompt=consent". Default none.
	AuthParams map[string]string
	// CookieSecret is AUTH_COOKIE_SECRET decoded from hex or base64 (at
	// least 32 bytes), or 32 random bytes when it is not set.
	CookieSecret []byte
	// PublicURL is the application's external base URL, without a
	// trailing slash: PUBLIC_URL, or http:// and the address listened on.
	PublicURL string
	// HTTPClient reaches the provider. With the embedded provider it dials
	// the provider's loopback listener whatever "localhost" resolves to.
	HTTPClient *http.Client
	// Provider is the embedded provider, or nil with AUTH_ISSUER.
	Provider *authtest.Provider
	// GitHubClientID and GitHubClientSecret are GITHUB_CLIENT_ID and
	// GITHUB_CLIENT_SECRET: when set, GitHub is offered as a second
	// provider next to the OpenID Connect one.
	GitHubClientID, GitHubClientSecret string
	// Listener listens on ADDR (default [defaultAddr]).
	Listener net.Listener

	log     *slog.Logger // where Serve and the embedded provider log
	closers []func()     // from OnClose
}

// Start reads the settings through getenv (os.Getenv, or a map in tests),
// listens on ADDR and, when AUTH_ISSUER is empty, starts the embedded
// authtest provider on loopback with the users alice and bob and a page to
// choose one. The caller must [Env.Close] the result, or hand it to
// [Env.Serve], which does.
func Start(ctx context.Context, getenv func(string) string, log *slog.Logger) (*Env, error) {
	e := &Env{
		Issuer:       getenv("AUTH_ISSUER"),
		ClientID:     getenv("AUTH_CLIENT_ID"),
		ClientSecret: getenv("AUTH_CLIENT_SECRET"),
		Scopes:       strings.Fields(getenv("AUTH_SCOPES")),
		log:          log,

		GitHubClientID:     getenv("GITHUB_CLIENT_ID"),
		GitHubClientSecret: getenv("GITHUB_CLIENT_SECRET"),
	}
	if (e.GitHubClientID == "") != (e.GitHubClientSecret == "") {
		return nil, errors.New("GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET go together")
	}
	if len(e.Scopes) == 0 {
		e.Scopes = strings.Fields(defaultScopes)
	}
	if s := getenv("AUTH_PARAMS"); s != "" {
		q, err := url.ParseQuery(s)
		if err != nil {
			return nil, fmt.Errorf("AUTH_PARAMS: %w", err)
		}
		e.AuthParams = map[string]string{}
		for k := range q {
			e.AuthParams[k] = q.Get(k)
		}
	}
	if s := getenv("AUTH_COOKIE_SECRET"); s != "" {
		secret, err := parseSecret(s)
		if err != nil {
			return nil, fmt.Errorf("AUTH_COOKIE_SECRET: %w", err)
		}
		e.CookieSecret = secret
	} else {
		e.CookieSecret = randomSecret()
		log.Warn("AUTH_COOKIE_SECRET is not set: using a random secret, so sessions end when this process restarts")
	}
	if e.Issuer != "" && e.ClientID == "" {
		return nil, errors.New("AUTH_CLIENT_ID is required with AUTH_ISSUER")
	}

	addr := getenv("ADDR")
	if addr == "" {
		addr = defaultAddr
	}
	publicURL := strings.TrimSuffix(getenv("PUBLIC_URL"), "/")
	if publicURL != "" {
		u, err := url.Parse(publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("PUBLIC_URL must be an absolute http(s) URL without query, got %q", publicURL)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	e.Listener = ln
	if publicURL == "" {
		publicURL = "http://" + loopbackAddr(ln.Addr())
	}
	e.PublicURL = publicURL

	if e.Issuer == "" {
		e.startProvider()
		return e, nil
	}
	e.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	return e, nil
}

// startProvider starts the embedded provider. Its URLs name "localhost"
// while the application is on 127.0.0.1 by default: two sites, as with a
// real provider, so the browser applies its SameSite rules for real.
func (e *Env) startProvider() {
	p := authtest.NewProvider(authtest.Config{
		Host:                   "localhost",
		ClientID:               e.ClientID,
		ClientSecret:           e.ClientSecret,
		RedirectURIs:           []string{e.PublicURL + "/auth/callback", e.PublicURL + "/auth/callback/" + OIDCName},
		PostLogoutRedirectURIs: []string{e.PublicURL + "/"},
		AutoApprove:            "", // show the page to choose alice or bob
	})
	e.Provider = p
	e.Issuer, e.ClientID, e.ClientSecret = p.URL, p.ClientID, p.ClientSecret
	e.HTTPClient = p.Client()
	e.HTTPClient.Timeout = 10 * time.Second
	e.log.Info("AUTH_ISSUER is not set: started the embedded authtest provider", "issuer", p.URL, "users", "alice, bob")
}

// loopbackAddr returns the listener's host:port, with 127.0.0.1 for an
// unspecified host (ADDR=":8080"), which a browser cannot open.
func loopbackAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	host := tcp.IP.String()
	if tcp.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, fmt.Sprint(tcp.Port))
}

// parseSecret decodes a cookie secret written in hex or base64 (standard
// or URL alphabet, padded or not). It must decode to at least 32 bytes.
func parseSecret(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	decoders := []func(string) ([]byte, error){
		hex.DecodeString,
		base64.StdEncoding.DecodeString,
		base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString,
		base64.RawURLEncoding.DecodeString,
	}
	for _, decode := range decoders {
		b, err := decode(s)
		if err != nil {
			continue
		}
		if len(b) < 32 {
			return nil, fmt.Errorf("decodes to %d bytes, want at least 32 (generate one with: openssl rand -hex 32)", len(b))
		}
		return b, nil
	}
	return nil, errors.New("not hex or base64 (generate one with: openssl rand -hex 32)")
}
