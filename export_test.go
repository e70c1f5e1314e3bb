package auth

import "time"

// SetNow replaces the middleware's clock, so tests can expire tokens and
// sessions without sleeping.
func SetNow(m *Middleware, now func() time.Time) { m.now = now }

// CleanReturn exposes the return-path cleaner to the fuzz test.
var CleanReturn = cleanReturn

// DecodeSessionValue runs the decoding of a session cookie value, for the
// fuzz test: it must never panic and never produce a user from garbage.
func DecodeSessionValue(m *Middleware, value string) (*Identity, error) {
	ss, err := m.decode(nil, []string{value})
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
	return identityFrom(s.provider, s.payload, s.extra)
}

// IdentityFromClaims reads an identity from a claims object, for the fuzz
// test comparing it with encoding/json.
func IdentityFromClaims(b []byte) (*Identity, error) { return identityFrom("", b, nil) }
