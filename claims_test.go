package auth_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/gatehouse/auth"
)

// FuzzClaims checks the per-request claims reader against encoding/json,
// which go-oidc and Identity.DecodeClaims use: it accepts exactly the JSON
// objects that have a sub, and reads the same values, matching claim names
// as encoding/json matches struct fields (unescaped, case-insensitively
// with Unicode folding: "ſub" is "sub"; the last of equal names wins).
func FuzzClaims(f *testing.F) {
	for _, s := range []string{
		`{"sub":"alice","email":"a@example.com","email_verified":true,"name":"A","picture":"p"}`,
		`{"sub":"b\u00e9\"x","email_verified":"true","groups":["a",{"b":[1,2.5e3,null]}],"n":-1}`,
		`{"sub":1}`, `{"sub":"x",}`, `[]`, `{"sub":"x"} x`, `{"a":{"b":{"c":{}}}, "sub":"x"}`,
		`{"sub":"\q"}`, "{\"sub\":\"\xff\"}", `{"sub":"x","name":"\u12"}`,
		`{"sub":"alice","ſub":"bob"}`, `{"SUB":"alice","Email":"e","NAME":"n"}`, `{"\u0073ub":"x","sub":"y"}`,
		`{"sub":"x","pictureſ":"p","emaiK":"e"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := auth.IdentityFromClaims(b)
		var c struct {
			Sub     any `json:"sub"`
			Email   any `json:"email"`
			Name    any `json:"name"`
			Picture any `json:"picture"`
		}
		isObj := json.Unmarshal(b, &c) == nil && json.Valid(b) && bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{"))
		sub, _ := c.Sub.(string)
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
			}{{u.Email, c.Email}, {u.Name, c.Name}, {u.Picture, c.Picture}} {
				if s, _ := p.want.(string); p.got != s {
					t.Fatalf("claims %q: field = %q, encoding/json says %q", b, p.got, s)
				}
			}
			return
		}
		if isObj && sub != "" {
			t.Fatalf("claims %q: rejected (%v), but it is a JSON object with sub %q", b, err, sub)
		}
	})
}
