package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file reads the user's identity out of a JSON claims object. The ID
// token was verified when it was received; on later requests its payload is
// only read back, so this runs on the per-request path and avoids building a
// map of every claim: it scans the top level for the few fields Identity
// names and keeps the object itself as raw JSON.

var errClaims = errors.New("auth: malformed claims")

// identityFrom fills an Identity from the ID token payload and the extra
// claims object (either may be empty; the payload's values win). The two
// objects have disjoint keys (extra holds only what the payload lacks), so
// the raw claims are their textual union. Each object is copied into one
// string, and the Identity's fields are slices of it.
func identityFrom(provider string, payload, extra []byte) (*Identity, error) {
	u := &Identity{Provider: provider}
	for _, obj := range [][]byte{extra, payload} {
		if len(obj) == 0 {
			continue
		}
		if err := scanObject(string(obj), u.setField); err != nil {
			return nil, err
		}
	}
	if u.Subject == "" {
		return nil, errClaims
	}
	switch {
	case len(extra) == 0:
		u.Claims = payload
	case len(payload) == 0:
		u.Claims = extra
	default:
		u.Claims = mergeObjects(payload, extra)
	}
	return u, nil
}

// setField is scanObject's callback for the claims that Identity names.
func (u *Identity) setField(key, val string) {
	switch claimField(key) {
	case "sub":
		u.Subject = jsonString(val)
	case "email":
		u.Email = jsonString(val)
	case "name":
		u.Name = jsonString(val)
	case "picture":
		u.Picture = jsonString(val)
	case "email_verified":
		// Most providers send a boolean; some send the string "true".
		u.EmailVerified = val == "true" || val == `"true"`
	}
}

// identityClaims are the claims that Identity has fields for.
var identityClaims = [...]string{"sub", "email", "name", "picture", "email_verified"}

// claimField returns the name of the Identity claim that the raw object
// key k stands for, or k itself when it stands for none of them (see
// claimName).
func claimField(k string) string { return claimName(k, identityClaims[:]) }

// claimName returns the claim of names that the raw object key k stands
// for, or k itself when it stands for none of them. Keys are matched as
// encoding/json matches names to struct fields (as go-oidc and
// DecodeClaims read them): unescaped, and case-insensitively with Unicode
// folding, so "SUB" and "ſub" are "sub" too. A lowercase ASCII key without
// escapes, as nearly every key is, is matched as it is.
func claimName(k string, names []string) string {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c >= 0x80 || c == '\\' || 'A' <= c && c <= 'Z' {
			name := jsonString(`"` + k + `"`)
			for _, f := range names {
				if strings.EqualFold(name, f) {
					return f
				}
			}
			return k
		}
	}
	return k
}

// checkClaimNames rejects a claims object in which two top-level names
// are the same name to encoding/json (see claimField): readers that take
// the first and readers that take the last would then see different
// users. It runs where tokens are verified, so that every reader of a
// stored session sees one value per claim.
func checkClaimNames(claims []byte) error {
	var names []string
	err := scanObject(string(claims), func(k, _ string) {
		names = append(names, foldName(jsonString(`"`+k+`"`)))
	})
	if err != nil {
		return fmt.Errorf("%w: claims: %w", ErrTokenInvalid, err)
	}
	slices.Sort(names)
	for i := 1; i < len(names); i++ {
		if names[i] == names[i-1] {
			return fmt.Errorf("%w: a claim name appears twice (ignoring case)", ErrTokenInvalid)
		}
	}
	return nil
}

// foldName maps s to a form that is equal for two strings exactly when
// strings.EqualFold says they are equal: each rune becomes the smallest
// of its case-folding orbit.
func foldName(s string) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, s)
}

// mergeObjects joins two JSON objects with disjoint keys.
func mergeObjects(a, b []byte) []byte {
	a, b = trimSpace(a), trimSpace(b)
	if len(b) <= 2 {
		return a
	}
	if len(a) <= 2 {
		return b
	}
	out := make([]byte, 0, len(a)+len(b))
	out = append(out, a[:len(a)-1]...)
	out = append(out, ',')
	return append(out, b[1:]...)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// jsonString returns the string a JSON string literal holds, or "" for any
// other value. Literals without escapes are sliced; others go through
// encoding/json.
func jsonString(val string) string {
	if len(val) < 2 || val[0] != '"' {
		return ""
	}
	inner := val[1 : len(val)-1]
	if strings.IndexByte(inner, '\\') < 0 && utf8.ValidString(inner) {
		return inner
	}
	var s string
	if json.Unmarshal([]byte(val), &s) != nil {
		return ""
	}
	return s
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// scanObject calls fn with each top-level key (undecoded, without quotes)
// and raw value of the JSON object in data. It checks the syntax of
// everything it steps over, so garbage is an error, never a panic.
func scanObject(data string, fn func(key, val string)) error {
	s := scanner{b: data}
	s.ws()
	if !s.eat('{') {
		return errClaims
	}
	s.ws()
	if s.eat('}') {
		return s.end()
	}
	for {
		s.ws()
		ks := s.i
		if !s.str() {
			return errClaims
		}
		key := data[ks+1 : s.i-1]
		s.ws()
		if !s.eat(':') {
			return errClaims
		}
		s.ws()
		vs := s.i
		if !s.value(0) {
			return errClaims
		}
		fn(key, data[vs:s.i])
		s.ws()
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return s.end()
		}
		return errClaims
	}
}

type scanner struct {
	b string
	i int
}

func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return errClaims
	}
	return nil
}

func (s *scanner) ws() {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// plain marks the bytes a JSON string holds as they are: not a quote, a
// backslash or a control character.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str steps over a string literal, escapes included.
func (s *scanner) str() bool {
	if !s.eat('"') {
		return false
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case plain[c]:
			s.i++
		case c == '"':
			s.i++
			return true
		case c == '\\':
			if !s.escape() {
				return false
			}
		default:
			return false
		}
	}
	return false
}

// escape steps over one escape sequence: \" \\ \/ \b \f \n \r \t or \uXXXX.
func (s *scanner) escape() bool {
	if s.i+1 >= len(s.b) {
		return false
	}
	switch s.b[s.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i += 2
		return true
	case 'u':
		if s.i+6 > len(s.b) {
			return false
		}
		for _, h := range []byte(s.b[s.i+2 : s.i+6]) {
			if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
				return false
			}
		}
		s.i += 6
		return true
	}
	return false
}

const maxDepth = 10000 // as encoding/json

func (s *scanner) value(depth int) bool {
	if s.i >= len(s.b) || depth > maxDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return s.str()
	case c == '{':
		return s.elements('}', depth)
	case c == '[':
		return s.elements(']', depth)
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	return false
}

// elements steps over the members of an object (end '}') or the elements
// of an array (end ']'), from the opening byte to the end.
func (s *scanner) elements(end byte, depth int) bool {
	s.i++
	s.ws()
	if s.eat(end) {
		return true
	}
	for {
		s.ws()
		if end == '}' {
			if !s.str() {
				return false
			}
			s.ws()
			if !s.eat(':') {
				return false
			}
			s.ws()
		}
		if !s.value(depth + 1) {
			return false
		}
		s.ws()
		if s.eat(end) {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// number steps over -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.eat('.') && !s.digits() {
		return false
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

// digits steps over one or more digits.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

func (s *scanner) lit(w string) bool {
	if len(s.b)-s.i >= len(w) && s.b[s.i:s.i+len(w)] == w {
		s.i += len(w)
		return true
	}
	return false
}
