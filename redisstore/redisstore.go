// Package redisstore keeps Gatehouse sessions in Redis, so that the cookie
// holds only a random session ID: tokens of any size fit, logout really
// ends a session, a user can be logged out everywhere, a provider can end
// sessions by back-channel logout, and several instances of an application
// share sessions and refresh each one once.
//
//	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{"localhost:6379"}})
//	a, err := auth.New(ctx, auth.Config{
//		Issuer:                os.Getenv("AUTH_ISSUER"),
//		ClientID:              os.Getenv("AUTH_CLIENT_ID"),
//		ClientSecret:          os.Getenv("AUTH_CLIENT_SECRET"),
//		RedirectURL:           publicURL + "/auth/callback",
//		CookieSecret:          secret,
//		Store:                 redisstore.New(rdb, redisstore.Options{}),
//		BackchannelLogoutPath: "/auth/backchannel-logout", // optional
//	})
//
// It works with a single Redis, Sentinel or Cluster, through go-redis's
// [redis.UniversalClient]; the client's options (addresses, password, TLS,
// timeouts, retries) are the application's to choose. It needs no Redis
// module; it is tested with Redis 7.
//
// # Keys
//
// Every key starts with [Options.Prefix], "gatehouse:" by default. A
// session is a hash under gatehouse:{ID}:s that expires with the session
// (at the end of its absolute lifetime, not of its access token). Its ID
// is also in a set per user, gatehouse:u:PROVIDER:SUB, and per provider
// session, gatehouse:sid:PROVIDER:SID, each expiring with the last of its
// sessions. gatehouse:{ID}:lock is the session's refresh lock,
// gatehouse:{ID}:gone marks a session deleted in the last two minutes, and
// gatehouse:jti:KEY a logout token already accepted. The braces put a
// session's keys in one Cluster hash slot, so that the scripts that touch
// several of them work on Cluster too.
//
// # Failures
//
// When Redis cannot be reached, the middleware answers protected routes
// with 503 and keeps the user's cookie; the next request after Redis is
// back works again, with no restart. A session ID that Redis does not know
// (expired, deleted or flushed) makes the request anonymous.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse/auth"
	"github.com/redis/go-redis/v9"
)

// Options configures a [Store]. The zero value is ready to use.
type Options struct {
	// Prefix starts the name of every key the store writes, so that
	// several applications can share one Redis. It must not contain '{'
	// or '}', which Redis Cluster reads as a hash tag. Default
	// "gatehouse:".
	Prefix string
}

// Store is an [auth.Store] in Redis. It also implements
// [auth.SubjectDeleter], [auth.SIDDeleter] (for [auth.Middleware.EndSessions]
// and back-channel logout), [auth.RefreshLocker] (one refresh per session
// across instances) and [auth.ReplayGuard] (each logout token accepted once
// across instances). Create it with [New]; it is safe for concurrent use.
type Store struct {
	c      redis.UniversalClient
	prefix string
}

var (
	_ auth.Store          = (*Store)(nil)
	_ auth.SubjectDeleter = (*Store)(nil)
	_ auth.SIDDeleter     = (*Store)(nil)
	_ auth.RefreshLocker  = (*Store)(nil)
	_ auth.ReplayGuard    = (*Store)(nil)
)

// New returns a Store that keeps sessions in Redis through client, which
// the caller owns (and closes). It panics if opts.Prefix contains '{' or
// '}'.
func New(client redis.UniversalClient, opts Options) *Store {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = "gatehouse:"
	}
	if strings.ContainsAny(prefix, "{}") {
		panic(fmt.Sprintf("redisstore: Options.Prefix %q contains a brace", prefix))
	}
	return &Store{c: client, prefix: prefix}
}

// tombstoneTTL is how long a deleted session's ID stays marked as deleted,
// so that a refresh that raced with the deletion (it loaded the session
// before, and saves it after) cannot bring the session back. A refresh
// lasts well under this.
const tombstoneTTL = 2 * time.Minute

// Session IDs are 32 random bytes in unpadded base64url: 43 characters.
const idLen = 43

func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (s *Store) sessionKey(id string) string   { return s.prefix + "{" + id + "}:s" }
func (s *Store) tombstoneKey(id string) string { return s.prefix + "{" + id + "}:gone" }
func (s *Store) lockKey(id string) string      { return s.prefix + "{" + id + "}:lock" }

// Provider names cannot hold ':' (auth allows lowercase letters, digits,
// '-' and '_'), so these keys are unambiguous whatever sub and sid hold.
func (s *Store) subjectKey(provider, sub string) string {
	return s.prefix + "u:" + provider + ":" + sub
}

func (s *Store) sidKey(provider, sid string) string {
	return s.prefix + "sid:" + provider + ":" + sid
}

// Load implements [auth.Store]. A malformed ID is unknown, and costs no
// round trip.
func (s *Store) Load(ctx context.Context, id string) ([]byte, bool, error) {
	if !validID(id) {
		return nil, false, nil
	}
	data, err := s.c.HGet(ctx, s.sessionKey(id), "d").Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("redisstore: load session: %w", err)
	}
	return data, true, nil
}

// addIndexScript adds a session ID to an index set and makes the set live
// at least as long as that session.
var addIndexScript = redis.NewScript(`
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < tonumber(ARGV[2]) then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`)

// saveScript writes a session unless its ID was deleted a short while ago.
// KEYS: session, tombstone. ARGV: data, subject set key, sid set key, TTL
// in ms.
var saveScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then
	return 0
end
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'u', ARGV[2], 'x', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// Save implements [auth.Store]: the session expires at info.Expiry. The
// ID goes into the user's and the provider session's index sets first,
// then the data is written, so a concurrent deletion by user or by sid
// either sees the new session or makes its Save fail.
//
// Saving a session that was deleted less than two minutes ago fails with
// an error wrapping [auth.ErrSessionEnded]: a refresh that loaded the
// session before a logout cannot bring it back after.
func (s *Store) Save(ctx context.Context, id string, data []byte, info auth.SessionInfo) error {
	if !validID(id) {
		return errors.New("redisstore: save session: malformed session ID")
	}
	ttl := time.Until(info.Expiry)
	if ttl < time.Second {
		ttl = time.Second
	}
	ms := ttl.Milliseconds()
	subKey, sidKey := s.subjectKey(info.Provider, info.Subject), ""
	if info.SID != "" {
		sidKey = s.sidKey(info.Provider, info.SID)
	}
	for _, k := range []string{subKey, sidKey} {
		if k == "" {
			continue
		}
		if err := addIndexScript.Run(ctx, s.c, []string{k}, id, ms).Err(); err != nil {
			return fmt.Errorf("redisstore: save session: index: %w", err)
		}
	}
	ok, err := saveScript.Run(ctx, s.c, []string{s.sessionKey(id), s.tombstoneKey(id)}, data, subKey, sidKey, ms).Int()
	if err != nil {
		return fmt.Errorf("redisstore: save session: %w", err)
	}
	if ok == 0 {
		return fmt.Errorf("redisstore: save session: it was deleted: %w", auth.ErrSessionEnded)
	}
	return nil
}

// deleteScript deletes a session, marks its ID as deleted, and returns
// whether it existed and the keys of its index sets. KEYS: session,
// tombstone. ARGV: tombstone TTL in ms.
var deleteScript = redis.NewScript(`
local idx = redis.call('HMGET', KEYS[1], 'u', 'x')
local n = redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
return {n, idx[1] or '', idx[2] or ''}
`)

// Delete implements [auth.Store]. It also removes the ID from its index
// sets, and marks it as deleted for a while (see [Store.Save]).
func (s *Store) Delete(ctx context.Context, id string) error {
	_, err := s.delete(ctx, id)
	return err
}

// delete deletes one session and reports whether it existed.
func (s *Store) delete(ctx context.Context, id string) (bool, error) {
	if !validID(id) {
		return false, nil
	}
	res, err := deleteScript.Run(ctx, s.c, []string{s.sessionKey(id), s.tombstoneKey(id)}, tombstoneTTL.Milliseconds()).Slice()
	if err != nil {
		return false, fmt.Errorf("redisstore: delete session: %w", err)
	}
	if len(res) != 3 {
		return false, fmt.Errorf("redisstore: delete session: unexpected reply %v", res)
	}
	existed, _ := res[0].(int64)
	var sets []string
	for _, v := range res[1:] {
		if k, _ := v.(string); k != "" {
			sets = append(sets, k)
		}
	}
	if len(sets) > 0 {
		// Best effort: the session itself is gone, and an ID left in a
		// set is harmless and expires with the set, so a failure here
		// must not fail the logout.
		_, _ = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range sets {
				p.SRem(ctx, k, id)
			}
			return nil
		})
	}
	return existed == 1, nil
}

// DeleteSubject implements [auth.SubjectDeleter]: it deletes every session
// of the user sub signed in by provider, and returns how many existed.
func (s *Store) DeleteSubject(ctx context.Context, provider, sub string) (int, error) {
	return s.deleteIndexed(ctx, s.subjectKey(provider, sub))
}

// DeleteSID implements [auth.SIDDeleter]: it deletes every session of the
// provider session sid, and returns how many existed.
func (s *Store) DeleteSID(ctx context.Context, provider, sid string) (int, error) {
	return s.deleteIndexed(ctx, s.sidKey(provider, sid))
}

// deleteIndexed deletes the sessions whose IDs are in the set key.
func (s *Store) deleteIndexed(ctx context.Context, key string) (int, error) {
	ids, err := s.c.SMembers(ctx, key).Result()
	if err != nil {
		return 0, fmt.Errorf("redisstore: delete sessions: %w", err)
	}
	n := 0
	for _, id := range ids {
		existed, err := s.delete(ctx, id)
		if err != nil {
			return n, err
		}
		if existed {
			n++
		}
	}
	if len(ids) > 0 {
		// Not DEL: a session saved meanwhile keeps its place in the set.
		members := make([]any, len(ids))
		for i, id := range ids {
			members[i] = id
		}
		if err := s.c.SRem(ctx, key, members...).Err(); err != nil {
			return n, fmt.Errorf("redisstore: delete sessions: index: %w", err)
		}
	}
	return n, nil
}

// unlockScript deletes the lock only if this holder still has it.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	return redis.call('DEL', KEYS[1])
end
return 0
`)

// LockRefresh implements [auth.RefreshLocker] with SET NX PX: it waits
// (polling, from 5 ms up to 50 ms apart) while another process holds the
// lock, for at most ttl. The lock expires after ttl if its holder dies;
// unlock releases it only if it is still this holder's.
func (s *Store) LockRefresh(ctx context.Context, id string, ttl time.Duration) (func(), error) {
	if !validID(id) {
		return nil, errors.New("redisstore: lock: malformed session ID")
	}
	key := s.lockKey(id)
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	deadline := time.Now().Add(ttl)
	wait := 5 * time.Millisecond
	for {
		ok, err := s.c.SetNX(ctx, key, token, ttl).Result()
		if err != nil {
			return nil, fmt.Errorf("redisstore: lock: %w", err)
		}
		if ok {
			return func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = unlockScript.Run(ctx, s.c, []string{key}, token).Err() // else it expires
			}, nil
		}
		if time.Now().Add(wait).After(deadline) {
			return nil, errors.New("redisstore: lock: another process held it too long")
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("redisstore: lock: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// ClaimTokenID implements [auth.ReplayGuard] with SET NX: the key lives
// until expiry.
func (s *Store) ClaimTokenID(ctx context.Context, key string, expiry time.Time) (bool, error) {
	ttl := time.Until(expiry)
	if ttl < time.Second {
		ttl = time.Second
	}
	ok, err := s.c.SetNX(ctx, s.prefix+"jti:"+key, 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: claim token ID: %w", err)
	}
	return ok, nil
}

// ReleaseTokenID implements [auth.ReplayGuard].
func (s *Store) ReleaseTokenID(ctx context.Context, key string) error {
	if err := s.c.Del(ctx, s.prefix+"jti:"+key).Err(); err != nil {
		return fmt.Errorf("redisstore: release token ID: %w", err)
	}
	return nil
}
