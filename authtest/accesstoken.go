package authtest

import (
	"crypto/rand"
	"maps"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// AccessTokenOptions says what [Provider.AccessToken] mints.
type AccessTokenOptions struct {
	// Subject is the user the token is for, its sub. A known user's
	// claims are added as Scope allows (as in ID tokens: email with
	// "email", name and picture with "profile", groups with "groups",
	// Extra always); any other subject, such as a service's client ID,
	// gets sub alone. Required.
	Subject string
	// Audience is the resource server the token is for, its aud, such as
	// "https://api.example.com". Default: the client ID.
	Audience string
	// Scope is the space-separated scope the token grants. Default "".
	Scope string
	// Opaque mints a random string, which only the provider's
	// introspection endpoint (RFC 7662) can tell about, instead of a JWT.
	// An opaque token can be revoked like the tokens of a login
	// ([Provider.RevokeUser], the revocation endpoint); a JWT cannot.
	Opaque bool
	// TTL is the token's lifetime, counted from now by the provider's
	// clock. Default Config.AccessTokenTTL.
	TTL time.Duration
	// Type is a JWT's typ header. Default "at+jwt", as RFC 9068 asks;
	// "JWT" mimics providers that do not follow that profile (Entra ID,
	// Auth0, Keycloak).
	Type string
	// Claims edit the token's claims once the others are set: an entry
	// replaces a claim or adds one, and a nil value removes one. For an
	// opaque token they edit the introspection answer. So a test can
	// mint a token broken in any way it likes:
	//
	//	p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api",
	//		Claims: map[string]any{"exp": p.Now().Add(-time.Hour).Unix()}}) // expired
	Claims map[string]any
}

// AccessToken returns an access token for opts.Subject and opts.Audience,
// as the provider would issue to the client for an API: by default a JWT
// following RFC 9068 (typ at+jwt; iss, sub, aud, client_id, iat, exp, a
// random jti, and scope when there is one), signed with the current key,
// which verifies with the provider's JWKS like its ID tokens. With
// opts.Opaque it is an opaque token that the introspection endpoint
// answers for. A test of an API handler gets a token in one line:
//
//	tok := p.AccessToken(authtest.AccessTokenOptions{Subject: "alice", Audience: "api", Scope: "read"})
//	req.Header.Set("Authorization", "Bearer "+tok)
//
// It panics if Subject is empty or the claims cannot be encoded as JSON.
func (p *Provider) AccessToken(opts AccessTokenOptions) string {
	if opts.Subject == "" {
		panic("authtest: AccessToken: Subject is required")
	}
	aud := opts.Audience
	if aud == "" {
		aud = p.ClientID
	}
	p.mu.Lock()
	now := p.now()
	ttl := opts.TTL
	if ttl == 0 {
		ttl = p.cfg.AccessTokenTTL
	}
	if opts.Opaque {
		defer p.mu.Unlock()
		p.sweep(now)
		at := rand.Text()
		g := &grant{clientID: p.ClientID, sub: opts.Subject, scope: opts.Scope, authTime: now}
		p.tokens[at] = &token{g: g, scope: opts.Scope, expires: now.Add(ttl), aud: []string{aud}, claims: maps.Clone(opts.Claims)}
		return at
	}
	c := p.userClaims(opts.Subject, opts.Scope)
	key := p.signingKey()
	p.mu.Unlock()
	c["iss"] = p.URL
	c["aud"] = aud
	c["client_id"] = p.ClientID
	c["iat"] = now.Unix()
	c["exp"] = now.Add(ttl).Unix()
	c["jti"] = rand.Text()
	if opts.Scope != "" {
		c["scope"] = opts.Scope
	}
	setClaims(c, opts.Claims)
	typ := opts.Type
	if typ == "" {
		typ = "at+jwt"
	}
	return key.mustSignClaims("AccessToken", c, jose.ContentType(typ))
}
