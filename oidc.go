package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// This file is the OpenID Connect kind of provider: discovery, and the
// verification of the ID token that tells who signed in, at login and at
// every refresh, with the provider's keys (keys.go) and go-oidc's claim
// checks; userinfo fills in the claims the ID token lacks.

// oidcKind is an OpenID Connect provider's side of the kind interface.
type oidcKind struct {
	issuer    string // what ID tokens must name (for Entra's multi-tenant endpoints, a template)
	selfCheck bool   // quirks.checkIDToken checks iss: the issuer depends on the user
	issParam  bool   // RFC 9207: the provider sends iss with the authorization response
	keys      *keySet
	config    oidc.Config    // go-oidc's claim checks for ID and logout tokens
	remote    *oidc.Provider // for userinfo
	userinfo  string
}

// discoveryExtra holds the discovery fields go-oidc does not expose.
type discoveryExtra struct {
	Issuer        string   `json:"issuer"`
	JWKS          string   `json:"jwks_uri"`
	EndSession    string   `json:"end_session_endpoint"`
	Revocation    string   `json:"revocation_endpoint"`
	AuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
	AuthAlgs      []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	ResponseModes []string `json:"response_modes_supported"`
	IssParam      bool     `json:"authorization_response_iss_parameter_supported"`
	GrantTypes    []string `json:"grant_types_supported"`
	Algs          []string `json:"id_token_signing_alg_values_supported"`
}

// signingAlgs are the algorithms go-oidc can verify; "none" and HMAC are
// never accepted, whatever discovery says.
var signingAlgs = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"EdDSA": true,
}

// discover fetches the discovery document of an OpenID Connect provider,
// fills in p's endpoints and returns its kind. The issuer the document
// names is checked by the provider's quirks: the standard check is that it
// equals the configured one.
func discover(ctx context.Context, p *provider, issuer string) (*oidcKind, error) {
	octx := oidc.ClientContext(ctx, p.client)
	// go-oidc's own issuer check is replaced by quirks.issuer, which
	// runs below before anything from the document is used.
	op, err := oidc.NewProvider(oidc.InsecureIssuerURLContext(octx, issuer), issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", issuer, err)
	}
	var extra discoveryExtra
	if err := op.Claims(&extra); err != nil {
		return nil, fmt.Errorf("read discovery document of %s: %w", issuer, err)
	}
	iss, selfCheck, err := p.quirks.issuer(issuer, extra.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", issuer, err)
	}
	if extra.JWKS == "" {
		return nil, fmt.Errorf("discover %s: the discovery document has no jwks_uri", issuer)
	}

	endpoint := op.Endpoint()
	if err := p.auth.pin(extra.AuthMethods, extra.AuthAlgs, endpoint.TokenURL); err != nil {
		return nil, fmt.Errorf("%s: %w", issuer, err)
	}
	if err := checkResponseMode(p, extra.ResponseModes); err != nil {
		return nil, fmt.Errorf("%s: %w", issuer, err)
	}
	p.oauth.Endpoint = endpoint
	p.auth.setStyle(&p.oauth)
	p.refreshes = slices.Contains(extra.GrantTypes, "refresh_token") || slices.Contains(p.oauth.Scopes, "offline_access")
	p.endSessionURL = extra.EndSession
	p.revocationURL = extra.Revocation

	var algs []string
	for _, a := range extra.Algs {
		if signingAlgs[a] {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		algs = []string{"RS256"} // the one algorithm every provider must support
	}
	now, skew := p.now, p.skew
	return &oidcKind{
		issuer:    iss,
		selfCheck: selfCheck,
		issParam:  extra.IssParam,
		// An unknown kid fetches the keys again (within a budget), so a
		// provider's key rotation needs nothing from us.
		keys: newKeySet(extra.JWKS, p.client, now, algs),
		config: oidc.Config{
			ClientID:             p.clientID,
			SupportedSigningAlgs: algs,
			SkipIssuerCheck:      selfCheck,
			Now:                  func() time.Time { return now().Add(-skew) },
		},
		remote:   op,
		userinfo: op.UserInfoEndpoint(),
	}, nil
}

func (k *oidcKind) userinfoURL() string { return k.userinfo }

// fixedIssuer returns the one issuer of the provider's tokens, or "" when
// the issuer depends on the user (Entra's multi-tenant endpoints).
func (k *oidcKind) fixedIssuer() string {
	if k.selfCheck {
		return ""
	}
	return k.issuer
}

// authOptions adds the nonce, which the ID token must carry back.
func (k *oidcKind) authOptions(f *flowState) []oauth2.AuthCodeOption {
	f.Nonce = randomString()
	return []oauth2.AuthCodeOption{oidc.Nonce(f.Nonce)}
}

// checkIssuerParam: the iss parameter, when sent, names the provider the
// flow started with, and a provider that promises it must send it (RFC
// 9207). A provider whose issuer depends on the user has none to compare
// with.
func (k *oidcKind) checkIssuerParam(q url.Values) error {
	iss, ok := q["iss"]
	if (!ok && !k.issParam) || k.selfCheck {
		return nil
	}
	if !ok || len(iss) != 1 || iss[0] != k.issuer {
		return fmt.Errorf("%w: iss parameter does not match the issuer", ErrInvalidRequest)
	}
	return nil
}

// identify verifies the ID token of a login (with its nonce and at_hash)
// and returns it with the userinfo claims it lacks.
func (k *oidcKind) identify(ctx context.Context, p *provider, tok *oauth2.Token, nonce string) (string, []byte, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", nil, fmt.Errorf("%w: the token response has no id_token", ErrTokenInvalid)
	}
	idt, payload, err := k.verifyIDToken(ctx, p, raw, nonce)
	if err != nil {
		return "", nil, err
	}
	if idt.AccessTokenHash != "" { // optional in the code flow; checked when present
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return "", nil, fmt.Errorf("%w: at_hash: %w", ErrTokenInvalid, err)
		}
	}
	return raw, k.userinfoExtra(ctx, p, tok, idt.Subject, payload), nil
}

// reidentify checks the ID token of a refresh response, if any, as at
// login (but for the nonce), with the same iss, sub and aud as the
// original (OpenID Connect Core 12.2), and puts it in s. A token that
// fails ends the session. When the provider's keys cannot be had now, the
// new access and refresh tokens, which came straight from the token
// endpoint, are still kept (a rotated refresh token must not be lost), but
// the unverified ID token is not: s keeps the previous one and its
// identity.
func (k *oidcKind) reidentify(ctx context.Context, p *provider, tok *oauth2.Token, old *sessionState, s *session) error {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil
	}
	idt, _, err := k.verifyIDToken(ctx, p, raw, "")
	if errors.Is(err, errKeysUnavailable) || errors.Is(err, errUnknownKey) {
		// Signed with a key we cannot get right now (a rotation whose
		// keys are not fetched, or not published, yet): not a reason to
		// end the session. The next refresh verifies a new one.
		p.log.WarnContext(ctx, "auth: provider keys unavailable; refreshed ID token not used, identity kept", sessionAttrs(old), "error", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: refreshed ID token: %w", ErrSessionEnded, err)
	}
	var orig struct {
		Iss string       `json:"iss"`
		Sub string       `json:"sub"`
		Aud oidcAudience `json:"aud"`
	}
	if err := old.user.DecodeClaims(&orig); err != nil {
		return fmt.Errorf("%w: original claims: %w", ErrSessionEnded, err)
	}
	if idt.Issuer != orig.Iss || idt.Subject != orig.Sub || !sameSet(idt.Audience, orig.Aud) {
		return fmt.Errorf("%w: refreshed ID token names another user or audience", ErrSessionEnded)
	}
	s.idToken = raw // sessions.save decodes its payload back from the stored bytes
	return nil
}

// verifyJWT checks the signature of a JWT from the provider with its keys,
// spending budget if the keys must be fetched, and returns a go-oidc
// verifier that checks the token's claims without verifying the signature
// again. A key that cannot be had now fails with an error wrapping both
// ErrProviderUnavailable and errKeysUnavailable; any other failure wraps
// ErrTokenInvalid (and errUnknownKey for a key the provider does not
// publish).
func (k *oidcKind) verifyJWT(ctx context.Context, raw string, budget *fetchBudget) (*oidc.IDTokenVerifier, []byte, error) {
	payload, err := k.keys.verify(ctx, raw, budget)
	switch {
	case errors.Is(err, errKeysUnavailable):
		return nil, nil, fmt.Errorf("%w: %w", ErrProviderUnavailable, err)
	case err != nil:
		return nil, nil, fmt.Errorf("%w: %w", ErrTokenInvalid, err)
	}
	return oidc.NewVerifier(k.issuer, verifiedKeySet{raw, payload}, &k.config), payload, nil
}

// verifyIDToken checks a raw ID token as OpenID Connect Core 3.1.3.7 asks:
// the signature with the provider's keys and an advertised algorithm,
// iss, aud containing the client ID and no untrusted audience, azp when
// present, exp, iat present and not in the future, nbf, sub present, no
// claim named twice, and the nonce when one is given; then the provider's
// own checks (quirks). It returns the token and its raw claims.
func (k *oidcKind) verifyIDToken(ctx context.Context, p *provider, raw, nonce string) (*oidc.IDToken, []byte, error) {
	v, payload, err := k.verifyJWT(ctx, raw, k.keys.provider)
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
	if err := p.checkIssuedFor(idt.IssuedAt, c.Nbf, idt.Audience, c.Azp); err != nil {
		return nil, nil, err
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, nil, fmt.Errorf("%w: nonce does not match the login", ErrTokenInvalid)
	}
	if err := p.quirks.checkIDToken(k, payload); err != nil {
		return nil, nil, err
	}
	return idt, payload, nil
}

// checkIssuedFor runs the checks go-oidc leaves to us on ID and logout
// tokens alike: iat present and not in the future, nbf (when present) not
// in the future, both with our ClockSkew (go-oidc allows nbf a fixed five
// minutes), azp (when present) the client ID, and every audience trusted.
func (p *provider) checkIssuedFor(iat time.Time, nbf *float64, aud []string, azp string) error {
	now := p.now()
	switch {
	case iat.IsZero():
		return fmt.Errorf("%w: no iat claim", ErrTokenInvalid)
	case iat.After(now.Add(p.skew)):
		return fmt.Errorf("%w: issued in the future (iat %s)", ErrTokenInvalid, iat.UTC().Format(time.RFC3339))
	case nbf != nil && float64(now.Add(p.skew).Unix()) < *nbf:
		return fmt.Errorf("%w: not valid yet (nbf %.0f)", ErrTokenInvalid, *nbf)
	case azp != "" && azp != p.clientID:
		return fmt.Errorf("%w: azp %q is not the client ID", ErrTokenInvalid, azp)
	}
	for _, a := range aud {
		if a != p.clientID && !p.audiences[a] {
			return fmt.Errorf("%w: untrusted audience %q", ErrTokenInvalid, a)
		}
	}
	return nil
}

// userinfoExtra fetches the userinfo endpoint and returns, as a JSON object,
// the claims the ID token lacks. Its data is used only when its sub equals
// the ID token's (OpenID Connect Core 5.3.2) and it names no claim twice;
// any failure is logged and the login goes on with the ID token's claims.
func (k *oidcKind) userinfoExtra(ctx context.Context, p *provider, tok *oauth2.Token, sub string, payload []byte) []byte {
	if k.userinfo == "" || p.skipUserinfo {
		return nil
	}
	ui, err := k.remote.UserInfo(oidc.ClientContext(ctx, p.client), oauth2.StaticTokenSource(tok))
	if err != nil {
		// go-oidc's message holds the status and the start of the body:
		// no token, but keep it short.
		p.log.WarnContext(ctx, "auth: userinfo request failed; using ID token claims only", "error", truncate(err.Error(), 200))
		return nil
	}
	if ui.Subject != sub {
		p.log.WarnContext(ctx, "auth: userinfo sub differs from ID token sub; ignoring userinfo")
		return nil
	}
	var raw json.RawMessage
	if err := ui.Claims(&raw); err != nil {
		return nil
	}
	if err := checkClaimNames(raw); err != nil {
		p.log.WarnContext(ctx, "auth: userinfo names a claim twice; ignoring userinfo")
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

// oidcAudience decodes "aud", a string or an array of strings.
type oidcAudience []string

func (a *oidcAudience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*a = []string{jsonString(string(b))}
		return nil
	}
	var list []string
	err := json.Unmarshal(b, &list)
	*a = list
	return err
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
