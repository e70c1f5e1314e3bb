package authtest

import (
	"maps"
	"net/http"
	"slices"
	"strings"
)

// userClaims returns the claims of the user sub that scope allows: sub,
// Extra, and the email, profile and groups claims (OIDC Core §5.4). The
// caller holds p.mu.
func (p *Provider) userClaims(sub, scope string) map[string]any {
	u := p.users[sub]
	c := maps.Clone(u.Extra)
	if c == nil {
		c = make(map[string]any)
	}
	c["sub"] = sub
	if hasScope(scope, "email") && u.Email != "" {
		c["email"] = u.Email
		c["email_verified"] = u.EmailVerified
	}
	if hasScope(scope, "profile") {
		if u.Name != "" {
			c["name"] = u.Name
		}
		if u.Picture != "" {
			c["picture"] = u.Picture
		}
	}
	if hasScope(scope, "groups") && u.Groups != nil {
		c["groups"] = slices.Clone(u.Groups)
	}
	return c
}

// userinfo serves the userinfo endpoint (OIDC Core §5.3) for a Bearer
// access token in the Authorization header or, for POST, in the form
// (RFC 6750 §2).
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	at := r.PostForm.Get("access_token")
	if scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		at = strings.TrimSpace(cred)
	}
	p.mu.Lock()
	f := p.faults.userinfo.pop()
	t := p.tokens[at]
	valid := t != nil && !t.refresh && t.valid(p.now())
	var claims map[string]any
	if valid {
		claims = p.userClaims(t.g.sub, t.scope)
	}
	p.mu.Unlock()
	noStore(w)
	switch {
	case f.UserinfoStatus == http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="authtest: injected fault"`)
		w.WriteHeader(f.UserinfoStatus)
	case f.UserinfoStatus != 0:
		writeJSON(w, f.UserinfoStatus, map[string]string{"error": "server_error", "error_description": "authtest: injected fault"})
	case at == "":
		w.Header().Set("WWW-Authenticate", `Bearer realm="authtest"`)
		w.WriteHeader(http.StatusUnauthorized)
	case !valid:
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="unknown, expired or revoked access token"`)
		w.WriteHeader(http.StatusUnauthorized)
	case !hasScope(t.scope, "openid"):
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="openid"`)
		w.WriteHeader(http.StatusForbidden)
	default:
		if f.UserinfoClaims != nil {
			f.UserinfoClaims(claims)
		}
		writeJSON(w, http.StatusOK, claims)
	}
}
