package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

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
	// ClientID is required.
	ClientID     string
	ClientSecret string
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
}

// quirks is how one provider departs from the standard flow. Each preset
// implements it in its own file (embedding standard for what it does not
// change); the flow calls it at these points and knows nothing else about
// any particular provider.
type quirks interface {
	// issuer is called in New with the configured issuer and the one its
	// discovery document names. It returns the issuer ID tokens must
	// name, and whether checkIDToken checks iss instead of the verifier
	// (for an issuer that depends on the user, such as a tenant's).
	issuer(configured, discovered string) (iss string, selfCheck bool, err error)
	// checkIDToken runs on every ID token, at login and at refresh, after
	// its signature and standard claims are verified.
	checkIDToken(p *provider, claims []byte) error
	// user returns a plain OAuth 2.0 provider's user as a JSON object of
	// claims with a non-empty "sub".
	user(ctx context.Context, m *Middleware, p *provider, tok *oauth2.Token) ([]byte, error)
	// revoke revokes the session's tokens at logout, best effort, within
	// ctx's short deadline (standard: RFC 7009).
	revoke(ctx context.Context, m *Middleware, p *provider, s *session) error
	// errorCode maps the provider's token endpoint error code to the one
	// RFC 6749 defines for the same condition.
	errorCode(code string) string
	// identity adjusts the Identity read from the user's claims, for
	// claims the provider means differently.
	identity(u *Identity)
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

func (standard) checkIDToken(*provider, []byte) error { return nil }

func (standard) user(ctx context.Context, m *Middleware, p *provider, tok *oauth2.Token) ([]byte, error) {
	return fetchUser(ctx, m.client, p, tok)
}

func (standard) errorCode(code string) string { return code }

func (standard) identity(*Identity) {}

// provider is one configured provider, ready for use: its endpoints, what
// we learned from its discovery document, and its paths.
type provider struct {
	name          string
	label         string
	issuer        string // "" for plain OAuth 2.0
	clientID      string
	oauth         oauth2.Config
	authParams    []oauth2.AuthCodeOption
	remote        *oidc.Provider // nil for plain OAuth 2.0
	oidcConfig    oidc.Config    // go-oidc's claim checks for ID and logout tokens
	userinfoURL   string
	userURL       string  // plain OAuth 2.0 user API
	keys          *keySet // nil for plain OAuth 2.0
	mapUser       func(json.RawMessage) (map[string]any, error)
	endSessionURL string
	revocationURL string
	issParam      bool // RFC 9207: the provider sends iss with the authorization response
	issSelfCheck  bool // quirks.checkIDToken checks iss; issuer is a template
	quirks        quirks

	loginPath    string // LoginPath/name, or LoginPath for a single provider
	callbackPath string

	// binding ties sessions to this provider's issuer and client ID: a
	// hash of both, stored in each session and checked when it is read, so
	// that a deployment sharing the cookie secret with another one
	// (staging and production) does not accept the other's sessions.
	binding string
}

// setBinding computes p.binding once its issuer is known.
func (p *provider) setBinding() {
	id := p.issuer
	if id == "" {
		id = p.oauth.Endpoint.AuthURL // plain OAuth 2.0: no issuer
	}
	h := sha256.Sum256([]byte("gatehouse/auth session binding\x00" + id + "\x00" + p.clientID))
	p.binding = string(h[:8])
}

// route is a per-provider path: LoginPath/name or the callback path/name.
type route struct {
	p        *provider
	callback bool
}

// maxProviderName bounds a provider's name, which goes into paths and into
// every session cookie.
const maxProviderName = 32

// setupProviders checks the providers in cfg, then discovers the OpenID
// Connect ones. Without Config.Providers, the single provider comes from
// Config.Issuer and its neighbours, named "" so that sessions written
// before Providers existed stay valid.
func (m *Middleware) setupProviders(ctx context.Context, cfg Config) error {
	list, where := cfg.Providers, "Config.Providers[%d]"
	if len(list) == 0 {
		if cfg.Issuer == "" {
			return errors.New("auth: Config.Issuer is required (or Config.Providers)")
		}
		list = []Provider{{Issuer: cfg.Issuer, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Scopes: cfg.Scopes, AuthParams: cfg.AuthParams}}
		where = "Config"
	} else if cfg.Issuer != "" || cfg.ClientID != "" || cfg.ClientSecret != "" || len(cfg.Scopes) > 0 || len(cfg.AuthParams) > 0 {
		return errors.New("auth: with Config.Providers, set Issuer, ClientID, ClientSecret, Scopes and AuthParams in each Provider, not in Config")
	}

	single := len(list) == 1
	paths := map[string]bool{m.loginPath: true, m.callbackPath: true, m.logoutPath: true}
	for i, pc := range list {
		w := where
		if w != "Config" {
			w = fmt.Sprintf(where, i)
		}
		p, err := m.newProvider(pc, w, cfg.RedirectURL, single)
		if err != nil {
			return err
		}
		if m.providerByName(p.name) != nil {
			return fmt.Errorf("auth: %s: another provider is named %q", w, p.name)
		}
		if !single {
			for _, path := range []string{p.loginPath, p.callbackPath} {
				if paths[path] {
					return fmt.Errorf("auth: %s: path %s is already taken", w, path)
				}
				paths[path] = true
			}
			if m.routes == nil {
				m.routes = map[string]route{}
			}
			m.routes[p.loginPath] = route{p: p}
			m.routes[p.callbackPath] = route{p: p, callback: true}
		}
		m.providers = append(m.providers, p)
	}
	for i, p := range m.providers {
		if list[i].Issuer != "" {
			if err := m.discover(ctx, p, list[i].Issuer); err != nil {
				return err
			}
		}
		p.setBinding()
	}
	return nil
}

// newProvider checks one provider's settings (w names them in errors) and
// returns it, not yet discovered.
func (m *Middleware) newProvider(pc Provider, w, redirectURL string, single bool) (*provider, error) {
	switch {
	case pc.Name == "" && !single:
		return nil, fmt.Errorf("auth: %s.Name is required with several providers", w)
	case pc.Name != "" && !validProviderName(pc.Name):
		return nil, fmt.Errorf("auth: %s.Name %q must be at most %d lowercase letters, digits, '-' or '_'", w, pc.Name, maxProviderName)
	case pc.ClientID == "":
		return nil, fmt.Errorf("auth: %s.ClientID is required", w)
	case pc.Issuer == "" && (pc.AuthURL == "" || pc.TokenURL == "" || pc.UserURL == ""):
		return nil, fmt.Errorf("auth: %s needs an Issuer, or AuthURL, TokenURL and UserURL for plain OAuth 2.0", w)
	case pc.Issuer != "" && (pc.AuthURL != "" || pc.TokenURL != "" || pc.UserURL != ""):
		return nil, fmt.Errorf("auth: %s: set either Issuer or AuthURL, TokenURL and UserURL, not both", w)
	}
	for _, u := range []string{pc.Issuer, pc.AuthURL, pc.TokenURL, pc.UserURL, pc.RevocationURL} {
		if u == "" {
			continue
		}
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			return nil, fmt.Errorf("auth: %s: %q is not an absolute http(s) URL", w, u)
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
	p := &provider{
		name:          pc.Name,
		label:         orDefault(pc.DisplayName, pc.Name),
		clientID:      pc.ClientID,
		userURL:       pc.UserURL,
		mapUser:       pc.MapUser,
		revocationURL: pc.RevocationURL,
		quirks:        pc.quirks,
		loginPath:     m.loginPath,
		callbackPath:  m.callbackPath,
		oauth: oauth2.Config{
			ClientID:     pc.ClientID,
			ClientSecret: pc.ClientSecret,
			Endpoint:     oauth2.Endpoint{AuthURL: pc.AuthURL, TokenURL: pc.TokenURL, AuthStyle: pc.authStyle},
			RedirectURL:  redirectURL,
			Scopes:       append([]string(nil), scopes...),
		},
	}
	if p.quirks == nil {
		p.quirks = standard{}
	}
	if !single {
		p.loginPath = strings.TrimSuffix(m.loginPath, "/") + "/" + p.name
		p.callbackPath = strings.TrimSuffix(m.callbackPath, "/") + "/" + p.name
		p.oauth.RedirectURL = strings.TrimSuffix(redirectURL, "/") + "/" + p.name
	}
	keys := make([]string, 0, len(pc.AuthParams))
	for k := range pc.AuthParams {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a stable authorization URL
	for _, k := range keys {
		switch k {
		case "state", "nonce", "code_challenge", "code_challenge_method", "redirect_uri", "client_id", "response_type", "scope":
			return nil, fmt.Errorf("auth: %s.AuthParams may not set %q", w, k)
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

// discoveryExtra holds the discovery fields go-oidc does not expose.
type discoveryExtra struct {
	Issuer      string   `json:"issuer"`
	JWKS        string   `json:"jwks_uri"`
	EndSession  string   `json:"end_session_endpoint"`
	Revocation  string   `json:"revocation_endpoint"`
	AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	IssParam    bool     `json:"authorization_response_iss_parameter_supported"`
	Algs        []string `json:"id_token_signing_alg_values_supported"`
}

// signingAlgs are the algorithms go-oidc can verify; "none" and HMAC are
// never accepted, whatever discovery says.
var signingAlgs = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"EdDSA": true,
}

// discover fetches the discovery document of an OpenID Connect provider
// and fills in its endpoints and ID token verifier. The issuer the
// document names is checked by the provider's quirks: the standard check
// is that it equals the configured one.
func (m *Middleware) discover(ctx context.Context, p *provider, issuer string) error {
	octx := oidc.ClientContext(ctx, m.client)
	// go-oidc's own issuer check is replaced by quirks.issuer, which
	// runs below before anything from the document is used.
	op, err := oidc.NewProvider(oidc.InsecureIssuerURLContext(octx, issuer), issuer)
	if err != nil {
		return fmt.Errorf("auth: discover %s: %w", issuer, err)
	}
	var extra discoveryExtra
	if err := op.Claims(&extra); err != nil {
		return fmt.Errorf("auth: read discovery document of %s: %w", issuer, err)
	}
	iss, selfCheck, err := p.quirks.issuer(issuer, extra.Issuer)
	if err != nil {
		return fmt.Errorf("auth: discover %s: %w", issuer, err)
	}
	if extra.JWKS == "" {
		return fmt.Errorf("auth: discover %s: the discovery document has no jwks_uri", issuer)
	}

	endpoint := op.Endpoint()
	switch {
	case p.oauth.ClientSecret == "":
		endpoint.AuthStyle = oauth2.AuthStyleInParams // a public client sends only client_id
	case len(extra.AuthMethods) == 0 || slices.Contains(extra.AuthMethods, "client_secret_basic"):
		endpoint.AuthStyle = oauth2.AuthStyleInHeader // the default when discovery is silent
	case slices.Contains(extra.AuthMethods, "client_secret_post"):
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	default:
		return fmt.Errorf("auth: %s supports neither client_secret_basic nor client_secret_post (it lists %v)", issuer, extra.AuthMethods)
	}

	var algs []string
	for _, a := range extra.Algs {
		if signingAlgs[a] {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		algs = []string{"RS256"} // the one algorithm every provider must support
	}

	p.issuer = iss
	p.issSelfCheck = selfCheck
	p.remote = op
	p.userinfoURL = op.UserInfoEndpoint()
	p.endSessionURL = extra.EndSession
	p.revocationURL = extra.Revocation
	p.issParam = extra.IssParam
	p.oauth.Endpoint = endpoint
	// The key set fetches keys with our client; an unknown kid fetches
	// them again (within a budget), so a provider's key rotation needs
	// nothing from us.
	p.keys = newKeySet(extra.JWKS, m.client, func() time.Time { return m.now() }, algs)
	p.oidcConfig = oidc.Config{
		ClientID:             p.clientID,
		SupportedSigningAlgs: algs,
		SkipIssuerCheck:      selfCheck,
		Now:                  func() time.Time { return m.now().Add(-m.skew) },
	}
	return nil
}

// verifyJWT checks the signature of a JWT from p with its keys, spending
// budget if the keys must be fetched, and returns a go-oidc verifier that
// checks the token's claims without verifying the signature again. A key
// that cannot be had now fails with an error wrapping both
// ErrProviderUnavailable and errKeysUnavailable; any other failure wraps
// ErrTokenInvalid (and errUnknownKey for a key the provider does not
// publish).
func (p *provider) verifyJWT(ctx context.Context, raw string, budget *fetchBudget) (*oidc.IDTokenVerifier, []byte, error) {
	payload, err := p.keys.verify(ctx, raw, budget)
	switch {
	case errors.Is(err, errKeysUnavailable):
		return nil, nil, fmt.Errorf("%w: %w", ErrProviderUnavailable, err)
	case err != nil:
		return nil, nil, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	return oidc.NewVerifier(p.issuer, verifiedKeySet{raw, payload}, &p.oidcConfig), payload, nil
}

// verifyIDToken checks a raw ID token as OpenID Connect Core 3.1.3.7 asks:
// the signature with the provider's keys and an advertised algorithm (go-oidc),
// iss, aud containing the client ID and no untrusted audience, azp when
// present, exp, iat present and not in the future, sub present, and the
// nonce when one is given; then the provider's own checks (quirks). It
// returns the token and its raw claims. A plain OAuth 2.0 provider has no
// ID tokens: anything that claims to be one is rejected.
func (m *Middleware) verifyIDToken(ctx context.Context, p *provider, raw, nonce string) (*oidc.IDToken, []byte, error) {
	if p.keys == nil {
		return nil, nil, fmt.Errorf("%w: provider %q issues no ID tokens", ErrTokenInvalid, p.name)
	}
	v, payload, err := p.verifyJWT(ctx, raw, p.keys.provider)
	if err != nil {
		return nil, nil, err
	}
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	if err := checkClaimNames(payload); err != nil {
		return nil, nil, err
	}
	var c struct {
		Azp string   `json:"azp"`
		Nbf *float64 `json:"nbf"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, nil, fmt.Errorf("%w: claims: %w", ErrTokenInvalid, err)
	}
	if idt.Subject == "" {
		return nil, nil, fmt.Errorf("%w: no sub claim", ErrTokenInvalid)
	}
	if err := m.checkIssuedFor(p, idt.IssuedAt, c.Nbf, idt.Audience, c.Azp); err != nil {
		return nil, nil, err
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, nil, fmt.Errorf("%w: nonce does not match the login", ErrTokenInvalid)
	}
	if err := p.quirks.checkIDToken(p, payload); err != nil {
		return nil, nil, err
	}
	return idt, payload, nil
}

// checkIssuedFor runs the checks go-oidc leaves to us on ID and logout
// tokens alike: iat present and not in the future, nbf (when present) not
// in the future, both with our ClockSkew (go-oidc allows nbf a fixed five
// minutes), azp (when present) the client ID, and every audience trusted.
func (m *Middleware) checkIssuedFor(p *provider, iat time.Time, nbf *float64, aud []string, azp string) error {
	now := m.now()
	switch {
	case iat.IsZero():
		return fmt.Errorf("%w: no iat claim", ErrTokenInvalid)
	case iat.After(now.Add(m.skew)):
		return fmt.Errorf("%w: issued in the future (iat %s)", ErrTokenInvalid, iat.UTC().Format(time.RFC3339))
	case nbf != nil && float64(now.Add(m.skew).Unix()) < *nbf:
		return fmt.Errorf("%w: not valid yet (nbf %.0f)", ErrTokenInvalid, *nbf)
	case azp != "" && azp != p.clientID:
		return fmt.Errorf("%w: azp %q is not the client ID", ErrTokenInvalid, azp)
	}
	for _, a := range aud {
		if a != p.clientID && !m.audiences[a] {
			return fmt.Errorf("%w: untrusted audience %q", ErrTokenInvalid, a)
		}
	}
	return nil
}

// userinfoExtra fetches the userinfo endpoint and returns, as a JSON object,
// the claims the ID token lacks. Its data is used only when its sub equals
// the ID token's (OpenID Connect Core 5.3.2); any failure is logged and the
// login goes on with the ID token's claims.
func (m *Middleware) userinfoExtra(ctx context.Context, p *provider, tok *oauth2.Token, sub string, payload []byte) []byte {
	if p.userinfoURL == "" || m.skipUserinfo {
		return nil
	}
	ctx = oidc.ClientContext(ctx, m.client)
	ui, err := p.remote.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		// go-oidc's message holds the status and the start of the body:
		// no token, but keep it short.
		m.log.WarnContext(ctx, "auth: userinfo request failed; using ID token claims only", "error", truncate(err.Error(), 200))
		return nil
	}
	if ui.Subject != sub {
		m.log.WarnContext(ctx, "auth: userinfo sub differs from ID token sub; ignoring userinfo")
		return nil
	}
	var raw json.RawMessage
	if err := ui.Claims(&raw); err != nil {
		return nil
	}
	if err := checkClaimNames(raw); err != nil {
		m.log.WarnContext(ctx, "auth: userinfo names a claim twice; ignoring userinfo")
		return nil
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil
	}
	have := map[string]bool{}
	_ = scanObject(string(payload), func(k, _ string) { have[foldName(jsonString(`"`+k+`"`))] = true })
	for k := range claims {
		if have[foldName(k)] {
			delete(claims, k) // the signed ID token's value wins
		}
	}
	if len(claims) == 0 {
		return nil
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return nil
	}
	return b
}

// tokenError is the package-level tokenError with the provider's error
// codes mapped to RFC 6749's (GitHub's bad_refresh_token is invalid_grant).
func (p *provider) tokenError(op string, err error) error {
	err = tokenError(op, err)
	var re *retrieveError
	if errors.As(err, &re) && re.pe != nil {
		re.pe.Code = p.quirks.errorCode(re.pe.Code)
	}
	return err
}

// tokenError turns a token endpoint failure into our errors: an OAuth error
// response becomes a *ProviderError (checkable with errors.As, as is the
// original *oauth2.RetrieveError), anything else ErrProviderUnavailable. An
// error code in a 2xx response counts too: GitHub sends its errors with 200
// OK. The message never includes the response body.
func tokenError(op string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if class := status / 100; re.ErrorCode != "" && (class == 4 || class == 2) {
			return &retrieveError{op: op, status: status, pe: &ProviderError{Code: re.ErrorCode}, re: re}
		}
		return &retrieveError{op: op, status: status, re: re}
	}
	return fmt.Errorf("auth: %s: %w: %w", op, ErrProviderUnavailable, err)
}

// retrieveError is a token endpoint error whose message leaves out the
// response body, which may hold anything.
type retrieveError struct {
	op     string
	status int
	pe     *ProviderError // nil when the provider sent no OAuth error code
	re     *oauth2.RetrieveError
}

func (e *retrieveError) Error() string {
	if e.pe != nil {
		return fmt.Sprintf("auth: %s: token endpoint answered %d %s", e.op, e.status, e.pe.Code)
	}
	return fmt.Sprintf("auth: %s: token endpoint answered %d", e.op, e.status)
}

func (e *retrieveError) Unwrap() []error {
	if e.pe != nil {
		return []error{e.pe, e.re}
	}
	return []error{ErrProviderUnavailable, e.re}
}
