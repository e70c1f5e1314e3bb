package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/securecookie"
	"golang.org/x/oauth2"
)

// This file runs the login flow: login sends the browser to the provider,
// callback verifies its answer and starts the session, logout ends it.

const (
	// flowLifetime bounds how long a login may take at the provider.
	flowLifetime = 10 * time.Minute
	// maxFlows caps the flow cookies a browser holds at once (the oldest
	// goes first), so a burst of logins cannot grow the Cookie header past
	// what servers accept.
	maxFlows = 5
)

// flowState is one login attempt, kept in its own short-lived encrypted
// cookie so several tabs can log in at the same time.
type flowState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"r"`
	Created  int64  `json:"t"`
	Provider string `json:"p"`
}

// flowCookieName names the flow cookie of a state value.
func (m *Middleware) flowCookieName(state string) string {
	return m.jar.flow + state[:16]
}

func randomString() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(32))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// login starts a login with p: a fresh state, nonce (for OpenID Connect)
// and PKCE verifier go into a flow cookie, and the browser goes to the
// provider's authorization endpoint. p is nil on LoginPath itself, which
// with several providers shows a page to choose one.
func (m *Middleware) login(w http.ResponseWriter, r *http.Request, p *provider) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, HEAD, POST")
		m.fail(w, r, "login", fmt.Errorf("%w: method %s", ErrInvalidRequest, r.Method))
		return
	}
	if p == nil {
		if len(m.providers) > 1 {
			m.chooser(w, r)
			return
		}
		p = m.providers[0]
	}
	now := m.now()
	f := flowState{
		State:    randomString(),
		Verifier: oauth2.GenerateVerifier(),
		Next:     cleanReturn(r.FormValue("next")),
		Created:  now.Unix(),
		Provider: p.name,
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.Verifier)}
	if p.keys != nil {
		// Without an ID token there is nothing to carry a nonce back.
		f.Nonce = randomString()
		opts = append(opts, oidc.Nonce(f.Nonce))
	}
	m.pruneFlows(w, r, now)
	name := m.flowCookieName(f.State)
	v, err := securecookie.EncodeMulti(name, &f, m.flowCodecs...)
	if err == nil && len(name)+len(v) > maxCookieBytes-100 {
		// A return path long (or escaped) enough to push the flow cookie
		// past what browsers keep would make the login fail: go home
		// instead.
		f.Next = "/"
		v, err = securecookie.EncodeMulti(name, &f, m.flowCodecs...)
	}
	if err != nil {
		m.fail(w, r, "login", fmt.Errorf("auth: encode flow cookie: %w", err))
		return
	}
	http.SetCookie(w, m.jar.flowCookie(name, v, int(flowLifetime/time.Second)))
	opts = append(opts, p.authParams...)
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, p.oauth.AuthCodeURL(f.State, opts...), http.StatusFound)
}

// chooserPage is the page LoginPath shows when there are several
// providers: one button per provider, each starting its login with the
// same return path.
var chooserPage = template.Must(template.New("chooser").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in</title>
<style>body{font:16px system-ui,sans-serif;max-width:20em;margin:4em auto;text-align:center}
a{display:block;margin:.6em 0;padding:.7em;border:1px solid #888;border-radius:.4em;color:inherit;text-decoration:none}
a:hover{background:#eee}</style></head>
<body><h1>Sign in</h1>
{{range .}}<a href="{{.URL}}">Sign in with {{.Label}}</a>
{{end}}</body></html>
`))

// chooser shows the page with one sign-in button per provider.
func (m *Middleware) chooser(w http.ResponseWriter, r *http.Request) {
	next := cleanReturn(r.FormValue("next"))
	type button struct{ URL, Label string }
	buttons := make([]button, len(m.providers))
	for i, p := range m.providers {
		buttons[i] = button{URL: p.loginPath + "?next=" + url.QueryEscape(next), Label: p.label}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	if r.Method == http.MethodHead {
		return
	}
	if err := chooserPage.Execute(w, buttons); err != nil {
		m.log.ErrorContext(r.Context(), "auth: write login page", "error", err)
	}
}

// pruneFlows deletes flow cookies that are expired or unreadable, and the
// oldest live ones beyond maxFlows-1, making room for one more.
func (m *Middleware) pruneFlows(w http.ResponseWriter, r *http.Request, now time.Time) {
	type live struct {
		name    string
		created int64
	}
	var keep []live
	for _, c := range cookiesWithPrefix(r, m.jar.flow) {
		var f flowState
		err := securecookie.DecodeMulti(c.Name, c.Value, &f, m.flowCodecs...)
		if err != nil || now.Sub(time.Unix(f.Created, 0)) >= flowLifetime {
			http.SetCookie(w, m.jar.flowCookie(c.Name, "", -1))
			continue
		}
		keep = append(keep, live{c.Name, f.Created})
	}
	if len(keep) < maxFlows {
		return
	}
	slices.SortFunc(keep, func(a, b live) int { return int(a.created - b.created) })
	for _, l := range keep[:len(keep)-(maxFlows-1)] {
		http.SetCookie(w, m.jar.flowCookie(l.name, "", -1))
	}
}

// callback completes a login with p, the provider whose callback path was
// requested (nil on the plain callback path with several providers): it
// matches the state to this browser's flow cookie (which it consumes) and
// checks that the flow started with p, exchanges the code with the PKCE
// verifier, verifies the ID token and its nonce and reads userinfo (or, for
// plain OAuth 2.0, reads the user API), asks OnLogin, writes the session and
// returns the browser to where the login started.
func (m *Middleware) callback(w http.ResponseWriter, r *http.Request, p *provider) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		m.fail(w, r, "callback", fmt.Errorf("%w: method %s", ErrInvalidRequest, r.Method))
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	var f flowState
	found := false
	if len(state) >= 16 {
		name := m.flowCookieName(state)
		if c, ok := cookieValue(r.Header, name); ok {
			// Consumed whatever happens next: replaying this callback
			// finds no flow.
			http.SetCookie(w, m.jar.flowCookie(name, "", -1))
			err := securecookie.DecodeMulti(name, c, &f, m.flowCodecs...)
			found = err == nil && subtle.ConstantTimeCompare([]byte(f.State), []byte(state)) == 1 &&
				m.now().Sub(time.Unix(f.Created, 0)) < flowLifetime
		}
	}
	if !found {
		// A stale tab or a replayed link while signed in: nothing to
		// report, go home.
		if ss, _ := m.peek(r); ss != nil {
			http.Redirect(w, r, "/", http.StatusFound)
			return
		}
		m.fail(w, r, "callback", ErrLoginState)
		return
	}
	if p == nil && len(m.providers) == 1 {
		p = m.providers[0]
	}
	if p == nil || p.name != f.Provider {
		// The answer of one provider delivered to another's callback:
		// a mix-up attack (RFC 9700 4.4), or a confused browser. Each
		// provider having its own redirect URI is what tells them apart.
		m.fail(w, r, "callback", fmt.Errorf("%w: the login started with another provider", ErrLoginState))
		return
	}
	// RFC 9207: the iss parameter, when sent, names the provider the flow
	// started with; a provider that promises it must send it. (A provider
	// whose issuer depends on the user has none to compare with; plain
	// OAuth 2.0 providers have no issuer.)
	if iss, ok := q["iss"]; (ok || p.issParam) && p.issuer != "" && !p.issSelfCheck {
		if !ok || len(iss) != 1 || iss[0] != p.issuer {
			m.fail(w, r, "callback", fmt.Errorf("%w: iss parameter does not match the issuer", ErrInvalidRequest))
			return
		}
	}
	if code := q.Get("error"); code != "" {
		m.fail(w, r, "callback", &ProviderError{Code: truncate(code, 64), Description: truncate(q.Get("error_description"), 256), URI: truncate(q.Get("error_uri"), 256)})
		return
	}
	code := q.Get("code")
	if code == "" {
		m.fail(w, r, "callback", fmt.Errorf("%w: no code", ErrInvalidRequest))
		return
	}

	ctx := context.WithValue(r.Context(), oauth2.HTTPClient, m.client)
	tok, err := p.oauth.Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		m.fail(w, r, "callback", p.tokenError("exchange code", err))
		return
	}
	now := m.now()
	s := &session{
		provider:  p.name,
		binding:   p.binding,
		family:    string(randomBytes(8)),
		created:   now.Unix(),
		tokenTime: now.Unix(),
		tokenType: tokenType(tok),
		access:    tok.AccessToken,
		refresh:   tok.RefreshToken,
	}
	if p.keys != nil {
		s.idToken, s.extra, err = m.verifyLogin(ctx, p, tok, f.Nonce)
	} else {
		s.extra, err = p.quirks.user(ctx, m, p, tok)
	}
	if err != nil {
		m.fail(w, r, "callback", err)
		return
	}
	s.expiry = expiryOf(tok, now)
	ss, err := m.save(r.Context(), s, "")
	if err != nil {
		m.fail(w, r, "callback", err)
		return
	}
	if m.onLogin != nil {
		if err := m.onLogin(r.Context(), ss.user, ss.oauthToken()); err != nil {
			if ss.id != "" {
				_ = m.store.Delete(r.Context(), ss.id)
			}
			m.fail(w, r, "callback", fmt.Errorf("%w: %w", ErrLoginRefused, err))
			return
		}
	}
	if err := m.writeCookie(w, r, ss); err != nil {
		m.fail(w, r, "callback", err)
		return
	}
	m.log.InfoContext(r.Context(), "auth: signed in", sessionAttrs(ss))
	http.Redirect(w, r, f.Next, http.StatusFound)
}

// verifyLogin verifies the ID token of an OpenID Connect login and returns
// it with the userinfo claims it lacks.
func (m *Middleware) verifyLogin(ctx context.Context, p *provider, tok *oauth2.Token, nonce string) (idToken string, extra []byte, err error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", nil, fmt.Errorf("%w: the token response has no id_token", ErrTokenInvalid)
	}
	idt, payload, err := m.verifyIDToken(ctx, p, raw, nonce)
	if err != nil {
		return "", nil, err
	}
	if idt.AccessTokenHash != "" { // optional in the code flow; checked when present
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return "", nil, fmt.Errorf("%w: at_hash: %w", ErrTokenInvalid, err)
		}
	}
	return raw, m.userinfoExtra(ctx, p, tok, idt.Subject, payload), nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// peek decodes the request's session, if any, without refreshing it.
// Only an unreachable Store is an error (wrapping ErrStoreUnavailable).
func (m *Middleware) peek(r *http.Request) (*sessionState, error) {
	var buf [maxChunks]string
	parts, _, ok := m.jar.sessionParts(r.Header, &buf)
	if !ok {
		return nil, nil
	}
	now := m.now()
	if ss := m.cache.get(parts, now); ss != nil {
		return ss, nil
	}
	ss, err := m.decode(r.Context(), parts)
	if errors.Is(err, ErrStoreUnavailable) {
		return nil, err
	}
	if err != nil || !now.Before(ss.end) {
		return nil, nil
	}
	return ss, nil
}

// logout ends the session: the cookies are cleared (and the Store entry
// deleted), the refresh token is revoked where the provider offers RFC 7009
// revocation, and the browser goes to the provider's end_session_endpoint
// (RP-Initiated Logout) or straight to the post-logout URL.
func (m *Middleware) logout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, POST")
		m.fail(w, r, "logout", fmt.Errorf("%w: method %s", ErrInvalidRequest, r.Method))
		return
	}
	if !m.fromOwnPages(r) {
		// Another site, even a sibling subdomain, must not sign the user
		// out (here and, through RP-initiated logout, at the provider),
		// by a link or a form: ask first. The page's own POST is
		// same-origin. Its form may be redirected to the provider's
		// logout, which form-action must allow.
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; form-action "+m.logoutFormAction+"; frame-ancestors 'none'")
		if r.Method != http.MethodHead {
			_ = logoutPage.Execute(w, m.logoutPath)
		}
		return
	}
	ss, err := m.peek(r)
	if err == nil {
		err = m.endSession(w, r, ss)
	}
	if err != nil {
		// Clearing the cookie now would leave the stored session alive,
		// and a copy of the cookie with it: keep both, ask to retry.
		w.Header().Set("Retry-After", "5")
		m.fail(w, r, "logout", err)
		return
	}
	target := m.postLogout
	if ss != nil {
		s := ss.full()
		p := m.providerByName(s.provider)
		m.revoke(r.Context(), p, s)
		if p != nil && p.endSessionURL != "" {
			if u, err := url.Parse(p.endSessionURL); err == nil {
				q := u.Query()
				if s.idToken != "" {
					q.Set("id_token_hint", s.idToken)
				}
				q.Set("client_id", p.clientID)
				q.Set("post_logout_redirect_uri", m.postLogout)
				u.RawQuery = q.Encode()
				target = u.String()
			}
		}
		m.log.InfoContext(r.Context(), "auth: signed out", sessionAttrs(ss))
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// fromOwnPages reports whether r comes from this site's own pages or from
// the user typing the address, as the browser says: Sec-Fetch-Site
// same-origin or none. Without that header (older browsers, non-browser
// clients), an Origin or Referer header naming another origin counts as
// another site, and a request with neither as the user's own.
func (m *Middleware) fromOwnPages(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		return o == m.origin
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		u, err := url.Parse(ref)
		return err == nil && u.Scheme+"://"+u.Host == m.origin
	}
	return true
}

// logoutPage asks a user who followed a link from another site to confirm.
var logoutPage = template.Must(template.New("logout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign out</title></head><body>
<form method="post" action="{{.}}"><p>Sign out of this site?</p><button type="submit">Sign out</button></form>
</body></html>
`))

// revoke revokes the session's tokens at the provider (p.quirks.revoke):
// best effort, bounded by a short timeout, failures logged.
func (m *Middleware) revoke(ctx context.Context, p *provider, s *session) {
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := p.quirks.revoke(ctx, m, p, s); err != nil {
		m.log.WarnContext(ctx, "auth: token revocation failed", "provider", p.name, "error", err)
	}
}

// revoke revokes the session's refresh token (or, without one, its access
// token) at the provider's RFC 7009 revocation endpoint, if it has one.
func (standard) revoke(ctx context.Context, m *Middleware, p *provider, s *session) error {
	tok, hint := s.refresh, "refresh_token"
	if tok == "" {
		tok, hint = s.access, "access_token"
	}
	if p.revocationURL == "" || tok == "" {
		return nil
	}
	form := url.Values{"token": {tok}, "token_type_hint": {hint}}
	if p.oauth.Endpoint.AuthStyle != oauth2.AuthStyleInHeader {
		form.Set("client_id", p.clientID)
		if p.oauth.ClientSecret != "" {
			form.Set("client_secret", p.oauth.ClientSecret)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.revocationURL, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p.oauth.Endpoint.AuthStyle == oauth2.AuthStyleInHeader {
		req.SetBasicAuth(url.QueryEscape(p.clientID), url.QueryEscape(p.oauth.ClientSecret))
	}
	res, err := m.client.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return &statusError{status: res.StatusCode}
	}
	return nil
}

// cleanReturn returns s if it is a same-origin relative path ("/x?y"), and
// "/" for anything else: absolute and scheme-relative URLs ("//evil"),
// backslashes (browsers read "/\evil" as "//evil"), control characters
// (browsers drop tabs and newlines, so "/\t/evil" becomes "//evil"), and
// values too long to be a path we sent.
func cleanReturn(s string) string {
	if s == "" || s[0] != '/' || len(s) > 2048 {
		return "/"
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return "/"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "/"
	}
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	return s
}
