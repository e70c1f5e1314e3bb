package auth

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
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
		if !m.allow(w, r, "login", http.MethodGet, http.MethodHead, http.MethodPost) || m.toOrigin(w, r) {
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

// toOrigin makes sure a login starts where it will end: the flow cookie
// must reach the callback, on RedirectURL's origin. A login opened on
// another loopback name of the same port (http://localhost:8080 for a
// RedirectURL on http://127.0.0.1:8080, the classic first-hour trap) is
// sent there first, with the same path and query, and it reports that it
// did. Another host is left alone (a proxy may rewrite Host), and logged
// at debug level; so is an https RedirectURL reached over plain http,
// warned about once.
func (m *Middleware) toOrigin(w http.ResponseWriter, r *http.Request) bool {
	if m.secure && r.TLS == nil && r.Header.Get("X-Forwarded-Proto") != "https" {
		m.plainHTTP.Do(func() {
			m.log.WarnContext(r.Context(), "auth: RedirectURL is https, but a login arrived over plain http: after sign-in the browser goes to "+m.origin+
				" and fails if nothing serves https there (behind a proxy that terminates TLS, have it send X-Forwarded-Proto: https)", "redirect_url_origin", m.origin)
		})
	}
	if r.Host == m.host || r.Host == "" {
		return false
	}
	if sameLoopbackServer(r.Host, m.host) {
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, m.origin+r.URL.RequestURI(), http.StatusFound)
		return true
	}
	m.log.DebugContext(r.Context(), "auth: login on another host than RedirectURL's; the flow cookie reaches the callback only if the browser is on RedirectURL's host", "host", r.Host, "redirect_url_host", m.host)
	return false
}

// sameLoopbackServer reports whether hosts a and b (host:port) name the
// same port on this machine by two loopback names (localhost, 127.0.0.1,
// [::1]).
func sameLoopbackServer(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	loopback := func(h string) bool {
		ip := net.ParseIP(h)
		return h == "localhost" || ip != nil && ip.IsLoopback()
	}
	return err1 == nil && err2 == nil && pa == pb && loopback(ha) && loopback(hb)
}

// chooser shows the page with one sign-in button per provider, each
// starting its login with the same return path.
func (m *Middleware) chooser(w http.ResponseWriter, r *http.Request) {
	if !m.allow(w, r, "login", http.MethodGet, http.MethodHead, http.MethodPost) || m.toOrigin(w, r) {
		return
	}
	next := cleanReturn(r.FormValue("next"))
	p := &Page{Kind: "chooser", Status: http.StatusOK, Title: "Sign in", Message: "Choose how to sign in."}
	for _, pr := range m.providers {
		p.Links = append(p.Links, PageLink{URL: pr.loginPath + "?next=" + url.QueryEscape(next), Label: "Sign in with " + pr.label})
	}
	m.page(w, r, p)
}

// callback completes a login with p, the provider whose callback path was
// requested, in steps: the flow (this browser's flow cookie for the state,
// consumed; it must have started with p), the provider's answer (RFC
// 9207's iss, an error, or the code), the code exchange with the PKCE
// verifier, who signed in (p's kind: the verified ID token and its nonce,
// and userinfo; or the user API), OnLogin, and then the session is saved
// and the browser returns to where the login started.
func (m *Middleware) callback(p *provider) http.HandlerFunc {
	name := "" // the provider's, for metrics; the plain path of several providers has none
	if p != nil {
		name = p.name
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if !m.allow(w, r, "callback", callbackMethods(p)...) {
			return
		}
		q, err := callbackParams(w, r) // a POST for form_post (formpost.go)
		var f *flowState
		if err == nil {
			f, err = m.flow(w, r, p, q)
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
			m.metrics.count(EventLoginFailed, name)
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
// the state of the answer q, which must have started with p (nil: the
// plain callback path with several providers, where no flow can end).
func (m *Middleware) flow(w http.ResponseWriter, r *http.Request, p *provider, q url.Values) (*flowState, error) {
	if !q.Has("state") && !q.Has("code") && !q.Has("error") {
		return nil, errNotCallback
	}
	f, ok := m.flows.take(w, r, q.Get("state"))
	if !ok {
		if ss, err := m.sessions.lookup(r); err == nil && ss != nil {
			return nil, errSignedIn
		}
		// Say in the log what most likely happened.
		if m.flows.any(r) {
			return nil, fmt.Errorf("%w: this login's flow cookie is gone: the link was used already, the login took over %s, or more than %d logins were started at once", ErrLoginState, flowLifetime, maxFlows)
		}
		return nil, fmt.Errorf("%w: no login in progress in this browser: did the login start on another host than %s (RedirectURL's)? Or the browser keeps no cookies", ErrLoginState, m.origin)
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
	m.metrics.count(EventLogin, ss.user.Provider)
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
		m.page(w, r.WithContext(context.WithValue(r.Context(), formActionKey{}, m.logoutFormAction)), &Page{
			Kind:    "logout",
			Status:  http.StatusOK,
			Title:   "Sign out of this site?",
			Message: "Another site sent you here to sign you out. Sign out only if you meant to.",
			Form:    &PageForm{Action: m.logoutPath, Label: "Sign out"},
			Links:   []PageLink{{URL: "/", Label: "Cancel, stay signed in"}},
		})
		return
	}
	providerLogout, err := m.Logout(w, r)
	if err != nil {
		// The cookie is kept: ask to retry.
		w.Header().Set("Retry-After", "5")
		m.fail(w, r, "logout", err)
		return
	}
	http.Redirect(w, r, cmp.Or(providerLogout, m.postLogout), http.StatusSeeOther)
}

// Logout ends the request's session, as the logout route does, without
// writing a response: it deletes the session (from the Store too) and its
// cookies, and revokes its refresh token where the provider offers
// revocation. It returns the provider's logout URL (RP-Initiated Logout,
// with Config.PostLogoutURL to come back to), where the browser should go
// next to end its session at the provider too, or "" when the provider has
// none. Call it before writing the response; a request without a session
// is not an error. When the Store cannot delete the session, it returns an
// error wrapping ErrStoreUnavailable and keeps the cookie: clearing it
// would leave the stored session alive, and a copy of the cookie with it.
//
// Only call it for a request from your own pages: the logout route checks
// that another site did not send it (Sec-Fetch-Site), and so should you.
func (m *Middleware) Logout(w http.ResponseWriter, r *http.Request) (providerLogoutURL string, err error) {
	ss, err := m.sessions.lookup(r)
	switch {
	case err == nil:
		if err := m.sessions.forget(r.Context(), ss); err != nil {
			return "", err
		}
	case errors.Is(err, ErrStoreUnavailable):
		return "", err
	default:
		ss = nil // no session, or not one of ours: clear what there is
	}
	if st, ok := r.Context().Value(ctxKey{}).(*reqState); ok && st.m == m {
		st.ss.Store(nil) // the rest of this request is anonymous
		st.setCookie(nil)
	} else {
		_ = m.sessions.write(w, r, nil)
	}
	if ss == nil {
		return "", nil
	}
	s := ss.full()
	m.log.InfoContext(r.Context(), "auth: signed out", sessionAttrs(ss))
	m.metrics.count(EventLogout, s.provider)
	if p := m.providers.byName(s.provider); p != nil {
		p.revoke(r.Context(), s)
		return p.logoutURL(s, m.postLogout), nil
	}
	return "", nil
}

// LoginURL returns the path that starts a login and comes back to next
// (a path on this site; anything else comes back to "/"), with next
// escaped: for a "Sign in" link.
func (m *Middleware) LoginURL(next string) string {
	return m.loginPath + "?next=" + url.QueryEscape(cleanReturn(next))
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
	m.fail(w, r, op, fmt.Errorf("%w: %s", errMethod, r.Method))
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
