package auth

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/securecookie"
	"golang.org/x/oauth2"
)

// This file reads and writes sessions. One type, sessions, owns the whole
// round trip: the Cookie header scan and chunks (cookie.go), the codec, the
// cache of sessions already verified, the absolute lifetime, and where the
// session lives, which is its backend's business: in the cookie itself
// (cookieBackend, below) or in a Store with only its ID in the cookie
// (storeBackend, store.go). Nothing outside this file asks which.
//
//	lookup: Cookie header -> chunks -> cache, or securecookie -> backend -> session -> state
//	save:   session -> bytes -> backend -> securecookie -> state (with the cookie value)
//	write:  state -> Set-Cookie (chunked), or deletion of the cookies the request carried
//	forget: drop the cached state, mark its sign-in ended, delete it from the backend

// backend is where a session lives.
type backend interface {
	// open returns the session bytes, and the session's ID, that a
	// cookie's sealed bytes stand for.
	open(ctx context.Context, sealed []byte) (data []byte, id string, err error)
	// save stores a session's bytes under id ("" for a new session) and
	// returns what the cookie seals, and the session's ID. When storing
	// fails it still returns them, with the error.
	save(ctx context.Context, id string, data []byte, info SessionInfo) (sealed []byte, newID string, err error)
	// delete forgets session id.
	delete(ctx context.Context, id string) error
	// lockRefresh takes session id's refresh lock where several processes
	// share the session, and returns the session's bytes as stored now
	// (nil when there is no shared copy to compare with).
	lockRefresh(ctx context.Context, id string) (unlock func(), latest []byte, err error)
	// cached reports whether decoded sessions may be kept in memory
	// (sessions.cache is sized by it).
	cached() bool
}

// cookieBackend: the cookie is the session.
type cookieBackend struct{}

func (cookieBackend) open(_ context.Context, sealed []byte) ([]byte, string, error) {
	return sealed, "", nil
}

func (cookieBackend) save(_ context.Context, _ string, data []byte, _ SessionInfo) ([]byte, string, error) {
	return data, "", nil
}

func (cookieBackend) delete(context.Context, string) error { return nil }

func (cookieBackend) lockRefresh(context.Context, string) (func(), []byte, error) {
	return func() {}, nil, nil
}

func (cookieBackend) cached() bool { return true }

// sessions is the one owner of reading and writing sessions.
type sessions struct {
	jar       cookieJar
	codecs    []securecookie.Codec // the first seals, all open (secret rotation)
	backend   backend
	cache     *sessionCache
	ended     *boundedCache[[8]byte, struct{}] // families of sign-ins ended lately
	lifetime  time.Duration
	providers providers
	now       func() time.Time
	log       *slog.Logger
}

// errNoCookie: the request carries no session cookie.
var errNoCookie = errors.New("auth: no session cookie")

// lookup returns the request's session. The errors: errNoCookie; an error
// wrapping ErrStoreUnavailable (the Store could not answer: the user may
// well be signed in); any other error means the cookie is not a session of
// ours, or one that has ended.
func (s *sessions) lookup(r *http.Request) (*sessionState, error) {
	return s.lookupAt(r.Context(), r.Header["Cookie"], s.now())
}

// lookupAt is lookup of the Cookie header lines at the time now.
func (s *sessions) lookupAt(ctx context.Context, lines []string, now time.Time) (*sessionState, error) {
	if len(lines) == 0 {
		return nil, errNoCookie
	}
	var buf [maxChunks]string
	parts, present, ok := s.jar.sessionParts(lines, &buf)
	switch {
	case !present:
		return nil, errNoCookie
	case !ok:
		return nil, errors.New("auth: session cookie chunks are missing or malformed")
	}
	if ss := s.cache.get(parts, now); ss != nil {
		return ss, nil
	}
	ss, err := s.decode(ctx, parts)
	if err != nil {
		return nil, err
	}
	if !now.Before(ss.end) {
		return nil, errors.New("auth: session lifetime ended")
	}
	s.cache.put(ss, now)
	return ss, nil
}

// decode authenticates, decrypts and decodes a session cookie, and reads
// what it stands for from the backend.
func (s *sessions) decode(ctx context.Context, parts []string) (*sessionState, error) {
	value := parts[0]
	if len(parts) > 1 {
		value = strings.Join(parts, "")
	}
	var sealed []byte
	if err := securecookie.DecodeMulti(s.jar.name, value, &sealed, s.codecs...); err != nil {
		return nil, err
	}
	data, id, err := s.backend.open(ctx, sealed)
	if err != nil {
		return nil, err
	}
	ss, err := s.state(data, id)
	if err != nil {
		return nil, err
	}
	ss.value = value
	return ss, nil
}

// state decodes session bytes into a state. The session must come from a
// provider configured here, with the same issuer and client ID (see
// provider.binding): a deployment sharing the secret with another one
// (staging and production) does not accept the other's sessions.
func (s *sessions) state(data []byte, id string) (*sessionState, error) {
	sess, err := unmarshalSession(data)
	if err != nil {
		return nil, err
	}
	return s.newState(sess, id)
}

func (s *sessions) newState(sess *session, id string) (*sessionState, error) {
	p := s.providers.byName(sess.provider)
	if p == nil || sess.binding != p.binding {
		return nil, fmt.Errorf("auth: session from unknown provider %q or another issuer or client", sess.provider)
	}
	u, err := identityFrom(sess.provider, sess.payload, sess.extra)
	if err != nil {
		return nil, err
	}
	p.quirks.identity(u)
	return &sessionState{sess: sess, user: u, end: time.Unix(sess.created, 0).Add(s.lifetime), id: id}, nil
}

// save stores sess (under id; "" for a new session) and returns its state,
// with the cookie value to send. When the Store fails, it returns the
// unsaved state too, with an error wrapping ErrStoreUnavailable, so that a
// refresh can keep its new tokens in memory.
func (s *sessions) save(ctx context.Context, sess *session, id string) (*sessionState, error) {
	if p := s.providers.byName(sess.provider); p != nil && sameScopes(sess.scope, p.oauth.Scopes) {
		sess.scope = "" // as requested: nothing to store
	}
	data := sess.marshal()
	if sess.idToken != "" {
		// Decode it back once so the payload points into our own bytes.
		ns, err := unmarshalSession(data)
		if err != nil {
			return nil, err
		}
		sess = ns
	}
	ss, err := s.newState(sess, id)
	if err != nil {
		return nil, err
	}
	info := SessionInfo{Provider: sess.provider, Subject: ss.user.Subject, SID: claimString(ss.user.Claims, "sid"), Expiry: ss.end}
	sealed, id, storeErr := s.backend.save(ctx, id, data, info)
	ss.id = id
	v, err := securecookie.EncodeMulti(s.jar.name, sealed, s.codecs...)
	if err != nil {
		return nil, fmt.Errorf("auth: encode session: %w", err)
	}
	ss.value = v
	return ss, storeErr
}

// write is the one way session cookies go out: it sets the cookies of ss
// (and caches ss, so the browser's next request with this exact value
// skips decoding), or with ss nil deletes the session cookies the request
// carries.
func (s *sessions) write(w http.ResponseWriter, r *http.Request, ss *sessionState) error {
	if ss == nil {
		s.jar.clearSession(w, r)
		return nil
	}
	now := s.now()
	maxAge := max(int(ss.end.Sub(now)/time.Second), 1)
	if err := s.jar.writeSession(w, r, ss.value, maxAge); err != nil {
		return err
	}
	s.cache.put(ss, now)
	return nil
}

// forget ends the session on the server's side: it drops the cached
// state, marks its sign-in as ended (the refresher's grace cache hands out
// nothing of it any more) and deletes it from the backend. The caller then
// deletes the cookies with write, unless forget failed: a backend that
// fails to delete is reported (wrapping ErrStoreUnavailable), and the
// cookie must then be kept, since a cleared cookie in front of a live
// stored session would make logout look done when a copy of the cookie
// still works.
func (s *sessions) forget(ctx context.Context, ss *sessionState) error {
	now := s.now()
	s.cache.remove(ss)
	s.ended.put(ss.sess.family, struct{}{}, 64, now.Add(endedMemory), now)
	if ss.id == "" {
		return nil
	}
	if err := s.backend.delete(ctx, ss.id); err != nil {
		s.log.ErrorContext(ctx, "auth: delete stored session", "error", err)
		return err
	}
	return nil
}

// endedMemory is how long an ended sign-in is remembered: longer than any
// grace period it could be looked up in.
const endedMemory = 10 * time.Minute

// hasEnded reports whether the sign-in of ss ended lately.
func (s *sessions) hasEnded(ss *sessionState, now time.Time) bool {
	_, ended := s.ended.get(ss.sess.family, now)
	return ended
}

// lockRefresh takes the refresh lock of ss where several processes share
// it, and returns the state as stored now if another process refreshed it
// meanwhile (nil otherwise).
func (s *sessions) lockRefresh(ctx context.Context, ss *sessionState) (unlock func(), newer *sessionState, err error) {
	unlock, latest, err := s.backend.lockRefresh(ctx, ss.id)
	if err != nil || latest == nil {
		return unlock, nil, err
	}
	cur, err := unmarshalSession(latest)
	if err != nil {
		return unlock, nil, nil
	}
	cur.unpack()
	if old := ss.full(); cur.refresh == old.refresh && cur.tokenTime <= old.tokenTime {
		return unlock, nil, nil
	}
	ns, err := s.newState(cur, ss.id)
	if err != nil {
		return unlock, nil, nil
	}
	ns.value = ss.value // the same ID, so the same cookie
	return unlock, ns, nil
}

// sessionState is one verified session, immutable and shared by every
// request that carries the same cookie.
type sessionState struct {
	sess  *session
	user  *Identity
	end   time.Time // end of the absolute lifetime
	id    string    // Store session ID, "" for cookie sessions
	value string    // the cookie value it was read from or written as

	unpackOnce sync.Once
	tokenOnce  sync.Once
	token      *oauth2.Token // built on first use: most requests never ask
}

// full returns the session with its token strings built (once: the state
// is shared by concurrent requests).
func (ss *sessionState) full() *session {
	ss.unpackOnce.Do(ss.sess.unpack)
	return ss.sess
}

// oauthToken returns the session's token as x/oauth2 has it.
func (ss *sessionState) oauthToken() *oauth2.Token {
	ss.tokenOnce.Do(func() {
		s := ss.full()
		t := &oauth2.Token{AccessToken: s.access, TokenType: s.tokenType, RefreshToken: s.refresh}
		if s.expiry != 0 {
			t.Expiry = time.Unix(s.expiry, 0)
		}
		if s.idToken != "" {
			t = t.WithExtra(map[string]any{"id_token": s.idToken})
		}
		ss.token = t
	})
	return ss.token
}

func (ss *sessionState) size() int {
	// The cookie value, and about as much again for the decoded session
	// and its token strings once built.
	return 2*len(ss.value) + 512
}

// sessionAttrs describes a session for slog: its user and provider, never
// its tokens.
func sessionAttrs(ss *sessionState) slog.Attr {
	if ss == nil || ss.user == nil {
		return slog.Group("session")
	}
	return slog.Group("session", slog.String("sub", ss.user.Subject), slog.String("provider", ss.user.Provider))
}

// claimString returns a top-level string claim from a JSON object.
func claimString(claims []byte, name string) string {
	var v string
	_ = scanObject(string(claims), func(k, val string) {
		if k == name {
			v = jsonString(val)
		}
	})
	return v
}

// sessionCache maps cookie values the process has already authenticated
// and decoded to their state, so a browser's repeated requests skip the
// cryptography. Keys are a seeded hash of the value's last bytes (its MAC)
// and length; a hit is confirmed by comparing the whole value in constant
// time. Entries end with their session.
type sessionCache struct {
	seed    maphash.Seed
	entries *boundedCache[uint64, *sessionState]
}

func newSessionCache(maxEntries, maxBytes int) *sessionCache {
	return &sessionCache{seed: maphash.MakeSeed(), entries: newBoundedCache[uint64, *sessionState](maxEntries, maxBytes)}
}

// tailLen is how many of a value's last bytes key it in the cache: they
// encode securecookie's MAC, so they differ between any two values we
// issued, and hashing them costs far less than hashing the whole value.
const tailLen = 48

// key hashes the last tailLen bytes of the value that parts make up, and
// its length.
func (c *sessionCache) key(parts ...string) uint64 {
	if last := parts[len(parts)-1]; len(parts) == 1 || len(last) >= tailLen {
		size := len(last)
		for _, p := range parts[:len(parts)-1] {
			size += len(p)
		}
		return maphash.String(c.seed, last[max(len(last)-tailLen, 0):]) ^ uint64(size)*0x9E3779B97F4A7C15
	}
	// A chunked value whose last chunk is short: its tail spans chunks.
	var tail [tailLen]byte
	n, size := tailLen, 0
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		size += len(p)
		k := copy(tail[max(n-len(p), 0):n], p[max(len(p)-n, 0):])
		n -= k
	}
	return maphash.Bytes(c.seed, tail[n:]) ^ uint64(size)*0x9E3779B97F4A7C15
}

func (c *sessionCache) get(parts []string, now time.Time) *sessionState {
	ss, ok := c.entries.get(c.key(parts...), now)
	if !ok {
		return nil
	}
	v := ss.value
	var diff uint64
	for _, p := range parts {
		if len(p) > len(v) {
			return nil
		}
		diff |= differ(v[:len(p)], p)
		v = v[len(p):]
	}
	if diff != 0 || v != "" {
		return nil
	}
	return ss
}

// differ returns 0 if a and b (of equal length) are equal, and non-zero
// otherwise, in time that depends only on their length: it ORs together
// the XOR of every 8-byte word, with no data-dependent branch. It is
// crypto/subtle.ConstantTimeCompare eight bytes at a time, which matters
// for cookies of several kilobytes on every request.
func differ(a, b string) uint64 {
	b = b[:len(a)]
	var d0, d1, d2, d3 uint64
	for len(a) >= 32 {
		x, y := a[:32], b[:32] // of known length: no bounds checks below
		d0 |= word(x, 0) ^ word(y, 0)
		d1 |= word(x, 8) ^ word(y, 8)
		d2 |= word(x, 16) ^ word(y, 16)
		d3 |= word(x, 24) ^ word(y, 24)
		a, b = a[32:], b[32:]
	}
	for i := range len(a) {
		d0 |= uint64(a[i] ^ b[i])
	}
	return d0 | d1 | d2 | d3
}

// word reads 8 bytes of s at i, little-endian (one load, compiled).
func word(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func (c *sessionCache) put(ss *sessionState, now time.Time) {
	if ss.value == "" {
		return
	}
	c.entries.put(c.key(ss.value), ss, ss.size(), ss.end, now)
}

func (c *sessionCache) remove(ss *sessionState) {
	if ss.value == "" {
		return
	}
	c.entries.deleteIf(c.key(ss.value), func(e *sessionState) bool { return e.value == ss.value })
}
