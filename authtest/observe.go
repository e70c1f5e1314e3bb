package authtest

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// Request is one request the provider received, as [Provider.Requests]
// reports it.
type Request struct {
	// Endpoint is "authorize", "token", "userinfo", "jwks",
	// "discovery", "revoke", "introspect" or "end_session", or the URL
	// path for anything else.
	Endpoint string
	// Method is the HTTP method.
	Method string
	// GrantType is the grant_type of a token request.
	GrantType string
	// Form holds the query and form parameters. The values of
	// client_secret, client_assertion, code, code_verifier,
	// refresh_token, token, access_token and id_token_hint are replaced
	// by "REDACTED".
	Form url.Values
	// Time is when the request arrived, by the provider's clock.
	Time time.Time
}

var redacted = []string{"client_secret", "client_assertion", "code", "code_verifier", "refresh_token", "token", "access_token", "id_token_hint"}

// record adds r to the request log.
func (p *Provider) record(r *http.Request) {
	rec := Request{Endpoint: endpoints[r.URL.Path], Method: r.Method, Form: make(url.Values, len(r.Form))}
	if rec.Endpoint == "" {
		rec.Endpoint = r.URL.Path
	}
	if rec.Endpoint == "token" {
		rec.GrantType = r.PostForm.Get("grant_type")
	}
	for k, v := range r.Form {
		v = slices.Clone(v)
		if slices.Contains(redacted, k) {
			for i := range v {
				v[i] = "REDACTED"
			}
		}
		rec.Form[k] = v
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	rec.Time = p.now()
	if len(p.log) >= maxLog {
		// A demo provider that runs for days keeps the newest half.
		p.log = append(p.log[:0:0], p.log[len(p.log)/2:]...)
	}
	p.log = append(p.log, rec)
}

// maxLog bounds the request log.
const maxLog = 100000

// Requests returns the log of every request since NewProvider or the
// last Reset, oldest first. Past 100,000 requests the older half is
// dropped.
func (p *Provider) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.log)
	for i := range out {
		out[i].Form = maps.Clone(out[i].Form)
	}
	return out
}

// Grants returns the number of successful token responses for grantType,
// "authorization_code" or "refresh_token", since NewProvider or the last
// Reset.
func (p *Provider) Grants(grantType string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.grants[grantType]
}

// Revocations returns the number of successful revocation requests since
// NewProvider or the last Reset.
func (p *Provider) Revocations() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.revocations
}

// Reset clears the request log and the counters. Users, sessions,
// tokens and pending faults stay.
func (p *Provider) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = nil
	clear(p.grants)
	p.revocations = 0
}

// Fault is a misbehaviour for [Provider.FailNext]. It has four
// independent parts, each applying to the next response of its kind:
// the token fields to the next token endpoint request, the IDToken
// fields to the next ID token issued, the Userinfo fields to the next
// userinfo request, and JWKSStatus to the next JWKS request.
type Fault struct {
	// TokenStatus makes the token endpoint answer with this status and
	// a JSON error body, or TokenBody if set, instead of doing its work.
	TokenStatus int
	// TokenBody is a raw body for the token endpoint, such as
	// "not json", sent with TokenStatus or 200.
	TokenBody string
	// TokenDelay makes the token endpoint wait this long first. The
	// wait ends early, with no response, if the request is cancelled.
	TokenDelay time.Duration
	// TokenScope makes the next successful token response grant this
	// scope instead of the one asked for, as a provider does when the
	// user declines part of it (RFC 6749 §5.1): the response's scope,
	// what its access token is good for at userinfo and introspection,
	// and what later refreshes of the grant may have.
	TokenScope string

	// IDToken edits the claims of the next ID token before it is
	// signed: wrong iss, aud, nonce, exp or sub, extra audiences, huge
	// claims. In claims, aud is a string and iat, exp and auth_time are
	// int64 Unix times. It runs without the provider's lock held, so it
	// may call the Provider, for example Now.
	IDToken func(claims map[string]any)
	// IDTokenSigning breaks the signature of the next ID token:
	// "none" (alg none, empty signature), "bad-signature" (signature
	// bytes corrupted), "unknown-key" (signed by a key not in the JWKS,
	// with a new kid) or "no-kid" (the right key, no kid header).
	// "" signs normally.
	IDTokenSigning string

	// UserinfoClaims edits the claims of the next userinfo response.
	UserinfoClaims func(claims map[string]any)
	// UserinfoStatus makes the next userinfo response have this status:
	// 401 with WWW-Authenticate, anything else with a JSON error body.
	UserinfoStatus int

	// JWKSStatus makes the next JWKS response have this status, with a
	// JSON error body: the provider's keys are unavailable.
	JWKSStatus int
}

// FailNext queues f. Several calls apply to successive responses, in
// order, separately for each of the three parts of a [Fault]. It panics
// if f.IDTokenSigning is not one of the documented values.
func (p *Provider) FailNext(f Fault) {
	switch f.IDTokenSigning {
	case "", "none", "bad-signature", "unknown-key", "no-kid":
	default:
		panic(fmt.Sprintf("authtest: unknown Fault.IDTokenSigning %q", f.IDTokenSigning))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if f.TokenStatus != 0 || f.TokenBody != "" || f.TokenDelay != 0 || f.TokenScope != "" {
		p.faults.token = append(p.faults.token, Fault{TokenStatus: f.TokenStatus, TokenBody: f.TokenBody, TokenDelay: f.TokenDelay, TokenScope: f.TokenScope})
	}
	if f.IDToken != nil || f.IDTokenSigning != "" {
		p.faults.idToken = append(p.faults.idToken, Fault{IDToken: f.IDToken, IDTokenSigning: f.IDTokenSigning})
	}
	if f.UserinfoClaims != nil || f.UserinfoStatus != 0 {
		p.faults.userinfo = append(p.faults.userinfo, Fault{UserinfoClaims: f.UserinfoClaims, UserinfoStatus: f.UserinfoStatus})
	}
	if f.JWKSStatus != 0 {
		p.faults.jwks = append(p.faults.jwks, Fault{JWKSStatus: f.JWKSStatus})
	}
}

// faults are the queued faults, by the response they apply to.
type faults struct {
	token, idToken, userinfo, jwks faultQueue
}

type faultQueue []Fault

// pop removes and returns the first fault, or the zero Fault.
func (q *faultQueue) pop() Fault {
	if len(*q) == 0 {
		return Fault{}
	}
	f := (*q)[0]
	*q = (*q)[1:]
	return f
}
