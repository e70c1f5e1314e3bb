package redisstore_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/auth"
	"github.com/gatehouse/auth/authtest"
	"github.com/gatehouse/auth/internal/apptest"
	"github.com/gatehouse/auth/redisstore"
	"github.com/redis/go-redis/v9"
)

// TestLargeTokenSession: an ID token of over 20 KB, far past what cookies
// hold, lives in Redis; the cookie holds the ID only.
func TestLargeTokenSession(t *testing.T) { onEachTopology(t, testLargeTokenSession) }

func testLargeTokenSession(t *testing.T, tp topology) {
	store, c, prefix := newStore(t, tp)
	p := newProvider(t, authtest.Config{})
	app := newApp(t, p, store, func(c *auth.Config) { c.SessionLifetime = time.Hour })
	blob := strings.Repeat("x", 20<<10)
	p.FailNext(authtest.Fault{IDToken: func(claims map[string]any) { claims["blob"] = blob }})
	b := app.Login(t, "alice")

	status, u := app.Me(t, b)
	if status != http.StatusOK {
		t.Fatalf("GET /me: status %d, want 200", status)
	}
	var claims struct{ Blob string }
	if err := u.DecodeClaims(&claims); err != nil || claims.Blob != blob {
		t.Errorf("the user's blob claim has %d bytes (%v), want the 20 KB of the ID token", len(claims.Blob), err)
	}
	cookieBytes := 0
	for _, ck := range b.Jar.Cookies(mustURL(t, app.URL)) {
		if strings.HasPrefix(ck.Name, "gatehouse") {
			cookieBytes += len(ck.Name) + len(ck.Value)
		}
	}
	if cookieBytes == 0 || cookieBytes > 300 {
		t.Errorf("session cookies hold %d bytes, want a small ID cookie", cookieBytes)
	}
	var sessionKey string
	for _, k := range keys(t, c, prefix) {
		if strings.HasSuffix(k, "}:s") {
			sessionKey = k
		}
	}
	if n := c.HStrLen(context.Background(), sessionKey, "d").Val(); n < 20<<10 {
		t.Errorf("stored session has %d bytes, want over 20 KB", n)
	}
	if ttl := c.PTTL(context.Background(), sessionKey).Val(); ttl < 59*time.Minute || ttl > time.Hour {
		t.Errorf("stored session TTL = %v, want about SessionLifetime (1h)", ttl)
	}
}

// TestLogoutRevokes: after logout, a copy of the old cookie no longer
// works, on any instance.
func TestLogoutRevokes(t *testing.T) { onEachTopology(t, testLogoutRevokes) }

func testLogoutRevokes(t *testing.T, tp topology) {
	store, c, prefix := newStore(t, tp)
	p := newProvider(t, authtest.Config{})
	app1, app2 := newApp(t, p, store, nil), newApp(t, p, store, nil)
	b := app1.Login(t, "alice")
	stolen := app1.Clone(t, b)
	if status, _ := app2.Me(t, stolen); status != http.StatusOK {
		t.Fatalf("GET /me on the second instance: status %d, want 200", status)
	}
	if res, _, _ := apptest.Follow(t, b, app1.URL+"/auth/logout"); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /auth/logout: status %d, want 200 after the redirects", res.StatusCode)
	}
	for i, app := range []*apptest.App{app1, app2} {
		if status, _ := app.Me(t, stolen); status != http.StatusUnauthorized {
			t.Errorf("GET /me on instance %d with a copy of the logged-out cookie: status %d, want 401", i+1, status)
		}
	}
	wantOnlyTombstones(t, c, prefix, "logout")
}

// TestUnknownSessionIsAnonymous: a session ID Redis does not know
// (expired, flushed) makes the request anonymous and clears the cookie.
func TestUnknownSessionIsAnonymous(t *testing.T) { onEachTopology(t, testUnknownSessionIsAnonymous) }

func testUnknownSessionIsAnonymous(t *testing.T, tp topology) {
	store, c, prefix := newStore(t, tp)
	p := newProvider(t, authtest.Config{})
	app := newApp(t, p, store, nil)
	b := app.Login(t, "alice")
	deleteKeys(t, c, prefix)
	res, body := apptest.Get(t, b, app.URL+"/")
	if res.StatusCode != http.StatusOK || body != "anonymous" {
		t.Errorf("GET / with an unknown session ID: status %d, body %q; want 200 anonymous", res.StatusCode, body)
	}
	cleared := false
	for _, ck := range res.Cookies() {
		cleared = cleared || strings.HasPrefix(ck.Name, "gatehouse") && ck.MaxAge < 0
	}
	if !cleared {
		t.Errorf("GET / with an unknown session ID: Set-Cookie %q, want the session cookie cleared", res.Header.Values("Set-Cookie"))
	}
}

// TestLogoutEverywhere: EndSessions on one instance ends the user's
// sessions on every instance.
func TestLogoutEverywhere(t *testing.T) { onEachTopology(t, testLogoutEverywhere) }

func testLogoutEverywhere(t *testing.T, tp topology) {
	store, _, _ := newStore(t, tp)
	p := newProvider(t, authtest.Config{})
	app1, app2 := newApp(t, p, store, nil), newApp(t, p, store, nil)
	alice1, alice2, bob := app1.Login(t, "alice"), app2.Login(t, "alice"), app1.Login(t, "bob")
	n, err := app2.M.EndSessions(context.Background(), "", "alice")
	if n != 2 || err != nil {
		t.Fatalf("EndSessions(alice) = %d, %v; want 2, nil", n, err)
	}
	apptest.WantEnded(t, []*apptest.App{app1, app2}, "EndSessions(alice)", bob, alice1, alice2)
}

const backchannelPath = "/auth/backchannel-logout"

// TestBackchannelLogout: the provider's logout token, received by one
// instance, ends the user's sessions on all; bad tokens are rejected, and
// a token accepted by one instance is rejected by the other.
func TestBackchannelLogout(t *testing.T) { onEachTopology(t, testBackchannelLogout) }

func testBackchannelLogout(t *testing.T, tp topology) {
	store, _, _ := newStore(t, tp)
	p := newProvider(t, authtest.Config{})
	edit := func(c *auth.Config) { c.BackchannelLogoutPath = backchannelPath }
	app1, app2 := newApp(t, p, store, edit), newApp(t, p, store, edit)
	p.SetBackchannelLogoutURI(app1.URL + backchannelPath)
	alice1, alice2, bob := app1.Login(t, "alice"), app2.Login(t, "alice"), app2.Login(t, "bob")

	post := func(app *apptest.App, token string) (int, string) {
		t.Helper()
		res, err := http.PostForm(app.URL+backchannelPath, url.Values{"logout_token": {token}})
		if err != nil {
			t.Fatalf("POST %s: %v", backchannelPath, err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	for _, tt := range []struct {
		name  string
		token string
	}{
		{"nonce", p.LogoutToken(map[string]any{"sub": "alice", "nonce": "n"})},
		{"wrong aud", p.LogoutToken(map[string]any{"sub": "alice", "aud": "someone-else"})},
		{"no event", p.LogoutToken(map[string]any{"sub": "alice", "events": nil})},
		{"no sub nor sid", p.LogoutToken(map[string]any{})},
		{"bad signature", p.LogoutToken(map[string]any{"sub": "alice"}) + "x"},
	} {
		if status, body := post(app2, tt.token); status != http.StatusBadRequest || !strings.Contains(body, `"error":"invalid_request"`) {
			t.Errorf("POST logout token (%s): status %d, body %q; want 400 invalid_request", tt.name, status, body)
		}
	}
	if status, _ := app1.Me(t, alice1); status != http.StatusOK {
		t.Fatalf("GET /me as alice after bad logout tokens: status %d, want 200", status)
	}

	if err := p.BackchannelLogout("alice"); err != nil {
		t.Fatalf("BackchannelLogout(alice): %v", err)
	}
	apptest.WantEnded(t, []*apptest.App{app1, app2}, "alice's back-channel logout", bob, alice1, alice2)

	// A replay on the other instance is caught: the jti is in Redis.
	tok := p.LogoutToken(map[string]any{"sub": "bob"})
	if status, body := post(app1, tok); status != http.StatusOK {
		t.Fatalf("POST bob's logout token: status %d, body %q; want 200", status, body)
	}
	if status, body := post(app2, tok); status != http.StatusBadRequest {
		t.Errorf("POST the same logout token to the other instance: status %d, body %q; want 400", status, body)
	}
}

// TestRefreshAcrossInstances: two instances share Redis behind one
// provider; 20 concurrent requests with the same expired session, split
// between them, all succeed with one refresh grant, whether or not the
// provider rotates refresh tokens.
func TestRefreshAcrossInstances(t *testing.T) { onEachTopology(t, testRefreshAcrossInstances) }

func testRefreshAcrossInstances(t *testing.T, tp topology) {
	for _, tt := range []struct {
		name     string
		rotation authtest.RotationMode
	}{{"rotate", authtest.Rotate}, {"no rotation", authtest.NoRotation}} {
		t.Run(tt.name, func(t *testing.T) {
			store, _, _ := newStore(t, tp)
			p := newProvider(t, authtest.Config{Rotation: tt.rotation})
			apps := []*apptest.App{newApp(t, p, store, nil), newApp(t, p, store, nil)}
			b := apps[0].Login(t, "alice")
			_, before := apptest.Get(t, b, apps[0].URL+"/token")
			p.Advance(2 * time.Hour) // the access token (1h) has expired
			tok := apptest.RefreshStorm(t, p, b, 20, apps...)
			if tok == before {
				t.Fatalf("token after the refresh = %q, the one before it: want a refreshed token", tok)
			}
			// The refreshed session is in Redis: the other instance
			// serves it without another grant.
			for _, app := range apps {
				if _, got := apptest.Get(t, b, app.URL+"/token"); got != tok {
					t.Errorf("GET %s/token after the refresh = %q, want %q", app.URL, got, tok)
				}
			}
			if got := p.Grants("refresh_token"); got != 1 {
				t.Errorf("refresh_token grants after the burst = %d, want still 1", got)
			}
		})
	}
}

// TestRedisOutage: with Redis stopped, protected routes answer 503 and no
// cookie is cleared, other routes serve the user as anonymous; when Redis
// is back, the same cookie works again without a restart.
func TestRedisOutage(t *testing.T) {
	srv := startRedis(t)
	// Fail fast while Redis is down (go-redis retries for about 1.5 s by
	// default): one dial attempt, no retry.
	client := redis.NewClient(&redis.Options{Addr: srv.addr(), DialerRetries: 1, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })
	p := newProvider(t, authtest.Config{})
	app := newApp(t, p, redisstore.New(client, redisstore.Options{}), nil)
	b := app.Login(t, "alice")

	srv.stop()
	for _, accept := range []string{"application/json", "text/html"} {
		res, body := apptest.Get(t, b, app.URL+"/me", "Accept", accept)
		if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "unavailable") {
			t.Errorf("GET /me (Accept %s) with Redis stopped: status %d, body %q; want 503 saying unavailable", accept, res.StatusCode, body)
		}
		if sc := res.Header.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("GET /me with Redis stopped: Set-Cookie %q, want none", sc)
		}
	}
	if res, body := apptest.Get(t, b, app.URL+"/"); res.StatusCode != http.StatusOK || body != "anonymous" || len(res.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("GET / with Redis stopped: status %d, body %q, Set-Cookie %q; want 200 anonymous, no Set-Cookie", res.StatusCode, body, res.Header.Values("Set-Cookie"))
	}
	// A refresh due during the outage does not end the session either.
	p.Advance(2 * time.Hour)
	if res, _ := apptest.Get(t, b, app.URL+"/me", "Accept", "application/json"); res.StatusCode != http.StatusServiceUnavailable || len(res.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("GET /me with a refresh due and Redis stopped: status %d, Set-Cookie %q; want 503, none", res.StatusCode, res.Header.Values("Set-Cookie"))
	}

	srv.start()
	var status int
	var u *auth.Identity
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		// The first requests may still meet connections broken by the
		// restart; the client reconnects by itself.
		if status, u = app.Me(t, b); status == http.StatusOK {
			break
		}
	}
	if status != http.StatusOK || u.Subject != "alice" {
		t.Errorf("GET /me with Redis back: status %d, want 200 for alice", status)
	}
	if got := p.Grants("refresh_token"); got != 1 {
		t.Errorf("refresh_token grants = %d, want 1 (the refresh due since the outage)", got)
	}
}

// TestNewRequiresStoreForBackchannel: the cookie store cannot end
// sessions from the server, so New refuses a back-channel path without a
// Store; with redisstore it accepts it.
func TestNewRequiresStoreForBackchannel(t *testing.T) {
	p := newProvider(t, authtest.Config{})
	cfg := auth.Config{
		Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		RedirectURL: "http://127.0.0.1:1/auth/callback", CookieSecret: apptest.Secret,
		BackchannelLogoutPath: backchannelPath,
	}
	if _, err := auth.New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "Store") {
		t.Errorf("New with BackchannelLogoutPath and cookie sessions: %v, want an error about the Store", err)
	}
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	cfg.Store = redisstore.New(client, redisstore.Options{})
	if _, err := auth.New(context.Background(), cfg); err != nil {
		t.Errorf("New with BackchannelLogoutPath and redisstore: %v", err)
	}
}

// TestKeyRotationAcrossInstances: a key rotation at the provider, with 50
// sessions due at once over two instances (after 20 junk back-channel
// logout tokens that name unknown keys), ends no session; a login right
// after works.
func TestKeyRotationAcrossInstances(t *testing.T) { onEachTopology(t, testKeyRotationAcrossInstances) }

func testKeyRotationAcrossInstances(t *testing.T, tp topology) {
	store, _, _ := newStore(t, tp)
	p := newProvider(t, authtest.Config{})
	bcl := func(c *auth.Config) { c.BackchannelLogoutPath = "/auth/backchannel-logout" }
	apps := []*apptest.App{newApp(t, p, store, bcl), newApp(t, p, store, bcl)}
	const n = 50
	browsers := make([]*http.Client, n)
	for i := range browsers {
		sub := fmt.Sprintf("user%d", i)
		p.AddUser(authtest.User{Subject: sub, Name: sub})
		browsers[i] = apps[i%2].Login(t, sub)
	}
	other := newProvider(t, authtest.Config{})
	for i := range 20 {
		junk := other.LogoutToken(map[string]any{"sub": "user0", "iss": p.URL, "aud": p.ClientID}) // an unknown kid
		res, err := http.PostForm(apps[i%2].URL+"/auth/backchannel-logout", url.Values{"logout_token": {junk}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Fatalf("junk logout token %d: status %d, want 400", i, res.StatusCode)
		}
	}
	p.RotateKey(false)
	p.Advance(2 * time.Hour) // every access token is due
	for round := range 2 {
		apptest.Concurrently(t, n, func(i int) error {
			if status, _ := apps[(i+round)%2].Me(t, browsers[i]); status != http.StatusOK {
				return fmt.Errorf("round %d, session %d after a key rotation: GET /me = %d, want 200", round, i, status)
			}
			return nil
		})
	}
	c := apps[1].Login(t, "alice")
	if status, u := apps[0].Me(t, c); status != http.StatusOK || u.Subject != "alice" {
		t.Errorf("login right after the rotation: GET /me = %d %+v, want 200 alice", status, u)
	}
}
