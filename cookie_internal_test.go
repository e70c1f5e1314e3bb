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
			parts, _, ok := j.sessionParts(req.Header, &buf)
			if got := strings.Join(parts, ""); !ok || got != value {
				t.Errorf("%d bytes in %d cookies: read back %d bytes (ok %v)", l, len(rec.Result().Cookies()), len(got), ok)
			}
		}
	}
}
