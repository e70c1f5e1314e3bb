package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"golang.org/x/oauth2"
)

// This file is the plain OAuth 2.0 kind of provider, which has no ID
// token: after the code exchange, the user comes from the provider's user
// API (Provider.UserURL), mapped to claims by Provider.MapUser. The claims
// are stored in the session as the claims of an ID token would be.

// userAgent identifies us to provider APIs; some (GitHub) reject requests
// without one.
const userAgent = "gatehouse-auth (+https://github.com/gatehouse/auth)"

// maxUserResponse bounds what we read from a user API.
const maxUserResponse = 1 << 20

// plainKind is a plain OAuth 2.0 provider's side of the kind interface.
type plainKind struct {
	userURL string
	mapUser func(json.RawMessage) (map[string]any, error)
}

func (k *plainKind) userinfoURL() string { return k.userURL }

// authOptions adds nothing: without an ID token there is nothing to carry
// a nonce back.
func (*plainKind) authOptions(*flowState) []oauth2.AuthCodeOption { return nil }

// checkIssuerParam: plain OAuth 2.0 providers have no issuer to compare.
func (*plainKind) checkIssuerParam(url.Values) error { return nil }

// identify reads the user from the user API (through the preset's quirks).
func (*plainKind) identify(ctx context.Context, p *provider, tok *oauth2.Token, _ string) (string, []byte, error) {
	claims, err := p.quirks.user(ctx, p, tok)
	return "", claims, err
}

// reidentify keeps the identity as it is: any id_token a plain OAuth 2.0
// provider might send is not OpenID Connect's.
func (*plainKind) reidentify(context.Context, *provider, *oauth2.Token, *sessionState, *session) error {
	return nil
}

// fetchUser GETs the provider's user API with the access token and maps its
// JSON object to claims.
func fetchUser(ctx context.Context, p *provider, tok *oauth2.Token) ([]byte, error) {
	k := p.kind.(*plainKind)
	var raw json.RawMessage
	if err := getJSON(ctx, p.client, k.userURL, tok, nil, &raw); err != nil {
		return nil, fmt.Errorf("auth: user API: %w", err)
	}
	if k.mapUser == nil {
		claims, err := defaultMapUser(raw)
		if err != nil {
			return nil, fmt.Errorf("auth: user API: %w: %w", ErrProviderUnavailable, err)
		}
		return marshalClaims(claims)
	}
	claims, err := k.mapUser(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: MapUser: %w", ErrLoginRefused, err)
	}
	return marshalClaims(claims)
}

// marshalClaims encodes a user's claims, which must have a non-empty sub.
func marshalClaims(claims map[string]any) ([]byte, error) {
	if sub, _ := claims["sub"].(string); sub == "" {
		return nil, fmt.Errorf("%w: the user has no sub", ErrProviderUnavailable)
	}
	b, err := json.Marshal(claims)
	if err != nil {
		return nil, fmt.Errorf("auth: encode claims: %w", err)
	}
	if err := checkClaimNames(b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProviderUnavailable, err)
	}
	return b, nil
}

// getJSON GETs rawURL with the access token and decodes the JSON answer
// into v. header adds request headers. Failures wrap ErrProviderUnavailable;
// they never include the token or the response body.
func getJSON(ctx context.Context, c *http.Client, rawURL string, tok *oauth2.Token, header http.Header, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProviderUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	for k, vs := range header {
		req.Header[k] = vs
	}
	tok.SetAuthHeader(req)
	res, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProviderUnavailable, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxUserResponse+1))
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", ErrProviderUnavailable, err)
	case res.StatusCode != http.StatusOK:
		return &statusError{status: res.StatusCode}
	case len(body) > maxUserResponse:
		return fmt.Errorf("%w: response over %d bytes", ErrProviderUnavailable, maxUserResponse)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %w", ErrProviderUnavailable, err)
	}
	return nil
}

// defaultMapUser keeps the standard claims of a user API's answer, taking
// "id" as the subject when there is no "sub".
func defaultMapUser(raw json.RawMessage) (map[string]any, error) {
	var u map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber() // numeric IDs keep every digit
	if err := d.Decode(&u); err != nil {
		return nil, fmt.Errorf("decode user: %w", err)
	}
	sub := idString(u["sub"])
	if sub == "" {
		sub = idString(u["id"])
	}
	if sub == "" {
		return nil, errors.New(`the user has neither "sub" nor "id"`)
	}
	claims := map[string]any{"sub": sub}
	for _, k := range []string{"email", "name", "preferred_username", "picture"} {
		if v, ok := u[k].(string); ok && v != "" {
			claims[k] = v
		}
	}
	if v, ok := u["email_verified"].(bool); ok {
		claims["email_verified"] = v
	}
	return claims, nil
}

// idString returns a JSON string or number as a string, and "" for
// anything else.
func idString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}
