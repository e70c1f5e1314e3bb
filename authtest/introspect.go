package authtest

import (
	"net/http"
)

// introspect serves the introspection endpoint (RFC 7662), which the
// discovery document names as introspection_endpoint. The client
// authenticates as at the token endpoint. A live access token (from a
// login, a refresh or AccessToken with Opaque) is answered as active
// with its scope, client_id, sub, aud, iss, exp and token_type, the
// user's claims that its scope allows (as in userinfo), and the claims an
// AccessToken test asked for; a live refresh token is active too, marked
// "token_use": "refresh_token" as Ory Hydra marks it. Anything else,
// expired, revoked or unknown, is {"active": false} (§2.2).
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) {
	_, tok, ok := p.tokenRequest(w, r)
	if !ok {
		return
	}
	p.mu.Lock()
	now := p.now()
	t := p.tokens[tok]
	answer := map[string]any{"active": false}
	if t != nil && t.valid(now) {
		answer = p.userClaims(t.g.sub, t.scope)
		answer["active"] = true
		answer["iss"] = p.URL
		answer["client_id"] = t.g.clientID
		answer["scope"] = t.scope
		answer["exp"] = t.expires.Unix()
		if t.refresh {
			answer["token_use"] = "refresh_token"
		} else {
			answer["token_use"] = "access_token"
			answer["token_type"] = "Bearer"
			answer["aud"] = t.aud
			if t.aud == nil {
				answer["aud"] = []string{t.g.clientID}
			}
		}
		setClaims(answer, t.claims)
	}
	p.mu.Unlock()
	noStore(w)
	writeJSON(w, http.StatusOK, answer)
}
