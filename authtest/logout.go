package authtest

import (
	"crypto/subtle"
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
//
// Without an id_token_hint, or with one for another user than the one
// signed in, the provider asks the user first (§2: the OP MUST ask),
// with a page whose form posts back here: action=logout with the
// session's xsrf value signs out, action=cancel goes back to the client
// (or says so) without signing out.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) {
	q := r.Form
	if k := repeatedParam(q); k != "" {
		p.writePage(w, http.StatusBadRequest, "Invalid logout request", "Parameter "+k+" appears more than once.")
		return
	}
	clientID, target := q.Get("client_id"), q.Get("post_logout_redirect_uri")
	hintSub := ""
	if hint := q.Get("id_token_hint"); hint != "" {
		claims, err := p.verifyIDToken(hint)
		if err != nil {
			p.writePage(w, http.StatusBadRequest, "Invalid logout request", "The id_token_hint was not issued by this provider.")
			return
		}
		aud := audience(claims["aud"])
		if clientID != "" && !slices.Contains(aud, clientID) {
			p.writePage(w, http.StatusBadRequest, "Invalid logout request", "The id_token_hint was issued to another client.")
			return
		}
		if clientID == "" && len(aud) > 0 {
			clientID = aud[0]
		}
		hintSub, _ = claims["sub"].(string)
	}
	if clientID != "" && clientID != p.ClientID {
		p.writePage(w, http.StatusBadRequest, "Invalid logout request", "Unknown client_id.")
		return
	}
	p.mu.Lock()
	registered := p.logoutURIs[target]
	p.mu.Unlock()
	u, err := url.Parse(target)
	if target != "" && (clientID == "" || !registered || err != nil) {
		p.writePage(w, http.StatusBadRequest, "Invalid logout request",
			"The post_logout_redirect_uri is not registered, or no client_id or id_token_hint names the client.")
		return
	}
	if u != nil && q.Has("state") {
		v := u.Query()
		v.Set("state", q.Get("state"))
		u.RawQuery = v.Encode()
	}

	action := ""
	if r.Method == http.MethodPost {
		action = q.Get("action")
	}
	p.mu.Lock()
	key, sess := p.session(r)
	switch {
	case sess == nil:
		// nobody to sign out
	case action == "cancel":
		user := p.users[sess.sub]
		p.mu.Unlock()
		if target == "" {
			p.writePage(w, http.StatusOK, "Still signed in", "You are still signed in to the authtest provider as "+user.Name+" ("+user.Subject+").")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u.String(), http.StatusFound)
		return
	case action == "logout" && subtle.ConstantTimeCompare([]byte(q.Get("xsrf")), []byte(sess.xsrf)) == 1:
		// the user confirmed
	case hintSub != "" && hintSub == sess.sub:
		// the client's user is the one signed in
	default:
		page := logoutPage{User: p.users[sess.sub], HintSub: hintSub, Issuer: p.URL}
		if clientID != "" {
			page.ClientName = p.cfg.ClientName
		}
		// The answer needs only what was checked above; the
		// id_token_hint stays out of the page.
		for _, f := range []param{{"client_id", clientID}, {"post_logout_redirect_uri", target}, {"state", q.Get("state")}, {"xsrf", sess.xsrf}} {
			if f.Value != "" {
				page.Params = append(page.Params, f)
			}
		}
		p.mu.Unlock()
		// The form posts here, and the answer may redirect to the client.
		p.writeHTML(w, http.StatusOK, "logout", page, "'self'", cspSource(target))
		return
	}
	if sess != nil {
		delete(p.sessions, key)
	}
	p.mu.Unlock()
	if sess != nil {
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
	if target == "" {
		p.writePage(w, http.StatusOK, "Signed out", "You are signed out of the authtest provider.")
		return
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
