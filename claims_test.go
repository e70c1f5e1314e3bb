package auth_test

import (
	"encoding/json"
	"testing"

	"github.com/gatehouse/auth"
)

// FuzzClaims checks the per-request claims reader against encoding/json:
// it accepts exactly the JSON objects that have a sub, and reads the same
// values.
func FuzzClaims(f *testing.F) {
	for _, s := range []string{
		`{"sub":"alice","email":"a@example.com","email_verified":true,"name":"A","picture":"p"}`,
		`{"sub":"b\u00e9\"x","email_verified":"true","groups":["a",{"b":[1,2.5e3,null]}],"n":-1}`,
		`{"sub":1}`, `{"sub":"x",}`, `[]`, `{"sub":"x"} x`, `{"a":{"b":{"c":{}}}, "sub":"x"}`,
		`{"sub":"\q"}`, "{\"sub\":\"\xff\"}", `{"sub":"x","name":"\u12"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := auth.IdentityFromClaims(b)
		// Claim names are case-sensitive (RFC 7519), so compare with a
		// map, not encoding/json's case-insensitive struct fields. For
		// duplicate names both keep the last.
		var obj map[string]any
		isObj := json.Unmarshal(b, &obj) == nil
		sub, _ := obj["sub"].(string)
		if err == nil {
			if !isObj {
				t.Fatalf("claims %q: read as %+v, but encoding/json rejects it", b, u)
			}
			if u.Subject != sub {
				t.Fatalf("claims %q: sub = %q, encoding/json says %q", b, u.Subject, sub)
			}
			for _, p := range []struct {
				got  string
				want any
			}{{u.Email, obj["email"]}, {u.Name, obj["name"]}, {u.Picture, obj["picture"]}} {
				if s, _ := p.want.(string); p.got != s {
					t.Fatalf("claims %q: field = %q, encoding/json says %q", b, p.got, s)
				}
			}
			return
		}
		if isObj && sub != "" && json.Valid(b) {
			t.Fatalf("claims %q: rejected (%v), but it is a JSON object with sub %q", b, err, sub)
		}
	})
}
