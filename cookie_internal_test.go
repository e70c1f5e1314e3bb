package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestChunksRoundTrip writes session values of every length around each
// chunk boundary and reads them back as a browser would send them: the
// count prefix grows from two bytes to three at ten chunks, which must not
// spill a byte into a chunk the reader never reads.
func TestChunksRoundTrip(t *testing.T) {
	j := newCookieJar("gatehouse", "/", "", false, "/auth")
	size := j.chunkSize()
	for n := 1; n < maxChunks; n++ {
		for d := -4; d <= 4; d++ {
			l := n*size + d
			if l <= 0 {
				continue
			}
			value := strings.Repeat("v", l-1) + "w"
			rec := httptest.NewRecorder()
			err := j.writeSession(rec, httptest.NewRequest("GET", "/", nil), value, 60)
			if err != nil {
				if n >= maxChunks-1 {
					continue // too large: refused, with an error
				}
				t.Fatalf("writeSession(%d bytes): %v", l, err)
			}
			req := httptest.NewRequest("GET", "/", nil)
			for _, c := range rec.Result().Cookies() {
				if len(c.String()) >= 4096 {
					t.Errorf("%d bytes: Set-Cookie of %d bytes", l, len(c.String()))
				}
				req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
			}
			var buf [maxChunks]string
			parts, _, ok := j.sessionParts(req.Header["Cookie"], &buf)
			if got := strings.Join(parts, ""); !ok || got != value {
				t.Errorf("%d bytes in %d cookies: read back %d bytes (ok %v)", l, len(rec.Result().Cookies()), len(got), ok)
			}
		}
	}
}

// FuzzSessionRoundTrip: whatever the tokens (JWTs, opaque strings with
// dots, base64url or not, empty), a session reads back exactly as written.
func FuzzSessionRoundTrip(f *testing.F) {
	f.Add("ya29.a0AfB_byC", "1//0gLq-abc_", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", "Bearer", int64(1700000000))
	f.Add("", "", "", "", int64(0))
	f.Add("a.b.c.d", "0.AXYA.x_y-z", "..", "DPoP", int64(-1))
	f.Add("AAAA", "AAA=", "A", "", int64(1))
	f.Fuzz(func(t *testing.T, access, refresh, idToken, tokenType string, expiry int64) {
		if strings.Count(access, ".") > 15 || strings.Count(refresh, ".") > 15 || strings.Count(idToken, ".") > 15 {
			return // more segments than a session accepts
		}
		in := &session{provider: "p", created: 1, tokenTime: 2, expiry: expiry, tokenType: tokenType,
			access: access, refresh: refresh, idToken: idToken, extra: []byte(`{"sub":"x"}`)}
		out, err := unmarshalSession(in.marshal())
		if err != nil {
			t.Fatalf("unmarshal(marshal(%q, %q, %q)): %v", access, refresh, idToken, err)
		}
		out.unpack()
		if out.access != access || out.refresh != refresh || out.idToken != idToken || out.tokenType != tokenType ||
			out.expiry != expiry || out.canRefresh() != (refresh != "") || string(out.extra) != `{"sub":"x"}` {
			t.Fatalf("round trip of (%q, %q, %q, %q, %d) gave (%q, %q, %q, %q, %d)", access, refresh, idToken, tokenType, expiry,
				out.access, out.refresh, out.idToken, out.tokenType, out.expiry)
		}
	})
}
