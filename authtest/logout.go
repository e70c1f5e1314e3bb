package authtest

import (
	"net/http"
	"net/url"
	"slices"
)

// endSession serves RP-initiated logout (OpenID Connect RP-Initiated
// Logout 1.0): it ends the browser's provider session, then redirects to
// post_logout_redirect_uri with state, or shows a "signed out" page.
//
// An id_token_hint must be an ID token the provider signed with a key
// it still publishes; expired ones are fine. A post_logout_redirect_uri
// must be registered for the client, which is named by client_id or by
// the hint's aud.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) {
	q := r.Form
	if k := repeatedParam(q); k != "" {
		writePage(w, http.StatusBadRequest, "Invalid logout request", "Parameter "+k+" appears more than once.")
		return
	}
	clientID, target := q.Get("client_id"), q.Get("post_logout_redirect_uri")
	if hint := q.Get("id_token_hint"); hint != "" {
		claims, err := p.verifyIDToken(hint)
		if err != nil {
			writePage(w, http.StatusBadRequest, "Invalid logout request", "The id_token_hint was not issued by this provider.")
			return
		}
		aud := audience(claims["aud"])
		if clientID != "" && !slices.Contains(aud, clientID) {
			writePage(w, http.StatusBadRequest, "Invalid logout request", "The id_token_hint was issued to another client.")
			return
		}
		if clientID == "" && len(aud) > 0 {
			clientID = aud[0]
		}
	}
	if clientID != "" && clientID != p.ClientID {
		writePage(w, http.StatusBadRequest, "Invalid logout request", "Unknown client_id.")
		return
	}
	p.mu.Lock()
	registered := p.logoutURIs[target]
	p.mu.Unlock()
	u, err := url.Parse(target)
	if target != "" && (clientID == "" || !registered || err != nil) {
		writePage(w, http.StatusBadRequest, "Invalid logout request",
			"The post_logout_redirect_uri is not registered, or no client_id or id_token_hint names the client.")
		return
	}
	p.mu.Lock()
	key, _ := p.session(r)
	delete(p.sessions, key)
	p.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	if target == "" {
		writePage(w, http.StatusOK, "Signed out", "You are signed out of the authtest provider.")
		return
	}
	if q.Has("state") {
		v := u.Query()
		v.Set("state", q.Get("state"))
		u.RawQuery = v.Encode()
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// audience returns the aud claim as a list; it may be a string or an
// array of strings.
func audience(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, s := range a {
			if s, ok := s.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
