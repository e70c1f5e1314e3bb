package authtest

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// grant is one authorization: what a redeemed code started. All tokens
// issued from it, through any number of refreshes, point to it.
type grant struct {
	clientID string
	sub, sid string
	scope    string // as authorized; refresh requests may narrow it
	authTime time.Time
	revoked  bool // by code replay, RevokeUser or revoking a refresh token
}

// token is an issued access or refresh token.
type token struct {
	g       *grant
	refresh bool
	scope   string
	expires time.Time
	revoked bool
	used    time.Time // refresh tokens: first use, or zero
	// aud and claims are the audience and extra introspection claims of
	// an opaque access token from AccessToken (accesstoken.go); aud nil
	// means the client.
	aud    []string
	claims map[string]any
}

// valid reports whether t is usable at now.
func (t *token) valid(now time.Time) bool {
	return !t.revoked && !t.g.revoked && now.Before(t.expires)
}

// oauthError is an error response of the token or revocation endpoint
// (RFC 6749 §5.2).
type oauthError struct {
	status     int
	code, desc string
	challenge  string // WWW-Authenticate, with status 401
}

func badRequest(code, desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: code, desc: desc}
}

// invalidClient is a failed client authentication. RFC 6749 §5.2: a
// client that authenticated with the Authorization header gets 401 and
// a challenge for the scheme it used (a 401 must carry one, RFC 9110
// §15.5.2); any other client gets 400.
func invalidClient(usedBasic bool, desc string) *oauthError {
	if usedBasic {
		return &oauthError{status: http.StatusUnauthorized, code: "invalid_client", desc: desc, challenge: `Basic realm="authtest"`}
	}
	return badRequest("invalid_client", desc)
}

func (p *Provider) writeError(w http.ResponseWriter, e *oauthError) {
	if e.challenge != "" {
		w.Header().Set("WWW-Authenticate", e.challenge)
	}
	noStore(w)
	writeJSON(w, e.status, map[string]string{"error": e.code, "error_description": e.desc})
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// tokenResponse is a successful token response (RFC 6749 §5.1, OIDC
// Core §3.1.3.3).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// issued is a token response whose ID token is still to be signed,
// which happens after p.mu is released, so that a Fault.IDToken hook
// may call the Provider.
type issued struct {
	resp   tokenResponse
	claims map[string]any // nil: no ID token
	key    *signingKey
	fault  Fault
}

// token serves the token endpoint (RFC 6749 §3.2).
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	f := p.faults.token.pop()
	p.mu.Unlock()
	if f.TokenDelay > 0 {
		t := time.NewTimer(f.TokenDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-p.done:
			return
		}
	}
	if f.TokenStatus != 0 || f.TokenBody != "" {
		noStore(w)
		if f.TokenBody == "" {
			writeJSON(w, f.TokenStatus, map[string]string{"error": "server_error", "error_description": "authtest: injected fault"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(cmp.Or(f.TokenStatus, http.StatusOK))
		io.WriteString(w, f.TokenBody)
		return
	}
	out, e := p.grant(r)
	if e != nil {
		p.writeError(w, e)
		return
	}
	if f.TokenScope != "" {
		p.mu.Lock()
		out.resp.Scope = f.TokenScope
		t := p.tokens[out.resp.AccessToken]
		t.scope = f.TokenScope
		t.g.scope = f.TokenScope // refreshes grant no more than this
		p.mu.Unlock()
	}
	if out.claims != nil {
		if out.fault.IDToken != nil {
			out.fault.IDToken(out.claims)
		}
		var err error
		out.resp.IDToken, err = p.signIDToken(out.key, out.claims, out.fault.IDTokenSigning)
		if err != nil {
			p.writeError(w, &oauthError{status: http.StatusInternalServerError, code: "server_error", desc: "signing the ID token failed"})
			return
		}
	}
	noStore(w)
	writeJSON(w, http.StatusOK, out.resp)
}

// grant authenticates the client and carries out the grant.
func (p *Provider) grant(r *http.Request) (*issued, *oauthError) {
	form := r.PostForm
	if k := repeatedParam(form); k != "" {
		return nil, badRequest("invalid_request", "parameter "+k+" appears more than once")
	}
	clientID, e := p.authenticate(r)
	if e != nil {
		return nil, e
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var out *issued
	switch gt := form.Get("grant_type"); gt {
	case "authorization_code":
		out, e = p.redeemCode(clientID, form)
	case "refresh_token":
		out, e = p.refresh(clientID, form)
	case "":
		return nil, badRequest("invalid_request", "grant_type missing")
	default:
		return nil, badRequest("unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
	}
	if e == nil {
		p.grants[form.Get("grant_type")]++
	}
	return out, e
}

// authenticate checks the client's credentials (RFC 6749 §2.3.1) by
// whichever of Config.TokenAuthMethods the request uses, and returns
// its client_id.
func (p *Provider) authenticate(r *http.Request) (string, *oauthError) {
	form := r.PostForm
	if form.Has("client_assertion") || form.Has("client_assertion_type") {
		return p.authenticateAssertion(r) // clientauth.go
	}
	var method, id, secret string
	if user, pass, ok := r.BasicAuth(); ok {
		method = "client_secret_basic"
		// Both parts are form-urlencoded before Basic encoding.
		var err1, err2 error
		id, err1 = url.QueryUnescape(user)
		secret, err2 = url.QueryUnescape(pass)
		switch {
		case err1 != nil || err2 != nil:
			return "", invalidClient(true, "malformed Basic credentials")
		case form.Has("client_secret"):
			return "", badRequest("invalid_request", "more than one client authentication method")
		case form.Has("client_id") && form.Get("client_id") != id:
			return "", badRequest("invalid_request", "client_id does not match the Basic credentials")
		}
	} else if form.Has("client_secret") {
		method, id, secret = "client_secret_post", form.Get("client_id"), form.Get("client_secret")
	} else if form.Has("client_id") {
		method, id = "none", form.Get("client_id")
	} else {
		return "", invalidClient(false, "client authentication required")
	}
	basic := method == "client_secret_basic"
	switch {
	case !slices.Contains(p.cfg.TokenAuthMethods, method):
		return "", invalidClient(basic, "client authentication method "+method+" is not allowed")
	case id != p.ClientID:
		return "", invalidClient(basic, "unknown client")
	case method != "none" && subtle.ConstantTimeCompare([]byte(secret), []byte(p.ClientSecret)) != 1:
		return "", invalidClient(basic, "wrong client secret")
	}
	return id, nil
}

// redeemCode carries out the authorization_code grant (RFC 6749
// §4.1.3, RFC 7636 §4.6). The caller holds p.mu.
func (p *Provider) redeemCode(clientID string, form url.Values) (*issued, *oauthError) {
	c := p.codes[form.Get("code")]
	verifier := form.Get("code_verifier")
	switch {
	case !form.Has("code"):
		return nil, badRequest("invalid_request", "code missing")
	case c == nil:
		return nil, badRequest("invalid_grant", "unknown authorization code")
	case c.redeemed != nil:
		// RFC 6749 §4.1.2: revoke what the first use issued.
		c.redeemed.revoked = true
		return nil, badRequest("invalid_grant", "authorization code already used")
	case c.clientID != clientID:
		return nil, badRequest("invalid_grant", "authorization code was issued to another client")
	case !p.now().Before(c.expires):
		return nil, badRequest("invalid_grant", "authorization code expired")
	case form.Get("redirect_uri") != c.redirectURI:
		return nil, badRequest("invalid_grant", "redirect_uri does not match the authorization request")
	case c.challenge == "" && verifier != "":
		return nil, badRequest("invalid_grant", "code_verifier sent, but the authorization request had no code_challenge")
	case c.challenge != "" && verifier == "":
		return nil, badRequest("invalid_grant", "code_verifier required")
	case c.challenge != "" && !validVerifier(verifier):
		return nil, badRequest("invalid_grant", "malformed code_verifier")
	case c.challenge != "" && subtle.ConstantTimeCompare([]byte(s256(verifier)), []byte(c.challenge)) != 1:
		return nil, badRequest("invalid_grant", "code_verifier does not match code_challenge")
	}
	g := &grant{clientID: c.clientID, sub: c.sub, sid: c.sid, scope: c.scope, authTime: c.authTime}
	c.redeemed = g
	withRefresh := !p.cfg.OfflineAccessOnly || hasScope(c.scope, "offline_access")
	return p.issue(g, c.scope, c.nonce, withRefresh), nil
}

// refresh carries out the refresh_token grant (RFC 6749 §6). The caller
// holds p.mu.
func (p *Provider) refresh(clientID string, form url.Values) (*issued, *oauthError) {
	now := p.now()
	t := p.tokens[form.Get("refresh_token")]
	switch {
	case !form.Has("refresh_token"):
		return nil, badRequest("invalid_request", "refresh_token missing")
	case t == nil || !t.refresh:
		return nil, badRequest("invalid_grant", "unknown refresh token")
	case t.g.clientID != clientID:
		return nil, badRequest("invalid_grant", "refresh token was issued to another client")
	case t.revoked || t.g.revoked:
		return nil, badRequest("invalid_grant", "refresh token revoked")
	case !now.Before(t.expires):
		return nil, badRequest("invalid_grant", "refresh token expired")
	case p.cfg.Rotation == Rotate && !t.used.IsZero():
		// RFC 9700 §4.14.2: reuse of a rotated-out refresh token means
		// it leaked, or the client lost track; revoke the grant, every
		// token descended from it included.
		t.g.revoked = true
		return nil, badRequest("invalid_grant", "refresh token already used; the grant is revoked")
	case p.cfg.Rotation == RotateWithGrace && !t.used.IsZero() && now.Sub(t.used) > p.cfg.RefreshGrace:
		return nil, badRequest("invalid_grant", "refresh token already used and its grace period is over")
	}
	scope := t.g.scope
	if form.Has("scope") {
		scope = form.Get("scope")
		for _, s := range strings.Fields(scope) {
			if !hasScope(t.g.scope, s) {
				return nil, badRequest("invalid_scope", "scope "+s+" was not granted")
			}
		}
	}
	if t.used.IsZero() {
		t.used = now
	}
	return p.issue(t.g, scope, "", p.cfg.Rotation != NoRotation), nil
}

// minSweep is how many tokens, codes and provider sessions the provider
// holds before it first forgets the expired ones, so a demo provider
// that runs for days stays small.
const minSweep = 10000

// sweep forgets expired tokens, codes and provider sessions once there
// are many; the next sweep waits until the number has doubled. It runs
// wherever they are created. The caller holds p.mu.
func (p *Provider) sweep(now time.Time) {
	held := func() int { return len(p.tokens) + len(p.codes) + len(p.sessions) }
	if held() < max(p.sweepMin, p.sweepAt) {
		return
	}
	defer func() { p.sweepAt = 2 * held() }()
	for k, t := range p.tokens {
		if now.After(t.expires) {
			delete(p.tokens, k)
		}
	}
	for k, c := range p.codes {
		if now.After(c.expires) {
			delete(p.codes, k)
		}
	}
	for k, s := range p.sessions {
		if !now.Before(s.expires) {
			delete(p.sessions, k)
		}
	}
}

// issue creates an access token, a refresh token if withRefresh, and
// the claims of an ID token if scope has openid. The caller holds p.mu.
func (p *Provider) issue(g *grant, scope, nonce string, withRefresh bool) *issued {
	now := p.now()
	p.sweep(now)
	at := rand.Text()
	p.tokens[at] = &token{g: g, scope: scope, expires: now.Add(p.cfg.AccessTokenTTL)}
	out := &issued{resp: tokenResponse{
		AccessToken: at,
		TokenType:   "Bearer",
		ExpiresIn:   int64(p.cfg.AccessTokenTTL / time.Second),
		Scope:       scope,
	}}
	if withRefresh {
		rt := rand.Text()
		p.tokens[rt] = &token{g: g, refresh: true, scope: g.scope, expires: now.Add(p.cfg.RefreshTokenTTL)}
		out.resp.RefreshToken = rt
	}
	if hasScope(scope, "openid") {
		claims := p.userClaims(g.sub, scope)
		claims["iss"] = p.URL
		claims["aud"] = g.clientID
		claims["azp"] = g.clientID
		claims["iat"] = now.Unix()
		claims["exp"] = now.Add(p.cfg.IDTokenTTL).Unix()
		claims["auth_time"] = g.authTime.Unix()
		claims["sid"] = g.sid
		claims["at_hash"] = leftHash(at)
		if nonce != "" {
			claims["nonce"] = nonce
		}
		out.claims = claims
		out.key = p.signingKey()
		out.fault = p.faults.idToken.pop()
	}
	return out
}

// leftHash is the at_hash of an access token for RS256 and ES256: the
// left half of its SHA-256, base64url-encoded (OIDC Core §3.1.3.6).
func leftHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// s256 is the S256 code challenge of a verifier (RFC 7636 §4.2).
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// validVerifier reports whether v is 43 to 128 unreserved characters
// (RFC 7636 §4.1).
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, c := range v {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.ContainsRune("-._~", c)) {
			return false
		}
	}
	return true
}

// tokenRequest checks a request to the revocation or introspection
// endpoint (RFC 7009 §2.1, RFC 7662 §2.1): each parameter once, the client
// authenticated, a token. It returns the client_id and the token, or
// answers the error and returns false.
func (p *Provider) tokenRequest(w http.ResponseWriter, r *http.Request) (clientID, token string, ok bool) {
	form := r.PostForm
	var e *oauthError
	if k := repeatedParam(form); k != "" {
		e = badRequest("invalid_request", "parameter "+k+" appears more than once")
	} else if clientID, e = p.authenticate(r); e == nil && !form.Has("token") {
		e = badRequest("invalid_request", "token missing")
	}
	if e != nil {
		p.writeError(w, e)
		return "", "", false
	}
	return clientID, form.Get("token"), true
}

// revoke serves the revocation endpoint (RFC 7009). Revoking a refresh
// token revokes its whole grant, access tokens included; revoking an
// access token revokes only that token. Unknown tokens get 200 too.
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request) {
	clientID, tok, ok := p.tokenRequest(w, r)
	if !ok {
		return
	}
	p.mu.Lock()
	if t := p.tokens[tok]; t != nil && t.g.clientID == clientID {
		if t.refresh {
			t.g.revoked = true
		} else {
			t.revoked = true
		}
	}
	p.revocations++
	p.mu.Unlock()
	noStore(w)
	w.WriteHeader(http.StatusOK)
}

// RevokeUser revokes every access and refresh token issued to the user
// sub so far. The user can still sign in and get new ones.
func (p *Provider) RevokeUser(sub string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.tokens {
		if t.g.sub == sub {
			t.g.revoked = true
		}
	}
}
