package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
			set, parts, ok, err := sendBack(j, value)
			if err != nil {
				if n >= maxChunks-1 {
					continue // too large: refused, with an error
				}
				t.Fatalf("writeSession(%d bytes): %v", l, err)
			}
			for _, c := range set {
				if len(c.String()) >= 4096 {
					t.Errorf("%d bytes: Set-Cookie of %d bytes", l, len(c.String()))
				}
			}
			if got := strings.Join(parts, ""); !ok || got != value {
				t.Errorf("%d bytes in %d cookies: read back %d bytes (ok %v)", l, len(set), len(got), ok)
			}
		}
	}
}

// sendBack writes value as the session with j, and returns the cookies
// it set and the parts j reads from a request that carries them back as
// a browser does.
func sendBack(j cookieJar, value string) (set []*http.Cookie, parts []string, ok bool, err error) {
	rec := httptest.NewRecorder()
	if err := j.writeSession(rec, httptest.NewRequest("GET", "/", nil), value, 60); err != nil {
		return nil, nil, false, err
	}
	set = rec.Result().Cookies()
	req := httptest.NewRequest("GET", "/", nil)
	for _, c := range set {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	var buf [maxChunks]string
	parts, _, ok = j.sessionParts(req.Header["Cookie"], &buf)
	return set, parts, ok, nil
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

// A chunked session whose last chunk is shorter than the 48-byte hash tail
// must still be found in the cache: put hashes the joined value, get hashes
// the parts.
func TestCacheHitChunkedShortTail(t *testing.T) {
	j := newCookieJar("gatehouse", "/", "", false, "/auth")
	size := j.chunkSize()
	now := time.Now()
	for _, lastLen := range []int{10, 47, 48, 100} {
		// 2 chunks: "2." prefix + value; the second chunk holds lastLen bytes.
		l := 2*size - 2 - size + lastLen
		value := strings.Repeat("v", l-64) + strings.Repeat("m", 64)
		_, parts, ok, err := sendBack(j, value)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || len(parts) != 2 || len(parts[1]) != lastLen {
			t.Fatalf("setup: parts %d, last %d, ok %v", len(parts), len(parts[len(parts)-1]), ok)
		}
		c := newSessionCache(10, 1<<20)
		ss := &sessionState{value: value, end: now.Add(time.Hour)}
		c.put(ss, now)
		if got := c.get(parts, now); got != ss {
			t.Errorf("last chunk of %d bytes: cache.get = %v, want the cached state", lastLen, got)
		}
	}
}
