package auth

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gorilla/securecookie"
	"golang.org/x/oauth2"
)

// This file loads and saves sessions: the cookie (or server-side Store)
// round trip, the cache of sessions already verified, and the per-request
// state that handlers reach through the context.

// Store keeps sessions on the server side, so the cookie carries only a
// random 256-bit session ID (itself authenticated and encrypted). Use it
// when tokens are too large for cookies or sessions must be revocable.
// Implementations must be safe for concurrent use.
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

// ErrStoreUnavailable wraps errors from a [Store] that could not answer.
var ErrStoreUnavailable = errors.New("auth: session store unavailable")

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

func (m *Middleware) newState(s *session, id string) (*sessionState, error) {
	u, err := identityFrom(s.provider, s.payload, s.extra)
	if err != nil {
		return nil, err
	}
	if p := m.providerByName(s.provider); p != nil {
		p.quirks.identity(u)
	}
	return &sessionState{sess: s, user: u, end: time.Unix(s.created, 0).Add(m.lifetime), id: id}, nil
}

// load returns the request's session state, or nil when it is anonymous.
// A cookie that does not decode, or a session that has ended, is cleared.
func (m *Middleware) load(w http.ResponseWriter, r *http.Request) *reqState {
	var buf [maxChunks]string
	parts, present, ok := m.jar.sessionParts(r.Header, &buf)
	if !present {
		return nil
	}
	if !ok {
		m.jar.clearSession(w, r)
		return nil
	}
	now := m.now()
	ss := m.cache.get(parts, now)
	if ss == nil {
		var err error
		ss, err = m.decode(r.Context(), parts)
		if err != nil {
			if errors.Is(err, ErrStoreUnavailable) {
				m.log.ErrorContext(r.Context(), "auth: session store failed", "error", err)
				return &reqState{ResponseWriter: w, m: m, r: r, unavailable: true}
			}
			m.log.DebugContext(r.Context(), "auth: ignoring session cookie", "error", err)
			m.jar.clearSession(w, r)
			return nil
		}
		if !now.Before(ss.end) {
			_ = m.endSession(w, r, ss) // a failed delete is retried by the next request
			return nil
		}
		m.cache.put(ss, now)
	}
	if m.refreshDue(ss.sess, now) {
		ns, err := m.refresh(r.Context(), ss)
		switch {
		case errors.Is(err, ErrSessionEnded):
			_ = m.endSession(w, r, ss) // a failed delete is retried by the next request
			return nil
		case err == nil && ns != ss:
			if err := m.writeCookie(w, r, ns); err != nil {
				m.log.ErrorContext(r.Context(), "auth: save refreshed session", "error", err)
			}
			ss = ns
		}
	}
	st := &reqState{ResponseWriter: w, m: m, r: r}
	st.ss.Store(ss)
	return st
}

// decode authenticates, decrypts and decodes a session cookie.
func (m *Middleware) decode(ctx context.Context, parts []string) (*sessionState, error) {
	value := parts[0]
	if len(parts) > 1 {
		value = strings.Join(parts, "")
	}
	var data []byte
	if err := securecookie.DecodeMulti(m.jar.name, value, &data, m.codecs...); err != nil {
		return nil, err
	}
	id := ""
	if m.store != nil {
		id = string(data)
		d, found, err := m.store.Load(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
		}
		if !found {
			return nil, errors.New("auth: unknown session id")
		}
		data = d
	}
	s, err := unmarshalSession(data)
	if err != nil {
		return nil, err
	}
	if p := m.providerByName(s.provider); p == nil || s.binding != p.binding {
		// Another deployment sharing the secret (staging and production),
		// or a provider renamed or reconfigured: not a session of ours.
		return nil, fmt.Errorf("auth: session from unknown provider %q or another issuer or client", s.provider)
	}
	ss, err := m.newState(s, id)
	if err != nil {
		return nil, err
	}
	ss.value = value
	return ss, nil
}

// providerByName returns the provider of that name, or nil. A linear scan:
// there are a few providers at most.
func (m *Middleware) providerByName(name string) *provider {
	for _, p := range m.providers {
		if p.name == name {
			return p
		}
	}
	return nil
}

// save stores s (in the Store, when there is one) and returns its state,
// with the cookie value to send. When the Store fails, it returns the
// unsaved state with an error wrapping ErrStoreUnavailable.
func (m *Middleware) save(ctx context.Context, s *session, id string) (*sessionState, error) {
	data := s.marshal()
	if s.idToken != "" {
		// Decode it back once so the payload points into our own bytes.
		ns, err := unmarshalSession(data)
		if err != nil {
			return nil, err
		}
		s = ns
	}
	ss, err := m.newState(s, id)
	if err != nil {
		return nil, err
	}
	var storeErr error
	if m.store != nil {
		if ss.id == "" {
			ss.id = randomString()
		}
		info := SessionInfo{Provider: s.provider, Subject: ss.user.Subject, SID: claimString(ss.user.Claims, "sid"), Expiry: ss.end}
		if err := m.store.Save(ctx, ss.id, data, info); err != nil {
			// On a Store failure the state is still returned, unsaved,
			// for a refresh to keep its new tokens in memory.
			storeErr = fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
		}
		data = []byte(ss.id) // the cookie holds only the ID
	}
	v, err := securecookie.EncodeMulti(m.jar.name, data, m.codecs...)
	if err != nil {
		return nil, fmt.Errorf("auth: encode session: %w", err)
	}
	ss.value = v
	return ss, storeErr
}

// writeCookie sets the session cookie(s) for ss and caches ss, so the
// browser's next request with this exact value skips decoding.
func (m *Middleware) writeCookie(w http.ResponseWriter, r *http.Request, ss *sessionState) error {
	maxAge := int(ss.end.Sub(m.now()) / time.Second)
	if err := m.jar.writeSession(w, r, ss.value, max(maxAge, 1)); err != nil {
		return err
	}
	m.cache.put(ss, m.now())
	return nil
}

// endSession clears the session cookies, forgets the cached state and
// deletes the session from the Store.
// A Store that fails to delete is logged and reported (wrapping
// ErrStoreUnavailable), and the cookie is then kept: a cleared cookie in
// front of a live stored session would make logout look done when a copy
// of the cookie still works.
func (m *Middleware) endSession(w http.ResponseWriter, r *http.Request, ss *sessionState) error {
	if ss != nil {
		m.cache.remove(ss)
		m.graced.endFamily(ss, m.now())
		if m.store != nil && ss.id != "" {
			if err := m.store.Delete(r.Context(), ss.id); err != nil {
				m.log.ErrorContext(r.Context(), "auth: delete stored session", "error", err)
				return fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
			}
		}
	}
	m.jar.clearSession(w, r)
	return nil
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
// cryptography. Keys are a seeded hash of the value; a hit is confirmed by
// comparing the whole value in constant time. It is bounded in entries and
// bytes; entries end with their session. Sessions in a Store are not
// cached, so deleting them takes effect at once.
type sessionCache struct {
	seed    maphash.Seed
	entries *boundedCache[uint64, *sessionState]
	off     bool
}

func newSessionCache(maxEntries, maxBytes int) *sessionCache {
	return &sessionCache{seed: maphash.MakeSeed(), entries: newBoundedCache[uint64, *sessionState](maxEntries, maxBytes)}
}

// hash keys a cookie value by its length and its last bytes, which encode
// securecookie's MAC and so differ between any two values we issued;
// hashing the whole value would cost more than the comparison that
// confirms a hit anyway.
func (c *sessionCache) hash(parts ...string) uint64 {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	last := parts[len(parts)-1]
	if len(last) >= 48 || len(parts) == 1 {
		return maphash.String(c.seed, last[max(0, len(last)-48):]) ^ uint64(n)*0x9E3779B97F4A7C15
	}
	// A chunked value whose last chunk is short: the tail spans chunks.
	var h maphash.Hash
	h.SetSeed(c.seed)
	i, rest := len(parts)-1, 48
	for i > 0 && len(parts[i]) < rest {
		rest -= len(parts[i])
		i--
	}
	h.WriteString(parts[i][max(0, len(parts[i])-rest):])
	for _, p := range parts[i+1:] {
		h.WriteString(p)
	}
	return h.Sum64() ^ uint64(n)*0x9E3779B97F4A7C15
}

func (c *sessionCache) get(parts []string, now time.Time) *sessionState {
	if c.off {
		return nil
	}
	ss, ok := c.entries.get(c.hash(parts...), now)
	if !ok {
		return nil
	}
	// Compare part by part against the cached value, in constant time.
	v := ss.value
	var diff uint64
	for _, p := range parts {
		if len(p) > len(v) {
			return nil
		}
		diff |= xorStrings(v[:len(p)], p)
		v = v[len(p):]
	}
	if diff != 0 || v != "" {
		return nil
	}
	return ss
}

// xorStrings returns 0 if a and b (of equal length) are equal, and
// non-zero otherwise, in time that depends only on their length: it ORs
// together the XOR of every 8-byte word, with no data-dependent branch.
// It is crypto/subtle.ConstantTimeCompare eight bytes at a time, which
// matters for cookies of several kilobytes on every request.
func xorStrings(a, b string) uint64 {
	x := unsafe.Slice(unsafe.StringData(a), len(a)) // read-only views
	y := unsafe.Slice(unsafe.StringData(b), len(b))[:len(x)]
	var d0, d1, d2, d3 uint64
	for len(x) >= 32 {
		p, q := (*[32]byte)(x), (*[32]byte)(y)
		d0 |= binary.LittleEndian.Uint64(p[0:]) ^ binary.LittleEndian.Uint64(q[0:])
		d1 |= binary.LittleEndian.Uint64(p[8:]) ^ binary.LittleEndian.Uint64(q[8:])
		d2 |= binary.LittleEndian.Uint64(p[16:]) ^ binary.LittleEndian.Uint64(q[16:])
		d3 |= binary.LittleEndian.Uint64(p[24:]) ^ binary.LittleEndian.Uint64(q[24:])
		x, y = x[32:], y[32:]
	}
	for i := range x {
		d0 |= uint64(x[i] ^ y[i])
	}
	return d0 | d1 | d2 | d3
}

func (c *sessionCache) put(ss *sessionState, now time.Time) {
	if c.off || ss.value == "" {
		return
	}
	c.entries.put(c.hash(ss.value), ss, ss.size(), ss.end, now)
}

func (ss *sessionState) size() int {
	// The cookie value, and about as much again for the decoded session
	// and its token strings once built.
	return 2*len(ss.value) + 512
}

func (c *sessionCache) remove(ss *sessionState) {
	if ss.value == "" {
		return
	}
	c.entries.deleteIf(c.hash(ss.value), func(e *sessionState) bool { return e.value == ss.value })
}

// reqState is the per-request value behind User, Token and Client. It is
// also the ResponseWriter the handler gets, so that a token refreshed in
// the middle of the handler (through Client) can still add its cookies
// before the headers go out.
type reqState struct {
	http.ResponseWriter
	// The request's context: reqState is also the context the handler
	// sees, answering Value(ctxKey{}) itself, which saves the allocation
	// of a context.WithValue on every request.
	context.Context
	m           *Middleware
	r           *http.Request
	ss          atomic.Pointer[sessionState]
	unavailable bool // the Store could not answer: neither signed in nor anonymous

	mu      sync.Mutex
	written bool
	pending *sessionState // refreshed session whose cookie is still to be set
	ended   bool          // session ended mid-request: clear the cookies
	client  *http.Client
}

// Value implements context.Context.
func (st *reqState) Value(key any) any {
	if key == (ctxKey{}) {
		return st
	}
	return st.Context.Value(key)
}

// String implements fmt.Stringer, as the standard library's contexts do.
func (st *reqState) String() string { return "auth.requestContext" }

// commit writes pending cookie changes into the headers, once, before the
// first byte of the response.
func (st *reqState) commit() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.written {
		return
	}
	st.written = true
	switch {
	case st.ended:
		st.m.jar.clearSession(st.ResponseWriter, st.r)
	case st.pending != nil:
		if err := st.m.writeCookie(st.ResponseWriter, st.r, st.pending); err != nil {
			st.m.log.Error("auth: save refreshed session", "error", err)
		}
	}
}

// refreshed records a session refreshed during the handler.
func (st *reqState) refreshed(ns *sessionState) {
	st.ss.Store(ns)
	st.mu.Lock()
	st.pending = ns
	st.mu.Unlock()
}

func (st *reqState) endedMidRequest() {
	st.mu.Lock()
	st.ended = true
	st.mu.Unlock()
	st.ss.Store(nil)
}

// WriteHeader implements http.ResponseWriter.
func (st *reqState) WriteHeader(code int) {
	st.commit()
	st.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (st *reqState) Write(p []byte) (int, error) {
	st.commit()
	return st.ResponseWriter.Write(p)
}

// ReadFrom keeps io.Copy to the response as fast as without us.
func (st *reqState) ReadFrom(src io.Reader) (int64, error) {
	st.commit()
	return io.Copy(st.ResponseWriter, src)
}

// Flush implements http.Flusher.
func (st *reqState) Flush() {
	st.commit()
	_ = http.NewResponseController(st.ResponseWriter).Flush()
}

// Hijack implements http.Hijacker when the underlying writer does.
func (st *reqState) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	st.commit()
	return http.NewResponseController(st.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (st *reqState) Unwrap() http.ResponseWriter { return st.ResponseWriter }

var _ interface {
	http.Flusher
	http.Hijacker
	io.ReaderFrom
} = (*reqState)(nil)

// sessionAttrs describes a session for slog: its user and provider, never
// its tokens.
func sessionAttrs(ss *sessionState) slog.Attr {
	if ss == nil || ss.user == nil {
		return slog.Group("session")
	}
	return slog.Group("session", slog.String("sub", ss.user.Subject), slog.String("provider", ss.user.Provider))
}
