package auth

import (
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// A session keeps its granted scope only when it differs from the one
// requested, in format 4; every other session is written in format 3, as
// before, and both read back.
func TestSessionScopeFormat(t *testing.T) {
	for _, tt := range []struct {
		scope       string
		wantVersion byte
	}{
		{"", sessionVersion},
		{"openid profile", sessionScopeVersion},
	} {
		s := &session{provider: "p", created: 1, tokenTime: 2, expiry: 3, access: "at", extra: []byte(`{"a":1}`), scope: tt.scope}
		b := s.marshal()
		if b[0] != tt.wantVersion {
			t.Errorf("scope %q: marshalled as format %d, want %d", tt.scope, b[0], tt.wantVersion)
		}
		got, err := unmarshalSession(b)
		if err != nil || got.scope != tt.scope || string(got.extra) != `{"a":1}` {
			t.Errorf("scope %q: unmarshal = %+v, %v; want the same scope and extra", tt.scope, got, err)
		}
	}
	// Format 4 with no scope is not one we write.
	b := (&session{scope: "x"}).marshal()
	b = append(b[:len(b)-2], 0)
	if _, err := unmarshalSession(b); err == nil {
		t.Errorf("unmarshal of format 4 with an empty scope: no error")
	}
}

func TestSetTokensScope(t *testing.T) {
	s := &session{}
	s.setTokens((&oauth2.Token{AccessToken: "a"}).WithExtra(map[string]any{"scope": "read:user,user:email"}), time.Now())
	if s.scope != "read:user user:email" {
		t.Errorf("scope from a comma-separated list = %q, want read:user user:email", s.scope)
	}
	s.setTokens(&oauth2.Token{AccessToken: "b"}, time.Now()) // a refresh that does not say: as before
	if s.scope != "read:user user:email" {
		t.Errorf("scope after a response without one = %q, want it kept", s.scope)
	}
}

func TestScopeLists(t *testing.T) {
	for _, tt := range []struct {
		in, want string
	}{
		{"a b", "a b"},
		{" a  b ", "a b"},
		{"a,b", "a b"},
		{"a, b", "a, b"}, // spaces separate; the comma is part of a scope
		{"", ""},
	} {
		if got := normalizeScope(tt.in); got != tt.want {
			t.Errorf("normalizeScope(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if !hasScope("a bb c", "bb") || hasScope("a bb c", "b") || hasScope("", "a") {
		t.Errorf("hasScope matches a scope by prefix, or misses one")
	}
	for _, tt := range []struct {
		list string
		want []string
		same bool
	}{
		{"openid email profile", []string{"openid", "email", "profile"}, true},
		{"profile openid email", []string{"openid", "email", "profile"}, true},
		{"openid profile", []string{"openid", "email", "profile"}, false},
		{"openid email profile read", []string{"openid", "email", "profile"}, false},
		{"", []string{"openid"}, false},
	} {
		if got := sameScopes(tt.list, tt.want); got != tt.same {
			t.Errorf("sameScopes(%q, %q) = %v, want %v", tt.list, tt.want, got, tt.same)
		}
	}
}

func TestBearerCredentials(t *testing.T) {
	for _, tt := range []struct {
		header   string
		tok      string
		isBearer bool
		valid    bool
	}{
		{"Bearer abc", "abc", true, true},
		{"bearer abc", "abc", true, true},
		{"BEARER  abc==", "abc==", true, true},
		{"Bearer a-._~+/Z9=", "a-._~+/Z9=", true, true},
		{"Bearer", "", true, false},
		{"Bearer ", "", true, false},
		{"Bearer a b", "a b", true, false},
		{"Bearer a=b", "a=b", true, false},
		{"Bearer ==", "==", true, false},
		{"Bearerabc", "", false, false},
		{"Basic abc", "", false, false},
		{"DPoP abc", "", false, false},
	} {
		tok, isBearer := bearerCredentials(tt.header)
		if tok != tt.tok || isBearer != tt.isBearer || (isBearer && validToken(tok) != tt.valid) {
			t.Errorf("%q: token %q, bearer %v, valid %v; want %q, %v, %v", tt.header, tok, isBearer, validToken(tok), tt.tok, tt.isBearer, tt.valid)
		}
	}
}

func TestAccessTokenType(t *testing.T) {
	for _, tt := range []struct {
		typ         string
		lax, strict bool
	}{
		{"at+jwt", true, true},
		{"application/at+jwt", true, true},
		{"AT+JWT", true, true},
		{"JWT", true, false},
		{"jwt", true, false},
		{"", true, false},
		{"logout+jwt", false, false},
		{"dpop+jwt", false, false},
		{"JOSE", false, false},
	} {
		if got := accessTokenType(tt.typ, false); got != tt.lax {
			t.Errorf("accessTokenType(%q, lax) = %v, want %v", tt.typ, got, tt.lax)
		}
		if got := accessTokenType(tt.typ, true); got != tt.strict {
			t.Errorf("accessTokenType(%q, strict) = %v, want %v", tt.typ, got, tt.strict)
		}
	}
}

func TestAccessClaims(t *testing.T) {
	for _, tt := range []struct {
		name, claims string
		ok           bool
		scope        string
	}{
		{"scope and scp array", `{"sub":"a","scope":"x y","scp":["z"]}`, true, "x y z"},
		{"escaped name", `{"sub":"a","\u0073cope":"x"}`, true, "x"},
		{"name twice", `{"sub":"a","sub":"b"}`, false, ""},
		{"name twice, folded", `{"sub":"a","SUB":"b"}`, false, ""},
		{"name twice, escaped", `{"sub":"a","\u0073ub":"b"}`, false, ""},
		{"exp a string", `{"sub":"a","exp":"1"}`, false, ""},
		{"scope a number", `{"sub":"a","scope":1}`, false, ""},
		{"not an object", `[1]`, false, ""},
	} {
		var c accessClaims
		err := c.read([]byte(tt.claims))
		if (err == nil) != tt.ok || (tt.ok && c.scope != tt.scope) {
			t.Errorf("%s: read: %v, scope %q; want ok %v, scope %q", tt.name, err, c.scope, tt.ok, tt.scope)
		}
	}
}
