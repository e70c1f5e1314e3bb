package auth

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file is the server side of sessions: the Store interface an
// application plugs in (redisstore, MemoryStore, or its own, tested with
// storetest), the optional interfaces that add "log out everywhere",
// back-channel logout and cross-process refresh locking, and storeBackend,
// the sessions backend that keeps a session in a Store and only its ID in
// the cookie.

// Store keeps sessions on the server side, so the cookie carries only a
// random 256-bit session ID (itself authenticated and encrypted). Use it
// when tokens are too large for cookies or sessions must be revocable.
// Implementations must be safe for concurrent use; the storetest package
// checks one in a line.
type Store interface {
	// Load returns the data saved under id. It returns found == false and a
	// nil error for an unknown or expired id; an error means the store
	// could not answer (the user's cookie is then kept).
	Load(ctx context.Context, id string) (data []byte, found bool, err error)
	// Save stores data under id until info.Expiry, replacing any earlier
	// data. An error wrapping ErrSessionEnded says the session must not
	// be written back (it was deleted meanwhile, say by a logout racing a
	// refresh) and ends it; any other error counts as the Store being
	// unavailable.
	Save(ctx context.Context, id string, data []byte, info SessionInfo) error
	// Delete removes the session id. An unknown id is not an error.
	Delete(ctx context.Context, id string) error
}

// SessionInfo describes a stored session, so a Store can find the sessions
// of one user (log out everywhere) or of one provider session (back-channel
// logout).
type SessionInfo struct {
	Provider string    // provider name ("" for the single configured provider)
	Subject  string    // the user's sub
	SID      string    // the provider's session ID (sid claim), if any
	Expiry   time.Time // end of the session's absolute lifetime
}

// SubjectDeleter is implemented by a [Store] that can end every session of
// one user, for [Middleware.EndSessions] and back-channel logout.
type SubjectDeleter interface {
	// DeleteSubject deletes every session whose SessionInfo has this
	// Provider and Subject, and returns how many it deleted. A session
	// saved concurrently may survive; one deleted must stay deleted.
	DeleteSubject(ctx context.Context, provider, sub string) (int, error)
}

// SIDDeleter is implemented by a [Store] that can end the sessions of one
// provider session (the ID token's sid claim), for back-channel logout.
type SIDDeleter interface {
	// DeleteSID deletes every session whose SessionInfo has this Provider
	// and SID, and returns how many it deleted.
	DeleteSID(ctx context.Context, provider, sid string) (int, error)
}

// RefreshLocker is implemented by a [Store] shared by several processes,
// so that a session is refreshed once even when two processes find it due
// at the same moment (a provider that rotates refresh tokens would reject
// the second grant and end the session).
type RefreshLocker interface {
	// LockRefresh takes the lock for session id, waiting while another
	// holder has it, and returns the function that releases it. It must
	// return promptly with an error when ctx ends; an error means the
	// lock could not be taken. The lock stays held until unlock is called
	// while its holder lives (an implementation whose locks expire renews
	// them), and a holder that dies without unlocking blocks the session
	// for at most ttl. unlock may be called more than once.
	//
	// The middleware releases the lock only once the refreshed session is
	// saved: if saving fails, it keeps retrying for a while, holding the
	// lock, so that no other process refreshes from the session that the
	// provider's grant made stale.
	LockRefresh(ctx context.Context, id string, ttl time.Duration) (unlock func(), err error)
}

// ReplayGuard is implemented by a [Store] shared by several processes, so
// that each logout token (by its jti) is accepted once across all of
// them. Without it, each process remembers in memory the tokens it
// accepted.
type ReplayGuard interface {
	// ClaimTokenID records key until expiry and reports whether it is
	// new: false means key was claimed before and has not expired.
	ClaimTokenID(ctx context.Context, key string, expiry time.Time) (first bool, err error)
	// ReleaseTokenID forgets key, so the token can be sent again: the
	// logout it carried failed.
	ReleaseTokenID(ctx context.Context, key string) error
}

// Refresh locks: short, so that a process that dies holding one blocks
// its session for a few seconds only (the Store renews a live holder's),
// and waited for a little, so that requests never hang on one.
const (
	refreshLockTTL  = 5 * time.Second
	refreshLockWait = 3 * time.Second
)

// errUnknownSession: the cookie names a session the Store does not have
// (expired, deleted, or never there).
var errUnknownSession = errors.New("auth: unknown session id")

// storeBackend keeps sessions in a Store; the cookie holds the ID.
type storeBackend struct {
	store   Store
	locker  RefreshLocker // nil when the Store has no lock
	metrics counter
}

func newStoreBackend(s Store, metrics counter) *storeBackend {
	l, _ := s.(RefreshLocker)
	return &storeBackend{store: s, locker: l, metrics: metrics}
}

// unavailable counts and wraps a failure of the Store.
func (b *storeBackend) unavailable(format string, err error) error {
	b.metrics.count(EventStoreError, "")
	return fmt.Errorf("%w: "+format, ErrStoreUnavailable, err)
}

func (b *storeBackend) open(ctx context.Context, sealed []byte) ([]byte, string, error) {
	id := string(sealed)
	data, found, err := b.store.Load(ctx, id)
	switch {
	case err != nil:
		return nil, "", b.unavailable("%w", err)
	case !found:
		return nil, "", errUnknownSession
	}
	return data, id, nil
}

func (b *storeBackend) save(ctx context.Context, id string, data []byte, info SessionInfo) ([]byte, string, error) {
	if id == "" {
		id = randomString()
	}
	if err := b.store.Save(ctx, id, data, info); err != nil {
		if errors.Is(err, ErrSessionEnded) {
			return []byte(id), id, err
		}
		return []byte(id), id, b.unavailable("%w", err)
	}
	return []byte(id), id, nil
}

func (b *storeBackend) delete(ctx context.Context, id string) error {
	if err := b.store.Delete(ctx, id); err != nil {
		return b.unavailable("%w", err)
	}
	return nil
}

func (b *storeBackend) lockRefresh(ctx context.Context, id string) (func(), []byte, error) {
	if b.locker == nil {
		return func() {}, nil, nil
	}
	wctx, cancel := context.WithTimeout(ctx, refreshLockWait)
	defer cancel()
	unlock, err := b.locker.LockRefresh(wctx, id, refreshLockTTL)
	if err != nil {
		return nil, nil, b.unavailable("lock: %w", err)
	}
	data, found, err := b.store.Load(ctx, id)
	switch {
	case err != nil:
		unlock()
		return nil, nil, b.unavailable("%w", err)
	case !found:
		unlock()
		return nil, nil, fmt.Errorf("%w: session deleted", ErrSessionEnded)
	}
	return unlock, data, nil
}

// Sessions in a Store are not cached, so that ending one takes effect at
// once on every instance.
func (b *storeBackend) cached() bool { return false }
