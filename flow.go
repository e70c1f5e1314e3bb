package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// This file runs the login flow: login sends the browser to the provider,
// callback verifies its answer and starts the session, logout ends it. The
// pieces it is built from live elsewhere: flow cookies and the session in
// cookie.go and session.go, the provider's grants and checks in
// provider.go and oidc.go.

// login starts a login with p: a fresh state, nonce (for OpenID Connect)
// and PKCE verifier go into a flow cookie, and the browser goes to the
// provider's authorization endpoint.
func (m *Middleware) login(p *provider) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !m.allow(w, r, "login", http.MethodGet, http.MethodHead, http.MethodPost) {
			return
		}
		f := &flowState{
			State:    randomString(),
			Verifier: oauth2.GenerateVerifier(),
			Next:     cleanReturn(r.FormValue("next")),
			Created:  m.now().Unix(),
			Provider: p.name,
		}
		opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(f.Verifier)}, p.kind.authOptions(f)...)
		opts = append(opts, p.responseOptions(f)...)
		if err := m.flows.set(w, r, f); err != nil {
			m.fail(w, r, "login", err)
			return
		}
		opts = append(opts, p.authParams...)
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, p.oauth.AuthCodeURL(f.State, opts...), http.StatusFound)
	}
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
	if !m.allow(w, r, "login", http.MethodGet, http.MethodHead, http.MethodPost) {
		return
	}
	next := cleanReturn(r.FormValue("next"))
	type button struct{ URL, Label string }
	buttons := make([]button, len(m.providers))
	for i, p := range m.providers {
		buttons[i] = button{URL: p.loginPath + "?next=" + url.QueryEscape(next), Label: p.label}
	}
	pageHeaders(w.Header(), "text/html; charset=utf-8", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	if r.Method == http.MethodHead {
		return
	}
	if err := chooserPage.Execute(w, buttons); err != nil {
		m.log.ErrorContext(r.Context(), "auth: write login page", "error", err)
	}
}

// callback completes a login with p, the provider whose callback path was
// requested, in steps: the flow (this browser's flow cookie for the state,
// consumed; it must have started with p), the provider's answer (RFC
// 9207's iss, an error, or the code), the code exchange with the PKCE
// verifier, who signed in (p's kind: the verified ID token and its nonce,
// and userinfo; or the user API), OnLogin, and then the session is saved
// and the browser returns to where the login started.
func (m *Middleware) callback(p *provider) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if !m.allow(w, r, "callback", callbackMethods(p)...) {
			return
		}
		q, err := callbackParams(w, r) // a POST for form_post (formpost.go)
		var f *flowState
		if err == nil {
			f, err = m.flow(w, r, p, q.Get("state"))
		}
		if err == nil {
			var s *session
			if s, err = m.signIn(r.Context(), p, f, q); err == nil {
				err = m.startSession(w, r, s)
			}
		}
		switch {
		case errors.Is(err, errSignedIn):
			// A stale tab or a replayed link while signed in: nothing to
			// report, go home.
			http.Redirect(w, r, "/", afterCallback(r))
		case err != nil:
			m.fail(w, r, "callback", err)
		default:
			http.Redirect(w, r, f.Next, afterCallback(r))
		}
	}
}

// errSignedIn: a callback that matches no flow, in a browser that is
// signed in already.
var errSignedIn = errors.New("auth: no login in progress, already signed in")

// flow returns the login this callback completes: this browser's flow for
// the state (the answer's), which must have started with p (nil: the plain callback path
// with several providers, where no flow can end).
func (m *Middleware) flow(w http.ResponseWriter, r *http.Request, p *provider, state string) (*flowState, error) {
	f, ok := m.flows.take(w, r, state)
	if !ok {
		if ss, err := m.sessions.lookup(r); err == nil && ss != nil {
			return nil, errSignedIn
		}
		return nil, ErrLoginState
	}
	if p == nil || p.name != f.Provider {
		// The answer of one provider delivered to another's callback:
		// a mix-up attack (RFC 9700 4.4), or a confused browser. Each
		// provider having its own redirect URI is what tells them apart.
		return nil, fmt.Errorf("%w: the login started with another provider", ErrLoginState)
	}
	return f, nil
}

// signIn reads the provider's answer to the login f (q: the callback's
// query, or its form for form_post), exchanges its code and returns the
// new session, not yet saved.
func (m *Middleware) signIn(ctx context.Context, p *provider, f *flowState, q url.Values) (*session, error) {
	if err := p.kind.checkIssuerParam(q); err != nil {
		return nil, err
	}
	if code := q.Get("error"); code != "" {
		return nil, &ProviderError{Code: truncate(code, 64), Description: truncate(q.Get("error_description"), 256), URI: truncate(q.Get("error_uri"), 256)}
	}
	code := q.Get("code")
	if code == "" {
		return nil, fmt.Errorf("%w: no code", ErrInvalidRequest)
	}
	tok, err := p.exchange(ctx, code, f.Verifier)
	if err != nil {
		return nil, err
	}
	now := m.now()
	s := &session{
		provider: p.name,
		binding:  p.binding,
		family:   [8]byte(randomBytes(8)),
		created:  now.Unix(),
		refresh:  tok.RefreshToken,
	}
	s.setTokens(tok, now)
	if s.idToken, s.extra, err = p.kind.identify(ctx, p, tok, f.Nonce); err != nil {
		return nil, err
	}
	if err := s.addResponseClaims(p, q); err != nil {
		return nil, err
	}
	return s, nil
}

// startSession asks OnLogin about the new session's user, then saves the
// session and sets its cookie.
func (m *Middleware) startSession(w http.ResponseWriter, r *http.Request, s *session) error {
	if m.onLogin != nil {
		ss, err := m.sessions.state(s.marshal(), "") // the user as the session will read it
		if err != nil {
			return err
		}
		if err := m.onLogin(r.Context(), ss.user, ss.oauthToken()); err != nil {
			return fmt.Errorf("%w: %w", ErrLoginRefused, err)
		}
	}
	ss, err := m.sessions.save(r.Context(), s, "")
	if err != nil {
		return err
	}
	if err := m.sessions.write(w, r, ss); err != nil {
		return err
	}
	m.log.InfoContext(r.Context(), "auth: signed in", sessionAttrs(ss))
	return nil
}

// logout ends the session: it is deleted (from the Store, too) and its
// cookies cleared, the refresh token is revoked where the provider offers
// revocation, and the browser goes to the provider's end_session_endpoint
// (RP-Initiated Logout) or straight to the post-logout URL. Only a request
// from the site's own pages does that; any other gets a page that asks.
func (m *Middleware) logout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !m.allow(w, r, "logout", http.MethodGet, http.MethodHead, http.MethodPost) {
		return
	}
	if !m.fromOwnPages(r) {
		// Another site, even a sibling subdomain, must not sign the user
		// out (here and, through RP-initiated logout, at the provider),
		// by a link or a form: ask first. The page's own POST is
		// same-origin. Its form may be redirected to the provider's
		// logout, which form-action must allow.
		pageHeaders(w.Header(), "text/html; charset=utf-8", "default-src 'none'; form-action "+m.logoutFormAction+"; frame-ancestors 'none'")
		if r.Method != http.MethodHead {
			_ = logoutPage.Execute(w, m.logoutPath)
		}
		return
	}
	ss, err := m.sessions.lookup(r)
	switch {
	case err == nil:
		err = m.sessions.forget(r.Context(), ss)
	case errors.Is(err, ErrStoreUnavailable):
	default:
		ss, err = nil, nil // no session, or not one of ours: clear what there is
	}
	if err != nil {
		// Clearing the cookie now would leave the stored session alive,
		// and a copy of the cookie with it: keep both, ask to retry.
		w.Header().Set("Retry-After", "5")
		m.fail(w, r, "logout", err)
		return
	}
	_ = m.sessions.write(w, r, nil)
	target := m.postLogout
	if ss != nil {
		s := ss.full()
		if p := m.providers.byName(s.provider); p != nil {
			p.revoke(r.Context(), s)
			if u := p.logoutURL(s, m.postLogout); u != "" {
				target = u
			}
		}
		m.log.InfoContext(r.Context(), "auth: signed out", sessionAttrs(ss))
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// allow reports whether r's method is one of methods, and answers
// anything else with its error.
func (m *Middleware) allow(w http.ResponseWriter, r *http.Request, op string, methods ...string) bool {
	for _, method := range methods {
		if r.Method == method {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	m.fail(w, r, op, fmt.Errorf("%w: method %s", ErrInvalidRequest, r.Method))
	return false
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

// randomString returns 256 random bits in base64url: states, nonces,
// session IDs.
func randomString() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(32))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
