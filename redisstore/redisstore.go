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
// module; it is tested with Redis 7, standalone, under Sentinel (a master,
// a replica, three sentinels) and as a Cluster (three masters with a
// replica each), whose masters the tests kill under traffic.
//
// # Client options
//
// Short timeouts make a request that meets an unreachable Redis answer 503
// within about a second rather than hang for go-redis's defaults (5 s to
// dial, 3 s to read, three retries); one dial attempt rather than five
// makes a dead node cost a refused connection, not half a second, per try
// (with it, requests that met a killed master answered 503 within 0.35 s
// in the tests, against 1 s without); and ContextTimeoutEnabled bounds each
// command by the request's own deadline:
//
//	redis.NewUniversalClient(&redis.UniversalOptions{
//		Addrs:                 addrs, // several for Cluster; with MasterName, the sentinels
//		MasterName:            masterName, // Sentinel only
//		DialTimeout:           time.Second,
//		ReadTimeout:           500 * time.Millisecond,
//		WriteTimeout:          500 * time.Millisecond,
//		DialerRetries:         1,
//		ContextTimeoutEnabled: true,
//	})
//
// Failover needs nothing more. go-redis's Sentinel client asks the
// sentinels for the master at every new connection and drops its
// connections when they announce a new one. Its Cluster client, left
// alone, keeps dialling a dead master until a node answers MOVED or its
// slot map is reloaded (every minute); the store reloads the map whenever a
// command fails for want of a connection, so it reaches a promoted replica
// within moments of the promotion.
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
// several of them work on Cluster too; its index sets are in other slots,
// and [Store.Save] treats them as repairable.
//
// # Failures
//
// When Redis cannot be reached, the middleware answers protected routes
// with 503 and keeps the user's cookie; the next request after Redis is
// back works again, with no restart. A session ID that Redis does not know
// (expired, deleted or flushed) makes the request anonymous. Redis
// replicates asynchronously: a master that dies can take its last writes
// with it (a session saved, a refresh token rotated, a session deleted a
// moment before), whatever the store does.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
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

	repairs  sync.Map     // session ID → struct{}: index repairs running
	nrepairs atomic.Int32 // how many
}

var (
	_ auth.Store          = (*Store)(nil)
	_ auth.SubjectDeleter = (*Store)(nil)
	_ auth.SIDDeleter     = (*Store)(nil)
	_ auth.RefreshLocker  = (*Store)(nil)
	_ auth.ReplayGuard    = (*Store)(nil)
)

// New returns a Store that keeps sessions in Redis through client, which
// the caller owns (and closes); see the package documentation for the
// client options that fail fast. On a Cluster client, the store reloads
// the client's slot map when one of its commands cannot reach a node,
// for a quick failover. It panics if opts.Prefix contains '{' or '}'.
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
// round trip. A session whose index entries are not written yet (see
// [Store.Save]) has them written in the background.
func (s *Store) Load(ctx context.Context, id string) ([]byte, bool, error) {
	if !validID(id) {
		return nil, false, nil
	}
	v, err := s.c.HMGet(ctx, s.sessionKey(id), "d", "p").Result()
	if err != nil {
		s.failed(err)
		return nil, false, fmt.Errorf("redisstore: load session: %w", err)
	}
	data, ok := v[0].(string)
	if !ok {
		return nil, false, nil
	}
	if v[1] != nil {
		s.repairLater(id)
	}
	return []byte(data), true, nil
}

// failed is told of every failed command. On a Cluster, an error that is
// not a reply from Redis (a connection refused, reset or timed out), or a
// CLUSTERDOWN reply, makes the client reload the slot map (go-redis runs
// one reload at a time, at most five a second): after a
// master dies and its replica is promoted, the client then reaches the new
// master within moments, where by itself it would keep dialling the dead
// one until a MOVED reply or its periodic reload (a minute by default).
// Sentinel clients need no help: they ask the sentinels for the master at
// every new connection, and drop their connections when the sentinels
// announce a new master.
func (s *Store) failed(err error) {
	if err == nil || errors.Is(err, redis.Nil) {
		return
	}
	cc, ok := s.c.(*redis.ClusterClient)
	if !ok {
		return
	}
	var reply redis.Error
	if errors.As(err, &reply) && !strings.HasPrefix(reply.Error(), "CLUSTERDOWN") {
		return
	}
	cc.ReloadState(context.Background())
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

// saveScript writes a session unless its ID was deleted a short while ago,
// marked as not indexed yet. KEYS: session, tombstone. ARGV: data, subject
// set key, sid set key, TTL in ms, marker.
var saveScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then
	return 0
end
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'u', ARGV[2], 'x', ARGV[3], 'p', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// indexedScript removes a session's not-indexed marker if it is still the
// one given: a later Save's marker stays until that Save indexes it.
// KEYS: session. ARGV: marker.
var indexedScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'p') == ARGV[1] then
	return redis.call('HDEL', KEYS[1], 'p')
end
return 0
`)

// pendingScript returns a session's not-indexed marker, index set keys
// and remaining TTL in ms, or nothing when it is indexed or gone. KEYS:
// session.
var pendingScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'p', 'u', 'x')
if not v[1] then
	return {}
end
return {v[1], v[2] or '', v[3] or '', redis.call('PTTL', KEYS[1])}
`)

// Save implements [auth.Store]: the session expires at info.Expiry.
//
// The session is written first, in one step, then its ID is added to the
// user's and the provider session's index sets, which [Store.DeleteSubject]
// and [Store.DeleteSID] read. On a Cluster those sets are in other slots,
// often on another node; when they cannot be written, Save succeeds all
// the same (the session itself is stored: a refresh's rotated tokens must
// not be lost for an index), and the session stays marked as not indexed:
// the store adds it to its sets in the background, retrying for a minute,
// and again at the session's next Load or Save. What remains: until then,
// DeleteSubject and DeleteSID do not see that session; and a new session
// whose Save has not returned when they start may outlive them, as if it
// had been created just after.
//
// Saving a session that was deleted less than two minutes ago fails with
// an error wrapping [auth.ErrSessionEnded]: a refresh that loaded the
// session before a logout cannot bring it back after.
func (s *Store) Save(ctx context.Context, id string, data []byte, info auth.SessionInfo) error {
	if !validID(id) {
		return errors.New("redisstore: save session: malformed session ID")
	}
	ms := time.Until(info.Expiry).Milliseconds()
	if ms <= 0 {
		// Expired already: nothing to keep, but a deleted session still
		// says so (the Store contract: it must not come back).
		ok, err := saveExpiredScript.Run(ctx, s.c, []string{s.sessionKey(id), s.tombstoneKey(id)}).Int()
		switch {
		case err != nil:
			s.failed(err)
			return fmt.Errorf("redisstore: save session: %w", err)
		case ok == 0:
			return fmt.Errorf("redisstore: save session: it was deleted: %w", auth.ErrSessionEnded)
		}
		return nil
	}
	subKey, sidKey := s.subjectKey(info.Provider, info.Subject), ""
	if info.SID != "" {
		sidKey = s.sidKey(info.Provider, info.SID)
	}
	key, marker := s.sessionKey(id), randomToken()
	ok, err := saveScript.Run(ctx, s.c, []string{key, s.tombstoneKey(id)}, data, subKey, sidKey, ms, marker).Int()
	if err != nil {
		s.failed(err)
		return fmt.Errorf("redisstore: save session: %w", err)
	}
	if ok == 0 {
		return fmt.Errorf("redisstore: save session: it was deleted: %w", auth.ErrSessionEnded)
	}
	if err := s.index(ctx, id, ms, subKey, sidKey); err != nil {
		s.repairLater(id)
		return nil
	}
	if err := indexedScript.Run(ctx, s.c, []string{key}, marker).Err(); err != nil {
		s.failed(err) // the next Load indexes it again, which is harmless
	}
	return nil
}

// saveExpiredScript saves a session whose expiry has passed: it removes
// any earlier data, unless the session was deleted (then it returns 0).
// KEYS: session, tombstone.
var saveExpiredScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)

// index adds id to the index sets, which live at least ms more.
func (s *Store) index(ctx context.Context, id string, ms int64, sets ...string) error {
	for _, k := range sets {
		if k == "" {
			continue
		}
		if err := addIndexScript.Run(ctx, s.c, []string{k}, id, ms).Err(); err != nil {
			s.failed(err)
			return err
		}
	}
	return nil
}

// Index repairs in the background: at most maxRepairs at once (more wait
// for the sessions' next Load), each retrying for repairFor.
const (
	maxRepairs = 1000
	repairFor  = time.Minute
)

// repairLater adds session id to its index sets in the background, unless
// a repair of it is running already.
func (s *Store) repairLater(id string) {
	if _, running := s.repairs.LoadOrStore(id, struct{}{}); running {
		return
	}
	if s.nrepairs.Add(1) > maxRepairs {
		s.nrepairs.Add(-1)
		s.repairs.Delete(id)
		return
	}
	go func() {
		defer func() {
			s.repairs.Delete(id)
			s.nrepairs.Add(-1)
		}()
		wait := 100 * time.Millisecond
		for deadline := time.Now().Add(repairFor); ; {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := s.repair(ctx, id)
			cancel()
			if err == nil || time.Now().After(deadline) {
				return
			}
			time.Sleep(jitter(wait))
			wait = min(2*wait, 5*time.Second)
		}
	}()
}

// repair adds session id to its index sets if it is marked as not indexed,
// and removes the mark.
func (s *Store) repair(ctx context.Context, id string) error {
	key := s.sessionKey(id)
	res, err := pendingScript.Run(ctx, s.c, []string{key}).Slice()
	if err != nil {
		s.failed(err)
		return err
	}
	if len(res) != 4 {
		return nil // indexed, or gone
	}
	marker, _ := res[0].(string)
	subKey, _ := res[1].(string)
	sidKey, _ := res[2].(string)
	ms, _ := res[3].(int64)
	if ms <= 0 {
		return nil
	}
	if err := s.index(ctx, id, ms, subKey, sidKey); err != nil {
		return err
	}
	if err := indexedScript.Run(ctx, s.c, []string{key}, marker).Err(); err != nil {
		s.failed(err)
		return err
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
		s.failed(err)
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
		s.failed(err)
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
			s.failed(err)
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

// renewScript extends the lock by ARGV[2] ms if this holder still has it,
// or takes it again if no one has (a failover can lose the last writes);
// it returns 0 when another holder has it.
var renewScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
	return redis.call('PEXPIRE', KEYS[1], ARGV[2])
elseif not v then
	redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
	return 1
end
return 0
`)

// minLockTTL is the shortest lock ttl: renewing more often than every
// few milliseconds is pointless.
const minLockTTL = 30 * time.Millisecond

// LockRefresh implements [auth.RefreshLocker] with SET NX PX and a random
// token per holder (a SET retried by the client after its reply was lost
// finds the lock this holder's).
//
// The lock is held for as long as its holder lives, however long that is:
// a goroutine extends it to ttl every ttl/3 (sooner again after a failed
// attempt), with a compare-and-set on the holder's token, until unlock. So
// a live holder does not lose it to slowness (a refresh, or a save retried
// for a minute), and a holder whose process dies blocks the session for at
// most ttl. A holder cut off from Redis for longer than ttl can lose it to
// another process; its renewals and its unlock then leave the new holder's
// lock alone. Unlock returns at once: it stops the renewals, and the lock
// is deleted in the background if it is still this holder's, within a
// round trip to Redis. If Redis cannot be reached then (a master failing
// over), the deletion is tried again until it succeeds or the lock has
// expired anyway, so that the next holder need not wait for the ttl on
// the promoted replica.
//
// A failover is an outage as far as the lock goes: no renewal reaches
// Redis until a replica is promoted, and the promoted replica has the
// lock with what was left of its ttl (at least 2/3 of it). The lock
// outlives the failover only if ttl is longer than the failover takes
// (with Sentinel, about down-after-milliseconds plus the election; with
// Cluster, cluster-node-timeout plus the election: seconds to tens of
// seconds with the defaults); else another process may take it after the
// promotion, before this holder's next renewal takes it back.
//
// While another process holds the lock, LockRefresh waits, asking Redis
// again after 5 ms, then at doubling intervals of at most 100 ms (with
// jitter), for at most ttl. It returns as soon as ctx ends, with an error
// wrapping ctx.Err(), even when Redis does not answer and the client's own
// timeouts are longer.
func (s *Store) LockRefresh(ctx context.Context, id string, ttl time.Duration) (func(), error) {
	if !validID(id) {
		return nil, errors.New("redisstore: lock: malformed session ID")
	}
	ttl = max(ttl, minLockTTL)
	key, token := s.lockKey(id), randomToken()
	deadline := time.Now().Add(ttl)
	wait := 5 * time.Millisecond
	for {
		ok, err := s.tryLock(ctx, key, token, ttl)
		if err != nil {
			return nil, fmt.Errorf("redisstore: lock: %w", err)
		}
		if ok {
			return s.holdLock(key, token, ttl), nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, fmt.Errorf("redisstore: lock: another process held it for over %v", ttl)
		}
		t := time.NewTimer(min(jitter(wait), left))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("redisstore: lock: %w", ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// lockScript takes the lock if no one holds it, or finds it this
// holder's already: a SET that reached Redis but whose reply was lost,
// which the client retried. KEYS: lock. ARGV: token, ttl in ms.
var lockScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
	return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
	return 1
end
return 0
`)

// tryLock takes the lock if no one holds it. It returns when ctx ends
// even if Redis has not answered (go-redis waits for its read timeout,
// and retries, unless ContextTimeoutEnabled is set); a lock taken after
// that is released.
func (s *Store) tryLock(ctx context.Context, key, token string, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	type result struct {
		ok  bool
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := lockScript.Run(ctx, s.c, []string{key}, token, ttl.Milliseconds()).Int()
		s.failed(err)
		done <- result{n == 1, err}
	}()
	select {
	case r := <-done:
		return r.ok, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.ok {
				_ = s.release(key, token) // else it expires
			}
		}()
		return false, ctx.Err()
	}
}

// holdLock renews the lock until the returned unlock is called, which
// then releases it, in the background.
func (s *Store) holdLock(key, token string, ttl time.Duration) func() {
	stop := make(chan struct{})
	go func() {
		every := ttl / 3
		until := time.Now().Add(ttl) // the lock expires by then unless renewed
		t := time.NewTimer(every)
		defer t.Stop()
	renew:
		for {
			select {
			case <-stop:
				break renew
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), every)
			held, err := renewScript.Run(ctx, s.c, []string{key}, token, ttl.Milliseconds()).Int()
			cancel()
			switch {
			case err != nil:
				s.failed(err)
				t.Reset(min(every, 100*time.Millisecond))
			case held == 0:
				return // another process has it: nothing to renew or release
			default:
				until = time.Now().Add(ttl)
				t.Reset(every)
			}
		}
		// Release it. When Redis cannot be reached (its master failing
		// over, say), try again until it can, or until the lock has
		// expired anyway: the promoted replica has the lock too, and the
		// next holder should not wait for its ttl.
		wait := 50 * time.Millisecond
		for {
			if err := s.release(key, token); err == nil || time.Now().After(until) {
				return
			}
			time.Sleep(jitter(wait))
			wait = min(2*wait, time.Second)
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(stop) }) }
}

// release deletes the lock if it is still this holder's.
func (s *Store) release(key, token string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := unlockScript.Run(ctx, s.c, []string{key}, token).Err()
	s.failed(err)
	return err
}

// randomToken returns 16 random bytes in hex.
func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// jitter returns a random duration between d/2 and d, so that waiters
// started together spread out.
func jitter(d time.Duration) time.Duration {
	return d/2 + mrand.N(d/2+1)
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
		s.failed(err)
		return false, fmt.Errorf("redisstore: claim token ID: %w", err)
	}
	return ok, nil
}

// ReleaseTokenID implements [auth.ReplayGuard].
func (s *Store) ReleaseTokenID(ctx context.Context, key string) error {
	if err := s.c.Del(ctx, s.prefix+"jti:"+key).Err(); err != nil {
		s.failed(err)
		return fmt.Errorf("redisstore: release token ID: %w", err)
	}
	return nil
}
