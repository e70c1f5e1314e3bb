package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// provider holds one OpenID Connect provider's endpoints and what we learned
// from its discovery document.
type provider struct {
	name          string
	issuer        string
	clientID      string
	oauth         oauth2.Config
	remote        *oidc.Provider
	verifier      *oidc.IDTokenVerifier
	userinfoURL   string
	endSessionURL string
	revocationURL string
	issParam      bool // RFC 9207: the provider sends iss with the authorization response
}

// discoveryExtra holds the discovery fields go-oidc does not expose.
type discoveryExtra struct {
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

func discover(ctx context.Context, m *Middleware, cfg Config) (*provider, error) {
	octx := oidc.ClientContext(ctx, m.client)
	op, err := oidc.NewProvider(octx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("auth: discover %s: %w", cfg.Issuer, err)
	}
	var extra discoveryExtra
	if err := op.Claims(&extra); err != nil {
		return nil, fmt.Errorf("auth: read discovery document: %w", err)
	}

	endpoint := op.Endpoint()
	switch {
	case cfg.ClientSecret == "":
		endpoint.AuthStyle = oauth2.AuthStyleInParams // a public client sends only client_id
	case len(extra.AuthMethods) == 0 || contains(extra.AuthMethods, "client_secret_basic"):
		endpoint.AuthStyle = oauth2.AuthStyleInHeader // the default when discovery is silent
	case contains(extra.AuthMethods, "client_secret_post"):
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	default:
		return nil, fmt.Errorf("auth: provider supports neither client_secret_basic nor client_secret_post (it lists %v)", extra.AuthMethods)
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

	p := &provider{
		name:          "",
		issuer:        cfg.Issuer,
		clientID:      cfg.ClientID,
		remote:        op,
		userinfoURL:   op.UserInfoEndpoint(),
		endSessionURL: extra.EndSession,
		revocationURL: extra.Revocation,
		issParam:      extra.IssParam,
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     endpoint,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       m.scopes,
		},
	}
	// The key set fetches keys with our client; an unknown kid refetches
	// them, so a provider's key rotation needs nothing from us.
	keyCtx := oidc.ClientContext(context.Background(), m.client)
	p.verifier = op.VerifierContext(keyCtx, &oidc.Config{
		ClientID:             cfg.ClientID,
		SupportedSigningAlgs: algs,
		Now:                  func() time.Time { return m.now().Add(-m.skew) },
	})
	return p, nil
}

// verifyIDToken checks a raw ID token as OpenID Connect Core 3.1.3.7 asks:
// the signature with the provider's keys and an advertised algorithm (go-oidc),
// iss, aud containing the client ID and no untrusted audience, azp when
// present, exp, iat present and not in the future, sub present, and the
// nonce when one is given. It returns the token and its raw claims.
func (m *Middleware) verifyIDToken(ctx context.Context, p *provider, raw, nonce string) (*oidc.IDToken, []byte, error) {
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	var payload json.RawMessage
	if err := idt.Claims(&payload); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	var c struct {
		Azp string `json:"azp"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, nil, fmt.Errorf("%w: claims: %w", ErrTokenInvalid, err)
	}
	now := m.now()
	switch {
	case idt.Subject == "":
		return nil, nil, fmt.Errorf("%w: no sub claim", ErrTokenInvalid)
	case idt.IssuedAt.IsZero():
		return nil, nil, fmt.Errorf("%w: no iat claim", ErrTokenInvalid)
	case idt.IssuedAt.After(now.Add(m.skew)):
		return nil, nil, fmt.Errorf("%w: issued in the future (iat %s)", ErrTokenInvalid, idt.IssuedAt.UTC().Format(time.RFC3339))
	case c.Azp != "" && c.Azp != p.clientID:
		return nil, nil, fmt.Errorf("%w: azp %q is not the client ID", ErrTokenInvalid, c.Azp)
	}
	for _, a := range idt.Audience {
		if !m.audiences[a] {
			return nil, nil, fmt.Errorf("%w: untrusted audience %q", ErrTokenInvalid, a)
		}
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, nil, fmt.Errorf("%w: nonce does not match the login", ErrTokenInvalid)
	}
	return idt, payload, nil
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
		m.log.WarnContext(ctx, "auth: userinfo request failed; using ID token claims only", "error", errors.Unwrap(err))
		return nil
	}
	if ui.Subject != sub {
		m.log.WarnContext(ctx, "auth: userinfo sub differs from ID token sub; ignoring userinfo")
		return nil
	}
	var claims, have map[string]json.RawMessage
	if err := ui.Claims(&claims); err != nil {
		return nil
	}
	if err := json.Unmarshal(payload, &have); err != nil {
		return nil
	}
	for k := range claims {
		if _, ok := have[k]; ok {
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

// tokenError turns a token endpoint failure into our errors: an OAuth error
// response becomes a *ProviderError (checkable with errors.As, as is the
// original *oauth2.RetrieveError), anything else ErrProviderUnavailable. The
// message never includes the response body.
func tokenError(op string, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if re.ErrorCode != "" && status >= 400 && status < 500 {
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
