package auth_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
)

// meWith GETs app's /me as an API call that carries exactly cookies, as
// a browser that holds them, or a thief, sends them.
func meWith(t *testing.T, app *apptest.App, cookies ...*http.Cookie) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", app.URL+"/me", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	for _, c := range cookies {
		req.AddCookie(c)
	}
	res, _ := apptest.Do(t, http.DefaultClient, req)
	return res
}

func TestTamperedCookiesAreAnonymous(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	c := app.Login(t, "alice")
	good := app.SessionCookies(c)[0].Value
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for _, tt := range []struct{ name, value string }{
		{"flipped byte at start", flip(good, 3)},
		{"flipped byte in middle", flip(good, len(good)/2)},
		{"flipped byte at end", flip(good, len(good)-2)},
		{"truncated", good[:len(good)-10]},
		{"empty", ""},
		{"garbage", "not-a-session"},
		{"bad chunk count", "7.abc"},
		{"chunk count without chunks", "2." + good},
		{"huge", strings.Repeat("A", 4000)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := meWith(t, app, &http.Cookie{Name: "gatehouse", Value: tt.value})
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET /me with a %s cookie: status = %d, want 401", tt.name, res.StatusCode)
			}
			if s := apptest.SetCookies(res)["gatehouse"]; tt.value != "" && (s == nil || s.MaxAge >= 0) {
				t.Errorf("GET /me with a %s cookie: bad cookie not cleared (%v)", tt.name, res.Header["Set-Cookie"])
			}
		})
	}
}

func TestCookieFromAnotherSecret(t *testing.T) {
	p := authtest.NewProvider(authtest.Config{})
	t.Cleanup(p.Close)
	other := apptest.NewFor(t, p, func(c *auth.Config) { c.CookieSecret = []byte(strings.Repeat("z", 32)) })
	c := other.Login(t, "alice")
	app := apptest.NewFor(t, p, nil)
	if res := meWith(t, app, other.SessionCookies(c)[0]); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("cookie sealed with another secret: status = %d, want 401", res.StatusCode)
	}
}

// TestSessionBoundToDeployment: staging and production that share a
// cookie secret (and a Store) but use another provider or another client
// do not accept each other's sessions.
func TestSessionBoundToDeployment(t *testing.T) {
	staging := authtest.NewProvider(authtest.Config{})
	t.Cleanup(staging.Close)
	production := authtest.NewProvider(authtest.Config{})
	t.Cleanup(production.Close)
	store := newMemStore()
	for _, tt := range []struct {
		name  string
		store bool
		prod  func(t *testing.T) *apptest.App
	}{
		{"another issuer", false, func(t *testing.T) *apptest.App { return apptest.NewFor(t, production, nil) }},
		{"another client", false, func(t *testing.T) *apptest.App {
			return apptest.NewFor(t, staging, func(c *auth.Config) { c.ClientID = "production-client" })
		}},
		{"another issuer, shared store", true, func(t *testing.T) *apptest.App {
			return apptest.NewFor(t, production, func(c *auth.Config) { c.Store = store })
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stg := apptest.NewFor(t, staging, func(c *auth.Config) {
				if tt.store {
					c.Store = store
				}
			})
			c := stg.Login(t, "alice")
			if status, _ := stg.Me(t, c); status != http.StatusOK {
				t.Fatalf("staging GET /me: %d, want 200", status)
			}
			prod := tt.prod(t)
			if res := meWith(t, prod, stg.SessionCookies(c)...); res.StatusCode != http.StatusUnauthorized {
				t.Errorf("staging's session at production (%s): status = %d, want 401", tt.name, res.StatusCode)
			}
		})
	}
}

func TestSecretRotation(t *testing.T) {
	p := authtest.NewProvider(authtest.Config{})
	t.Cleanup(p.Close)
	oldSecret := []byte(strings.Repeat("o", 32))
	before := apptest.NewFor(t, p, func(c *auth.Config) { c.CookieSecret = oldSecret })
	c := before.Login(t, "alice")
	cookie := before.SessionCookies(c)[0]

	after := apptest.NewFor(t, p, func(c *auth.Config) { c.PreviousCookieSecrets = [][]byte{oldSecret} })
	if res := meWith(t, after, cookie); res.StatusCode != http.StatusOK {
		t.Errorf("cookie sealed with the previous secret: status = %d, want 200", res.StatusCode)
	}
}

func TestLargeIDTokenIsChunked(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	c, res, body := app.LoginWithFault(t, "alice", authtest.Fault{IDToken: func(c map[string]any) {
		groups := make([]string, 200)
		for i := range groups {
			groups[i] = "group-with-a-long-name-" + strings.Repeat("g", 4) + string(rune('a'+i%26))
		}
		c["groups"] = groups // about 6 KB of ID token
	}})
	if res.StatusCode != http.StatusFound {
		t.Fatalf("callback with a 6 KB ID token: %d %q", res.StatusCode, body)
	}
	var names []string
	for _, line := range res.Header["Set-Cookie"] {
		if len(line) >= 4096 {
			t.Errorf("Set-Cookie of %d bytes, want < 4096", len(line))
		}
		names = append(names, strings.SplitN(line, "=", 2)[0])
	}
	if len(app.SessionCookies(c)) < 3 {
		t.Errorf("session cookies = %v, want at least 3 chunks", names)
	}
	status, u := app.Me(t, c)
	var cl struct{ Groups []string }
	if status != http.StatusOK || u.DecodeClaims(&cl) != nil || len(cl.Groups) != 200 {
		t.Fatalf("GET /me with a chunked session: %d, %d groups; want 200 and 200 groups", status, len(cl.Groups))
	}

	// A refresh brings a normal-sized ID token: the extra chunks go.
	app.P.Advance(2 * time.Hour)
	if status, _ := app.Me(t, c); status != http.StatusOK {
		t.Fatalf("GET /me after refresh: status %d", status)
	}
	if got := app.SessionCookies(c); len(got) != 1 {
		t.Errorf("after shrinking refresh the browser holds %d session cookies, want 1", len(got))
	}
	if status, u := app.Me(t, c); status != http.StatusOK || u.Subject != "alice" {
		t.Errorf("GET /me after shrink: %d %+v", status, u)
	}

	// Logout deletes every chunk.
	big := app.Login(t, "alice")
	apptest.Get(t, big, app.URL+"/auth/logout")
	if got := app.SessionCookies(big); len(got) != 0 {
		t.Errorf("after logout the browser holds %v", got)
	}
}

func TestMissingChunkIsAnonymous(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	c, _, _ := app.LoginWithFault(t, "alice", authtest.Fault{IDToken: func(c map[string]any) { c["blob"] = strings.Repeat("b", 6000) }})
	u, _ := url.Parse(app.URL)
	var keep []*http.Cookie
	for _, ck := range app.SessionCookies(c) {
		if ck.Name != "gatehouse.1" {
			keep = append(keep, ck)
		}
	}
	if res := meWith(t, app, keep...); len(keep) < 2 || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("session with chunk 1 missing (%d cookies at %s): status = %d, want 401", len(keep), u, res.StatusCode)
	}
}

func FuzzSessionCookie(f *testing.F) {
	p := authtest.NewProvider(authtest.Config{})
	defer p.Close()
	m, err := auth.New(context.Background(), auth.Config{Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		RedirectURL: "http://127.0.0.1:1/auth/callback", CookieSecret: apptest.Secret})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", "x", "MTcwMDAwMDAwMHx8", strings.Repeat("A", 100), "2.abc", "a|b|c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if u, err := auth.DecodeSessionValue(m, v); err == nil || u != nil {
			t.Fatalf("decoding %q gave user %+v, err %v; want an error", v, u, err)
		}
	})
}

func FuzzSessionBytes(f *testing.F) {
	for _, s := range []string{"\x01", "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00", "\x01\x00\x02\x02\x02\x00\x00\x00\x02\x03ab\x02ab\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Whatever the bytes (they passed authentication, so only a bug of
		// ours could make them odd), decoding must not panic, and a user
		// comes out only with a subject.
		u, err := auth.UnmarshalSession(b)
		if err == nil && (u == nil || u.Subject == "") {
			t.Fatalf("UnmarshalSession(%q) = %+v, nil; want a user with a subject or an error", b, u)
		}
	})
}

func TestSessionCacheIsBounded(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	auth.SetCacheLimits(app.M, 2, 1<<20)
	var browsers []*http.Client
	for _, sub := range []string{"alice", "bob", "alice", "bob"} {
		browsers = append(browsers, app.Login(t, sub))
	}
	// Four sessions through a two-entry cache: all still work, decoded
	// again when evicted.
	for round := 0; round < 2; round++ {
		for i, b := range browsers {
			if status, u := app.Me(t, b); status != http.StatusOK || u.Subject != []string{"alice", "bob"}[i%2] {
				t.Errorf("round %d browser %d: %d %+v", round, i, status, u)
			}
		}
	}
	if n := auth.CacheLen(app.M); n > 2 {
		t.Errorf("cache holds %d entries, want at most 2", n)
	}
}

// TestTamperedCookieIsLogged: a session cookie that does not decode is
// dropped, and one debug line per request says so ("why am I logged
// out?"), without the cookie's value.
func TestTamperedCookieIsLogged(t *testing.T) {
	app := apptest.New(t, authtest.Config{}, nil)
	c := app.Login(t, "alice")
	ck := app.SessionCookies(c)[0]
	bad := ck.Value[:len(ck.Value)-4] + "AAAA"
	req, _ := http.NewRequest("GET", app.URL+"/", nil)
	req.AddCookie(&http.Cookie{Name: ck.Name, Value: bad})
	before := strings.Count(app.Logs.String(), "ignoring session cookie")
	res, body := apptest.Do(t, http.DefaultClient, req)
	logs := app.Logs.String()
	if body != "anonymous" || strings.Count(logs, "ignoring session cookie")-before != 1 || strings.Contains(logs, bad[:40]) {
		t.Errorf("tampered cookie: %d %q; log lines %d; want anonymous, one debug line without the value:\n%s", res.StatusCode, body, strings.Count(logs, "ignoring session cookie")-before, logs)
	}
}
