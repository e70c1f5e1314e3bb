package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"golang.org/x/oauth2"
)

// This file keeps access tokens fresh. A request whose token has expired,
// or will within the leeway, is refreshed before its handler runs, so the
// new cookie goes out with the response headers. Refreshes of one session
// are shared (one grant per session at a time in a process), and a grace
// cache maps the old refresh token to the result for a short while, so
// requests still carrying the old cookie get the new token without a second
// grant: that is what keeps users signed in with providers that rotate
// refresh tokens and reject reuse.
//
// The client from Client refreshes through the same path. If it refreshes in
// the middle of a handler, the new cookie is set when the handler first
// writes (or returns); if the handler had already written its headers, the
// grace cache carries the new token to the browser's next request.

// refreshDue reports whether s has a refresh token and an access token that
// expires within the leeway. The leeway is capped at half the token's
// lifetime, so short-lived tokens are not refreshed on every request.
func (m *Middleware) refreshDue(s *session, now time.Time) bool {
	if !s.canRefresh() || s.expiry == 0 {
		return false
	}
	lead := int64(m.leeway / time.Second)
	if life := s.expiry - s.tokenTime; life > 0 && lead > life/2 {
		lead = life / 2
	}
	return now.Unix() >= s.expiry-lead
}

// refresh returns the refreshed state of ss. On a transient failure (the
// provider is down or answers garbage) it returns ss itself and the error,
// and the request goes on with the old token; ErrSessionEnded means the
// provider rejected the refresh token.
func (m *Middleware) refresh(ctx context.Context, ss *sessionState) (*sessionState, error) {
	key := tokenKey(ss.full().refresh)
	now := m.now()
	if ns := m.graced.get(m, key, now); ns != nil {
		m.log.DebugContext(ctx, "auth: refreshed token reused from grace cache", sessionAttrs(ns))
		return ns, nil
	}
	if until, ok := m.graced.backingOff(key, now); ok {
		return ss, fmt.Errorf("auth: refresh: %w (retry after %s)", ErrProviderUnavailable, until.UTC().Format(time.RFC3339))
	}
	v, err, _ := m.flights.Do(key, func() (any, error) {
		if ns := m.graced.get(m, key, m.now()); ns != nil {
			return ns, nil
		}
		// One request's cancellation must not fail the others sharing
		// this refresh.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		ns, err := m.doRefresh(fctx, ss)
		switch {
		case err == nil:
			m.graced.put(key, ns, m.now())
			m.log.InfoContext(ctx, "auth: token refreshed", sessionAttrs(ns))
		case errors.Is(err, ErrSessionEnded):
			m.graced.endFamily(ss, m.now())
			m.log.WarnContext(ctx, "auth: refresh rejected; session ended", sessionAttrs(ss), "error", err)
		default:
			wait := m.graced.failed(key, m.now())
			m.log.ErrorContext(ctx, "auth: refresh failed; keeping the session", sessionAttrs(ss), "error", err, "retry_in", wait)
		}
		return ns, err
	})
	if err != nil {
		if errors.Is(err, ErrSessionEnded) {
			return nil, err
		}
		return ss, err
	}
	return v.(*sessionState), nil
}

func (m *Middleware) doRefresh(ctx context.Context, ss *sessionState) (*sessionState, error) {
	old := ss.full()
	p := m.providerByName(old.provider)
	if p == nil {
		return nil, fmt.Errorf("%w: unknown provider %q", ErrSessionEnded, old.provider)
	}
	if l, ok := m.store.(RefreshLocker); ok && ss.id != "" {
		// Several processes share this session: one refreshes, the
		// others wait for the lock and find its result in the Store.
		unlock, err := l.LockRefresh(ctx, ss.id, 20*time.Second)
		if err != nil {
			return nil, fmt.Errorf("%w: lock: %w", ErrStoreUnavailable, err)
		}
		defer unlock()
		data, found, err := m.store.Load(ctx, ss.id)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
		case !found:
			return nil, fmt.Errorf("%w: session deleted", ErrSessionEnded)
		}
		cur, err := unmarshalSession(data)
		if err == nil {
			cur.unpack()
		}
		if err == nil && (cur.refresh != old.refresh || cur.tokenTime > old.tokenTime) {
			ns, err := m.newState(cur, ss.id)
			if err == nil {
				ns.value = ss.value // the same ID, so the same cookie
				return ns, nil      // another process refreshed it already
			}
		}
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, m.client)
	// An expired token with only the refresh token makes TokenSource run
	// the refresh_token grant.
	tok, err := p.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: old.refresh, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		err = p.tokenError("refresh", err) // with the provider's error codes mapped to RFC 6749's
		var pe *ProviderError
		if errors.As(err, &pe) && pe.Code == "invalid_grant" {
			return nil, fmt.Errorf("%w: %w", ErrSessionEnded, err)
		}
		return nil, err
	}
	now := m.now()
	s := *old
	s.tokenTime = now.Unix()
	s.access = tok.AccessToken
	s.tokenType = tokenType(tok)
	s.expiry = expiryOf(tok, now)
	if tok.RefreshToken != "" {
		s.refresh = tok.RefreshToken
	}
	// A plain OAuth 2.0 provider has no verifier: any id_token it might
	// send is not OpenID Connect, and the identity stays as it is.
	if raw, _ := tok.Extra("id_token").(string); raw != "" && p.keys != nil {
		if err := m.refreshedIDToken(ctx, p, ss, raw, &s); err != nil {
			return nil, err
		}
	}
	ns, err := m.save(ctx, &s, ss.id)
	if err != nil && ns != nil && !errors.Is(err, ErrSessionEnded) {
		// The provider issued new tokens (and, rotating, retired the old
		// refresh token), but the Store could not keep them. Losing them
		// would end the session at the next refresh; the grace cache
		// keeps them for the requests that follow.
		m.log.ErrorContext(ctx, "auth: refreshed session not stored; kept in memory", sessionAttrs(ns), "error", err)
		return ns, nil
	}
	return ns, err
}

// RefreshLocker is implemented by a [Store] shared by several processes,
// so that a session is refreshed once even when two processes find it due
// at the same moment (a provider that rotates refresh tokens would reject
// the second grant and end the session).
type RefreshLocker interface {
	// LockRefresh takes the lock for session id, waiting while another
	// holder has it, for at most ttl (the lock frees itself after ttl if
	// its holder dies). It returns the function that releases it. An
	// error means the lock could not be taken.
	LockRefresh(ctx context.Context, id string, ttl time.Duration) (unlock func(), err error)
}

// refreshedIDToken checks the ID token of a refresh response as at login
// (but for the nonce), with the same iss, sub and aud as the original
// (OpenID Connect Core 12.2), and puts it in s. A token that fails ends
// the session. When the provider's keys cannot be fetched, the new access
// and refresh tokens, which came straight from the token endpoint, are
// still kept (a rotated refresh token must not be lost), but the unverified
// ID token is not: s keeps the previous one and its identity.
func (m *Middleware) refreshedIDToken(ctx context.Context, p *provider, ss *sessionState, raw string, s *session) error {
	idt, _, err := m.verifyIDToken(ctx, p, raw, "")
	if errors.Is(err, errKeysUnavailable) || errors.Is(err, errUnknownKey) {
		// The token came straight from the provider's token endpoint,
		// signed with a key we cannot get right now (a rotation whose
		// keys are not fetched yet, or not published yet): not a reason
		// to end the session. The next refresh verifies a new one.
		m.log.WarnContext(ctx, "auth: provider keys unavailable; refreshed ID token not used, identity kept", sessionAttrs(ss), "error", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: refreshed ID token: %w", ErrSessionEnded, err)
	}
	var orig struct {
		Iss string       `json:"iss"`
		Sub string       `json:"sub"`
		Aud oidcAudience `json:"aud"`
	}
	if err := ss.user.DecodeClaims(&orig); err != nil {
		return fmt.Errorf("%w: original claims: %w", ErrSessionEnded, err)
	}
	if idt.Issuer != orig.Iss || idt.Subject != orig.Sub || !sameSet(idt.Audience, orig.Aud) {
		return fmt.Errorf("%w: refreshed ID token names another user or audience", ErrSessionEnded)
	}
	s.idToken = raw // save decodes its payload back from the stored bytes
	return nil
}

// oidcAudience decodes "aud", a string or an array of strings.
type oidcAudience []string

func (a *oidcAudience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*a = []string{jsonString(string(b))}
		return nil
	}
	var list []string
	err := json.Unmarshal(b, &list)
	*a = list
	return err
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// expiryOf returns when t expires, in unix seconds (0: unknown), counted
// by our clock from expires_in when the provider sent it.
func expiryOf(t *oauth2.Token, now time.Time) int64 {
	switch {
	case t.ExpiresIn > 0:
		return now.Unix() + t.ExpiresIn
	case !t.Expiry.IsZero():
		return t.Expiry.Unix()
	}
	return 0
}

func tokenType(t *oauth2.Token) string {
	if t.TokenType == "" || http.CanonicalHeaderKey(t.TokenType) == "Bearer" {
		return ""
	}
	return t.TokenType
}

// tokenKey is the key of a refresh token in the maps below: a hash, so the
// maps do not hold the tokens themselves.
func tokenKey(refresh string) string {
	h := sha256.Sum256([]byte(refresh))
	return string(h[:])
}

// graceCache remembers, per old refresh token, the session a refresh
// produced (for RefreshGrace; nothing when it is off), which tokens are
// backing off after a failed refresh, and which sign-ins (session
// families) ended recently: a grace entry of an ended sign-in is never
// handed out, so a copy of a pre-refresh cookie cannot come back after
// logout. All three are bounded in entries and bytes.
type graceCache struct {
	grace   time.Duration
	entries *boundedCache[string, *sessionState]
	backoff *boundedCache[string, backoffEntry]
	ended   *boundedCache[string, struct{}]
}

type backoffEntry struct {
	fails   int
	retryAt time.Time
}

func newGraceCache(grace time.Duration) *graceCache {
	return &graceCache{
		grace:   grace,
		entries: newBoundedCache[string, *sessionState](10000, 64<<20),
		backoff: newBoundedCache[string, backoffEntry](10000, 1<<20),
		ended:   newBoundedCache[string, struct{}](10000, 1<<20),
	}
}

// get returns the session that refreshing the token of key produced, if
// it is still within the grace period, its sign-in has not ended, and its
// own token is not due (then it is no use: refresh again).
func (g *graceCache) get(m *Middleware, key string, now time.Time) *sessionState {
	ns, ok := g.entries.get(key, now)
	if !ok {
		return nil
	}
	if _, ended := g.ended.get(ns.sess.family, now); ended || !now.Before(ns.end) || m.refreshDue(ns.sess, now) {
		g.entries.delete(key)
		return nil
	}
	return ns
}

func (g *graceCache) put(key string, ns *sessionState, now time.Time) {
	g.backoff.delete(key)
	if _, ended := g.ended.get(ns.sess.family, now); ended {
		return
	}
	until := now.Add(g.grace)
	if ns.end.Before(until) {
		until = ns.end // never beyond the session it hands out
	}
	g.entries.put(key, ns, ns.size(), until, now)
}

// endFamily records that the sign-in of ss has ended: no grace entry of
// it is handed out from now on.
func (g *graceCache) endFamily(ss *sessionState, now time.Time) {
	if ss == nil || g.grace <= 0 {
		return
	}
	g.ended.put(ss.sess.family, struct{}{}, 64, now.Add(g.grace), now)
}

// failed records a failed refresh and returns how long to wait before the
// next try: 1 s, doubling to at most a minute.
func (g *graceCache) failed(key string, now time.Time) time.Duration {
	e, _ := g.backoff.get(key, now)
	e.fails++
	wait := min(time.Second<<min(e.fails-1, 6), time.Minute)
	e.retryAt = now.Add(wait)
	// Remembered past retryAt, so that the next failure waits longer.
	g.backoff.put(key, e, 64, e.retryAt.Add(2*time.Minute), now)
	return wait
}

func (g *graceCache) backingOff(key string, now time.Time) (time.Time, bool) {
	e, ok := g.backoff.get(key, now)
	return e.retryAt, ok && now.Before(e.retryAt)
}

// httpClient returns the request's auto-refreshing client.
func (st *reqState) httpClient() *http.Client {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.client == nil {
		base := st.m.client.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		st.client = &http.Client{
			Transport:     &bearerTransport{st: st, base: base},
			Timeout:       st.m.client.Timeout,
			CheckRedirect: st.m.checkRedirect,
		}
	}
	return st.client
}

// checkRedirect stops Client at a redirect to another origin: the
// transport adds the token to every request it sends, so following would
// hand the user's token to whatever host the redirect names. The redirect
// response is returned to the caller instead.
func (m *Middleware) checkRedirect(req *http.Request, via []*http.Request) error {
	if first := via[0].URL; req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return http.ErrUseLastResponse
	}
	if m.client.CheckRedirect != nil {
		return m.client.CheckRedirect(req, via)
	}
	if len(via) >= 10 {
		return errors.New("auth: stopped after 10 redirects")
	}
	return nil
}

// bearerTransport sends the session's access token, refreshing it first
// when it is due.
type bearerTransport struct {
	st   *reqState
	base http.RoundTripper
}

func (t *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	st := t.st
	ss := st.ss.Load()
	if ss == nil {
		if r.Body != nil {
			r.Body.Close()
		}
		return nil, ErrNoSession
	}
	m := st.m
	if m.refreshDue(ss.sess, m.now()) {
		ns, err := m.refresh(r.Context(), ss)
		switch {
		case errors.Is(err, ErrSessionEnded):
			st.endedMidRequest()
			if r.Body != nil {
				r.Body.Close()
			}
			return nil, err
		case err == nil && ns != ss:
			st.refreshed(ns)
			ss = ns
		}
	}
	r2 := r.Clone(r.Context())
	ss.oauthToken().SetAuthHeader(r2)
	return t.base.RoundTrip(r2)
}
