package redisstore_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
)

// BenchmarkAuthenticated is the per-request path of a signed-in user, with
// the session in the cookie (decoded once, then found in the process's
// cache) beside the session in Redis on loopback (one HGET and a decode on
// every request, the price of revocation taking effect at once):
//
//	.ci/with-redis sh -c 'cd redisstore && go test -run "^$" -bench BenchmarkAuthenticated -benchmem -count 5 .'
func BenchmarkAuthenticated(b *testing.B) {
	for _, bc := range []struct {
		name  string
		store func(b *testing.B) auth.Store
	}{
		{"cookie-store", func(*testing.B) auth.Store { return nil }},
		{"redis-store", func(b *testing.B) auth.Store { s, _, _ := newStore(b, topologies[0]); return s }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			store := bc.store(b)
			p := newProvider(b, authtest.Config{})
			app := newApp(b, p, store, nil)
			browser := app.Login(b, "alice")
			var cookies []string
			for _, c := range browser.Jar.Cookies(mustURL(b, app.URL)) {
				cookies = append(cookies, c.Name+"="+c.Value)
			}
			req := httptest.NewRequest(http.MethodGet, app.URL+"/page", nil)
			req.Header.Set("Cookie", strings.Join(cookies, "; "))
			hello := []byte("hello")
			h := app.M.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if auth.User(r.Context()) == nil {
					panic("anonymous request: the session did not load")
				}
				w.Write(hello)
			}))
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps nothing but headers.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
