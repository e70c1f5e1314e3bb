package auth

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/securecookie"
	"golang.org/x/oauth2"
)

// Config configures a [Middleware]. The zero value of every optional field
// is the safe default: no setting turns a security check off.
// [New] copies what it needs: changing a Config after New has no effect.
type Config struct {
	// Issuer is the OpenID Connect issuer URL, e.g. "https://accounts.google.com".
	// New fetches its discovery document. Required, unless Providers is set.
	Issuer string
	// ClientID and ClientSecret are the OAuth 2.0 client credentials.
	// Both are required, unless Providers is set (or ClientKey, or
	// PublicClient).
	ClientID     string
	ClientSecret string
	// PublicClient declares a client without a secret, which proves
	// itself with PKCE alone (token_endpoint_auth_method "none"): only
	// for providers that register such clients. Default false: New
	// refuses an empty ClientSecret, which could never work with a
	// confidential client and would fail only at the first login.
	PublicClient bool
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
	// ClientKey, ClientKeyID, ClientCertificate, TokenAuthMethod,
	// ClientAssertionAudience and ResponseMode are the [Provider] fields
	// of the same names, for the provider of Issuer: a client that
	// authenticates with a key it signs with (private_key_jwt) or a JWT
	// made with its secret (client_secret_jwt) instead of sending the
	// secret, and a provider that answers with a POST (form_post).
	// Defaults: no key, the method from discovery, the token endpoint as
	// the assertions' audience, query.
	ClientKey               crypto.Signer
	ClientKeyID             string
	ClientCertificate       *x509.Certificate
	TokenAuthMethod         string
	ClientAssertionAudience string
	ResponseMode            string

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
	// fails. Default: JSON for API callers, and for a person the error
	// [Page] (drawn by RenderPage), with the status from [ErrorStatus];
	// err itself is logged, never shown.
	ErrorHandler func(w http.ResponseWriter, r *http.Request, err error)
	// RenderPage draws the pages the middleware shows a person: the error
	// page, the question before a logout that another site asked for, and
	// the choice of provider (see [Page]). The middleware has set
	// Cache-Control: no-store before it is called. Default [DefaultPage].
	RenderPage func(w http.ResponseWriter, r *http.Request, p *Page)

	// ClockSkew is the leeway for every time check on tokens (exp, iat,
	// nbf). Default 1 minute; negative means none.
	ClockSkew time.Duration
	// Metrics, when set, receives an [Event] for each sign-in, logout,
	// refresh, ended session, back-channel logout, Store failure and
	// request with a session (or a bearer token), to count them (see the promauth module for
	// Prometheus). It runs on the request path: keep it fast, and safe for
	// concurrent use. Default nil: nothing is counted.
	Metrics func(Event)
	// Now is the middleware's clock: token and session expiry, refresh
	// and every time check. Default time.Now. Tests can share a clock with
	// their provider, such as authtest's Provider.Now, to expire tokens
	// without waiting.
	Now func() time.Time
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

	// BearerAudiences turns on bearer access tokens (RFC 6750): a request
	// with "Authorization: Bearer <token>" from an SPA, a mobile app or
	// another service is then signed in as a session cookie would sign it
	// in, if its token is an access token from one of the providers for
	// one of these audiences (the aud of the API this application serves,
	// such as "https://api.example.com"). A JWT is verified with the
	// provider's keys; an opaque token is introspected (RFC 7662) at the
	// providers whose discovery names an introspection_endpoint. The
	// bearer header wins over a session cookie, which is then not read.
	// [Middleware.RequireScope] checks scopes. Default none: bearer
	// tokens are ignored. It needs an OpenID Connect provider.
	BearerAudiences []string
	// BearerRequireATJWT accepts only JWT access tokens of RFC 9068's
	// profile, typed at+jwt: set it when every provider issues them,
	// so that no other kind of JWT it signs can pass for one. Default
	// false: the typ JWT (or none), as Entra ID, Auth0 and Keycloak send,
	// is accepted too, and ID tokens are told apart by their claims.
	BearerRequireATJWT bool
	// BearerIntrospectionTTL is how long an introspection answer about
	// an opaque token is reused, never beyond the token's exp: a token
	// revoked at the provider works that long still. Default 30 s;
	// negative: ask on every request.
	BearerIntrospectionTTL time.Duration
}

// Middleware adds login, callback and logout to an application and puts the
// signed-in user in each request's context. Create it with [New]; it does
// not change afterwards and is safe for concurrent use.
type Middleware struct {
	routes    map[string]http.Handler // login, callback and logout paths, per provider too
	routeLens uint64                  // bit n: a route's path is n bytes long (63: 63 or more)
	sessions  *sessions
	refresher *refresher
	flows     *flowCookies
	providers providers
	subjects  SubjectDeleter // the Store's, for EndSessions; nil without one

	loginPath  string
	logoutPath string
	postLogout string // absolute URL
	origin     string // scheme://host of RedirectURL
	host       string // host of RedirectURL
	secure     bool   // RedirectURL is https
	// logoutFormAction is the CSP form-action of the logout confirmation
	// page: this site, and the origins of the providers' end_session
	// endpoints, where its form's answer redirects.
	logoutFormAction string

	client       *http.Client // Config.HTTPClient: the transport of Client too
	log          *slog.Logger
	now          func() time.Time
	onLogin      func(context.Context, *Identity, *oauth2.Token) error
	errorHandler func(http.ResponseWriter, *http.Request, error)
	renderPage   func(http.ResponseWriter, *http.Request, *Page)
	metrics      counter
	mounted      atomic.Bool // Handler was called: RequireLogin has something in front
	plainHTTP    sync.Once   // the warning that an https site is reached over http
	bearer       *bearerAuth // nil without Config.BearerAudiences
}

// New checks cfg, discovers the providers and returns the middleware. ctx
// bounds only discovery. Invalid configuration fails here, never at the
// first request.
func New(ctx context.Context, cfg Config) (*Middleware, error) {
	cfg = withDefaults(cfg)
	if err := validate(&cfg); err != nil {
		return nil, err
	}
	return build(ctx, &cfg)
}

// withDefaults returns cfg with the default of every field that is unset
// (Config's field comments say which), and its negative durations as 0
// (off). It leaves the caller's Config unchanged.
func withDefaults(cfg Config) Config {
	cfg.LoginPath = orDefault(cfg.LoginPath, "/auth/login")
	cfg.LogoutPath = orDefault(cfg.LogoutPath, "/auth/logout")
	cfg.PostLogoutURL = orDefault(cfg.PostLogoutURL, "/")
	cfg.CookiePath = orDefault(cfg.CookiePath, "/")
	cfg.SessionLifetime = orDefault(cfg.SessionLifetime, 7*24*time.Hour)
	cfg.ClockSkew = max(orDefault(cfg.ClockSkew, time.Minute), 0)
	cfg.RefreshLeeway = max(orDefault(cfg.RefreshLeeway, 30*time.Second), 0)
	cfg.RefreshGrace = max(orDefault(cfg.RefreshGrace, 30*time.Second), 0)
	cfg.BearerIntrospectionTTL = max(orDefault(cfg.BearerIntrospectionTTL, 30*time.Second), 0)
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RenderPage == nil {
		cfg.RenderPage = DefaultPage
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CookieName == "" {
		cfg.CookieName = "gatehouse"
		if strings.HasPrefix(cfg.RedirectURL, "https:") && cfg.CookiePath == "/" && cfg.CookieDomain == "" {
			cfg.CookieName = "__Host-gatehouse" // bound to this exact origin
		}
	}
	return cfg
}

// validate checks the settings that need no network; the providers are
// checked as they are built.
func validate(cfg *Config) error {
	ru, err := url.Parse(cfg.RedirectURL)
	if err != nil || (ru.Scheme != "http" && ru.Scheme != "https") || ru.Host == "" {
		return fmt.Errorf("auth: Config.RedirectURL must be an absolute http(s) URL, got %q", cfg.RedirectURL)
	}
	if ru.Fragment != "" || ru.RawQuery != "" {
		return errors.New("auth: Config.RedirectURL must not have a query or fragment")
	}
	callback := callbackPath(cfg.RedirectURL)
	if callback == "" || callback == "/" {
		// The callback path is the middleware's: at / it would take the
		// application's home page.
		return fmt.Errorf("auth: Config.RedirectURL needs a path of its own, such as /auth/callback, got %q", cfg.RedirectURL)
	}
	for i, s := range append([][]byte{cfg.CookieSecret}, cfg.PreviousCookieSecrets...) {
		if len(s) < 32 {
			if i == 0 {
				return fmt.Errorf("auth: Config.CookieSecret must be at least 32 bytes, got %d", len(s))
			}
			return fmt.Errorf("auth: Config.PreviousCookieSecrets[%d] must be at least 32 bytes, got %d", i-1, len(s))
		}
	}
	if cfg.SessionLifetime < 0 {
		return errors.New("auth: Config.SessionLifetime must not be negative")
	}
	for name, p := range map[string]string{"LoginPath": cfg.LoginPath, "LogoutPath": cfg.LogoutPath} {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("auth: Config.%s must start with /, got %q", name, p)
		}
	}
	if cfg.LoginPath == callback || cfg.LogoutPath == callback || cfg.LoginPath == cfg.LogoutPath {
		return errors.New("auth: login, callback and logout paths must differ")
	}
	if !validCookieName(cfg.CookieName) {
		return fmt.Errorf("auth: Config.CookieName %q is not a valid cookie name", cfg.CookieName)
	}
	origin := ru.Scheme + "://" + ru.Host
	plu, err := url.Parse(cfg.PostLogoutURL)
	switch {
	case err != nil:
		return fmt.Errorf("auth: Config.PostLogoutURL: %w", err)
	case plu.IsAbs() && plu.Scheme+"://"+plu.Host != origin:
		return fmt.Errorf("auth: Config.PostLogoutURL must be on %s", origin)
	case !plu.IsAbs() && !strings.HasPrefix(cfg.PostLogoutURL, "/"):
		return fmt.Errorf("auth: Config.PostLogoutURL must be absolute or start with /, got %q", cfg.PostLogoutURL)
	}
	if p := cfg.BackchannelLogoutPath; p != "" && !strings.HasPrefix(p, "/") {
		return fmt.Errorf("auth: Config.BackchannelLogoutPath must start with /, got %q", p)
	}
	return validateBearer(cfg)
}

// build derives the middleware from checked settings: the providers
// (discovered), the sessions and their backend, the refresher, and the
// route table.
func build(ctx context.Context, cfg *Config) (*Middleware, error) {
	e := &env{
		client:       cfg.HTTPClient,
		log:          cfg.Logger,
		now:          cfg.Now,
		skew:         cfg.ClockSkew,
		audiences:    map[string]bool{},
		skipUserinfo: cfg.SkipUserinfo,
		metrics:      cfg.Metrics,
	}
	for _, a := range cfg.TrustedAudiences {
		e.audiences[a] = true
	}
	ps, err := newProviders(ctx, cfg, e)
	if err != nil {
		return nil, err
	}
	ru, _ := url.Parse(cfg.RedirectURL)
	origin := ru.Scheme + "://" + ru.Host
	m := &Middleware{
		providers:    ps,
		loginPath:    cfg.LoginPath,
		logoutPath:   cfg.LogoutPath,
		postLogout:   cfg.PostLogoutURL,
		origin:       origin,
		host:         ru.Host,
		secure:       ru.Scheme == "https",
		client:       cfg.HTTPClient,
		log:          cfg.Logger,
		now:          cfg.Now,
		onLogin:      cfg.OnLogin,
		errorHandler: cfg.ErrorHandler,
		renderPage:   cfg.RenderPage,
		metrics:      cfg.Metrics,
	}
	if m.errorHandler == nil {
		m.errorHandler = m.defaultError
	}
	if strings.HasPrefix(m.postLogout, "/") {
		m.postLogout = origin + m.postLogout
	}
	if m.bearer, err = newBearer(cfg, ps, e); err != nil {
		return nil, err
	}

	secrets := append([][]byte{cfg.CookieSecret}, cfg.PreviousCookieSecrets...)
	sessionCodecs, err := newCodecs(secrets, cfg.SessionLifetime, rawSerializer{})
	if err != nil {
		return nil, err
	}
	flowCodecs, err := newCodecs(secrets, flowLifetime, securecookie.JSONEncoder{})
	if err != nil {
		return nil, err
	}
	callback := callbackPath(cfg.RedirectURL)
	jar := newCookieJar(cfg.CookieName, cfg.CookiePath, cfg.CookieDomain, ru.Scheme == "https", commonDir(cfg.LoginPath, callback))
	var b backend = cookieBackend{}
	if cfg.Store != nil {
		b = newStoreBackend(cfg.Store, cfg.Metrics)
		m.subjects, _ = cfg.Store.(SubjectDeleter)
	}
	if _, locks := cfg.Store.(RefreshLocker); !locks && slices.ContainsFunc(ps, func(p *provider) bool { return p.refreshes }) {
		// Only the operator knows whether this is one instance.
		cfg.Logger.Info("auth: refresh tokens are refreshed without a lock across instances: if this app runs as several instances, " +
			"send each user to one of them (sticky sessions) or use a Store with a RefreshLocker (redisstore); otherwise two instances " +
			"refreshing one session at once can end it with a provider that rotates refresh tokens")
	}
	cache := newSessionCache(10000, 64<<20)
	if !b.cached() {
		cache = newSessionCache(0, 0)
	}
	m.sessions = &sessions{
		jar:       jar,
		codecs:    sessionCodecs,
		backend:   b,
		cache:     cache,
		ended:     newBoundedCache[[8]byte, struct{}](10000, 1<<20),
		lifetime:  cfg.SessionLifetime,
		providers: ps,
		now:       cfg.Now,
		log:       cfg.Logger,
	}
	m.flows = &flowCookies{jar: &m.sessions.jar, codecs: flowCodecs, now: cfg.Now}
	m.refresher = newRefresher(cfg.RefreshLeeway, cfg.RefreshGrace, m.sessions, ps, cfg.Now, cfg.Logger)
	m.refresher.metrics = cfg.Metrics

	m.logoutFormAction = "'self'"
	for _, p := range ps {
		if u, err := url.Parse(p.endSessionURL); err == nil && u.Host != "" && !strings.Contains(m.logoutFormAction, " "+u.Scheme+"://"+u.Host) {
			m.logoutFormAction += " " + u.Scheme + "://" + u.Host
		}
	}
	if err := m.route(cfg, callback, e); err != nil {
		return nil, err
	}
	return m, nil
}

// route builds the route table: every path the middleware serves itself.
func (m *Middleware) route(cfg *Config, callback string, e *env) error {
	m.routes = map[string]http.Handler{}
	add := func(path, what string, h http.Handler) error {
		if _, taken := m.routes[path]; taken {
			return fmt.Errorf("auth: %s: path %s is already taken", what, path)
		}
		m.routes[path] = h
		return nil
	}
	var errs []error
	errs = append(errs, add(m.logoutPath, "Config.LogoutPath", http.HandlerFunc(m.logout)))
	if len(m.providers) == 1 {
		p := m.providers[0]
		errs = append(errs, add(m.loginPath, "Config.LoginPath", m.login(p)), add(callback, "Config.RedirectURL", m.callback(p)))
	} else {
		// LoginPath shows a button per provider; the plain callback path
		// belongs to none, so no login can end there.
		errs = append(errs, add(m.loginPath, "Config.LoginPath", http.HandlerFunc(m.chooser)), add(callback, "Config.RedirectURL", m.callback(nil)))
		for i, p := range m.providers {
			what := fmt.Sprintf("Config.Providers[%d]", i)
			errs = append(errs, add(p.loginPath, what, m.login(p)), add(p.callbackPath, what, m.callback(p)))
		}
	}
	if path := cfg.BackchannelLogoutPath; path != "" {
		bc, err := newBackchannel(cfg.Store, m.providers, e)
		if err != nil {
			return err
		}
		if _, taken := m.routes[path]; taken {
			return fmt.Errorf("auth: Config.BackchannelLogoutPath %s is already the path of login, callback or logout", path)
		}
		m.routes[path] = bc
	}
	for path := range m.routes {
		m.routeLens |= 1 << min(len(path), 63)
	}
	return errors.Join(errs...)
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// callbackPath is the path of the redirect URL, where the provider sends
// the browser back.
func callbackPath(redirectURL string) string {
	u, err := url.Parse(redirectURL)
	if err != nil {
		return ""
	}
	return u.EscapedPath()
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
// For a request with a session cookie, next gets a ResponseWriter of the
// middleware's (it still offers http.Flusher, http.Hijacker and Unwrap): a
// token that [Client] refreshes during the handler sets its cookie through
// it, before the first write. An adapter for another router must pass that
// writer on, not the one it had before.
//
// A request without a session cookie costs a header scan. With one, the
// cookie is authenticated and decrypted (or found in a small cache of
// cookies already seen), the access token is refreshed first if it is due,
// and the user, token and an auto-refreshing client go into the context.
//
// With [Config.BearerAudiences], a request with "Authorization: Bearer"
// is signed in by its access token instead, and its cookie is not read; a
// token that is refused leaves the request anonymous, and RequireLogin
// answers it.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	m.mounted.Store(true)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.routeLens&(1<<min(len(r.URL.Path), 63)) != 0 { // most paths are not ours by their length alone
			if h, ok := m.routes[r.URL.Path]; ok {
				h.ServeHTTP(w, r)
				return
			}
		}
		st := m.begin(w, r)
		if st == nil {
			next.ServeHTTP(w, r)
			return
		}
		st.Context = r.Context()
		next.ServeHTTP(st, r.WithContext(st))
		st.commit() // a handler that wrote nothing still gets its cookies
	})
}

// begin reads the request's session and refreshes it if it is due. It
// returns nil for a request without a session cookie; a cookie that is
// not a live session of ours is deleted (at commit) and the request is
// anonymous.
func (m *Middleware) begin(w http.ResponseWriter, r *http.Request) *reqState {
	if m.bearer != nil {
		if st, ok := m.beginBearer(w, r); ok {
			return st // a bearer token wins: the cookie is not read
		}
	}
	lines := r.Header["Cookie"]
	if len(lines) == 0 {
		return nil // no cookie, no work
	}
	now := m.now()
	ss, err := m.sessions.lookupAt(r.Context(), lines, now)
	if err == errNoCookie {
		return nil
	}
	st := &reqState{ResponseWriter: w, m: m, r: r}
	switch {
	case errors.Is(err, ErrStoreUnavailable):
		m.log.ErrorContext(r.Context(), "auth: session store failed", "error", err)
		st.unavailable = true
		return st
	case err != nil:
		m.log.DebugContext(r.Context(), "auth: ignoring session cookie", "error", err)
		m.metrics.count(EventSessionDropped, "")
		st.setCookie(nil)
		return st
	}
	m.metrics.count(EventSession, ss.user.Provider)
	st.ss.Store(ss)
	if m.refresher.due(ss.sess, now) {
		_, _ = st.refresh(r.Context()) // failures are logged; the request goes on
	}
	return st
}

// RequireLogin lets signed-in requests through to next and turns anonymous
// ones away: a browser navigation (Sec-Fetch-Mode: navigate, or without that
// header a GET or HEAD that accepts text/html) is redirected to login and
// comes back to the same path afterwards; anything else gets 401 with a
// small JSON body and a WWW-Authenticate header. When the session [Store]
// cannot answer, it responds 503 with Retry-After instead, and the user's
// cookie is kept. A request whose bearer token was refused (see
// [Config.BearerAudiences]) gets 401 with error="invalid_token" (RFC 6750
// §3), never a redirect. Use it per route or for a whole router.
//
// It must run inside [Middleware.Handler]: without it every request would
// look anonymous, so a request that reaches RequireLogin without passing
// through Handler gets 500, and an error is logged.
func (m *Middleware) RequireLogin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, _ := r.Context().Value(ctxKey{}).(*reqState)
		switch {
		case st != nil && st.m == m && st.ss.Load() != nil:
			next.ServeHTTP(w, r)
			return
		case st != nil && st.m == m && st.bearer != nil:
			// A refused bearer token: its answer, never a redirect
			// (RFC 6750 §3).
			m.refuseBearer(w, st.bearer)
			return
		case st != nil && st.m == m && st.unavailable:
			// The Store is down: the user may well be signed in, so
			// neither send them to login nor clear their cookie.
			w.Header().Set("Retry-After", "5")
			writeJSONError(w, http.StatusServiceUnavailable, "unavailable", "sessions are temporarily unavailable")
			return
		case st == nil || st.m != m:
			// No session state of ours: an anonymous request without a
			// session cookie, unless Handler is not in front (then a
			// session cookie would have given one).
			if _, cookie := cookieValue(r.Header, m.sessions.jar.name); cookie || !m.mounted.Load() {
				m.log.ErrorContext(r.Context(), "auth: RequireLogin without Handler in front: wrap the application (or the router) with Middleware.Handler", "path", r.URL.Path)
				writeJSONError(w, http.StatusInternalServerError, "server_error", "authentication is misconfigured")
				return
			}
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
	if p := m.providers.byName(provider); p != nil {
		return p.kind.userinfoURL()
	}
	return ""
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
// read-only. Prefer [Client], which also refreshes the token. For a request
// signed in by a bearer token (see [Config.BearerAudiences]) it is that
// token, with its expiry, and neither a refresh nor an ID token.
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
// [ErrNoSession]. For a request signed in by a bearer token, it sends
// that token as it came, and never refreshes it.
func Client(ctx context.Context) *http.Client {
	if st, ok := ctx.Value(ctxKey{}).(*reqState); ok {
		return st.httpClient()
	}
	return noSessionClient
}

// Userinfo fetches what the provider that signed the user in says about
// them, through [Client] (so with a fresh access token), and decodes the
// JSON answer into v: the OpenID Connect userinfo endpoint, or a plain
// OAuth 2.0 provider's user API (GitHub's /user). For an anonymous request
// it returns [ErrNoSession]; a provider failure wraps
// [ErrProviderUnavailable].
//
//	var info struct{ Name, Locale string }
//	err := auth.Userinfo(r.Context(), &info)
func Userinfo(ctx context.Context, v any) error {
	st, ok := ctx.Value(ctxKey{}).(*reqState)
	if !ok || st.ss.Load() == nil {
		return ErrNoSession
	}
	p := st.m.providers.byName(st.ss.Load().user.Provider)
	if p == nil || p.kind.userinfoURL() == "" {
		return fmt.Errorf("auth: userinfo: %w: the provider has no userinfo endpoint", ErrProviderUnavailable)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.kind.userinfoURL(), nil)
	if err != nil {
		return fmt.Errorf("auth: userinfo: %w: %w", ErrProviderUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	res, err := st.httpClient().Do(req)
	if err != nil {
		if errors.Is(err, ErrNoSession) || errors.Is(err, ErrSessionEnded) {
			return err
		}
		return fmt.Errorf("auth: userinfo: %w: %w", ErrProviderUnavailable, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("auth: userinfo: %w", &statusError{status: res.StatusCode})
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, maxUserResponse)).Decode(v); err != nil {
		return fmt.Errorf("auth: userinfo: %w: %w", ErrProviderUnavailable, err)
	}
	return nil
}

// TokenSource returns an [oauth2.TokenSource] of the session's token, for
// libraries that take one (such as Google's API clients): each Token call
// returns the current token, refreshed first when it is due, as [Client]
// does. For an anonymous request its Token returns [ErrNoSession].
func TokenSource(ctx context.Context) oauth2.TokenSource {
	st, _ := ctx.Value(ctxKey{}).(*reqState)
	return sessionTokenSource{st}
}

type sessionTokenSource struct{ st *reqState }

func (ts sessionTokenSource) Token() (*oauth2.Token, error) {
	st := ts.st
	if st == nil || st.ss.Load() == nil {
		return nil, ErrNoSession
	}
	ss := st.ss.Load()
	if st.m.refresher.due(ss.sess, st.m.now()) {
		ns, err := st.refresh(st.Context)
		if errors.Is(err, ErrSessionEnded) {
			return nil, err
		}
		if ns != nil {
			ss = ns
		}
	}
	t := *ss.oauthToken() // a copy: callers may change it
	return &t, nil
}

var noSessionClient = &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
	return nil, ErrNoSession
})}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
