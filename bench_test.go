package auth_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

// The per-request path, side by side in one run: a bare handler, the
// wrapper on an anonymous request, and the wrapper with Google- and
// Azure-sized sessions, cold (a cookie value the process has not seen) and
// warm (the same value again, as a browser sends it).
//
//	go test -run '^$' -bench BenchmarkHandler -benchmem -count 10 . | tee bench.txt
//	go run golang.org/x/perf/cmd/benchstat@latest bench.txt
func BenchmarkHandler(b *testing.B) {
	p := authtest.NewProvider(authtest.Config{})
	defer p.Close()
	run := func(b *testing.B, h http.Handler, cookies ...string) {
		reqs := make([]*http.Request, len(cookies))
		for i, c := range cookies {
			reqs[i] = benchRequest("/page", "text/html", "Cookie", "_ga=GA1.1.1234567890.1700000000; theme=dark; "+c)
		}
		if len(reqs) == 0 {
			reqs = append(reqs, benchRequest("/page", "text/html"))
		}
		serveBench(b, h, reqs)
	}
	cookieBytes := func(c string) float64 {
		n := 0
		for _, kv := range strings.Split(c, "; ") {
			n += len(kv)
		}
		return float64(n)
	}

	b.Run("bare", func(b *testing.B) { run(b, helloApp) })
	b.Run("no-cookie", func(b *testing.B) { run(b, benchMiddleware(b, p, nil).Handler(helloApp)) })
	for _, size := range sessionSizes(p.URL) {
		b.Run("session-"+size.name+"-cold", func(b *testing.B) {
			m := benchMiddleware(b, p, nil)
			// Two sessions alternate in a one-entry cache: every request
			// misses and decodes.
			auth.SetCacheLimits(m, 1, 1<<20)
			var cs []string
			for i := 0; i < 2; i++ {
				c, err := auth.SealSession(m, size.access, size.refresh, size.idTok, time.Now().Add(time.Hour))
				if err != nil {
					b.Fatal(err)
				}
				cs = append(cs, c)
			}
			run(b, m.Handler(helloApp), cs...)
			b.ReportMetric(cookieBytes(cs[0]), "cookie-bytes")
		})
		if size.name == "google" {
			// The same without a refresh token: the refresh check costs
			// no allocation (compare allocs/op with session-google-warm).
			b.Run("session-google-warm-norefresh", func(b *testing.B) {
				m := benchMiddleware(b, p, nil)
				c, err := auth.SealSession(m, size.access, "", size.idTok, time.Now().Add(time.Hour))
				if err != nil {
					b.Fatal(err)
				}
				run(b, m.Handler(helloApp), c)
			})
		}
		b.Run("session-"+size.name+"-warm", func(b *testing.B) {
			m := benchMiddleware(b, p, nil)
			c, err := auth.SealSession(m, size.access, size.refresh, size.idTok, time.Now().Add(time.Hour))
			if err != nil {
				b.Fatal(err)
			}
			run(b, m.Handler(helloApp), c)
			b.ReportMetric(cookieBytes(c), "cookie-bytes")
		})
	}
}

// benchMiddleware is a middleware signing in through p, for benchmarks,
// with a silent logger; edit may change its Config.
func benchMiddleware(b *testing.B, p *authtest.Provider, edit func(*auth.Config)) *auth.Middleware {
	b.Helper()
	c := auth.Config{Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		RedirectURL: "http://127.0.0.1:8080/auth/callback", CookieSecret: apptest.Secret, Logger: slog.New(slog.DiscardHandler)}
	if edit != nil {
		edit(&c)
	}
	m, err := auth.New(context.Background(), c)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// helloApp is the application of the benchmarks: it says hello, and
// panics if the middleware hands it a user without a subject.
var helloApp = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if u := auth.User(r.Context()); u != nil && u.Subject == "" {
		panic("user without subject")
	}
	w.Write(hello)
})

var hello = []byte("hello")

// benchRequest is a GET of path on the benchmarks' app, accepting accept,
// with optional header pairs.
func benchRequest(path, accept string, header ...string) *http.Request {
	r := httptest.NewRequest("GET", "http://127.0.0.1:8080"+path, nil)
	r.Header.Set("Accept", accept)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	return r
}

// serveBench serves reqs to h in turn, b.N requests in all, reporting
// allocations.
func serveBench(b *testing.B, h http.Handler, reqs []*http.Request) {
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		h.ServeHTTP(w, reqs[i%len(reqs)])
	}
}

// sessionSizes are the tokens of a session as Google and Azure issue
// them, in size and shape.
func sessionSizes(iss string) []struct{ name, access, refresh, idTok string } {
	return []struct{ name, access, refresh, idTok string }{
		{"google", googleAccessToken(), randomToken("1//0", 100), fakeJWT(googleClaims(iss), 1000)},
		{"azure", fakeJWT(azureClaims(), 2500), randomToken("0.A", 1200), fakeJWT(azureClaims(), 2500)},
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// randomToken is an opaque token of n characters: prefix, then base64url.
func randomToken(prefix string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return (prefix + base64.RawURLEncoding.EncodeToString(b))[:n]
}

// googleAccessToken is shaped like Google's opaque access tokens (about
// 200 bytes, "ya29." and a dotted tail).
func googleAccessToken() string {
	return randomToken("ya29.", 120) + "." + randomToken("", 79)
}

// fakeJWT builds a JWT-shaped token of about size bytes: an RS256 header,
// the claims padded to size, and a 2048-bit signature's worth of random
// bytes. Its signature is not valid; the benchmark does not verify it, as
// the middleware does not on each request.
func fakeJWT(claims map[string]any, size int) string {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"0123456789abcdef0123456789abcdef01234567","typ":"JWT"}`))
	sig := make([]byte, 256)
	rand.Read(sig)
	sigs := base64.RawURLEncoding.EncodeToString(sig)
	enc := func() string {
		j, _ := json.Marshal(claims)
		return base64.RawURLEncoding.EncodeToString(j)
	}
	pad := size - len(header) - len(sigs) - 2 - len(enc())
	if pad > 0 {
		claims["xpad"] = randomToken("", pad*3/4)
	}
	return header + "." + enc() + "." + sigs
}

func googleClaims(iss string) map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"iss": iss, "azp": "test-client", "aud": "test-client", "sub": "110169484474386276334",
		"email": "alice.example@gmail.com", "email_verified": true, "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q",
		"name": "Alice Example", "picture": "https://lh3.googleusercontent.com/a/ACg8ocJ0abcdefghijklmnopqrstuvwxyz0123456789=s96-c",
		"given_name": "Alice", "family_name": "Example", "iat": now, "exp": now + 3600, "nonce": "0123456789abcdef0123456789abcdef0123456789a",
	}
}

func azureClaims() map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"aud": "6731de76-14a6-49ae-97bc-6eba6914391e", "iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
		"iat": now, "nbf": now, "exp": now + 3600, "name": "Alice Example", "oid": "00000000-0000-0000-66f3-3332eca7ea81",
		"preferred_username": "alice@contoso.onmicrosoft.com", "email": "alice@contoso.com", "rh": "0.ARoAv4j5cvGGr0GRqy180BHbR-1234.",
		"sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47", "uti": "fqiBqXLPj0eQa82S-IYFAA",
		"ver": "2.0", "groups": []string{"7b6d1a52-1b2a-4b7e-9d57-3a3c4b5d6e7f", "f0e1d2c3-b4a5-9687-7869-5a4b3c2d1e0f"},
	}
}

// BenchmarkCookieFloor sets the handler's cold path beside what it cannot
// go below: gorilla/securecookie's decoding of the same cookie (base64 twice,
// HMAC-SHA256, AES-CTR), and the cryptographic floor the issue names (one
// base64 decode and AES-256-GCM open of the same session bytes).
func BenchmarkCookieFloor(b *testing.B) {
	p := authtest.NewProvider(authtest.Config{})
	defer p.Close()
	m := benchMiddleware(b, p, nil)
	block, _ := aes.NewCipher(apptest.Secret[:32])
	gcm, _ := cipher.NewGCM(block)
	for _, size := range sessionSizes(p.URL) {
		header, err := auth.SealSession(m, size.access, size.refresh, size.idTok, time.Now().Add(time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		var value string
		for i, kv := range strings.Split(header, "; ") {
			v := strings.SplitN(kv, "=", 2)[1]
			if i == 0 {
				if j := strings.IndexByte(v, '.'); j >= 0 {
					v = v[j+1:]
				}
			}
			value += v
		}
		plain, err := auth.OpenSessionValue(m, value)
		if err != nil {
			b.Fatal(err)
		}
		nonce := make([]byte, gcm.NonceSize())
		sealed := base64.RawURLEncoding.EncodeToString(gcm.Seal(nonce, nonce, plain, nil))
		b.Run("securecookie-"+size.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := auth.OpenSessionValue(m, value); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(value)), "value-bytes")
		})
		b.Run("gcm-"+size.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				raw, err := base64.RawURLEncoding.DecodeString(sealed)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := gcm.Open(raw[len(nonce):len(nonce)], raw[:len(nonce)], raw[len(nonce):], nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(sealed)), "value-bytes")
		})
	}
}
