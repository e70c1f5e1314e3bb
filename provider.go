package auth

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// This file is about providers in general: the Provider settings, the
// provider a Provider becomes in New, the kind that tells how a login's
// answer identifies the user (OpenID Connect in oidc.go, plain OAuth 2.0
// in oauth2.go), the quirks presets implement (google.go, microsoft.go,
// github.go), and the grants and calls every provider makes: code
// exchange, refresh, revocation and the end-session URL.

// Provider describes one sign-in provider for [Config.Providers]: an OpenID
// Connect provider found by its Issuer, or a plain OAuth 2.0 provider with
// manual endpoints (AuthURL, TokenURL and UserURL), which has no ID token:
// the user comes from its user API, mapped by MapUser. State and PKCE
// protect both kinds; the nonce applies where there is an ID token.
//
// [GitHub], [Google] and [Microsoft] return a Provider ready to use, with
// that provider's quirks handled; any other OpenID Connect provider
// (Keycloak, Okta, Auth0, Dex, Authentik...) needs only Name, Issuer and
// the client credentials. A preset's fields may be changed like any other,
// for example its endpoints, to reach GitHub Enterprise Server.
type Provider struct {
	// Name identifies the provider in its paths (LoginPath/Name and
	// RedirectURL/Name), in sessions and in [Identity.Provider]: lowercase
	// letters, digits, '-' and '_', at most 32. Required when there is
	// more than one provider. Renaming a provider ends its users' sessions.
	Name string
	// DisplayName labels the provider on the page LoginPath shows when
	// there are several providers. Default Name.
	DisplayName string

	// Issuer is the OpenID Connect issuer URL; New fetches its discovery
	// document. Leave it empty for a plain OAuth 2.0 provider.
	Issuer string
	// ClientID and ClientSecret are the OAuth 2.0 client credentials.
	// Both are required, unless ClientKey or PublicClient is set.
	ClientID     string
	ClientSecret string
	// PublicClient declares a client without a secret, which proves
	// itself with PKCE alone (token_endpoint_auth_method "none"). Default
	// false: New refuses an empty ClientSecret.
	PublicClient bool
	// ClientKey authenticates the client with a JWT it signs instead of a
	// client secret: private_key_jwt (RFC 7523, OpenID Connect Core 1.0
	// section 9), for providers where the client registered its public
	// key or certificate (Entra ID, Okta, Keycloak, Auth0, Ping...). RSA
	// (2048 bits or more), ECDSA or Ed25519; [ParseClientKey] reads one
	// from PEM. Each request gets a fresh assertion: iss and sub the
	// client ID, aud ClientAssertionAudience, a random jti, valid one
	// minute. Default nil: no key.
	ClientKey crypto.Signer
	// ClientKeyID is ClientKey's key ID (kid) as the provider knows it.
	// Default: its RFC 7638 thumbprint ([KeyThumbprint]).
	ClientKeyID string
	// ClientCertificate is ClientKey's X.509 certificate, for providers
	// that identify the key by the certificate registered with them
	// (Microsoft Entra ID): assertions then carry its SHA-1 and SHA-256
	// thumbprints (x5t, x5t#S256). Default nil.
	ClientCertificate *x509.Certificate
	// TokenAuthMethod is how the client authenticates at the token and
	// revocation endpoints, as registered at the provider (its
	// token_endpoint_auth_method): "client_secret_basic",
	// "client_secret_post", "client_secret_jwt" (a JWT signed with
	// ClientSecret, which must then be 32 bytes or more),
	// "private_key_jwt" or "none". Default: private_key_jwt with a
	// ClientKey; none without a ClientSecret; otherwise the first of
	// client_secret_basic, client_secret_post and client_secret_jwt that
	// the discovery document lists. New fails if the discovery document
	// lists methods but not this one; the method is never changed or
	// retried another way afterwards.
	TokenAuthMethod string
	// ClientAssertionAudience is the aud of the client's assertions
	// (private_key_jwt, client_secret_jwt). Default: the token endpoint
	// URL, as OpenID Connect Core 1.0 section 9 says. Auth0 wants its
	// issuer URL ("https://TENANT.auth0.com/"), which other providers
	// accept too (draft-ietf-oauth-rfc7523bis recommends it).
	ClientAssertionAudience string
	// ResponseMode is how the provider returns the browser with its
	// answer: "query" (default), or "form_post" (OAuth 2.0 Form Post
	// Response Mode), a POST to the callback that keeps the code out of
	// URLs and is what Sign in with Apple requires for name and email.
	// form_post needs an https RedirectURL: that cross-site POST only
	// carries the login's flow cookie if it is SameSite=None, which
	// browsers accept only with Secure.
	ResponseMode string
	// Scopes requested at login. Default for OpenID Connect: openid email
	// profile, and "openid" is added when missing; for plain OAuth 2.0:
	// none.
	Scopes []string
	// AuthParams are extra parameters for the authorization request. The
	// security parameters (state, nonce, code_challenge...) cannot be
	// overridden.
	AuthParams map[string]string

	// AuthURL and TokenURL are a plain OAuth 2.0 provider's authorization
	// and token endpoints. Required without Issuer.
	AuthURL  string
	TokenURL string
	// UserURL is a plain OAuth 2.0 provider's user API: the middleware
	// GETs it with the access token at login and expects a JSON object.
	// Required without Issuer.
	UserURL string
	// MapUser maps the JSON object from UserURL to the user's claims, which
	// must hold a non-empty string "sub", the provider's stable ID of the
	// user; "email", "email_verified", "name" and "picture" fill the
	// matching [Identity] fields. The claims are stored in the session
	// cookie, so keep them small. Default: "sub", or else "id" (a string or
	// a number), and the standard claims email, email_verified, name,
	// preferred_username and picture when present. Returning an error
	// refuses the login as [ErrLoginRefused].
	MapUser func(user json.RawMessage) (claims map[string]any, err error)
	// RevocationURL is a plain OAuth 2.0 provider's RFC 7009 token
	// revocation endpoint, called at logout. Optional.
	RevocationURL string

	// quirks is set by presets; nil means the standard behaviour.
	quirks quirks
	// authStyle is how the client authenticates at a plain OAuth 2.0
	// token endpoint; presets set it, the default tries both.
	authStyle oauth2.AuthStyle
	// mintSecret makes the client secret (Sign in with Apple's); nil
	// means ClientSecret.
	mintSecret *mintedSecret
}

// quirks is how one provider departs from the standard flow. Each preset
// implements it in its own file (embedding standard for what it does not
// change); the rest of the package calls it at these points and knows
// nothing else about any particular provider.
type quirks interface {
	// issuer is called in New with the configured issuer and the one its
	// discovery document names. It returns the issuer ID tokens must
	// name, and whether checkIDToken checks iss instead of the verifier
	// (for an issuer that depends on the user, such as a tenant's).
	issuer(configured, discovered string) (iss string, selfCheck bool, err error)
	// checkIDToken runs on every ID token, at login and at refresh, after
	// its signature and standard claims are verified.
	checkIDToken(k *oidcKind, claims []byte) error
	// user returns a plain OAuth 2.0 provider's user as a JSON object of
	// claims with a non-empty "sub".
	user(ctx context.Context, p *provider, tok *oauth2.Token) ([]byte, error)
	// revoke revokes the session's tokens at logout, best effort, within
	// ctx's short deadline (standard: RFC 7009).
	revoke(ctx context.Context, p *provider, s *session) error
	// errorCode maps the provider's token endpoint error code to the one
	// RFC 6749 defines for the same condition.
	errorCode(code string) string
	// identity adjusts the Identity read from the user's claims, for
	// claims the provider means differently.
	identity(u *Identity)
	// responseClaims returns claims the provider sends with its
	// authorization response (q) rather than in the ID token, such as
	// Apple's user, for the session to keep; nil for none.
	responseClaims(q url.Values) (map[string]any, error)
}

// standard is the behaviour of providers that follow the specifications.
type standard struct{}

func (standard) issuer(configured, discovered string) (string, bool, error) {
	// OpenID Connect Discovery 1.0, section 4.3.
	if discovered != configured {
		return "", false, fmt.Errorf("the discovery document names issuer %q, not %q", discovered, configured)
	}
	return configured, false, nil
}

func (standard) checkIDToken(*oidcKind, []byte) error { return nil }

func (standard) user(ctx context.Context, p *provider, tok *oauth2.Token) ([]byte, error) {
	return fetchUser(ctx, p, tok)
}

func (standard) errorCode(code string) string { return code }

func (standard) identity(*Identity) {}

func (standard) responseClaims(url.Values) (map[string]any, error) { return nil, nil }

// revoke revokes the session's refresh token (or, without one, its access
// token) at the provider's RFC 7009 revocation endpoint, if it has one.
func (standard) revoke(ctx context.Context, p *provider, s *session) error {
	tok, hint := s.refresh, "refresh_token"
	if tok == "" {
		tok, hint = s.access, "access_token"
	}
	if p.revocationURL == "" || tok == "" {
		return nil
	}
	res, err := p.postForm(ctx, p.revocationURL, url.Values{"token": {tok}, "token_type_hint": {hint}})
	return checkStatus(res, err, http.StatusOK)
}

// kind is what sets OpenID Connect providers and plain OAuth 2.0 ones
// apart: how a login's answer tells who signed in. oidcKind (oidc.go)
// verifies an ID token; plainKind (oauth2.go) asks the user API.
type kind interface {
	// authOptions adds to a login what the kind needs to check its
	// answer: the nonce of OpenID Connect, which it stores in f.
	authOptions(f *flowState) []oauth2.AuthCodeOption
	// checkIssuerParam checks the authorization response's iss parameter
	// (RFC 9207).
	checkIssuerParam(q url.Values) error
	// identify returns who signed in, from a login's token response: the
	// raw ID token ("" without one) and the claims the session keeps
	// beside it.
	identify(ctx context.Context, p *provider, tok *oauth2.Token, nonce string) (idToken string, claims []byte, err error)
	// reidentify checks a refresh response against the session it
	// refreshes and puts what it adds (a new ID token) in s.
	reidentify(ctx context.Context, p *provider, tok *oauth2.Token, old *sessionState, s *session) error
	// userinfoURL is where the provider answers questions about the user.
	userinfoURL() string
}

// env is what every provider shares, from Config.
type env struct {
	client       *http.Client
	log          *slog.Logger
	now          func() time.Time
	skew         time.Duration
	audiences    map[string]bool // TrustedAudiences; each provider's client ID is trusted too
	skipUserinfo bool
	metrics      counter
}

// provider is one configured provider, ready for use: its endpoints, what
// we learned from its discovery document, and its paths.
type provider struct {
	*env
	where         string // how errors name its settings: "Config" or "Config.Providers[i]"
	name          string
	label         string
	clientID      string
	oauth         oauth2.Config
	authParams    []oauth2.AuthCodeOption
	kind          kind
	quirks        quirks
	refreshes     bool // may issue refresh tokens
	endSessionURL string
	revocationURL string
	auth          *clientAuth // how the client authenticates (clientauth.go)
	formPost      bool        // ResponseMode form_post (formpost.go)

	loginPath    string // LoginPath/name, or LoginPath for a single provider
	callbackPath string

	// binding ties sessions to this provider's issuer and client ID: a
	// hash of both, stored in each session and checked when it is read, so
	// that a deployment sharing the cookie secret with another one
	// (staging and production) does not accept the other's sessions.
	binding [8]byte
}

// providers are the configured providers, in Config order.
type providers []*provider

// byName returns the provider of that name, or nil. A linear scan: there
// are a few providers at most.
func (ps providers) byName(name string) *provider {
	for _, p := range ps {
		if p.name == name {
			return p
		}
	}
	return nil
}

// maxProviderName bounds a provider's name, which goes into paths and into
// every session cookie.
const maxProviderName = 32

// newProviders checks the providers of cfg (where names them in errors, as
// a user writes them), discovers the OpenID Connect ones, and returns them
// with their paths. Without Config.Providers, the single provider comes
// from Config.Issuer and its neighbours, named "" so that sessions written
// before Providers existed stay valid.
func newProviders(ctx context.Context, cfg *Config, e *env) (providers, error) {
	list, field := cfg.Providers, "Providers[%d]"
	if len(list) == 0 {
		if cfg.Issuer == "" {
			return nil, errors.New("auth: Config.Issuer is required (or Config.Providers)")
		}
		list = []Provider{{Issuer: cfg.Issuer, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, PublicClient: cfg.PublicClient, Scopes: cfg.Scopes, AuthParams: cfg.AuthParams,
			ClientKey: cfg.ClientKey, ClientKeyID: cfg.ClientKeyID, ClientCertificate: cfg.ClientCertificate, TokenAuthMethod: cfg.TokenAuthMethod,
			ClientAssertionAudience: cfg.ClientAssertionAudience, ResponseMode: cfg.ResponseMode}}
		field = "Config"
	} else if cfg.Issuer != "" || cfg.ClientID != "" || cfg.ClientSecret != "" || cfg.PublicClient || len(cfg.Scopes) > 0 || len(cfg.AuthParams) > 0 || cfg.hasClientAuth() {
		return nil, errors.New("auth: with Config.Providers, set Issuer, ClientID, ClientSecret, PublicClient, Scopes, AuthParams, ClientKey (and its ID and certificate), TokenAuthMethod, ClientAssertionAudience and ResponseMode in each Provider, not in Config")
	}
	single := len(list) == 1
	where := func(i int) string { // names a provider's fields as a Config literal has them
		if field == "Config" {
			return field
		}
		return "Config." + fmt.Sprintf(field, i)
	}
	var ps providers
	for i, pc := range list {
		w := where(i)
		p, err := newProvider(pc, w, cfg, single, e)
		if err != nil {
			return nil, err
		}
		if ps.byName(p.name) != nil {
			return nil, fmt.Errorf("auth: %s: another provider is named %q", w, p.name)
		}
		ps = append(ps, p)
	}
	for i, p := range ps {
		if list[i].Issuer != "" {
			k, err := discover(ctx, p, list[i].Issuer)
			if err != nil {
				return nil, fmt.Errorf("auth: %s.Issuer: %w", where(i), err)
			}
			p.kind = k
		} else {
			p.kind = &plainKind{userURL: list[i].UserURL, mapUser: list[i].MapUser}
			p.refreshes = true // no discovery to say otherwise (GitHub Apps do)
			if err := p.auth.pinPlain(&p.oauth); err != nil {
				return nil, fmt.Errorf("auth: %s: %w", where(i), err)
			}
		}
		p.setBinding(list[i])
	}
	return ps, nil
}

// newProvider checks one provider's settings (w names them in errors) and
// returns it, not yet discovered.
func newProvider(pc Provider, w string, cfg *Config, single bool, e *env) (*provider, error) {
	switch {
	case pc.Name == "" && !single:
		return nil, fmt.Errorf("auth: %s.Name is required with several providers", w)
	case pc.Name != "" && !validProviderName(pc.Name):
		return nil, fmt.Errorf("auth: %s.Name %q must be at most %d lowercase letters, digits, '-' or '_'", w, pc.Name, maxProviderName)
	case pc.Issuer == "" && pc.AuthURL == "" && pc.TokenURL == "" && pc.UserURL == "":
		return nil, fmt.Errorf("auth: %s.Issuer is required (or AuthURL, TokenURL and UserURL for plain OAuth 2.0)", w)
	case pc.Issuer != "" && (pc.AuthURL != "" || pc.TokenURL != "" || pc.UserURL != ""):
		return nil, fmt.Errorf("auth: %s.Issuer: set either Issuer or AuthURL, TokenURL and UserURL, not both", w)
	case pc.ClientID == "":
		return nil, fmt.Errorf("auth: %s.ClientID is required", w)
	case pc.ClientSecret == "" && pc.ClientKey == nil && pc.mintSecret == nil && !pc.PublicClient:
		return nil, fmt.Errorf("auth: %s.ClientSecret is required (for a client without a secret, set %s.PublicClient), or a ClientKey", w, w)
	case (pc.ClientSecret != "" || pc.ClientKey != nil) && pc.PublicClient:
		return nil, fmt.Errorf("auth: %s.PublicClient: a public client has no ClientSecret or ClientKey", w)
	}
	for _, f := range []struct{ name, url string }{
		{"Issuer", pc.Issuer}, {"AuthURL", pc.AuthURL}, {"TokenURL", pc.TokenURL}, {"UserURL", pc.UserURL}, {"RevocationURL", pc.RevocationURL},
	} {
		if f.url == "" {
			if pc.Issuer == "" && f.name != "Issuer" && f.name != "RevocationURL" {
				return nil, fmt.Errorf("auth: %s.%s is required for a plain OAuth 2.0 provider (one without Issuer)", w, f.name)
			}
			continue
		}
		if pu, err := url.Parse(f.url); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			return nil, fmt.Errorf("auth: %s.%s: %q is not an absolute http(s) URL", w, f.name, f.url)
		}
	}

	scopes := pc.Scopes
	if pc.Issuer != "" {
		if len(scopes) == 0 {
			scopes = []string{"openid", "email", "profile"}
		}
		if !slices.Contains(scopes, "openid") {
			scopes = append([]string{"openid"}, scopes...)
		}
	}
	auth, err := newClientAuth(pc, w, e.now)
	if err != nil {
		return nil, err
	}
	p := &provider{
		env:           e,
		where:         w,
		auth:          auth,
		name:          pc.Name,
		label:         orDefault(pc.DisplayName, pc.Name),
		clientID:      pc.ClientID,
		revocationURL: pc.RevocationURL,
		quirks:        pc.quirks,
		loginPath:     cfg.LoginPath,
		callbackPath:  callbackPath(cfg.RedirectURL),
		oauth: oauth2.Config{
			ClientID:     pc.ClientID,
			ClientSecret: pc.ClientSecret,
			Endpoint:     oauth2.Endpoint{AuthURL: pc.AuthURL, TokenURL: pc.TokenURL, AuthStyle: pc.authStyle},
			RedirectURL:  cfg.RedirectURL,
			Scopes:       slices.Clone(scopes),
		},
	}
	if p.quirks == nil {
		p.quirks = standard{}
	}
	if p.formPost, err = responseMode(pc.ResponseMode, w, cfg.RedirectURL); err != nil {
		return nil, err
	}
	if !single {
		p.loginPath = strings.TrimSuffix(p.loginPath, "/") + "/" + p.name
		p.callbackPath = strings.TrimSuffix(p.callbackPath, "/") + "/" + p.name
		p.oauth.RedirectURL = strings.TrimSuffix(cfg.RedirectURL, "/") + "/" + p.name
	}
	for _, k := range slices.Sorted(maps.Keys(pc.AuthParams)) { // a stable authorization URL
		switch k {
		case "state", "nonce", "code_challenge", "code_challenge_method", "redirect_uri", "client_id", "response_type", "scope":
			return nil, fmt.Errorf("auth: %s.AuthParams may not set %q", w, k)
		case "response_mode":
			return nil, fmt.Errorf("auth: %s.AuthParams may not set response_mode: set ResponseMode", w)
		}
		p.authParams = append(p.authParams, oauth2.SetAuthURLParam(k, pc.AuthParams[k]))
	}
	return p, nil
}

func validProviderName(s string) bool {
	if len(s) > maxProviderName {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// setBinding computes p.binding once its issuer is known (see provider).
func (p *provider) setBinding(pc Provider) {
	id := pc.AuthURL // plain OAuth 2.0: no issuer
	if k, ok := p.kind.(*oidcKind); ok {
		id = k.issuer
	}
	h := sha256.Sum256([]byte("gatehouse/auth session binding\x00" + id + "\x00" + p.clientID))
	p.binding = [8]byte(h[:8])
}

// exchange redeems a login's authorization code with its PKCE verifier.
func (p *provider) exchange(ctx context.Context, code, verifier string) (*oauth2.Token, error) {
	tok, err := p.oauth.Exchange(p.tokenContext(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, p.explain(tokenError("exchange code", err, p.quirks.errorCode))
	}
	return tok, nil
}

// refresh runs the refresh_token grant. A provider that rejects the
// refresh token (invalid_grant) ends the session: the error wraps
// ErrSessionEnded.
func (p *provider) refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	// An expired token with only the refresh token makes TokenSource run
	// the refresh_token grant.
	tok, err := p.oauth.TokenSource(p.tokenContext(ctx), &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		err = p.explain(tokenError("refresh", err, p.quirks.errorCode))
		var pe *ProviderError
		if errors.As(err, &pe) && pe.Code == "invalid_grant" {
			return nil, fmt.Errorf("%w: %w", ErrSessionEnded, err)
		}
		return nil, err
	}
	return tok, nil
}

// revoke revokes the session's tokens at the provider (quirks.revoke):
// best effort, bounded by a short timeout, failures logged.
func (p *provider) revoke(ctx context.Context, s *session) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := p.quirks.revoke(ctx, p, s); err != nil {
		p.log.WarnContext(ctx, "auth: token revocation failed", "provider", p.name, "error", err)
	}
}

// logoutURL is where the browser goes to end the provider's session too
// (RP-Initiated Logout 1.0), or "" when the provider offers none.
func (p *provider) logoutURL(s *session, postLogout string) string {
	if p.endSessionURL == "" {
		return ""
	}
	u, err := url.Parse(p.endSessionURL)
	if err != nil {
		return ""
	}
	q := u.Query()
	if s.idToken != "" {
		q.Set("id_token_hint", s.idToken)
	}
	q.Set("client_id", p.clientID)
	q.Set("post_logout_redirect_uri", postLogout)
	u.RawQuery = q.Encode()
	return u.String()
}
