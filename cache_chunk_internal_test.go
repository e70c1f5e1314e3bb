package auth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

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
		rec := httptest.NewRecorder()
		if err := j.writeSession(rec, httptest.NewRequest("GET", "/", nil), value, 60); err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("GET", "/", nil)
		for _, c := range rec.Result().Cookies() {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		var buf [maxChunks]string
		parts, _, ok := j.sessionParts(req.Header["Cookie"], &buf)
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
