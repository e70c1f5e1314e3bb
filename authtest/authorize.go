package authtest

import (
	"crypto/rand"
	"encoding/base64"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sessionCookie names the provider session cookie on the provider's host.
const sessionCookie = "authtest_session"

// session is a provider session: a browser signed in at the provider.
// The cookie holds a random key of Provider.sessions.
type session struct {
	sub      string
	sid      string // the ID token's sid claim
	authTime time.Time
	expires  time.Time // Config.SessionTTL after its last use
	xsrf     string    // in the logout confirmation form, so only it confirms
}

// newSession returns a provider session for sub, signed in at now. The
// caller holds p.mu.
func (p *Provider) newSession(sub string, now time.Time) *session {
	return &session{sub: sub, sid: rand.Text(), authTime: now, expires: now.Add(p.cfg.SessionTTL), xsrf: rand.Text()}
}

// authCode is an issued authorization code and what it is bound to.
type authCode struct {
	clientID    string
	redirectURI string
	sub, sid    string
	authTime    time.Time
	scope       string
	nonce       string
	challenge   string // PKCE S256 code_challenge, or ""
	expires     time.Time
	redeemed    *grant // set on first use; a replay revokes it
}

// authorize serves the authorization endpoint (OIDC Core 3.1.2) and the
// POST from the user chooser, which carries the original parameters plus
// the chosen sub.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.Form
	clientID, redirectURI := q.Get("client_id"), q.Get("redirect_uri")
	p.mu.Lock()
	known := clientID == p.ClientID && p.redirectURIAllowed(redirectURI)
	p.mu.Unlock()
	if !known || len(q["client_id"]) > 1 || len(q["redirect_uri"]) > 1 {
		// Never redirect to an unregistered URI (RFC 6749 §4.1.2.1).
		p.writePage(w, http.StatusBadRequest, "Invalid authorization request",
			"Unknown client_id or unregistered redirect_uri: "+clientID+" "+redirectURI)
		return
	}
	state := q["state"] // echoed as sent, once
	if len(state) > 1 {
		state = state[:1]
	}
	// The answer goes back as the client asked, by redirect or by
	// form_post (formpost.go); an unsupported response_mode gets its
	// error by redirect.
	formPost := q.Get("response_mode") == "form_post" && len(q["response_mode"]) == 1
	fail := func(code, desc string) {
		p.respond(w, r, redirectURI, formPost, url.Values{"error": {code}, "error_description": {desc}, "state": state})
	}
	if k := repeatedParam(q); k != "" {
		fail("invalid_request", "parameter "+k+" appears more than once")
		return
	}
	scope, challenge, method := q.Get("scope"), q.Get("code_challenge"), q.Get("code_challenge_method")
	prompt := strings.Fields(q.Get("prompt"))
	switch {
	case q.Has("request"):
		fail("request_not_supported", "request objects are not supported")
		return
	case q.Has("request_uri"):
		fail("request_uri_not_supported", "request_uri is not supported")
		return
	case !q.Has("response_type"):
		fail("invalid_request", "response_type missing") // RFC 6749 §4.1.2.1
		return
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "response_type must be code")
		return
	case q.Has("response_mode") && q.Get("response_mode") != "query" && !formPost:
		fail("invalid_request", "response_mode must be query or form_post")
		return
	case !hasScope(scope, "openid"):
		fail("invalid_scope", "scope must contain openid")
		return
	case challenge == "" && method != "":
		fail("invalid_request", "code_challenge_method without code_challenge")
		return
	case challenge == "" && p.cfg.RequirePKCE:
		fail("invalid_request", "code_challenge required")
		return
	case challenge != "" && method != "S256":
		fail("invalid_request", "code_challenge_method must be S256")
		return
	case challenge != "" && !validChallenge(challenge):
		fail("invalid_request", "malformed code_challenge")
		return
	case slices.Contains(prompt, "none") && len(prompt) > 1:
		fail("invalid_request", "prompt=none cannot be combined with other values")
		return
	}
	maxAge := time.Duration(-1)
	if s := q.Get("max_age"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			fail("invalid_request", "malformed max_age")
			return
		}
		maxAge = time.Duration(n) * time.Second
	}

	// OIDC Core §3.1.2.1: id_token_hint is an ID token this provider
	// issued, expired or not; its sub is the user the client expects.
	hintSub := ""
	if hint := q.Get("id_token_hint"); hint != "" {
		claims, err := p.verifyIDToken(hint)
		if err != nil {
			fail("invalid_request", "id_token_hint was not issued by this provider")
			return
		}
		hintSub, _ = claims["sub"].(string)
	}

	p.mu.Lock()
	now := p.now()
	p.sweep(now)
	key, sess := p.session(r)
	stale := sess != nil && maxAge >= 0 && !now.Before(sess.authTime.Add(maxAge))
	// Someone else is signed in than the user the client expects.
	otherUser := sess != nil && hintSub != "" && sess.sub != hintSub
	// Decide: approve the session's user (sess stays), sign sub in afresh
	// (sub set, sess nil), or show the chooser (both empty).
	var sub string
	switch {
	case r.Method == http.MethodPost && q.Has("sub"): // the chooser's answer
		sub = q.Get("sub")
		if _, ok := p.users[sub]; !ok {
			p.mu.Unlock()
			p.writePage(w, http.StatusBadRequest, "Invalid sign-in", "Unknown user "+sub)
			return
		}
		sess = nil
	case slices.Contains(prompt, "none"):
		if sess == nil || stale || otherUser {
			p.mu.Unlock()
			fail("login_required", "no provider session for the user")
			return
		}
	case slices.Contains(prompt, "login") || slices.Contains(prompt, "select_account"):
		sess = nil
	case sess != nil && !stale && !otherUser:
		// approve the session's user
	case p.cfg.AutoApprove != "":
		_, hinted := p.users[hintSub]
		_, loginHinted := p.users[q.Get("login_hint")]
		switch {
		case sess != nil && !otherUser:
			sub = sess.sub // sign the same user in again
		case hinted:
			sub = hintSub
		case loginHinted:
			sub = q.Get("login_hint")
		default:
			sub = p.cfg.AutoApprove
		}
		sess = nil
	default:
		sess = nil
	}
	if sess == nil && sub == "" {
		page := chooserPage{ClientName: p.cfg.ClientName, Issuer: p.URL}
		// Cancel: "The resource owner or authorization server denied
		// the request" (RFC 6749 §4.1.2.1).
		cancel, err := p.responseURL(redirectURI, url.Values{"error": {"access_denied"}, "error_description": {"the user cancelled"}, "state": state})
		if err == nil {
			page.Cancel = linkURL(cancel)
		}
		for _, s := range p.order {
			page.Users = append(page.Users, p.users[s])
		}
		// The chooser's answer carries the request again, but not the
		// id_token_hint: the user has chosen.
		for _, k := range slices.Sorted(maps.Keys(q)) {
			if k != "sub" && k != "id_token_hint" {
				page.Params = append(page.Params, param{k, q.Get(k)})
			}
		}
		p.mu.Unlock()
		// The form posts here, and the answer redirects to the client.
		p.writeHTML(w, http.StatusOK, "chooser", page, "'self'", cspSource(redirectURI))
		return
	}
	if sess == nil { // a fresh sign-in: start a new provider session
		delete(p.sessions, key)
		key = rand.Text()
		sess = p.newSession(sub, now)
		p.sessions[key] = sess
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: key, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	}
	sess.expires = now.Add(p.cfg.SessionTTL)
	code := rand.Text()
	p.codes[code] = &authCode{
		clientID:    clientID,
		redirectURI: redirectURI,
		sub:         sess.sub,
		sid:         sess.sid,
		authTime:    sess.authTime,
		scope:       scope,
		nonce:       q.Get("nonce"),
		challenge:   challenge,
		expires:     now.Add(p.cfg.CodeTTL),
	}
	p.mu.Unlock()
	p.respond(w, r, redirectURI, formPost, url.Values{"code": {code}, "state": state})
}

// redirectURIAllowed reports whether uri is registered, or starts with
// one of Config.InsecureRedirectURIPrefixes. The caller holds p.mu.
func (p *Provider) redirectURIAllowed(uri string) bool {
	if p.redirectURIs[uri] {
		return true
	}
	for _, prefix := range p.cfg.InsecureRedirectURIPrefixes {
		if prefix != "" && strings.HasPrefix(uri, prefix) {
			return true
		}
	}
	return false
}

// session returns the provider session named by r's cookie, if there is
// one, it has not expired and its user still exists. The caller holds
// p.mu.
func (p *Provider) session(r *http.Request) (string, *session) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", nil
	}
	s := p.sessions[c.Value]
	if s == nil || !p.now().Before(s.expires) {
		return "", nil
	}
	if _, ok := p.users[s.sub]; !ok {
		return "", nil
	}
	return c.Value, s
}

// startSession creates a provider session for sub and returns its cookie
// value, or false if there is no such user.
func (p *Provider) startSession(sub string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.users[sub]; !ok {
		return "", false
	}
	now := p.now()
	p.sweep(now)
	key := rand.Text()
	p.sessions[key] = p.newSession(sub, now)
	return key, true
}

// redirect sends the authorization response to redirectURI, keeping the
// URI's own query (RFC 6749 §3.1.2) and adding iss when configured
// (RFC 9207).
func (p *Provider) redirect(w http.ResponseWriter, r *http.Request, redirectURI string, params url.Values) {
	u, err := p.responseURL(redirectURI, params)
	if err != nil {
		p.writePage(w, http.StatusBadRequest, "Invalid redirect_uri", err.Error())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusFound)
}

// responseURL returns redirectURI with the authorization response params
// added to its query.
func (p *Provider) responseURL(redirectURI string, params url.Values) (string, error) {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return "", err
	}
	q := u.Query()
	for k, v := range params {
		if len(v) > 0 {
			q[k] = v
		}
	}
	if p.cfg.IssuerParameter {
		q.Set("iss", p.URL)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// repeatedParam returns the name of a parameter sent more than once, which
// RFC 6749 §3.1 forbids, or "".
func repeatedParam(q url.Values) string {
	for k, v := range q {
		if len(v) > 1 {
			return k
		}
	}
	return ""
}

// hasScope reports whether the space-separated scope contains s.
func hasScope(scope, s string) bool {
	return slices.Contains(strings.Fields(scope), s)
}

// validChallenge reports whether c looks like BASE64URL(SHA256(verifier))
// (RFC 7636 §4.2).
func validChallenge(c string) bool {
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && len(b) == 32
}
