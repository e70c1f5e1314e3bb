package authtest

import (
	"crypto"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// This file authenticates clients by JWT assertion (RFC 7523 2.2 and 3,
// OpenID Connect Core 1.0 section 9): client_secret_jwt, HMAC-signed with
// the client secret, and private_key_jwt, signed with one of the client's
// registered keys.

// assertionType is the client_assertion_type of a JWT assertion (RFC 7523
// 2.2).
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// MaxAssertionLifetime is the longest a client assertion may be valid,
// from now to its exp: RFC 7523 3 lets a provider reject an exp
// "unreasonably far in the future", and an assertion is a credential that
// works until then.
const MaxAssertionLifetime = 10 * time.Minute

var (
	keyJWTAlgs    = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}
	secretJWTAlgs = []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512}
)

// assertionAlgs are the algorithms the provider verifies client assertions
// with, for discovery's token_endpoint_auth_signing_alg_values_supported;
// nil without a JWT method.
func (p *Provider) assertionAlgs() []string {
	var out []string
	for _, m := range []struct {
		method string
		algs   []jose.SignatureAlgorithm
	}{{"private_key_jwt", keyJWTAlgs}, {"client_secret_jwt", secretJWTAlgs}} {
		if slices.Contains(p.cfg.TokenAuthMethods, m.method) {
			for _, a := range m.algs {
				out = append(out, string(a))
			}
		}
	}
	return out
}

// AddClientKey registers another public key of the client for
// private_key_jwt, under its key ID, or replaces the key of that ID.
func (p *Provider) AddClientKey(kid string, key crypto.PublicKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clientKeys == nil {
		p.clientKeys = make(map[string]crypto.PublicKey)
	}
	p.clientKeys[kid] = key
}

// authenticateAssertion authenticates a client by its assertion, and
// returns its client ID. The assertion must be the only credential, of
// the registered type, signed (with an algorithm of an allowed method) by
// the client secret or one of the client's keys, with iss and sub the
// client ID, aud this provider (its issuer, its token endpoint, or the
// endpoint it was sent to), exp in the future but at most
// MaxAssertionLifetime away, nbf and iat (when present) not in the
// future, and a jti never seen before (RFC 7523 3; replays are refused
// until the assertion expires). Every failure is invalid_client (RFC
// 7521 4.2.1), but for a malformed request.
func (p *Provider) authenticateAssertion(r *http.Request) (string, *oauthError) {
	form := r.PostForm
	_, _, basic := r.BasicAuth()
	switch {
	case basic || form.Has("client_secret"):
		return "", badRequest("invalid_request", "more than one client authentication method")
	case !form.Has("client_assertion"):
		return "", badRequest("invalid_request", "client_assertion missing")
	case form.Get("client_assertion_type") != assertionType:
		return "", badRequest("invalid_request", "client_assertion_type must be "+assertionType)
	}
	jws, err := jose.ParseSignedCompact(form.Get("client_assertion"), append(slices.Clone(keyJWTAlgs), secretJWTAlgs...))
	if err != nil || len(jws.Signatures) != 1 {
		return "", invalidClient(false, "client_assertion is not a signed JWT with a supported algorithm")
	}
	hdr := jws.Signatures[0].Header
	method := "private_key_jwt"
	if slices.Contains(secretJWTAlgs, jose.SignatureAlgorithm(hdr.Algorithm)) {
		method = "client_secret_jwt"
	}
	if !slices.Contains(p.cfg.TokenAuthMethods, method) {
		return "", invalidClient(false, "client authentication method "+method+" is not allowed")
	}
	var c struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Jti string          `json:"jti"`
		Exp *float64        `json:"exp"`
		Nbf *float64        `json:"nbf"`
		Iat *float64        `json:"iat"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c); err != nil {
		return "", invalidClient(false, "client_assertion claims are not a JSON object")
	}
	switch {
	case c.Iss != p.ClientID || c.Sub != p.ClientID:
		return "", invalidClient(false, "client_assertion iss and sub must both be the client ID")
	case form.Has("client_id") && form.Get("client_id") != c.Sub:
		return "", badRequest("invalid_request", "client_id does not match the client_assertion")
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	var keys []any
	if method == "client_secret_jwt" {
		keys = []any{[]byte(p.ClientSecret)}
	} else if k, ok := p.clientKeys[hdr.KeyID]; ok {
		keys = []any{k}
	} else if hdr.KeyID == "" {
		for _, k := range p.clientKeys {
			keys = append(keys, k)
		}
	}
	verified := false
	for _, k := range keys {
		if _, err := jws.Verify(k); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		if method == "private_key_jwt" && len(keys) == 0 {
			return "", invalidClient(false, "client_assertion is signed by an unknown key (kid "+hdr.KeyID+")")
		}
		return "", invalidClient(false, "client_assertion signature does not verify")
	}

	now := p.now()
	unix := float64(now.Unix())
	switch {
	case c.Exp == nil:
		return "", invalidClient(false, "client_assertion has no exp")
	case unix >= *c.Exp:
		return "", invalidClient(false, "client_assertion expired")
	case *c.Exp-unix > MaxAssertionLifetime.Seconds():
		return "", invalidClient(false, "client_assertion expires too far in the future")
	case c.Nbf != nil && unix < *c.Nbf:
		return "", invalidClient(false, "client_assertion is not valid yet (nbf)")
	case c.Iat != nil && unix < *c.Iat:
		return "", invalidClient(false, "client_assertion was issued in the future (iat)")
	case !p.isAudience(c.Aud, r):
		return "", invalidClient(false, "client_assertion aud does not name this provider")
	case c.Jti == "":
		return "", invalidClient(false, "client_assertion has no jti")
	}
	if exp, used := p.assertions[c.Jti]; used && now.Before(exp) {
		return "", invalidClient(false, "client_assertion jti already used")
	}
	if len(p.assertions) >= 1000 {
		for jti, exp := range p.assertions {
			if !now.Before(exp) {
				delete(p.assertions, jti)
			}
		}
	}
	p.assertions[c.Jti] = time.Unix(int64(*c.Exp), 0)
	return c.Sub, nil
}

// isAudience reports whether aud, a string or an array of strings, names
// this provider: its issuer, its token endpoint, or the endpoint the
// request was sent to (RFC 7523 3, OpenID Connect Core 1.0 section 9, RFC
// 9126 2).
func (p *Provider) isAudience(aud json.RawMessage, r *http.Request) bool {
	var list []string
	if err := json.Unmarshal(aud, &list); err != nil {
		var one string
		if err := json.Unmarshal(aud, &one); err != nil {
			return false
		}
		list = []string{one}
	}
	for _, a := range list { // compared as strings (RFC 7523 3)
		if a == p.URL || a == p.URL+"/token" || a == p.URL+r.URL.Path {
			return true
		}
	}
	return false
}
