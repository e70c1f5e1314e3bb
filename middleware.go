package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// Config configures a [Middleware]. The zero value of every optional field
// is the safe default: no setting turns a security check off.
// [New] copies what it needs: changing a Config after New has no effect.
type Config struct {
	// Issuer is the OpenID Connect issuer URL, e.g. "https://accounts.google.com".
	// New fetches its discovery document. Required, unless Providers is set.
	Issuer string
	// ClientID and ClientSecret are the OAuth 2.0 client credentials.
	// ClientID is required, unless Providers is set.
	ClientID     string
	ClientSecret string
	// RedirectURL is the absolute callback URL registered at the provider,
	// e.g. "https://app.example.com/auth/callback". Its path is the callback
	// path, and an https scheme makes every cookie Secure. Required.
	RedirectURL string
	// Scopes requested at login. Default: openid email profile. "openid" is
	// added when missing. Add "offline_access" (or what the provider wants)
	// to receive a refresh token.
	Scopes []string
	// AuthParams are extra parameters for the authorization request, such as
	// {"prompt": "consent", "access_type": "offline"}. The security
	// parameters (state, nonce, code_challenge...) cannot be overridden.
	AuthParams map[string]string

	// Providers configures the sign-in providers instead of Issuer,
	// ClientID, ClientSecret, Scopes and AuthParams, which must then be
	// empty: several at once, or plain OAuth 2.0 ones such as [GitHub].
	// Each provider is served at LoginPath/{Name} and RedirectURL/{Name}
	// (e.g. https://app.example.com/auth/callback/github): register that
	// exact URL at the provider. LoginPath itself shows a page with a
	// button per provider, and is where RequireLogin sends browsers. A
	// single provider keeps the plain LoginPath and RedirectURL.
	Providers []Provider

	// CookieSecret authenticates and encrypts the cookies: at least 32 bytes,
	// random, and stable across restarts and instances. Required.
	CookieSecret []byte
	// PreviousCookieSecrets still decode cookies written with them, for
	// rotating secrets without logging everyone out. Each is >= 32 bytes.
	PreviousCookieSecrets [][]byte
	// CookieName names the session cookie. Default "gatehouse"; with an
	// https RedirectURL, root CookiePath and no CookieDomain, the name gets
	// the "__Host-" prefix so the browser binds it to this exact origin.
	CookieName string
	// CookiePath is the session cookie's Path. Default "/".
	CookiePath string
	// CookieDomain is the session cookie's Domain. Default: none (host-only).
	CookieDomain string
	// SessionLifetime is the absolute maximum age of a session, however
	// often its token is refreshed. Default 7 days.
	SessionLifetime time.Duration

	// LoginPath starts a login. It accepts ?next=/path to return to after
	// login (same-origin paths only). Default "/auth/login".
	LoginPath string
	// LogoutPath ends the session (POST, or GET from this site: a GET
	// from another site gets a confirmation form). Default "/auth/logout".
	LogoutPath string
	// PostLogoutURL is where the browser lands after logout: a path on this
	// site or an absolute URL on the RedirectURL's origin. Default "/".
	// With a provider that offers RP-initiated logout it is sent as
	// post_logout_redirect_uri (made absolute), so register it there.
	PostLogoutURL string

	// HTTPClient makes every request to the provider. Its Transport and
	// Timeout also serve the clients [Client] returns. Default: a client
	// with a 10 s timeout.
	HTTPClient *http.Client
	// Logger receives the middleware's log records. Default slog.Default().
	// No record ever contains a token, code, cookie value or secret.
	Logger *slog.Logger
	// OnLogin runs after the provider's answer is verified and before the
	// session cookie is written (with a Store, the stored session is
	// deleted again if OnLogin refuses). Returning an error refuses the
	// login (403); the error is logged, not shown.
	OnLogin func(ctx context.Context, u *Identity, t *oauth2.Token) error
	// ErrorHandler writes the response when login, callback or logout
	// fails. Default: a short plain-text page, or JSON for API callers,
	// with the status from [ErrorStatus]; err itself is logged, never shown.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)

	// ClockSkew is the leeway for every time check on tokens (exp, iat,
	// nbf). Default 1 minute; negative means none.
	ClockSkew time.Duration
	// TrustedAudiences lists audiences besides ClientID that an ID token
	// may carry. By default an ID token with any other audience is rejected
	// (OpenID Connect Core 3.1.3.7).
	TrustedAudiences []string
	// SkipUserinfo does not call the userinfo endpoint at login; the user's
	// claims then come from the ID token alone.
	SkipUserinfo bool

	// RefreshLeeway refreshes an access token this long before it expires,
	// but never earlier than half its lifetime. Default 30 s; a negative
	// value waits until the token has expired.
	RefreshLeeway time.Duration
	// RefreshGrace is how long requests that still carry the cookie from
	// before a refresh get the refreshed token without a second grant.
	// The grace cache is in memory: it bridges requests to the same
	// process (with a Store that implements [RefreshLocker], every process
	// reads the refreshed session instead). Default 30 s; negative: none.
	RefreshGrace time.Duration

	// Store keeps sessions on the server; the cookie then holds only a
	// random session ID. Default nil: the whole session lives in the
	// (encrypted) cookie.
	Store Store
	// BackchannelLogoutPath mounts an OpenID Connect Back-Channel Logout
	// 1.0 endpoint at this path, such as "/auth/backchannel-logout":
	// register its absolute URL as the client's backchannel_logout_uri
	// at the provider. A valid logout token ends the sessions of its sid
	// (or, without one, of its sub); see [SIDDeleter]. It needs a Store
	// that implements SIDDeleter and SubjectDeleter, and an OpenID Connect
	// provider with a fixed issuer (not Microsoft's common or
	// organizations): New fails without them. Default "": not mounted.
	BackchannelLogoutPath string
}

// Middleware adds login, callback and logout to an application and puts the
// signed-in user in each request's context. Create it with [New]; it does
// not change afterwards and is safe for concurrent use.
type Middleware struct {
	providers []*provider
	routes    map[string]route // per-provider login and callback paths

	jar          cookieJar
	codecs       []securecookie.Codec // session cookies
	flowCodecs   []securecookie.Codec // flow cookies
	lifetime     time.Duration
	loginPath    string
	callbackPath string
	logoutPath   string
	postLogout   string // absolute URL
	origin       string // scheme://host of RedirectURL
	// logoutFormAction is the CSP form-action of the logout confirmation
	// page: this site, and the origins of the providers' end_session
	// endpoints, where its form's answer redirects.
	logoutFormAction string

	client       *http.Client
	log          *slog.Logger
	onLogin      func(context.Context, *Identity, *oauth2.Token) error
	errorHandler func(http.ResponseWriter, *http.Request, error)
	skew         time.Duration
	audiences    map[string]bool // TrustedAudiences; each provider's client ID is trusted too
	skipUserinfo bool

	leeway  time.Duration
	grace   time.Duration
	store   Store
	cache   *sessionCache
	flights singleflight.Group
	graced  *graceCache

	backchannel backchannel // backchannel.go; path "" when not mounted

	now func() time.Time
}

// New checks cfg, discovers the provider and returns the middleware. ctx
// bounds only discovery. Invalid configuration fails here, never at the
// first request.
func New(ctx context.Context, cfg Config) (*Middleware, error) {
	m := &Middleware{now: time.Now}
	if err := m.configure(cfg); err != nil {
		return nil, err
	}
	if err := m.setupProviders(ctx, cfg); err != nil {
		return nil, err
	}
	if err := m.setupBackchannel(cfg); err != nil {
		return nil, err
	}
	m.logoutFormAction = "'self'"
	for _, p := range m.providers {
		if u, err := url.Parse(p.endSessionURL); err == nil && u.Host != "" && !strings.Contains(m.logoutFormAction, " "+u.Scheme+"://"+u.Host) {
			m.logoutFormAction += " " + u.Scheme + "://" + u.Host
		}
	}
	return m, nil
}

func (m *Middleware) configure(cfg Config) error {
	ru, err := url.Parse(cfg.RedirectURL)
	if err != nil || (ru.Scheme != "http" && ru.Scheme != "https") || ru.Host == "" {
		return fmt.Errorf("auth: Config.RedirectURL must be an absolute http(s) URL, got %q", cfg.RedirectURL)
	}
	if ru.Fragment != "" || ru.RawQuery != "" {
		return errors.New("auth: Config.RedirectURL must not have a query or fragment")
	}
	secure := ru.Scheme == "https"
	m.origin = ru.Scheme + "://" + ru.Host
	m.callbackPath = ru.EscapedPath()
	if m.callbackPath == "" || m.callbackPath == "/" {
		// The callback path is the middleware's: at / it would take the
		// application's home page.
		return fmt.Errorf("auth: Config.RedirectURL needs a path of its own, such as /auth/callback, got %q", cfg.RedirectURL)
	}

	secrets := append([][]byte{cfg.CookieSecret}, cfg.PreviousCookieSecrets...)
	for i, s := range secrets {
		if len(s) < 32 {
			if i == 0 {
				return fmt.Errorf("auth: Config.CookieSecret must be at least 32 bytes, got %d", len(s))
			}
			return fmt.Errorf("auth: Config.PreviousCookieSecrets[%d] must be at least 32 bytes, got %d", i-1, len(s))
		}
	}

	m.lifetime = orDefault(cfg.SessionLifetime, 7*24*time.Hour)
	if m.lifetime < 0 {
		return errors.New("auth: Config.SessionLifetime must not be negative")
	}
	if m.codecs, err = newCodecs(secrets, m.lifetime, rawSerializer{}); err != nil {
		return err
	}
	if m.flowCodecs, err = newCodecs(secrets, flowLifetime, securecookie.JSONEncoder{}); err != nil {
		return err
	}

	m.loginPath = orDefault(cfg.LoginPath, "/auth/login")
	m.logoutPath = orDefault(cfg.LogoutPath, "/auth/logout")
	for name, p := range map[string]string{"LoginPath": m.loginPath, "LogoutPath": m.logoutPath} {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("auth: Config.%s must start with /, got %q", name, p)
		}
	}
	if m.loginPath == m.callbackPath || m.logoutPath == m.callbackPath || m.loginPath == m.logoutPath {
		return errors.New("auth: login, callback and logout paths must differ")
	}

	cookiePath := orDefault(cfg.CookiePath, "/")
	name := orDefault(cfg.CookieName, "gatehouse")
	if cfg.CookieName == "" && secure && cookiePath == "/" && cfg.CookieDomain == "" {
		name = "__Host-" + name
	}
	if !validCookieName(name) {
		return fmt.Errorf("auth: Config.CookieName %q is not a valid cookie name", name)
	}
	m.jar = newCookieJar(name, cookiePath, cfg.CookieDomain, secure, commonDir(m.loginPath, m.callbackPath))

	pl := orDefault(cfg.PostLogoutURL, "/")
	plu, err := url.Parse(pl)
	switch {
	case err != nil:
		return fmt.Errorf("auth: Config.PostLogoutURL: %w", err)
	case plu.IsAbs() && plu.Scheme+"://"+plu.Host != m.origin:
		return fmt.Errorf("auth: Config.PostLogoutURL must be on %s", m.origin)
	case !plu.IsAbs() && !strings.HasPrefix(pl, "/"):
		return fmt.Errorf("auth: Config.PostLogoutURL must be absolute or start with /, got %q", pl)
	case !plu.IsAbs():
		pl = m.origin + pl
	}
	m.postLogout = pl

	m.client = cfg.HTTPClient
	if m.client == nil {
		m.client = &http.Client{Timeout: 10 * time.Second}
	}
	m.log = cfg.Logger
	if m.log == nil {
		m.log = slog.Default()
	}
	m.onLogin = cfg.OnLogin
	m.errorHandler = cfg.ErrorHandler
	if m.errorHandler == nil {
		m.errorHandler = defaultErrorHandler
	}
	m.skew = orDefault(cfg.ClockSkew, time.Minute)
	if m.skew < 0 {
		m.skew = 0
	}
	m.audiences = map[string]bool{}
	for _, a := range cfg.TrustedAudiences {
		m.audiences[a] = true
	}
	m.skipUserinfo = cfg.SkipUserinfo
	m.leeway = orDefault(cfg.RefreshLeeway, 30*time.Second)
	if m.leeway < 0 {
		m.leeway = 0
	}
	m.grace = orDefault(cfg.RefreshGrace, 30*time.Second)
	if m.grace < 0 {
		m.grace = 0 // no grace entries at all
	}
	m.store = cfg.Store
	m.cache = newSessionCache(10000, 64<<20)
	// Sessions in a Store are not cached, so that ending one takes
	// effect at once on every instance.
	m.cache.off = m.store != nil
	m.graced = newGraceCache(m.grace)
	return nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func validCookieName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return false
		}
	}
	return true
}

// commonDir returns the longest directory path both paths are in, so a
// cookie with that Path reaches both.
func commonDir(a, b string) string {
	d := path.Dir(a)
	for d != "/" && !strings.HasPrefix(b, d+"/") {
		d = path.Dir(d)
	}
	return d
}

// Handler serves the login, callback and logout paths, and passes every
// other request to next with the signed-in user (if any) in its context. It
// never turns a request away: use [Middleware.RequireLogin] for that. The
// method value fits any router's Use: r.Use(m.Handler).
//
// For a signed-in request, next gets a ResponseWriter of the middleware's
// (it still offers http.Flusher, http.Hijacker and Unwrap): a token that
// [Client] refreshes during the handler sets its cookie through it, before
// the first write. An adapter for another router must pass that writer on,
// not the one it had before.
//
// A request without a session cookie costs a header scan. With one, the
// cookie is authenticated and decrypted (or found in a small cache of
// cookies already seen), the access token is refreshed first if it is due,
// and the user, token and an auto-refreshing client go into the context.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case m.loginPath:
			m.login(w, r, nil)
			return
		case m.callbackPath:
			m.callback(w, r, nil)
			return
		case m.logoutPath:
			m.logout(w, r)
			return
		case m.backchannel.path:
			if m.backchannel.path != "" {
				m.backchannelLogout(w, r)
				return
			}
		}
		if rt, ok := m.routes[r.URL.Path]; ok { // only with several providers
			if rt.callback {
				m.callback(w, r, rt.p)
			} else {
				m.login(w, r, rt.p)
			}
			return
		}
		st := m.load(w, r)
		if st == nil {
			next.ServeHTTP(w, r)
			return
		}
		st.Context = r.Context()
		next.ServeHTTP(st, r.WithContext(st))
		st.commit() // a handler that wrote nothing still gets its cookies
	})
}

// RequireLogin lets signed-in requests through to next and turns anonymous
// ones away: a browser navigation (Sec-Fetch-Mode: navigate, or without that
// header a GET or HEAD that accepts text/html) is redirected to login and
// comes back to the same path afterwards; anything else gets 401 with a
// small JSON body and a WWW-Authenticate header. When the session [Store]
// cannot answer, it responds 503 with Retry-After instead, and the user's
// cookie is kept. It must run inside [Middleware.Handler]. Use it per
// route or for a whole router.
func (m *Middleware) RequireLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if User(r.Context()) != nil {
			next.ServeHTTP(w, r)
			return
		}
		if st, ok := r.Context().Value(ctxKey{}).(*reqState); ok && st.unavailable {
			// The Store is down: the user may well be signed in, so
			// neither send them to login nor clear their cookie.
			w.Header().Set("Retry-After", "5")
			writeJSONError(w, http.StatusServiceUnavailable, "unavailable", "sessions are temporarily unavailable")
			return
		}
		if isNavigation(r) {
			target := m.loginPath + "?next=" + url.QueryEscape(r.URL.RequestURI())
			http.Redirect(w, r, target, http.StatusFound)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+m.origin+`"`)
		writeJSONError(w, http.StatusUnauthorized, "unauthorized", "sign in required")
	})
}

// isNavigation reports whether r is a browser loading a page, which can be
// redirected to login, as opposed to a script or API call.
func isNavigation(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// UserinfoURL returns where the provider named provider (an
// [Identity.Provider]; "" for the provider of Config.Issuer) answers
// questions about the signed-in user: its OpenID Connect userinfo endpoint,
// or a plain OAuth 2.0 provider's user API. Call it with [Client]:
//
//	u := auth.User(r.Context())
//	res, err := auth.Client(r.Context()).Get(a.UserinfoURL(u.Provider))
//
// It returns "" for an unknown provider or one without such an endpoint.
func (m *Middleware) UserinfoURL(provider string) string {
	p := m.providerByName(provider)
	switch {
	case p == nil:
		return ""
	case p.userURL != "":
		return p.userURL
	}
	return p.userinfoURL
}

// Identity is a signed-in user. It comes from the verified ID token (and the
// provider's userinfo, for claims the ID token lacks), or for a plain OAuth
// 2.0 provider from its user API. Treat it as read-only: one Identity may
// serve many requests.
type Identity struct {
	// Provider names the provider that signed the user in: its
	// [Provider.Name], or "" for the one set by Config.Issuer. Subjects
	// are unique only within one provider.
	Provider string `json:"provider,omitempty"`
	// Subject is the provider's stable identifier of the user ("sub").
	Subject       string `json:"sub"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified,omitempty"`
	Name          string `json:"name,omitempty"`
	Picture       string `json:"picture,omitempty"`
	// Claims holds every claim as a JSON object, exactly as the provider
	// sent it (for a plain OAuth 2.0 provider, as [Provider.MapUser] made
	// them); decode the ones you need with [Identity.DecodeClaims]. It is
	// raw JSON so that requests do not pay for decoding claims they do not
	// read.
	Claims json.RawMessage `json:"claims"`
}

// DecodeClaims decodes the user's claims into v, as json.Unmarshal does:
//
//	var c struct{ Groups []string `json:"groups"` }
//	err := u.DecodeClaims(&c)
func (u *Identity) DecodeClaims(v any) error {
	return json.Unmarshal(u.Claims, v)
}

type ctxKey struct{}

// User returns the signed-in user, or nil when the request is anonymous or
// did not pass through [Middleware.Handler].
func User(ctx context.Context) *Identity {
	if st, ok := ctx.Value(ctxKey{}).(*reqState); ok {
		if ss := st.ss.Load(); ss != nil {
			return ss.user
		}
	}
	return nil
}

// Token returns the session's current OAuth 2.0 token (its Extra("id_token")
// holds the raw ID token), or nil when the request is anonymous. Treat it as
// read-only. Prefer [Client], which also refreshes the token.
func Token(ctx context.Context) *oauth2.Token {
	if st, ok := ctx.Value(ctxKey{}).(*reqState); ok {
		if ss := st.ss.Load(); ss != nil {
			return ss.oauthToken()
		}
	}
	return nil
}

// Client returns an *http.Client that sends the session's access token and
// refreshes it when it expires; a refreshed token is saved in the session
// cookie if the response headers have not been written yet (otherwise the
// grace cache hands it to this process's requests for Config.RefreshGrace,
// and a Store keeps it for every process). It uses Config.HTTPClient's
// Transport and Timeout, and does not follow a redirect to another origin
// (which would receive the token): it returns that response instead. It
// never returns nil: for an anonymous request its requests fail with
// [ErrNoSession].
func Client(ctx context.Context) *http.Client {
	if st, ok := ctx.Value(ctxKey{}).(*reqState); ok {
		return st.httpClient()
	}
	return noSessionClient
}

var noSessionClient = &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
	return nil, ErrNoSession
})}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Errors callers can branch on with errors.Is.
var (
	// ErrNoSession: the request has no signed-in user.
	ErrNoSession = errors.New("auth: no session")
	// ErrInvalidRequest: a login, callback or logout request is malformed.
	ErrInvalidRequest = errors.New("auth: invalid request")
	// ErrLoginState: the callback matches no login started in this browser
	// (unknown or expired state, or the flow cookie is missing).
	ErrLoginState = errors.New("auth: unknown or expired login")
	// ErrTokenInvalid: a token from the provider failed verification.
	ErrTokenInvalid = errors.New("auth: token failed verification")
	// ErrLoginRefused: Config.OnLogin refused the user, or a provider's
	// restriction did (Google's hosted domain, Microsoft's tenants).
	ErrLoginRefused = errors.New("auth: login refused")
	// ErrProviderUnavailable: the provider could not be reached or answered
	// with an error or garbage.
	ErrProviderUnavailable = errors.New("auth: provider unavailable")
	// ErrSessionEnded: the provider rejected the refresh token (revoked,
	// expired or reused), so the session was ended.
	ErrSessionEnded = errors.New("auth: session ended by provider")
)

// ProviderError is an error response from the provider: the "error",
// "error_description" and "error_uri" parameters of RFC 6749.
type ProviderError struct {
	Code, Description, URI string
}

// Error returns the provider's error code; the description, which the
// provider (or whoever sent the browser back) chose, is left out.
func (e *ProviderError) Error() string {
	return "auth: provider returned error " + e.Code
}

// ErrorStatus returns the HTTP status that suits err: 400 for malformed
// requests, unknown logins and the provider's complaints about the request
// (a [ProviderError] such as invalid_grant for a used code), 401 for tokens
// that failed verification and for ErrNoSession and ErrSessionEnded, 403
// for refused logins and denied consent (access_denied), 502 for provider
// failures, including a provider refusing this client (invalid_client,
// unauthorized_client: a configuration error the user cannot fix), 503
// when the session Store is unreachable and 500 for anything else.
func ErrorStatus(err error) int {
	var pe *ProviderError
	switch {
	case errors.As(err, &pe):
		switch pe.Code {
		case "access_denied":
			return http.StatusForbidden
		case "invalid_client", "unauthorized_client", "unsupported_grant_type", "unsupported_response_type",
			"server_error", "temporarily_unavailable":
			return http.StatusBadGateway
		}
		return http.StatusBadRequest
	case errors.Is(err, ErrInvalidRequest), errors.Is(err, ErrLoginState):
		return http.StatusBadRequest
	case errors.Is(err, ErrTokenInvalid), errors.Is(err, ErrNoSession), errors.Is(err, ErrSessionEnded):
		return http.StatusUnauthorized
	case errors.Is(err, ErrLoginRefused):
		return http.StatusForbidden
	case errors.Is(err, ErrProviderUnavailable):
		return http.StatusBadGateway
	case errors.Is(err, ErrStoreUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// publicMessage is the text shown to the user for err: fixed sentences,
// never the error's own text.
func publicMessage(err error) string {
	var pe *ProviderError
	switch {
	case errors.As(err, &pe):
		if pe.Code == "access_denied" {
			return "Sign-in was cancelled or denied."
		}
		return "The sign-in provider reported an error."
	case errors.Is(err, ErrLoginState):
		return "This sign-in link has expired or was already used. Please sign in again."
	case errors.Is(err, ErrInvalidRequest):
		return "The sign-in request was malformed."
	case errors.Is(err, ErrTokenInvalid):
		return "The sign-in could not be verified."
	case errors.Is(err, ErrLoginRefused):
		return "This account is not allowed to sign in."
	case errors.Is(err, ErrProviderUnavailable):
		return "The sign-in provider is unavailable. Please try again later."
	case errors.Is(err, ErrStoreUnavailable):
		return "Sessions are temporarily unavailable. Please try again shortly."
	}
	return "Sign-in failed."
}

func defaultErrorHandler(w http.ResponseWriter, r *http.Request, err error) {
	status := ErrorStatus(err)
	msg := publicMessage(err)
	if !isNavigation(r) && strings.Contains(r.Header.Get("Accept"), "json") {
		writeJSONError(w, status, strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_"), msg)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// writeJSONError writes an error in RFC 6749 §5.2's shape, with a fixed
// description: never an error's own text.
func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, msg})
}

// fail logs err and hands it to the error handler.
func (m *Middleware) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	level := slog.LevelWarn
	if ErrorStatus(err) >= 500 {
		level = slog.LevelError
	}
	m.log.LogAttrs(r.Context(), level, "auth: "+op+" failed", slog.String("path", r.URL.Path), slog.Any("error", err))
	m.errorHandler(w, r, err)
}
