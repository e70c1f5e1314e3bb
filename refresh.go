package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/singleflight"
)

// This file keeps access tokens fresh: the whole answer to "how does
// refresh work?".
//
// When: a request whose access token has expired, or will within the
// leeway (capped at half the token's lifetime, so short-lived tokens are
// not refreshed on every request), is refreshed before its handler runs,
// so the new cookie goes out with the response headers. The client that
// Client returns refreshes the same way in the middle of a handler; its
// new cookie is set when the handler first writes (request.go).
//
// Once: concurrent refreshes of one session share one grant in a process
// (singleflight, keyed by a hash of the refresh token). Where a Store
// shares sessions between processes and offers a RefreshLocker, the grant
// is made under the session's lock: a process that waited for the lock
// finds the session already refreshed and uses it. The lock is released
// only once the refreshed session is saved; if saving fails, the saving
// is retried in the background, holding the lock, so that no process can
// refresh from the stale session (with a rotating provider that would
// reuse a spent refresh token and end the session).
//
// Grace: for RefreshGrace, a request that still carries the cookie from
// before the refresh gets the refreshed session without a second grant
// (with its own Set-Cookie): that keeps users signed in with providers that
// rotate refresh tokens and reject reuse. A grace entry is never handed
// out once its sign-in has ended (logout), beyond its session's lifetime,
// or when its own token is due again.
//
// Failures: the provider rejecting the refresh token (invalid_grant) ends
// the session (ErrSessionEnded); the provider being down keeps it, the
// request goes on with the old token, and retries back off from 1 s to a
// minute. A refreshed ID token is verified as at login, and must name the
// same user (the provider kind's reidentify).

// refresher owns refreshing sessions.
type refresher struct {
	leeway    time.Duration
	grace     time.Duration // 0: no grace entries at all
	sessions  *sessions
	providers providers
	now       func() time.Time
	log       *slog.Logger

	metrics counter

	flights singleflight.Group
	graced  *boundedCache[string, *sessionState] // refresh token hash -> refreshed session
	backoff *boundedCache[string, backoffEntry]  // refresh token hash -> failures
}

type backoffEntry struct {
	fails   int
	retryAt time.Time
}

func newRefresher(leeway, grace time.Duration, s *sessions, ps providers, now func() time.Time, log *slog.Logger) *refresher {
	return &refresher{
		leeway: leeway, grace: grace, sessions: s, providers: ps, now: now, log: log,
		graced:  newBoundedCache[string, *sessionState](10000, 64<<20),
		backoff: newBoundedCache[string, backoffEntry](10000, 1<<20),
	}
}

// due reports whether s has a refresh token and an access token that
// expires within the leeway.
func (f *refresher) due(s *session, now time.Time) bool {
	if !s.canRefresh() || s.expiry == 0 {
		return false
	}
	lead := int64(f.leeway / time.Second)
	if life := s.expiry - s.tokenTime; life > 0 && lead > life/2 {
		lead = life / 2
	}
	return now.Unix() >= s.expiry-lead
}

// refresh returns the refreshed state of ss. On a transient failure (the
// provider or the Store is down, or answers garbage) it returns ss itself
// and the error, and the request goes on with the old token;
// ErrSessionEnded means the session is over.
func (f *refresher) refresh(ctx context.Context, ss *sessionState) (*sessionState, error) {
	key := tokenKey(ss.full().refresh)
	now := f.now()
	if ns := f.fromGrace(key, now); ns != nil {
		f.log.DebugContext(ctx, "auth: refreshed token reused from grace cache", sessionAttrs(ns))
		f.metrics.count(EventRefreshReused, ns.user.Provider)
		return ns, nil
	}
	if e, ok := f.backoff.get(key, now); ok && now.Before(e.retryAt) {
		return ss, fmt.Errorf("auth: refresh: %w (retry after %s)", ErrProviderUnavailable, e.retryAt.UTC().Format(time.RFC3339))
	}
	v, err, _ := f.flights.Do(key, func() (any, error) {
		if ns := f.fromGrace(key, f.now()); ns != nil {
			return ns, nil
		}
		// One request's cancellation must not fail the others sharing
		// this refresh.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		ns, err := f.grant(fctx, ss)
		switch {
		case err == nil:
			f.backoff.delete(key)
			f.remember(key, ns)
			f.log.InfoContext(ctx, "auth: token refreshed", sessionAttrs(ns))
		case errors.Is(err, ErrSessionEnded):
			f.metrics.count(EventSessionEnded, ss.user.Provider)
			f.log.WarnContext(ctx, "auth: refresh rejected; session ended", sessionAttrs(ss), "error", err)
		default:
			f.metrics.count(EventRefreshFailed, ss.user.Provider)
			wait := f.failed(key)
			f.log.ErrorContext(ctx, "auth: refresh failed; keeping the session", sessionAttrs(ss), "error", err, "retry_in", wait)
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

// grant refreshes ss at its provider, under the session's refresh lock
// where there is one, and saves the result.
func (f *refresher) grant(ctx context.Context, ss *sessionState) (*sessionState, error) {
	old := ss.full()
	p := f.providers.byName(old.provider)
	if p == nil {
		return nil, fmt.Errorf("%w: unknown provider %q", ErrSessionEnded, old.provider)
	}
	unlock, newer, err := f.sessions.lockRefresh(ctx, ss)
	if err != nil {
		return nil, err
	}
	if newer != nil {
		unlock()
		f.metrics.count(EventRefreshReused, newer.user.Provider)
		return newer, nil // another process refreshed it already
	}
	tok, err := p.refresh(ctx, old.refresh)
	if err != nil {
		unlock()
		return nil, err
	}
	s := *old
	s.setTokens(tok, f.now())
	if err := p.kind.reidentify(ctx, p, tok, ss, &s); err != nil {
		unlock()
		return nil, err
	}
	f.metrics.count(EventRefresh, p.name)
	ns, err := f.sessions.save(ctx, &s, ss.id)
	switch {
	case err == nil:
		unlock()
		return ns, nil
	case ns == nil || errors.Is(err, ErrSessionEnded):
		unlock()
		return nil, err
	}
	// The provider issued new tokens (and, rotating, retired the old
	// refresh token), but the Store could not keep them. They must not be
	// lost: the grace cache keeps them for this process's requests, and
	// the save is retried in the background, still holding the lock, so
	// that no other process refreshes from the stale session meanwhile.
	f.log.ErrorContext(ctx, "auth: refreshed session not stored; kept in memory, saving again", sessionAttrs(ns), "error", err)
	go f.saveLater(&s, ns, unlock)
	return ns, nil
}

// saveLater retries saving a refreshed session whose save failed, for up
// to a minute, then releases the refresh lock.
func (f *refresher) saveLater(s *session, ns *sessionState, unlock func()) {
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		select {
		case <-ctx.Done():
			f.log.Error("auth: refreshed session could not be stored", sessionAttrs(ns))
			return
		case <-time.After(wait):
		}
		_, err := f.sessions.save(ctx, s, ns.id)
		if err == nil || errors.Is(err, ErrSessionEnded) {
			return
		}
	}
}

// fromGrace returns the session that refreshing the token of key produced,
// if it is within the grace period, its sign-in has not ended, and its own
// token is not due (then it is of no use: refresh again).
func (f *refresher) fromGrace(key string, now time.Time) *sessionState {
	ns, ok := f.graced.get(key, now)
	if !ok {
		return nil
	}
	if f.sessions.hasEnded(ns, now) || !now.Before(ns.end) || f.due(ns.sess, now) {
		f.graced.delete(key)
		return nil
	}
	return ns
}

// remember keeps ns for the grace period, never beyond its session.
func (f *refresher) remember(key string, ns *sessionState) {
	now := f.now()
	if f.grace <= 0 || f.sessions.hasEnded(ns, now) {
		return
	}
	until := now.Add(f.grace)
	if ns.end.Before(until) {
		until = ns.end
	}
	f.graced.put(key, ns, ns.size(), until, now)
}

// failed records a failed refresh and returns how long to wait before the
// next try: 1 s, doubling to at most a minute.
func (f *refresher) failed(key string) time.Duration {
	now := f.now()
	e, _ := f.backoff.get(key, now)
	e.fails++
	wait := min(time.Second<<min(e.fails-1, 6), time.Minute)
	e.retryAt = now.Add(wait)
	// Remembered past retryAt, so that the next failure waits longer.
	f.backoff.put(key, e, 64, e.retryAt.Add(2*time.Minute), now)
	return wait
}

// tokenKey is the key of a refresh token in the maps above: a hash, so
// they do not hold the tokens themselves.
func tokenKey(refresh string) string {
	h := sha256.Sum256([]byte(refresh))
	return string(h[:])
}
