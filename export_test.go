package auth

import (
	"context"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gorilla/securecookie"
)

// CleanReturn exposes the return-path cleaner to the fuzz test.
var CleanReturn = cleanReturn

// DecodeSessionValue runs the decoding of a session cookie value, for the
// fuzz test: it must never panic and never produce a user from garbage.
func DecodeSessionValue(m *Middleware, value string) (*Identity, error) {
	ss, err := m.sessions.decode(context.Background(), []string{value})
	if err != nil {
		return nil, err
	}
	return ss.user, nil
}

// UnmarshalSession decodes the inner session bytes (after securecookie),
// for the fuzz test.
func UnmarshalSession(b []byte) (*Identity, error) {
	s, err := unmarshalSession(b)
	if err != nil {
		return nil, err
	}
	s.unpack() // the tokens, built when a handler asks for them
	return identityFrom(s.provider, s.payload, s.extra)
}

// IdentityFromClaims reads an identity from a claims object, for the fuzz
// test comparing it with encoding/json.
func IdentityFromClaims(b []byte) (*Identity, error) { return identityFrom("", b, nil) }

// SealSession encodes a session holding the given raw tokens, as the
// callback would after verifying them, and returns its cookie header value
// (name=value pairs). It is for benchmarks, which need sessions of a given
// size without a provider.
func SealSession(m *Middleware, access, refresh, idToken string, expiry time.Time) (string, error) {
	now := m.now()
	s := &session{binding: m.providers[0].binding, family: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, created: now.Unix(), tokenTime: now.Unix(), expiry: expiry.Unix(), access: access, refresh: refresh, idToken: idToken}
	ss, err := m.sessions.save(context.Background(), s, "")
	if err != nil {
		return "", err
	}
	rec := httptest.NewRecorder()
	if err := m.sessions.jar.writeSession(rec, httptest.NewRequest("GET", "/", nil), ss.value, 3600); err != nil {
		return "", err
	}
	var parts []string
	for _, c := range rec.Result().Cookies() {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; "), nil
}

// SetCacheLimits bounds the session cache; 0 entries turns it off.
func SetCacheLimits(m *Middleware, entries, bytes int) {
	m.sessions.cache = newSessionCache(entries, bytes)
}

// CacheLen returns the number of cached sessions.
func CacheLen(m *Middleware) int { return m.sessions.cache.entries.len() }

// GraceLen returns the number of refreshed sessions in the grace cache.
func GraceLen(m *Middleware) int { return m.refresher.graced.len() }

// OpenSessionValue authenticates and decrypts a session cookie value with
// securecookie and returns the session bytes inside, for the benchmark
// that compares securecookie with the cryptographic floor.
func OpenSessionValue(m *Middleware, value string) ([]byte, error) {
	var data []byte
	err := securecookie.DecodeMulti(m.sessions.jar.name, value, &data, m.sessions.codecs...)
	return data, err
}

// SetBearerCacheLimits bounds the cache of verified bearer tokens; 0
// entries turns it off.
func SetBearerCacheLimits(m *Middleware, entries, bytes int) {
	m.bearer.verified = newBoundedCache[uint64, *bearerState](entries, bytes)
}
